"""Vhost limits and user limits, as RabbitMQ's: how many connections a vhost and a user may have, how
many queues a vhost, and how many channels a user across all of their connections.

A vhost's limits are its runtime parameter `vhost-limits`/`limits`, where RabbitMQ keeps them too (so
they are stored, listed and exported as parameters); a user's are kept with the user. A negative
limit is no limit and 0 allows nothing. A limit is checked when a connection, channel or queue is
about to be made: lowering it below what exists closes nothing, as in RabbitMQ.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Collection, Mapping

from .errors import ChannelException
from .policies import erlang_term
from .shovels import unrecognised_terms

if TYPE_CHECKING:
    from .broker import ClientConnection
    from .parameters import Parameters
    from .users import Users

VHOST_LIMITS = "vhost-limits"
"""The runtime parameter component of vhost limits; the parameter's name is `LIMITS`."""
LIMITS = "limits"
MAX_CONNECTIONS = "max-connections"
MAX_QUEUES = "max-queues"
MAX_CHANNELS = "max-channels"
VHOST_LIMIT_NAMES = frozenset((MAX_CONNECTIONS, MAX_QUEUES))
USER_LIMIT_NAMES = frozenset((MAX_CONNECTIONS, MAX_CHANNELS))


def limits_problems(value: Any, known: frozenset[str], name: str) -> list[str]:
    """RabbitMQ's complaints about a limits object, which its texts call `name` (`limits` for a
    vhost's, `user-limits` for a user's); none if every key is a known limit with an integer value."""
    if not isinstance(value, dict):
        return [f"{name} not a list {erlang_term(value)}"]
    problems = unrecognised_terms(value, known, name)
    for key, limit in value.items():
        if key in known and (not isinstance(limit, int) or isinstance(limit, bool)):
            problems.append(f"{key} should be a number, actually was {erlang_term(limit)}")
    return problems


def check_vhost_limits(value: Any) -> None:
    """Raises ValueError, with RabbitMQ's reason, unless `value` is a valid `vhost-limits` value."""
    problems = limits_problems(value, VHOST_LIMIT_NAMES, LIMITS)
    if problems:
        raise ValueError("Validation failed\n\n" + "".join(problem + "\n" for problem in problems))


def check_user_limits(value: Any) -> None:
    """Raises ValueError, with RabbitMQ's reason, unless `value` is a valid object of user limits."""
    problems = limits_problems(value, USER_LIMIT_NAMES, "user-limits")
    if problems:
        raise ValueError("\n".join(problems))


def _in_force(limits: Mapping[str, Any], name: str) -> int | None:
    limit = limits.get(name)
    return limit if isinstance(limit, int) and limit >= 0 else None


class Limits:
    """The vhost and user limits, changed and checked here; the counts they are checked against are
    the broker's open connections, their channels, and a vhost's queues."""

    def __init__(self, parameters: Parameters, users: Users, connections: Collection[ClientConnection]) -> None:
        self._parameters = parameters
        self._users = users
        self._connections = connections

    # vhost limits

    def of_vhost(self, vhost: str) -> dict[str, int]:
        return dict(self._parameters.scoped.get((vhost, VHOST_LIMITS, LIMITS), {}))

    def set_vhost_limit(self, vhost: str, name: str, value: Any) -> None:
        """Sets one limit of an existing vhost, keeping the others; ValueError as RabbitMQ refuses it."""
        limits = {**self.of_vhost(vhost), name: value}
        check_vhost_limits(limits)
        self._parameters.set(vhost, VHOST_LIMITS, LIMITS, limits)

    def clear_vhost_limit(self, vhost: str, name: str) -> None:
        limits = self.of_vhost(vhost)
        if limits.pop(name, None) is None:
            return
        if limits:
            self._parameters.set(vhost, VHOST_LIMITS, LIMITS, limits)
        else:
            self._parameters.delete(vhost, VHOST_LIMITS, LIMITS)

    # user limits

    def set_user_limits(self, username: str, limits: dict[str, Any]) -> None:
        """Sets some limits of a user, keeping the others; ValueError as RabbitMQ refuses them, then
        KeyError if there is no such user."""
        check_user_limits(limits)
        user = self._users.users[username]
        self._users.put(dataclasses.replace(user, limits={**user.limits, **limits}))

    def clear_user_limit(self, username: str, name: str) -> None:
        user = self._users.users[username]
        if name in user.limits:
            limits = {key: value for key, value in user.limits.items() if key != name}
            self._users.put(dataclasses.replace(user, limits=limits))

    # checks

    def connection_refusal(self, username: str, vhost: str) -> str | None:
        """Why `username` may not open one more connection to `vhost`, in RabbitMQ's words; None if
        no limit stands in the way. The vhost's limit is checked first, as RabbitMQ does."""
        limit = _in_force(self.of_vhost(vhost), MAX_CONNECTIONS)
        if limit is not None and sum(c.vhost.name == vhost for c in self._connections) >= limit:
            return f"access to vhost '{vhost}' refused for user '{username}': connection limit ({limit}) is reached"
        limit = self._user_limit(username, MAX_CONNECTIONS)
        if limit is not None and sum(c.username == username for c in self._connections) >= limit:
            return f"connection refused for user '{username}': user connection limit ({limit}) is reached"
        return None

    def channel_refusal(self, username: str) -> str | None:
        """Why `username` may not open one more channel, counting those of all their connections;
        None if no limit stands in the way."""
        limit = self._user_limit(username, MAX_CHANNELS)
        if limit is None:
            return None
        opened = sum(len(c.sessions) for c in self._connections if c.username == username)
        if opened < limit:
            return None
        return f"number of channels opened for user '{username}' has reached the maximum allowed user limit of ({limit})"

    def check_new_queue(self, vhost: str, name: str, queues: int) -> None:
        """Raises 406 if a vhost with `queues` queues may not have the new queue `name`."""
        limit = _in_force(self.of_vhost(vhost), MAX_QUEUES)
        if limit is not None and queues >= limit:
            raise ChannelException.precondition_failed(
                f"cannot declare queue '{name}': queue limit in vhost '{vhost}' ({limit}) is reached"
            )

    def import_refusal(self, vhost: str, adding: int, queues: int) -> str | None:
        """Why a definitions import may not add `adding` queues to a vhost with `queues`, as RabbitMQ
        words it; None if it may."""
        limit = _in_force(self.of_vhost(vhost), MAX_QUEUES)
        if adding == 0 or limit is None or queues + adding <= limit:
            return None
        return (
            f'Adding {adding} queue(s) to virtual host "{vhost}" would exceed the limit of {limit} queue(s).\n\n'
            f"This virtual host currently has {queues} queue(s) defined.\n\nImport aborted!"
        )

    def _user_limit(self, username: str, name: str) -> int | None:
        user = self._users.get(username)
        return None if user is None else _in_force(user.limits, name)
