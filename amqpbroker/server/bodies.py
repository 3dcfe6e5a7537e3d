"""The task that reads bodies back from the store, in a thread (see core.bodies), and a way for
a task to wait for bodies it needs (the management API's get).

A read of the disk can take milliseconds, or much longer on a busy disk or while the store grows
its map: done on the event loop, it would stall every connection. The bodies asked for while a
read runs are read together in the next one.
"""

from __future__ import annotations

import trio

from .. import core
from ..core.bodies import BodyReads, read
from ..core.message import Message


async def read_bodies(broker: core.Broker) -> None:
    bodies = broker.bodies
    limiter = trio.CapacityLimiter(1)
    wake = trio.Event()
    # What was asked for before this task started (recovery dead-letters what is past its
    # delivery limit) is due now.
    wake.set()

    def wake_up() -> None:
        wake.set()

    bodies.wake = wake_up
    try:
        while True:
            await wake.wait()
            wake = trio.Event()
            due = bodies.take()
            if due:
                # Abandoned at shutdown: a read changes nothing, and a hung disk must not keep the
                # broker from exiting.
                found = await trio.to_thread.run_sync(read, broker.store, due, limiter=limiter, abandon_on_cancel=True)
                bodies.settle(due, found)
    finally:
        bodies.wake = None


class _Waiter:
    """Collects the bodies of `count` distinct messages as they are read back."""

    def __init__(self, count: int) -> None:
        self._count = count
        self.found: dict[Message, bytes | None] = {}
        self.done = trio.Event()

    def body_read(self, message: Message, body: bytes | None) -> None:
        self.found[message] = body
        if len(self.found) == self._count:
            self.done.set()


async def read_back(reads: BodyReads, messages: list[Message]) -> list[bytes | None]:
    """The bodies of `messages` (None for one the store could not give), those only in the store
    read back by `read_bodies`. Taken as they are now: a commit may page a body out meanwhile."""
    bodies = [message.body for message in messages]
    missing = {message for message, body in zip(messages, bodies) if body is None}
    if not missing:
        return bodies
    waiter = _Waiter(len(missing))
    for message in missing:
        reads.request(message, waiter)
    await waiter.done.wait()
    return [waiter.found[message] if body is None else body for message, body in zip(messages, bodies)]
