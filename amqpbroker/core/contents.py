"""What the messages of queues take up, as RabbitMQ's management API and metrics report it.

The queues count the bytes of their ready messages and their persistent messages as messages come
and go (`Queue.ready_bytes`, `persistent_count`, `persistent_bytes`). The rest is found here, for
one report (a `Contents`), when it asks:

- what the unacknowledged messages of a queue take, and which is the oldest. They are the
  channels': every channel's deliveries are looked at once per report, and only if a queue asked
  about has any. Counting them as they come and go would cost each delivery and ack two adds;
- which messages have their bodies only in the store (paged out under memory pressure, or left
  there by recovery): a body leaves memory for every queue holding its message at once, and the
  message does not know its queues. Each message held is looked at, and only while some body is
  paged out at all (`MemoryWatermark.paged_out`);
- the timestamp of a queue's oldest message: the earlier of the `timestamp` properties of its next
  ready message and of its oldest unacknowledged one (the one first in the queue's order), of
  those that have one, as RabbitMQ's classic queues report it.

A long report is made in turns (see `mgmt.api.in_turns`): its unacknowledged figures are those
of its start, while each queue's counts are read at its turn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, NamedTuple

from ..protocol import DECODE_ERRORS, BasicProperties
from .message import QueueEntry

if TYPE_CHECKING:
    from .broker import Broker
    from .queue import Queue

_TIMESTAMP = 0x40
"""The timestamp property's flag, in the second octet of the property flags."""


class QueueContents(NamedTuple):
    message_bytes: int
    message_bytes_unacknowledged: int
    messages_ram: int
    messages_ready_ram: int
    messages_unacknowledged_ram: int
    message_bytes_ram: int
    messages_paged_out: int
    message_bytes_paged_out: int
    head_message_timestamp: int | None
    """Seconds since the epoch; None if the queue is empty or its oldest messages have none."""


class _Unacked:
    """A queue's unacknowledged deliveries, as far as a report needs them."""

    __slots__ = ("oldest", "size", "paged_out", "paged_out_bytes")

    def __init__(self, entry: QueueEntry) -> None:
        self.oldest = entry
        self.size = 0
        self.paged_out = 0
        self.paged_out_bytes = 0


class Contents:
    """One report's look at the queues: `of(queue)` for each queue it covers."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._paging = broker.memory.paged_out > 0
        self._unacked: dict[Queue, _Unacked] | None = None
        self._found: dict[Queue, QueueContents] = {}

    def of(self, queue: Queue) -> QueueContents:
        """The queue's figures, found once per report (a report of several series asks each time)."""
        found = self._found.get(queue)
        if found is None:
            found = self._found[queue] = self._find(queue)
        return found

    def _find(self, queue: Queue) -> QueueContents:
        ready_paged, ready_paged_bytes = _paged_out(queue.ready()) if self._paging else (0, 0)
        unacked = self._unacked_of(queue) if queue.unacked_count else None
        heads = [queue.head()]
        unacked_size = unacked_paged = unacked_paged_bytes = 0
        if unacked is not None:
            heads.append(unacked.oldest)
            unacked_size = unacked.size
            # A long report is made in turns: what was gathered at its start may be settled since.
            unacked_paged = min(unacked.paged_out, queue.unacked_count)
            unacked_paged_bytes = unacked.paged_out_bytes
        paged_out = ready_paged + unacked_paged
        paged_out_bytes = ready_paged_bytes + unacked_paged_bytes
        stamps = [stamp for entry in heads if entry is not None and (stamp := _timestamp(entry)) is not None]
        return QueueContents(
            message_bytes=queue.ready_bytes + unacked_size,
            message_bytes_unacknowledged=unacked_size,
            messages_ram=queue.message_count + queue.unacked_count - paged_out,
            messages_ready_ram=queue.message_count - ready_paged,
            messages_unacknowledged_ram=queue.unacked_count - unacked_paged,
            message_bytes_ram=queue.ready_bytes + unacked_size - paged_out_bytes,
            messages_paged_out=paged_out,
            message_bytes_paged_out=paged_out_bytes,
            head_message_timestamp=min(stamps, default=None),
        )

    def _unacked_of(self, queue: Queue) -> _Unacked | None:
        if self._unacked is None:
            self._unacked = self._gather()
        return self._unacked.get(queue)

    def _gather(self) -> dict[Queue, _Unacked]:
        found: dict[Queue, _Unacked] = {}
        for connection in self._broker.connections:
            for session in connection.sessions.values():
                for queue, entry in session.delivery.unacked():
                    unacked = found.get(queue)
                    if unacked is None:
                        unacked = found[queue] = _Unacked(entry)
                    elif entry.seq < unacked.oldest.seq:
                        unacked.oldest = entry
                    message = entry.message
                    unacked.size += message.size
                    if message.body is None:
                        unacked.paged_out += 1
                        unacked.paged_out_bytes += message.size
        return found


def _paged_out(entries: Iterable[QueueEntry]) -> tuple[int, int]:
    count = size = 0
    for entry in entries:
        if entry.message.body is None:
            count += 1
            size += entry.message.size
    return count, size


def _timestamp(entry: QueueEntry) -> int | None:
    properties = entry.message.properties
    if len(properties) < 2 or not properties[1] & _TIMESTAMP:
        return None
    try:
        return BasicProperties.decode(properties).timestamp
    except DECODE_ERRORS:
        return None
