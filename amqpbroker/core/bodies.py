"""Bodies of persistent messages read back from the store, never on the event loop.

A persistent body stays in memory while there is room (see `MemoryWatermark.paging`); one that
had to leave it, or that recovery left on disk, is read back when something needs it: a queue due
to deliver it to a consumer, a channel answering a basic.get, a dead-lettering, the management
API's get. The core cannot wait for a disk: whoever needs a body asks for it here, with a waiter,
and waits; the server reads the bodies asked for in a thread and hands each back through `settle`,
which keeps it in memory while a queue holds the message and tells the waiters, in their order.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable, Protocol

if TYPE_CHECKING:
    from ..store import Store
    from .memory import MemoryWatermark
    from .message import Message

log = logging.getLogger("amqpbroker.bodies")


class BodyWaiter(Protocol):
    def body_read(self, message: Message, body: bytes | None) -> None:
        """`message`'s body is back from the store; None if the store could not give it."""


class BodyReads:
    def __init__(self, memory: MemoryWatermark) -> None:
        self._memory = memory
        self._waiting: dict[Message, list[BodyWaiter]] = {}
        self._due: list[Message] = []
        self.wake: Callable[[], None] | None = None
        """Set by the server's reader: called when a body is asked for."""

    def request(self, message: Message, waiter: BodyWaiter) -> None:
        """`waiter` needs `message`'s body, which is only in the store; it is told once, when read."""
        waiters = self._waiting.get(message)
        if waiters is None:
            self._waiting[message] = [waiter]
            self._due.append(message)
            if self.wake is not None:
                self.wake()
        elif waiter not in waiters:
            waiters.append(waiter)

    def take(self) -> list[Message]:
        """The messages whose bodies are to be read now, each once."""
        due, self._due = self._due, []
        return due

    def settle(self, messages: list[Message], bodies: list[bytes | None]) -> None:
        """What `read` found for `messages`: each body is handed to its waiters, or its failure reported.

        A body that could not be read leaves each waiter to do without it: a queue's message stays
        queued, and is asked for again when the queue next tries to deliver it (a publish, a
        consumer, an ack)."""
        for message, body in zip(messages, bodies):
            waiters = self._waiting.pop(message, ())
            # Still held by a queue: kept (and counted) until the last holder forgets it.
            if body is not None and message.body is None and message.holders:
                message.body = body
                self._memory.add(message.size)
                self._memory.paged_out -= 1
            for waiter in waiters:
                waiter.body_read(message, body)


def read(store: Store, messages: list[Message]) -> list[bytes | None]:
    """The bodies of `messages` from `store` (None for one it could not give), in a thread of the
    server's, or right here in tests."""
    bodies: list[bytes | None] = []
    for message in messages:
        try:
            bodies.append(store.load_body(message.message_id))
        except Exception:
            # Whoever waits does without it; the store's failure is the operator's to see.
            log.exception("could not read the body of message %s from the store", message.message_id)
            bodies.append(None)
    return bodies
