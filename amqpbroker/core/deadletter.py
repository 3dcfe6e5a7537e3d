"""Dead-lettering: a message that leaves a queue because it was rejected, expired, pushed out by the
queue's length limit, or returned more often than its delivery limit allows, is published again to
the queue's dead-letter exchange, with RabbitMQ's record of its deaths in the `x-death` header.

The record is kept the way RabbitMQ 3.x keeps it: one entry per queue and reason, most recent first,
counting how often that happened; `x-first-death-*` name the first. A message that would go round a
cycle of queues with no rejection in it is dropped instead, as RabbitMQ drops it.

Every entry leaving a queue for a reason passes here, dead-letter exchange or not, so this is also
where the broker's history (when it keeps one) records expiries and dead-lettering.
"""

from __future__ import annotations

import datetime
import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Collection

from ..protocol import DECODE_ERRORS, BasicProperties, Long
from .message import Message, QueueEntry

if TYPE_CHECKING:
    from ..store import Store
    from .history import History
    from .queue import Queue
    from .vhost import VHost

log = logging.getLogger("amqpbroker.deadletter")


class DeadLetters:
    """What a queue calls to dead-letter one of its entries; owned by the broker."""

    def __init__(
        self,
        vhosts: dict[str, VHost],
        store: Store,
        wall_clock: Callable[[], float] = time.time,
        history: History | None = None,
    ) -> None:
        self._vhosts = vhosts
        self._store = store
        self._wall_clock = wall_clock
        self._history = history

    def __call__(self, queue: Queue, entry: QueueEntry, reason: str) -> None:
        """Every entry leaving a queue for `reason` comes here (an expiry goes in the history),
        and is dead-lettered if the queue has a dead-letter exchange."""
        history = self._history
        if history is not None and reason == "expired":
            history.record("expired", queue.vhost, entry.message, queue.name)
        settings = queue.settings
        exchange_name = settings.dead_letter_exchange
        if exchange_name is None:
            return
        vhost = self._vhosts.get(queue.vhost)
        if vhost is None:
            return
        exchange = vhost.exchanges.get(exchange_name)
        if exchange is None:
            return
        message = entry.message
        body = message.body
        if body is None:
            try:
                body = self._store.load_body(message.message_id)
            except Exception:
                log.exception("could not read message %s to dead-letter it from %r", message.message_id, queue)
                return
        try:
            properties = BasicProperties.decode(message.properties)
        except DECODE_ERRORS:
            # Nothing checked these bytes at publish; they must cost this message, not whoever
            # happened to make it die (a timer, another client's reject).
            log.warning("message in %r has malformed properties: dropped, not dead-lettered", queue)
            return
        if history is not None:
            history.record("dead-lettered", queue.vhost, message, queue.name, reason)
        headers = properties.headers or {}
        routing_keys = [message.routing_key, *_cc(headers)]
        headers = record_death(
            headers, reason, queue.name, message.exchange, routing_keys, properties.expiration, self._wall_clock()
        )
        dead_letter_key = settings.dead_letter_routing_key
        if dead_letter_key is not None:
            routing_keys = [dead_letter_key]
            headers.pop("CC", None)
        properties.headers = headers
        properties.expiration = None
        if exchange.name:
            # All keys in one routing, as RabbitMQ: the alternate exchange is for when none routes.
            queues = set(vhost.route(exchange, routing_keys[0], headers, tuple(routing_keys[1:])))
        else:
            queues = {vhost.queues[key] for key in routing_keys if key in vhost.queues}
        if reason != "rejected":
            queues = {target for target in queues if not is_cycle(target.name, headers["x-death"])}
        if queues:
            vhost.enqueue(Message(exchange.name, routing_keys[0], properties.encode(), body), queues)


def _cc(headers: dict[str, Any]) -> list[str]:
    cc = headers.get("CC")
    if isinstance(cc, list):
        return [key for key in cc if isinstance(key, str)]
    return []


def _sorted(table: dict[str, Any]) -> dict[str, Any]:
    """The table in key order, as RabbitMQ stores a table it has changed."""
    return dict(sorted(table.items(), key=lambda item: item[0].encode()))


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
        "time": datetime.datetime.fromtimestamp(int(now), datetime.timezone.utc),
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


def is_cycle(queue: str, deaths: Collection[Any]) -> bool:
    """Whether dead-lettering to `queue` closes a cycle with no rejection in it (the newest death first)."""
    for index, death in enumerate(deaths):
        if not isinstance(death, dict):
            return False
        if death.get("queue") == queue:
            return all(isinstance(d, dict) and d.get("reason") != "rejected" for d in list(deaths)[: index + 1])
    return False
