"""Dead-lettering: a message that leaves a queue because it was rejected, expired, pushed out by the
queue's length limit, or returned more often than its delivery limit allows, is published again to
the queue's dead-letter exchange, with RabbitMQ's record of its deaths in the `x-death` header.

The record is kept the way RabbitMQ 3.x keeps it: one entry per queue and reason, most recent first,
counting how often that happened; `x-first-death-*` name the first. A message that would go round a
cycle of queues with no rejection in it is dropped instead, as RabbitMQ drops it.

Every entry leaving a queue for a reason passes here, dead-letter exchange or not, so this is also
where the broker's history (when it keeps one) records expiries and dead-lettering.

A dead message whose body is only in the store waits for it to be read back off the event loop
(see `bodies`), and the queue's later dead messages wait behind it, so that they are dead-lettered
in the order they died. A waiting entry stays the queue's until it is dead-lettered, and is
forgotten in the same batch as its new copies are stored: a restart meanwhile finds it in its queue.
"""

from __future__ import annotations

import datetime
import functools
import logging
import struct
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Collection

from ..protocol import DECODE_ERRORS, BasicProperties, Long, encode_table, replace_headers
from .message import Message, QueueEntry

if TYPE_CHECKING:
    from .bodies import BodyReads
    from .exchanges import Exchange
    from .history import History
    from .queue import Queue
    from .vhost import VHost

log = logging.getLogger("amqpbroker.deadletter")

_LENGTH = struct.Struct(">I")

Death = tuple[str, str, str, list[str], str | None, float]
"""`record_death`'s arguments after the headers: reason, queue, exchange, routing keys, the
message's expiration, and the time."""


class DeadLetters:
    """What a queue calls to dead-letter one of its entries; owned by the broker."""

    def __init__(
        self,
        vhosts: dict[str, VHost],
        bodies: BodyReads,
        wall_clock: Callable[[], float] = time.time,
        history: History | None = None,
    ) -> None:
        self._vhosts = vhosts
        self._bodies = bodies
        self._wall_clock = wall_clock
        self._history = history
        self._first_deaths = _FirstDeaths()
        self._properties = _SplitProperties()
        self._waiting: dict[Queue, deque[_DeadLetter]] = {}
        """Per queue, its dead messages that wait for a body from the store, or behind one that does."""

    def __call__(self, queue: Queue, entry: QueueEntry, reason: str) -> bool:
        """Every entry leaving a queue for `reason` comes here (an expiry goes in the history),
        and is dead-lettered if the queue has a dead-letter exchange. True if it waits for its
        body: the queue leaves it be, and it is forgotten here once it is dead-lettered."""
        history = self._history
        if history is not None and reason == "expired":
            history.record("expired", queue.vhost, entry.message, queue.name)
        target = self._target(queue)
        if target is None:
            return False
        body = entry.message.body
        waiting = self._waiting.get(queue) if self._waiting else None
        if waiting is None and body is not None:
            self._publish(queue, entry.message, body, reason, self._wall_clock(), *target)
            return False
        letter = _DeadLetter(self._drain, queue, entry, reason, self._wall_clock())
        if waiting is None:
            waiting = self._waiting[queue] = deque()
        waiting.append(letter)
        if body is None:
            self._bodies.request(entry.message, letter)
        return True

    def _target(self, queue: Queue) -> tuple[VHost, Exchange] | None:
        """Where the queue's dead messages go: its vhost and dead-letter exchange, if it has one."""
        exchange_name = queue.settings.dead_letter_exchange
        if exchange_name is None:
            return None
        vhost = self._vhosts.get(queue.vhost)
        if vhost is None:
            return None
        exchange = vhost.exchanges.get(exchange_name)
        if exchange is None:
            return None
        return vhost, exchange

    def _drain(self, queue: Queue) -> None:
        """Dead-letters the queue's waiting messages, in order, up to the first whose body is not back."""
        waiting = self._waiting[queue]
        while waiting and waiting[0].ready:
            letter = waiting.popleft()
            message = letter.entry.message
            target = self._target(queue)
            if letter.body is None:
                log.warning("message %s in %r dropped, not dead-lettered: its body could not be read",
                            message.message_id, queue)
            elif target is not None:
                self._publish(queue, message, letter.body, letter.reason, letter.died_at, *target)
            queue.forget(letter.entry)
        if not waiting:
            del self._waiting[queue]

    def _publish(
        self, queue: Queue, message: Message, body: bytes, reason: str, now: float, vhost: VHost, exchange: Exchange
    ) -> None:
        """Publishes the dead message to `exchange`, with its death recorded."""
        try:
            own_headers, expiration, rest = self._properties.split(message.properties)
        except DECODE_ERRORS:
            # Nothing checked these bytes at publish; they must cost this message, not whoever
            # happened to make it die (a timer, another client's reject).
            log.warning("message in %r has malformed properties: dropped, not dead-lettered", queue)
            return
        history = self._history
        if history is not None:
            history.record("dead-lettered", queue.vhost, message, queue.name, reason)
        settings = queue.settings
        headers = own_headers or {}
        routing_keys = [message.routing_key, *_cc(headers)]
        dead_letter_key = settings.dead_letter_routing_key
        death: Death = (reason, queue.name, message.exchange, routing_keys, expiration, now)
        if "x-death" in headers:
            headers = record_death(headers, *death)
            if dead_letter_key is not None:
                headers.pop("CC", None)
            table = encode_table(headers)
        else:
            headers, table = self._first_deaths.record(headers, death, keep_cc=dead_letter_key is None)
        if dead_letter_key is not None:
            routing_keys = [dead_letter_key]
        if exchange.name:
            # All keys in one routing, as RabbitMQ: the alternate exchange is for when none routes.
            queues = set(vhost.route(exchange, routing_keys[0], headers, tuple(routing_keys[1:])))
        else:
            queues = {vhost.queues[key] for key in routing_keys if key in vhost.queues}
        if reason != "rejected":
            queues = {target for target in queues if not is_cycle(target.name, headers["x-death"])}
        if queues:
            raw = replace_headers(rest, table)
            stored, _ = vhost.enqueue(Message(exchange.name, routing_keys[0], raw, body), queues)
            if stored:
                # It lives on in the batch being gathered: its publisher's confirm waits for it.
                message.needs_commit = True


