"""A transactional channel: publishes and acknowledgements wait for tx.commit, or go at tx.rollback.

As with RabbitMQ, a batch rather than an ACID transaction: the operations are applied in order
when the client commits, and tx.commit-ok is a durable reply (it waits for the store).
"""

from __future__ import annotations

from typing import Callable


class Transaction:
    def __init__(self) -> None:
        self._pending: list[Callable[[], None]] = []

    def defer(self, operation: Callable[[], None]) -> None:
        self._pending.append(operation)

    def commit(self) -> None:
        pending, self._pending = self._pending, []
        for operation in pending:
            operation()

    def rollback(self) -> None:
        self._pending.clear()
