"""A transactional channel: publishes and acknowledgements wait for tx.commit, or go at tx.rollback.

As with RabbitMQ, a batch rather than an ACID transaction: the operations are applied in order
when the client commits, and tx.commit-ok is a durable reply (it waits for the store). An
operation may come with its undo, for what it took aside when it was deferred (the deliveries an
acknowledgement names leave the unacknowledged ones at once, and return to them at rollback).
"""

from __future__ import annotations

from typing import Callable


class Transaction:
    def __init__(self) -> None:
        self._pending: list[tuple[Callable[[], None], Callable[[], None] | None]] = []
        self.messages = 0
        """Publishes waiting for the commit (RabbitMQ's `messages_uncommitted`)."""
        self.acks = 0
        """Deliveries acknowledged, waiting for the commit (RabbitMQ's `acks_uncommitted`: not
        those rejected or nacked)."""

    def defer(self, operation: Callable[[], None], undo: Callable[[], None] | None = None) -> None:
        self._pending.append((operation, undo))

    def commit(self) -> None:
        pending, self._pending = self._pending, []
        self.messages = self.acks = 0
        for operation, _ in pending:
            operation()

    def rollback(self) -> None:
        pending, self._pending = self._pending, []
        self.messages = self.acks = 0
        for _, undo in reversed(pending):
            if undo is not None:
                undo()
