"""Permissions: what each user may configure, write and read in each virtual host, and the checks.

A permission is three regular expressions matched (unanchored, as RabbitMQ's `re:run`) against the
name of a queue or exchange; an empty one matches nothing. The default exchange is checked under the
name `amq.default`. `Permissions` holds them all and writes them to the journal as `permission`
records; `Access` answers for one connection's user in its vhost, with RabbitMQ 3.10's operations,
order of checks and 403 texts, topic permissions (`topic_permissions`) included.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

from ..store.base import DeleteRecord, PutRecord
from .errors import ChannelException
from .exchanges import TopicExchange

if TYPE_CHECKING:
    from .exchanges import Exchange
    from .journal import Journal
    from .topic_permissions import TopicPermission, TopicPermissions

PERMISSION = "permission"
"""The store record kind of a permission, keyed by (vhost, user)."""

QUEUE = "queue"
EXCHANGE = "exchange"

CONFIGURE, WRITE, READ = 0, 1, 2
"""The three accesses, as indexes into a permission's expressions."""

# The argument naming the exchange a queue or an exchange passes messages on to.
_ONWARD_ARGUMENTS = {QUEUE: "x-dead-letter-exchange", EXCHANGE: "alternate-exchange"}

# Accesses an `Access` remembers as allowed before it forgets them all: a client naming ever new
# exchanges must not grow a connection without bound.
_CACHE_LIMIT = 1024


