"""Bodies of persistent messages read back from the store for delivery, never on the event loop.

A persistent body stays in memory while there is room (see `MemoryWatermark.paging`); one that
had to leave it, or that recovery left on disk, is read back when a consumer is due it. The core
cannot wait for a disk: a queue whose next message has no body asks for it here and stops
delivering; the server reads the bodies asked for in a thread and hands each back through
`loaded`, which keeps it in memory and lets the queues that waited go on, in their order.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from ..store import Store
    from .memory import MemoryWatermark
    from .message import Message
    from .queue import Queue

log = logging.getLogger("amqpbroker.bodies")


class BodyReads:
    def __init__(self, memory: MemoryWatermark) -> None:
        self._memory = memory
        self._waiting: dict[Message, list[Queue]] = {}
        self._due: list[Message] = []
        self.wake: Callable[[], None] | None = None
        """Set by the server's reader: called when a body is asked for."""

    def request(self, message: Message, queue: Queue) -> None:
        """`queue` is due to deliver `message`, whose body is only in the store."""
        queues = self._waiting.get(message)
        if queues is None:
            self._waiting[message] = [queue]
            self._due.append(message)
            if self.wake is not None:
                self.wake()
        elif queue not in queues:
            queues.append(queue)

    def take(self) -> list[Message]:
        """The messages whose bodies are to be read now, each once."""
        due, self._due = self._due, []
        return due

    def settle(self, messages: list[Message], bodies: list[bytes | None]) -> None:
        """What `read` found for `messages`: each body is delivered, or its failure reported."""
        for message, body in zip(messages, bodies):
            if body is None:
                self._failed(message)
            else:
                self._loaded(message, body)

    def _loaded(self, message: Message, body: bytes) -> None:
        queues = self._waiting.pop(message, ())
        # Still held by a queue: kept (and counted) until the last holder forgets it.
        if message.body is None and message.holders:
            message.body = body
            # Recovery leaves `size` 0 unless a byte limit needed it; what is released must be what is added.
            message.size = len(body)
            self._memory.add(message.size)
        for queue in queues:
            queue.dispatch()

    def _failed(self, message: Message) -> None:
        """The store could not give `message`'s body: it stays queued, and is asked for again when
        its queue next tries to deliver it (a publish, a consumer, an ack)."""
        self._waiting.pop(message, None)


def read(store: Store, messages: list[Message]) -> list[bytes | None]:
    """The bodies of `messages` from `store` (None for one it could not give), in a thread of the
    server's, or right here in tests."""
    bodies: list[bytes | None] = []
    for message in messages:
        try:
            bodies.append(store.load_body(message.message_id))
        except Exception:
            # The message stays queued; the store's failure is the operator's to see.
            log.exception("could not read the body of message %s from the store", message.message_id)
            bodies.append(None)
    return bodies
