"""The broker's timer task: sleeps until the core's next deadline, then lets it expire what is due.

A turn expires a bounded slice of messages, then yields, so a large backlog expiring shares the
event loop with the connections instead of stalling them. A deadline earlier than the one the task
sleeps until wakes it.
"""

from __future__ import annotations

import logging

import trio

from .. import core

log = logging.getLogger("amqpbroker.timers")


async def run_timers(broker: core.Broker) -> None:
    timers = broker.timers
    wake = trio.Event()

    def wake_up() -> None:
        wake.set()

    timers.wake = wake_up
    try:
        while True:
            deadline = broker.next_deadline()
            if deadline is None:
                await wake.wait()
            else:
                with trio.move_on_after(max(0.0, deadline - timers.clock())):
                    await wake.wait()
            wake = trio.Event()
            try:
                while broker.expire():
                    await trio.sleep(0)
            except Exception:
                # A bug in a timer's turn must cost this turn, not the broker; the next deadline comes again.
                log.exception("a timer's turn (expiring messages or queues, routing delayed messages) failed")
    finally:
        timers.wake = None
