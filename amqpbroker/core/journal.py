"""What the core must make durable next: store operations gathered, in order, for the next batch.

Core operations append store operations here as they happen. The `CommitTracker` closes the
gathered operations into a numbered batch for the persister, which applies it in one store
transaction; what waits for which batch is the tracker's business, not the journal's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Hashable

from ..store.base import MarkDelivered, Op, PutMessage

if TYPE_CHECKING:
    from .message import Message
    from .queue import Queue
    from .stream import StreamQueue


class Journal:
    def __init__(self) -> None:
        self.ops: list[Op | None] = []
        self.appended = 0
        """How many operations were ever appended: a change shows as a new count."""
        self.delivered: set[Queue] = set()
        self.appended_logs: set[StreamQueue] = set()
        """Streams that appended entries to the store in this batch: their readers may read them
        once it is written, and not before (RabbitMQ's hand out committed chunks only)."""
        self.messages: list[Message] = []
        """Messages whose content this batch stores (a `PutMessage` each)."""
        self.next_message_id = 0
        """The id the next stored message gets; the broker starts it above every id in the store."""
        self.wake: Callable[[], None] | None = None
        self._cancellable: dict[Hashable, int] = {}
        """Where in `ops` the writes that may still be cancelled are, by the key they were added with."""
        self._cancelled = False
        self._cancellable_count = 0
        self._cancelled_count = 0
        self.acks_outrun_writes = False
        """Most cancellable writes of the batch taken last were cancelled before it was taken:
        consumers acknowledge messages sooner than the store writes them, so letting a batch
        gather a little longer spares the store more of them."""

    def append(self, op: Op, key: Hashable = None) -> None:
        """Adds an operation to the batch being gathered; one added with a `key` can be cancelled
        until the batch is taken."""
        ops = self.ops
        ops.append(op)
        self.appended += 1
        if key is not None:
            self._cancellable[key] = len(ops) - 1
            self._cancellable_count += 1
        if len(ops) == 1:
            self.wake_persister()

    def store_message(self, message: Message) -> None:
        """Gives `message` an id and adds its `PutMessage`, cancellable by the message itself."""
        message.message_id = self.next_message_id
        self.next_message_id += 1
        self.append(
            PutMessage(message.message_id, message.exchange, message.routing_key, message.properties, message.body),
            key=message,
        )
        self.messages.append(message)

    def cancel(self, key: Hashable) -> bool:
        """Drops an operation added with `key` if its batch has not been taken yet.

        A message acknowledged before its batch is written need not be written at all: that keeps
        batches small while consumers keep up, and spares the store a write and a delete.
        """
        index = self._cancellable.pop(key, None)
        if index is None:
            return False
        self.ops[index] = None
        self._cancelled = True
        self._cancelled_count += 1
        return True

    def retry(self, ops: list[Op]) -> None:
        """Puts the operations of a failed batch before everything gathered since, to be written again."""
        if not ops:
            return
        shift = len(ops)
        self._cancellable = {key: index + shift for key, index in self._cancellable.items()}
        self.ops[:0] = ops
        self.appended += shift
        self.wake_persister()

    def mark_delivered(self, queue: Queue) -> None:
        if queue not in self.delivered:
            self.delivered.add(queue)
            if not self.ops and len(self.delivered) == 1:
                self.wake_persister()

    def wake_persister(self) -> None:
        if self.wake is not None:
            self.wake()

    def take(self) -> tuple[list[Op], list[Message], list[tuple[StreamQueue, int]]]:
        """Everything gathered, in order, the messages it stores, and each stream that appended with
        the offset its log then ends at; the journal starts afresh."""
        for queue in self.delivered:
            if not queue.deleted:
                self.ops.append(MarkDelivered(queue.vhost, queue.name, queue.delivered_seq))
        self.delivered.clear()
        logs = [(stream, stream.end_offset) for stream in self.appended_logs]
        self.appended_logs.clear()
        ops = self.ops
        if self._cancelled:
            ops = [op for op in ops if op is not None]
            self._cancelled = False
        messages = self.messages
        self.acks_outrun_writes = self._cancelled_count * 2 > self._cancellable_count
        self._cancellable_count = self._cancelled_count = 0
        self._cancellable.clear()
        self.ops = []
        self.messages = []
        return ops, messages, logs
