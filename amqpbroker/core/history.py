"""What happened to messages, in order: the event history that tests assert on.

A broker made with a `History` records one `Record` at each point where a message changes hands:
published, routed (one per queue it joined), returned, delivered, acked, nacked (put back by the
client), rejected (refused for good by the client), expired, dead-lettered. Without one (the
default outside tests) those points cost one `is None` check.

The history is bounded: it keeps the newest `limit` records (with references to their bodies), and
counts what it let go (`dropped`), so a broker under test cannot grow without end. Running totals per vhost, queue and kind are kept
apart from the records, so waiting for the n-th ack does not depend on the bound.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from typing import Callable

from .message import Message

DEFAULT_LIMIT = 10_000
"""Records a history keeps by default: the newest ones."""

KINDS = (
    "published",
    "routed",
    "returned",
    "delivered",
    "acked",
    "nacked",
    "rejected",
    "expired",
    "dead-lettered",
)


@dataclass(frozen=True, slots=True)
class Record:
    kind: str
    vhost: str
    queue: str | None
    """The queue concerned; None for published and returned."""
    exchange: str
    routing_key: str
    properties: bytes
    body: bytes | None
    """None when only the store has it (a message recovered at a restart): read it from there."""
    message_id: int | None
    reason: str | None
    """Why a message was dead-lettered (expired, rejected, maxlen, delivery_limit), or returned (NO_ROUTE)."""
    at: float
    """When, on the broker's clock."""


class History:
    def __init__(self, clock: Callable[[], float], limit: int = DEFAULT_LIMIT) -> None:
        self.clock = clock
        self.records: deque[Record] = deque(maxlen=limit)
        self.dropped = 0
        """Records let go to keep within the limit, oldest first."""
        self.totals: Counter[tuple[str, str | None, str]] = Counter()
        """How many records of each (vhost, queue, kind) were made, dropped ones included."""
        self.listeners: list[Callable[[], None]] = []
        """Called after each record: what waits for broker events wakes here."""

    def record(
        self, kind: str, vhost: str, message: Message, queue: str | None = None, reason: str | None = None
    ) -> None:
        records = self.records
        if len(records) == records.maxlen:
            self.dropped += 1
        records.append(
            Record(
                kind, vhost, queue, message.exchange, message.routing_key, message.properties, message.body,
                message.message_id, reason, self.clock(),
            )
        )
        self.totals[vhost, queue, kind] += 1
        for listener in self.listeners:
            listener()
