"""Commit tracking: which batch each durable change is in, and who waits for that batch.

Core operations append store operations to the `Journal`. The tracker numbers the batches the
persister takes from it, and it is the one place that knows what waits for a batch: a channel's
publisher confirms, a channel's reply to a durable declaration. When the store has written a
batch, or failed to, the tracker tells each waiter, in batch order, with the outcome. A publisher
confirm may stop waiting before that (its message acknowledged on every durable queue): the
tracker gathers such waiters and flushes them together once a client's frames were handled.

Its rules:
- Every change that needs durability is in a numbered batch, and `batch` is that number while
  the change is gathered. A batch that someone waits for is always taken, even when cancellation
  emptied it, so no waiter depends on an unrelated later commit.
- Batches resolve in the order they were taken, each exactly once, as committed or failed.
- A failed batch leaves memory and disk in agreement: its messages become transient (their
  publishers are nacked and the store never has them), and its other operations (topology,
  dequeues) go to the front of the next batch, so the store catches up with memory once it works.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol

from ..store.base import Enqueue, Op, PutMessage
from .journal import Journal

if TYPE_CHECKING:
    from .memory import MemoryWatermark
    from .message import Message
    from .stream import StreamQueue


class Waiter(Protocol):
    def batch_resolved(self, batch: int, ok: bool) -> None:
        """The store wrote `batch` (ok) or failed to; called once per batch the waiter waits for."""


class Flushable(Waiter, Protocol):
    def flush(self) -> None:
        """Sends what no longer waits for the store."""


class Batch(NamedTuple):
    number: int
    ops: list[Op]


class Change:
    """What one core call journaled: `batch` is the batch to wait for, or None if it wrote nothing."""

    __slots__ = ("_tracker", "_appended", "batch")

    def __init__(self, tracker: CommitTracker) -> None:
        self._tracker = tracker
        self._appended = tracker.journal.appended
        self.batch: int | None = None

    def __enter__(self) -> Change:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._tracker.journal.appended != self._appended:
            self.batch = self._tracker.batch


class CommitTracker:
    def __init__(self, journal: Journal, memory: MemoryWatermark) -> None:
        self.journal = journal
        self._memory = memory
        self.batch = 0
        """The number of the batch being gathered."""
        self._waiters: dict[int, dict[Waiter, None]] = {}
        """Per batch number, who waits for it, in the order they started waiting."""
        self._taken: dict[int, tuple[list[Message], list[tuple[StreamQueue, int]]]] = {}
        """Batches handed to the persister and not resolved yet, with the messages they store and
        the streams that appended, each with the offset its log ended at."""
        self._settled: dict[Flushable, None] = {}
        """Waiters something of which no longer needs the store, to flush at `flush_settled`."""

    def change(self) -> Change:
        """`with tracker.change() as change:` around a core call; then `change.batch` says what to wait for."""
        return Change(self)

    def wait(self, waiter: Waiter, batch: int | None = None) -> int:
        """Registers `waiter` for `batch` (the one being gathered by default) and returns its number."""
        if batch is None:
            batch = self.batch
        self._waiters.setdefault(batch, {})[waiter] = None
        if not self.journal.ops:
            # Cancellation may have emptied the batch: it must still be taken and resolved.
            self.journal.wake_persister()
        return batch

    def forget(self, waiter: Waiter) -> None:
        """`waiter` is gone (its channel closed): it is told nothing more."""
        for waiters in self._waiters.values():
            waiters.pop(waiter, None)
        self._settled.pop(waiter, None)

    def settled(self, waiter: Flushable) -> None:
        """Something `waiter` waits for no longer needs the store (a message every durable queue
        let go of before its commit): `waiter` is flushed at the next `flush_settled`, with whatever
        else settled by then, rather than once for each."""
        self._settled[waiter] = None

    def flush_settled(self) -> None:
        """Flushes the waiters something of which settled (after a client's acks were handled)."""
        if self._settled:
            settled, self._settled = self._settled, {}
            for waiter in settled:
                waiter.flush()

    def take(self) -> Batch | None:
        """Closes the batch being gathered, for the persister; None if nothing needs it."""
        number = self.batch
        ops, messages, logs = self.journal.take()
        if not ops and number not in self._waiters:
            return None
        self.batch += 1
        self._taken[number] = messages, logs
        return Batch(number, ops)

    def resolve(self, batch: Batch, ok: bool) -> None:
        """The store finished `batch`: settle its messages and tell everyone who waited for it."""
        messages, logs = self._taken.pop(batch.number)
        if ok:
            memory = self._memory
            for message in messages:
                # Held by durable queues only: the store has the body, and memory keeps it only while
                # it has room.
                if (message.refs and message.refs == message.holders and message.body is not None
                        and memory.paging):
                    memory.release(len(message.body))
                    memory.paged_out += 1
                    message.body = None
        else:
            self._undo(batch.ops, messages)
        for stream, end in logs:
            # Written, or kept in memory only, as any message of a failed batch.
            stream.readable_upto(end)
        for waiter in self._waiters.pop(batch.number, {}):
            waiter.batch_resolved(batch.number, ok)

    def _undo(self, ops: list[Op], messages: list[Message]) -> None:
        lost = set()
        for message in messages:
            lost.add(message.message_id)
            message.message_id = None
            message.refs = 0
        retry = [op for op in ops if not (type(op) in (PutMessage, Enqueue) and op.message_id in lost)]
        self.journal.retry(retry)