@dataclass(frozen=True)
class Permission:
    vhost: str
    user: str
    configure: str
    write: str
    read: str
    _patterns: tuple[re.Pattern[str] | None, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Compiled once here; a malformed expression raises re.error before anything is stored.
        patterns = tuple(re.compile(text) if text else None for text in (self.configure, self.write, self.read))
        object.__setattr__(self, "_patterns", patterns)

    def allows(self, access: int, name: str) -> bool:
        """Whether `name` matches the expression for `access` (CONFIGURE, WRITE or READ)."""
        pattern = self._patterns[access]
        return pattern is not None and pattern.search(name) is not None

    def record(self) -> dict:
        return {"configure": self.configure, "write": self.write, "read": self.read}



class Permissions:
    """Every user's permissions in every vhost, and the `Access` of each connection, told to forget
    what it remembers whenever any permission changes. An `Access` reads the topic permissions in
    `topics` as they are at each check."""

    def __init__(self, journal: Journal, topics: TopicPermissions) -> None:
        self._permissions: dict[tuple[str, str], Permission] = {}
        self._journal = journal
        self._topics = topics
        self._accesses: weakref.WeakSet[Access] = weakref.WeakSet()

    def access(self, vhost: str, user: str) -> Access:
        """What `user` may do in `vhost`, for one connection."""
        access = Access(self, vhost, user, self._topics.live(vhost, user))
        self._accesses.add(access)
        return access

    def _changed(self) -> None:
        for access in self._accesses:
            access.forget()

    def set(self, vhost: str, user: str, configure: str, write: str, read: str) -> Permission:
        """Grants (or replaces) `user`'s permissions in `vhost`; raises re.error for a malformed expression."""
        permission = Permission(vhost, user, configure, write, read)
        self._permissions[vhost, user] = permission
        self._changed()
        self._journal.append(PutRecord(PERMISSION, (vhost, user), permission.record()))
        return permission

    def clear(self, vhost: str, user: str) -> bool:
        """Takes `user`'s permissions in `vhost` away; False if there were none."""
        if self._permissions.pop((vhost, user), None) is None:
            return False
        self._changed()
        self._journal.append(DeleteRecord(PERMISSION, (vhost, user)))
        return True

    def clear_vhost(self, vhost: str) -> None:
        for permission in self.of_vhost(vhost):
            self.clear(vhost, permission.user)

    def clear_user(self, user: str) -> None:
        for permission in self.of_user(user):
            self.clear(permission.vhost, user)

    def restore(self, record: PutRecord) -> None:
        """A permission recovered from the store."""
        vhost, user = record.key
        value = record.value
        self._permissions[vhost, user] = Permission(vhost, user, value["configure"], value["write"], value["read"])

    def get(self, vhost: str, user: str) -> Permission | None:
        return self._permissions.get((vhost, user))

    def __iter__(self) -> Iterator[Permission]:
        return iter(list(self._permissions.values()))

    def of_vhost(self, vhost: str) -> list[Permission]:
        return [p for p in self._permissions.values() if p.vhost == vhost]

    def of_user(self, user: str) -> list[Permission]:
        return [p for p in self._permissions.values() if p.user == user]


class Access:
    """What one connection's user may do in its vhost: each method checks one AMQP operation and
    raises 403 ACCESS_REFUSED as RabbitMQ does.

    Allowed accesses are remembered until any permission changes. `writable` holds the exchanges
    publishes were allowed to, for the publish path to look in before it calls `publish`: a set
    lookup per message, not a regular expression. `topics` holds the user's topic permissions by
    exchange, for it to look in before it calls `publish_topic`. Made by `Permissions.access`.
    """

    def __init__(self, permissions: Permissions, vhost: str, user: str, topics: dict[str, TopicPermission]) -> None:
        self._permissions = permissions
        self._vhost = vhost
        self._user = user
        self._allowed: set[tuple[int, str, str]] = set()
        self.writable: set[str] = set()
        self.topics = topics

    def forget(self) -> None:
        """A permission changed: check everything again (the sets are cleared in place, as the
        publish path holds `writable`)."""
        self._allowed.clear()
        self.writable.clear()

    def _check(self, access: int, kind: str, name: str) -> None:
        if (access, kind, name) in self._allowed:
            return
        if kind == EXCHANGE and not name:
            name = "amq.default"
        permission = self._permissions.get(self._vhost, self._user)
        if permission is None or not permission.allows(access, name):
            raise ChannelException.access_refused(
                f"access to {kind} '{name}' in vhost '{self._vhost}' refused for user '{self._user}'"
            )
        if len(self._allowed) >= _CACHE_LIMIT:
            self.forget()
        self._allowed.add((access, kind, name))

    def publish(self, exchange: str) -> None:
        self._check(WRITE, EXCHANGE, exchange)
        self.writable.add(exchange)

    def read_queue(self, queue: str) -> None:
        """basic.consume, basic.get and queue.purge."""
        self._check(READ, QUEUE, queue)

    def delete(self, kind: str, name: str) -> None:
        """queue.delete and exchange.delete."""
        self._check(CONFIGURE, kind, name)

    def declare(self, kind: str, name: str, new: bool, arguments: dict) -> None:
        """queue.declare and exchange.declare (not passive). A new queue with a dead-letter exchange,
        or a new exchange with an alternate one, also needs read on itself and write on that exchange."""
        self._check(CONFIGURE, kind, name)
        onward = arguments.get(_ONWARD_ARGUMENTS[kind])
        if new and isinstance(onward, str):
            self._check(READ, kind, name)
            self._check(WRITE, EXCHANGE, onward)

    def bind(self, kind: str, destination: str, source: str) -> None:
        """queue.bind/unbind and exchange.bind/unbind: write on the destination, read on the source.

        RabbitMQ refuses a binding of the default exchange between the two checks; the vhost does
        that here, so an empty name is left to it.
        """
        self._check(WRITE, kind, destination)
        if source and (destination or kind == QUEUE):
            self._check(READ, EXCHANGE, source)

    def publish_topic(self, exchange: Exchange, routing_key: str) -> None:
        """basic.publish to `exchange`, once `publish` allowed it and it was found: write on the
        routing key (not the CC and BCC headers' keys, as in RabbitMQ)."""
        self._check_topic(WRITE, exchange, routing_key)

    def bind_topic(self, source: Exchange | None, binding_key: str) -> None:
        """A binding from `source` (None: there is no such exchange), once `bind` allowed it: read on
        the binding key. RabbitMQ checks it before it looks for the destination."""
        if source is not None:
            self._check_topic(READ, source, binding_key)

    def _check_topic(self, access: int, exchange: Exchange, routing_key: str) -> None:
        permission = self.topics.get(exchange.name)
        if permission is None or not isinstance(exchange, TopicExchange):
            return
        if not permission.allows(access, routing_key):
            raise ChannelException.access_refused(
                f"access to topic '{routing_key}' in exchange '{exchange.name}' in vhost '{self._vhost}' "
                f"refused for user '{self._user}'"
            )
