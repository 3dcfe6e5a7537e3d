"""Streams (`x-queue-type: stream`) as RabbitMQ 3.10 serves them to AMQP 0-9-1 clients.

A stream is an append-only log: every message gets the next offset and stays, whoever reads it.
Each consumer reads from its own offset (`x-stream-offset` on basic.consume: first, last, next, an
offset, a timestamp or an age such as "1h"), within its prefetch; an ack only gives credit back,
and a closed channel returns nothing. Every message is stored, persistent or not.

Retention works as in RabbitMQ: the log is cut into segments of `x-stream-max-segment-size-bytes`,
and when a segment fills up, the oldest whole segments are dropped while the stream holds more
than `x-max-length-bytes` or their newest message is older than `x-max-age`. The segment being
written is never dropped, so nothing goes before the first segment fills up.

An entry's `seq` is its offset. The store keeps a stream's entries as any queue's, with the time
each was appended where an expiring entry keeps its expiry; only retention dequeues them.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Iterable

from ..store.base import Enqueue
from .arguments import StreamOffset
from .message import Message, QueueEntry
from .queue import Consumer, Queue

if TYPE_CHECKING:
    from .delivery import Delivery


class StreamConsumer(Consumer):
    """A consumer of a stream: it reads the log from `offset`, its next offset to deliver."""

    __slots__ = ("offset",)

    def __init__(self, tag: str, queue: Queue, channel: Delivery, *, offset: int, **options: Any) -> None:
        super().__init__(tag, queue, channel, **options)
        self.offset = offset


class _Segment:
    __slots__ = ("count", "size", "newest")

    def __init__(self) -> None:
        self.count = 0
        self.size = 0
        self.newest = 0
        """When its newest entry was appended, in ms since the epoch."""


class StreamQueue(Queue):
    """A queue whose messages form a log that consumers read by offset and never take."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stores_all = True
        self._counts_persistent = False
        self._log: deque[QueueEntry] = deque()
        self._stamps: deque[int] = deque()
        """When each entry of the log was appended, in ms since the epoch."""
        self._segments: deque[_Segment] = deque([_Segment()])
        self._size = 0
        """Bytes the log holds, summed over its segments."""
        self._readable = 0
        """The offset readers stop before: what follows is not written to the store yet, and a crash
        could give its offsets to other messages."""

    @property
    def first_offset(self) -> int:
        return self._log[0].seq if self._log else self._next_seq

    @property
    def end_offset(self) -> int:
        """The offset the next entry gets."""
        return self._next_seq

    def readable_upto(self, end: int) -> None:
        """The store has what the log held before `end`: its readers may read it."""
        if end > self._readable:
            self._readable = end
            self.dispatch()

    def push(self, message: Message) -> bool:
        stamp = int(self.timers.wall_clock() * 1000)
        entry = QueueEntry(self._next_seq, message)
        self._next_seq += 1
        self.consumers.stats.publish += 1
        message.holders += 1
        if message.holders == 1:
            self.memory.add(message.size)
        if message.message_id is not None and self.journal is not None:
            message.refs += 1
            self.journal.append(Enqueue(self.vhost, self.name, entry.seq, message.message_id, stamp), key=entry)
            self.journal.appended_logs.add(self)
        elif self._readable == entry.seq:
            self._readable = self._next_seq
        self._append(entry, stamp)
        return True

    def restore_appended(self, entry: QueueEntry, stamp: int) -> None:
        """Appends an entry recovered from the store, appended at `stamp` (ms since the epoch)."""
        entry.message.refs += 1
        entry.message.holders += 1
        self._next_seq = self._readable = max(self._next_seq, entry.seq + 1)
        self._append(entry, stamp)

    def _append(self, entry: QueueEntry, stamp: int) -> None:
        size = entry.message.size + len(entry.message.properties)
        segment = self._segments[-1]
        if segment.count and segment.size + size > self.settings.max_segment_size_bytes:
            segment = _Segment()
            self._segments.append(segment)
            self._apply_retention(stamp)
        segment.count += 1
        segment.size += size
        segment.newest = stamp
        self._size += size
        self._log.append(entry)
        self._stamps.append(stamp)

    def _apply_retention(self, now: int) -> None:
        """Drops the oldest whole segments past the stream's limits; never the one being written."""
        max_bytes, max_age = self.settings.max_length_bytes, self.settings.max_age
        segments = self._segments
        while len(segments) > 1 and (
            (max_bytes is not None and self._size > max_bytes)
            or (max_age is not None and segments[0].newest < now - max_age)
        ):
            oldest = segments.popleft()
            self._size -= oldest.size
            for _ in range(oldest.count):
                self._stamps.popleft()
                self._remove(self._log.popleft())

    def start_offset(self, start: StreamOffset) -> int:
        """The offset a consumer asking for `start` reads first."""
        first, following = self.first_offset, self._next_seq
        kind = start.kind
        if kind == "first":
            return first
        if kind == "last":
            return max(first, following - 1)
        if kind == "offset":
            return min(max(start.value, first), following)
        if kind in ("timestamp", "interval"):
            since = start.value if kind == "timestamp" else int(self.timers.wall_clock() * 1000) - start.value
            for index, stamp in enumerate(self._stamps):
                if stamp >= since:
                    return first + index
        return following

    @property
    def messages_ready(self) -> int:
        """The whole log, which every new consumer may read."""
        return len(self._log)

    def counts(self) -> tuple[int, int]:
        # RabbitMQ's queue.declare-ok counts neither a stream's messages nor its consumers.
        return 0, 0

    def _remove(self, entry: QueueEntry) -> None:
        """The entry leaves the log for good (retention, or the stream is deleted), and the store."""
        super().forget(entry)
        if entry.message.message_id is not None:
            self._unstore(entry)

    def forget(self, entry: QueueEntry) -> None:
        """An ack or a delivery that could not go out: the entry stays in the log all the same."""

    def put_back(self, entry: QueueEntry) -> None:
        """A delivery that could not go out: its consumer's offset did not move."""

    def requeue(self, entries: Iterable[QueueEntry]) -> None:
        """Deliveries of a closed channel: nothing returns to a log that nobody took from."""

    def purge(self) -> int:
        """Forgets the whole log (the queue is deleted); 0, the count RabbitMQ reports for a stream."""
        for entry in self._log:
            self._remove(entry)
        self._log.clear()
        self._stamps.clear()
        self._segments = deque([_Segment()])
        self._size = 0
        return 0

    def peek(self) -> list[QueueEntry]:
        return list(self._log)

    def consumer_capacity(self) -> float | None:
        """None: RabbitMQ reports no consumer capacity for a stream."""
        return None

    def dispatch(self) -> None:
        """Delivers to every consumer, each from its own offset, as far as its credit goes."""
        if self.paused or self.deleted:
            return
        log = self._log
        for consumer in list(self.consumers):
            while consumer.offset < self._readable and consumer.has_credit():
                first = self.first_offset
                if consumer.offset < first:
                    # Retention dropped what it had not read yet: it goes on from the oldest kept.
                    consumer.offset = first
                if not consumer.channel.deliver(consumer, self, log[consumer.offset - first]):
                    break
                consumer.offset += 1