class _DeadLetter:
    """A dead message that waits for its body from the store (see `bodies`), or behind one that does."""

    __slots__ = ("_drain", "queue", "entry", "reason", "died_at", "ready", "body")

    def __init__(
        self, drain: Callable[[Queue], None], queue: Queue, entry: QueueEntry, reason: str, died_at: float
    ) -> None:
        self._drain = drain
        self.queue = queue
        self.entry = entry
        self.reason = reason
        self.died_at = died_at
        """When it died, by the wall clock: what its death record says."""
        self.body = entry.message.body
        """Kept from its death (a commit may page it out meanwhile), or read back from the store."""
        self.ready = self.body is not None

    def body_read(self, message: Message, body: bytes | None) -> None:
        self.ready = True
        self.body = body
        self._drain(self.queue)


class _FirstDeaths:
    """`record_death` for messages that have not died before, with the headers table encoded.

    What a first death adds to the headers is the same for every message that dies in one queue,
    for one reason, with one exchange, routing keys and expiration, in one second (the record's
    time): it is built and encoded once for them all, and only the message's own headers are
    encoded for each. The records are shared, so no one may change them.
    """

    _KEPT = 256
    """Records kept at most within one second."""

    def __init__(self) -> None:
        self._second = -1
        self._records: dict[tuple, tuple[dict[str, Any], dict[bytes, bytes], bytes]] = {}
        """By death: the headers it adds, each encoded (by its key's bytes), and all of them as a table."""

    def record(self, headers: dict[str, Any], death: Death, *, keep_cc: bool) -> tuple[dict[str, Any], bytes]:
        """The headers of a message with no `x-death` that dies as `death` says, and their table
        encoded as `encode_table(record_death(headers, *death))` would; less `CC` unless `keep_cc`."""
        reason, queue, exchange, routing_keys, expiration, now = death
        second = int(now)
        records = self._records
        if second != self._second or len(records) >= self._KEPT:
            self._second = second
            records.clear()
        key = (reason, queue, exchange, tuple(routing_keys), expiration)
        found = records.get(key)
        if found is None:
            added = record_death({}, reason, queue, exchange, list(routing_keys), expiration, now)
            items = {name.encode(): encode_table({name: value})[4:] for name, value in added.items()}
            found = records[key] = (added, items, _table(items))
        added, items, table = found
        if not keep_cc and "CC" in headers:
            headers = {name: value for name, value in headers.items() if name != "CC"}
        if not headers:
            return dict(added), table
        own = {name.encode(): encode_table({name: value})[4:] for name, value in headers.items()}
        # What the death writes replaces what the message had under the same name.
        return {**headers, **added}, _table({**own, **items})


