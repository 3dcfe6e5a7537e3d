"""The task that reads bodies back from the store for delivery, in a thread (see core.bodies).

A read of the disk can take milliseconds, or much longer on a busy disk or while the store grows
its map: done on the event loop, it would stall every connection. The bodies asked for while a
read runs are read together in the next one.
"""

from __future__ import annotations

import trio

from .. import core
from ..core.bodies import read


async def read_bodies(broker: core.Broker) -> None:
    bodies = broker.bodies
    limiter = trio.CapacityLimiter(1)
    wake = trio.Event()

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
