"""What the core must make durable next, gathered into numbered batches for group commit.

Core operations append store operations here as they happen. The server's persister takes the
whole pending list as one batch, applies it in one store transaction, and reports the batch
number back, which releases the publisher confirms that waited for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Hashable

from ..store.base import MarkDelivered, Op

if TYPE_CHECKING:
    from .message import Message
    from .queue import Queue


class Journal:
    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.batch = 0
        """The number of the batch being gathered; confirms that need it wait for its commit."""
        self.committed = -1
        """The highest batch number the store has finished with, successfully or not."""
        self.failed: set[int] = set()
        self.delivered: set[Queue] = set()
        self.stored_messages: list[Message] = []
        """Messages whose bodies may be dropped from memory once the batch is committed."""
        self.wake: Callable[[], None] | None = None
        self._cancellable: dict[Hashable, int] = {}
        """Where in `ops` the writes that may still be cancelled are, by the key they were added with."""
        self._cancelled = False

    def append(self, op: Op, key: Hashable = None) -> None:
        """Adds an operation to the batch being gathered; one added with a `key` can be cancelled
        until the batch is taken."""
        ops = self.ops
        ops.append(op)
        if key is not None:
            self._cancellable[key] = len(ops) - 1
        if len(ops) == 1 and self.wake is not None:
            self.wake()

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
        return True

    def mark_delivered(self, queue: Queue) -> None:
        if queue not in self.delivered:
            self.delivered.add(queue)
            if not self.ops and len(self.delivered) == 1 and self.wake is not None:
                self.wake()

    def take(self) -> tuple[int, list[Op], list[Message]] | None:
        """Closes the batch being gathered and returns it, or None if there is nothing to write."""
        for queue in self.delivered:
            if not queue.deleted:
                self.ops.append(MarkDelivered(queue.vhost, queue.name, queue.delivered_seq))
        self.delivered.clear()
        ops = self.ops
        if self._cancelled:
            ops = [op for op in ops if op is not None]
            self._cancelled = False
        self._cancellable.clear()
        self.ops = []
        if not ops:
            self.stored_messages = []
            return None
        batch = (self.batch, ops, self.stored_messages)
        self.batch += 1
        self.stored_messages = []
        return batch
