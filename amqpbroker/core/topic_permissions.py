"""Topic permissions: the routing keys a user may publish with, and bind with, on a topic exchange.

RabbitMQ's topic authorisation: per vhost, user and exchange, a write and a read regular expression,
matched (unanchored, as RabbitMQ's `re:run`) against the routing key of a basic.publish (write) and
the binding key of a queue or exchange binding whose source is that exchange (read). Only exchanges
of type `topic` are checked, and an exchange the user has no topic permission on allows every key.
An empty expression matches only the empty key (RabbitMQ reads it as `^$`). `{username}` and
`{vhost}` in an expression stand for the permission's user and vhost, inserted as they are (a name
that makes the expression malformed, `a(b`, fails the check with 541 INTERNAL_ERROR, as RabbitMQ's
channel crashes on it); RabbitMQ 3.10 expands nothing else for AMQP 0-9-1 clients (`{client_id}` is
its MQTT plugin's), so neither do we. `TopicPermissions` holds them all and writes them to the
journal as `topic-permission` records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator

from ..store.base import DeleteRecord, PutRecord
from .errors import ConnectionException
from .permissions import READ, WRITE

if TYPE_CHECKING:
    from .journal import Journal

TOPIC_PERMISSION = "topic-permission"
"""The store record kind of a topic permission, keyed by (vhost, user, exchange)."""


def _expanded(expression: str, user: str, vhost: str) -> re.Pattern[str] | None:
    expression = (expression or "^$").replace("{username}", user).replace("{vhost}", vhost)
    try:
        return re.compile(expression)
    except re.error:
        return None


@dataclass(frozen=True)
class TopicPermission:
    vhost: str
    user: str
    exchange: str
    write: str
    read: str
    _patterns: dict[int, re.Pattern[str] | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # As RabbitMQ, the expressions as given must compile (re.error before anything is stored);
        # then they are compiled with the variables expanded, here, once for every check to come.
        expressions = {WRITE: self.write, READ: self.read}
        for text in expressions.values():
            re.compile(text)
        patterns = {access: _expanded(text, self.user, self.vhost) for access, text in expressions.items()}
        object.__setattr__(self, "_patterns", patterns)

    def allows(self, access: int, routing_key: str) -> bool:
        """Whether `routing_key` matches the expression for `access` (WRITE or READ); 541 if the
        expression, expanded, is malformed."""
        pattern = self._patterns[access]
        if pattern is None:
            raise ConnectionException.internal_error()
        return pattern.search(routing_key) is not None

    def record(self) -> dict:
        return {"write": self.write, "read": self.read}

    def as_json(self) -> dict[str, str]:
        """As RabbitMQ's management API and definitions show it."""
        return {
            "user": self.user, "vhost": self.vhost, "exchange": self.exchange, "write": self.write, "read": self.read,
        }


class TopicPermissions:
    """Every user's topic permissions in every vhost, by exchange.

    A connection holds the mapping of its user's in its vhost (`live`), which changes in place, so a
    change applies to open connections at once, and a publish looks its exchange up in it: one dict
    lookup, in an empty dict for most users.
    """

    def __init__(self, journal: Journal) -> None:
        self._granted: dict[tuple[str, str], dict[str, TopicPermission]] = {}
        self._journal = journal

    def live(self, vhost: str, user: str) -> dict[str, TopicPermission]:
        """`user`'s topic permissions in `vhost` by exchange name, kept up to date; not to be changed."""
        return self._granted.setdefault((vhost, user), {})

    def set(self, vhost: str, user: str, exchange: str, write: str, read: str) -> TopicPermission:
        """Grants (or replaces) `user`'s topic permission on `exchange` in `vhost`; raises re.error for a
        malformed expression."""
        permission = TopicPermission(vhost, user, exchange, write, read)
        self.live(vhost, user)[exchange] = permission
        self._journal.append(PutRecord(TOPIC_PERMISSION, (vhost, user, exchange), permission.record()))
        return permission

    def clear(self, vhost: str, user: str, exchange: str | None = None) -> bool:
        """Takes `user`'s topic permission on `exchange` in `vhost` away, or all of them (None);
        False if there were none."""
        granted = self._granted.get((vhost, user), {})
        exchanges = list(granted) if exchange is None else [exchange] if exchange in granted else []
        for name in exchanges:
            del granted[name]
            self._journal.append(DeleteRecord(TOPIC_PERMISSION, (vhost, user, name)))
        return bool(exchanges)

    def clear_vhost(self, vhost: str) -> None:
        self._forget(lambda owner_vhost, _: owner_vhost == vhost)

    def clear_user(self, user: str) -> None:
        self._forget(lambda _, owner_user: owner_user == user)

    def _forget(self, which: Callable[[str, str], bool]) -> None:
        """Clears the topic permissions of every (vhost, user) `which` names, a deleted vhost's or
        user's, and forgets the mappings too."""
        for owner in [owner for owner in self._granted if which(*owner)]:
            self.clear(*owner)
            del self._granted[owner]

    def restore(self, record: PutRecord) -> None:
        """A topic permission recovered from the store."""
        vhost, user, exchange = record.key
        value = record.value
        self.live(vhost, user)[exchange] = TopicPermission(vhost, user, exchange, value["write"], value["read"])

    def of(self, vhost: str, user: str) -> list[TopicPermission]:
        """`user`'s in `vhost`, by exchange name."""
        granted = self._granted.get((vhost, user), {})
        return [granted[name] for name in sorted(granted)]

    def __iter__(self) -> Iterator[TopicPermission]:
        """All of them, by vhost, user and exchange, as RabbitMQ lists them (by vhost and user)."""
        return (permission for vhost, user in sorted(self._granted) for permission in self.of(vhost, user))

    def of_vhost(self, vhost: str) -> list[TopicPermission]:
        return [permission for permission in self if permission.vhost == vhost]

    def of_user(self, user: str) -> list[TopicPermission]:
        return [permission for permission in self if permission.user == user]