class _SplitProperties:
    """A dead message's properties split into what dead-lettering reads and rewrites (headers,
    expiration) and the rest, encoded; decoded once for the many messages published with the same
    properties bytes. The headers are shared, so no one may change them."""

    _KEPT = 256
    """Distinct properties kept at most; all are forgotten when more come."""

    def __init__(self) -> None:
        self._split: dict[bytes, tuple[dict[str, Any] | None, str | None, bytes]] = {}

    def split(self, raw: bytes) -> tuple[dict[str, Any] | None, str | None, bytes]:
        """Headers, expiration, and the rest of the properties encoded without either (the
        expiration dies with the message); raises one of DECODE_ERRORS for malformed bytes."""
        found = self._split.get(raw)
        if found is None:
            properties = BasicProperties.decode(raw)
            headers, expiration = properties.headers, properties.expiration
            properties.headers = properties.expiration = None
            if len(self._split) >= self._KEPT:
                self._split.clear()
            found = self._split[bytes(raw)] = (headers, expiration, properties.encode())
        return found


def _table(items: dict[bytes, bytes]) -> bytes:
    """A field table of encoded items (by their key's bytes), in key order as `_sorted` puts them."""
    body = b"".join([items[key] for key in sorted(items)])
    return _LENGTH.pack(len(body)) + body


def _cc(headers: dict[str, Any]) -> list[str]:
    cc = headers.get("CC")
    if isinstance(cc, list):
        return [key for key in cc if isinstance(key, str)]
    return []


def _sorted(table: dict[str, Any]) -> dict[str, Any]:
    """The table in key order, as RabbitMQ stores a table it has changed (the order of the keys'
    UTF-8 bytes, which is their code points' order)."""
    return {key: table[key] for key in sorted(table)}


def record_death(
    headers: dict[str, Any],
    reason: str,
    queue: str,
    exchange: str,
    routing_keys: list[str],
    expiration: str | None,
    now: float,
) -> dict[str, Any]:
    """The headers of a message dead-lettered from `queue` for `reason`, with its death recorded."""
    death: dict[str, Any] = {
        "count": Long(1),
        "reason": reason,
        "queue": queue,
        "time": _utc(int(now)),
        "exchange": exchange,
        "routing-keys": routing_keys,
    }
    if expiration is not None:
        death["original-expiration"] = expiration
    headers = dict(headers)
    deaths = headers.get("x-death")
    if deaths is None:
        headers["x-first-death-reason"] = reason
        headers["x-first-death-queue"] = queue
        headers["x-first-death-exchange"] = exchange
        headers["x-death"] = [death]
    elif not isinstance(deaths, list):
        # Not a record RabbitMQ or we wrote (a client republished it changed): start it again.
        headers["x-death"] = [death]
    else:
        same = next(
            (d for d in deaths if isinstance(d, dict) and d.get("queue") == queue and d.get("reason") == reason),
            None,
        )
        if same is not None:
            death = dict(same, count=Long(same.get("count", 0) + 1))
        headers["x-death"] = [_sorted(death), *(d for d in deaths if d is not same)]
    return _sorted(headers)


@functools.lru_cache(maxsize=1)
def _utc(second: int) -> datetime.datetime:
    """The time of a death: the same for every death within one second."""
    return datetime.datetime.fromtimestamp(second, datetime.timezone.utc)


def is_cycle(queue: str, deaths: Collection[Any]) -> bool:
    """Whether dead-lettering to `queue` closes a cycle with no rejection in it (the newest death first)."""
    for index, death in enumerate(deaths):
        if not isinstance(death, dict):
            return False
        if death.get("queue") == queue:
            return all(isinstance(d, dict) and d.get("reason") != "rejected" for d in list(deaths)[: index + 1])
    return False
