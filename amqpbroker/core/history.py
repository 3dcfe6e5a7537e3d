"""What happened to messages, in order: the event history that tests assert on.

A broker made with a `History` records one `Record` at each point where a message changes hands:
published, routed (one per queue it joined), returned, delivered, acked, nacked (put back by the
client), rejected (refused for good by the client), requeued (put back because its channel closed,
or by basic.recover), expired, dead-lettered. Without one (the
default outside tests) those points cost one `is None` check.

The history is bounded: it keeps the newest `limit` records, holding at most BODY_BYTES_LIMIT bytes
of bodies, and counts what it let go (`dropped`), so a broker under test cannot grow without end. Running totals per vhost, queue and kind are kept
apart from the records, so waiting for the n-th ack does not depend on the bound.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from typing import Callable

from .message import Message

DEFAULT_LIMIT = 10_000
"""Records a history keeps by default: the newest ones."""
BODY_BYTES_LIMIT = 64 * 1024 * 1024
"""Bytes of bodies the kept records may hold (a body shared by several records counts for each);
the oldest records go first when a new one would pass it."""


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
        self.records: deque[Record] = deque()
        self.limit = limit
        self._body_bytes = 0
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
        body = message.body
        size = len(body) if body is not None else 0
        self._body_bytes += size
        records.append(
            Record(
                kind, vhost, queue, message.exchange, message.routing_key, message.properties, body,
                message.message_id, reason, self.clock(),
            )
        )
        while len(records) > self.limit or (self._body_bytes > BODY_BYTES_LIMIT and len(records) > 1):
            oldest = records.popleft().body
            self._body_bytes -= len(oldest) if oldest is not None else 0
            self.dropped += 1
        self.totals[vhost, queue, kind] += 1
        for listener in self.listeners:
            listener()
