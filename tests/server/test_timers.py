"""The timer task expires a large backlog in bounded slices and lets other tasks run between them."""

from __future__ import annotations

import trio

from amqpbroker import core
from amqpbroker.core.broker import EXPIRE_SLICE
from amqpbroker.core.message import Message
from amqpbroker.server.timers import run_timers


async def test_a_large_expiry_goes_in_slices_with_other_tasks_between() -> None:
    now = 1000.0
    broker = core.Broker(clock=lambda: now)
    queue = broker.vhosts["/"].declare_queue("q", None, arguments={"x-message-ttl": 10})
    broker.queue_declared(queue)
    expired = 3 * EXPIRE_SLICE + 1
    for _ in range(expired):
        queue.push(Message("", "q", b"", b"m"))
    now += 1

    other_steps = 0
    turns: list[tuple[int, int]] = []
    """Messages each call to expire dropped, and the steps the other task had taken before it."""
    expire = broker.expire

    def counted_expire() -> bool:
        before = queue.message_count
        more = expire()
        turns.append((before - queue.message_count, other_steps))
        return more

    broker.expire = counted_expire
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_timers, broker)
        while queue.message_count:
            other_steps += 1
            await trio.sleep(0)
        nursery.cancel_scope.cancel()

    dropped = [count for count, _ in turns]
    assert sum(dropped) == expired
    assert max(dropped) == EXPIRE_SLICE
    # Each trio batch runs both tasks once, in either order: of any three slices in a row, the
    # other task ran between the first and the last.
    steps = [steps for _, steps in turns]
    assert all(later > earlier for earlier, later in zip(steps, steps[2:])), "slices without a yield between"
