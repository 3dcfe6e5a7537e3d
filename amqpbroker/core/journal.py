"""What the core must make durable next, gathered into numbered batches for group commit.

Core operations append store operations here as they happen. The server's persister takes the
whole pending list as one batch, applies it in one store transaction, and reports the batch
number back, which releases the publisher confirms that waited for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

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

    def append(self, op: Op) -> None:
        self.ops.append(op)
        if len(self.ops) == 1 and self.wake is not None:
            self.wake()

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
        if not self.ops:
            return None
        batch = (self.batch, self.ops, self.stored_messages)
        self.batch += 1
        self.ops = []
        self.stored_messages = []
        return batch
