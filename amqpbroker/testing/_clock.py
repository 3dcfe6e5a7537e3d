"""A clock that a test moves: the broker's time with `clock="manual"`.

The broker's timers (message and queue TTL, `x-expires`, delayed messages, consumer timeouts) all
read the core's one clock. With a `ManualClock` nothing runs them on its own: `advance` moves the
clock from one deadline to the next, in order, letting each expire what is due then, so a message
dead-lettered at one deadline into a queue with a TTL of its own expires there at the right time,
within the same call.
"""

from __future__ import annotations

import time

import trio

from .. import core


class ManualClock:
    """Seconds since the broker started, moved only by `advance`; the time of day moves with it.

    Heartbeats keep real time (clients send theirs by their own clocks) plus `heartbeats_skipped`:
    the seconds that an `advance` asked to count for them too.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self._wall_start = time.time()
        self.heartbeats_skipped = 0.0

    def heartbeat_time(self) -> float:
        return trio.current_time() + self.heartbeats_skipped

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self._wall_start + self.now


def advance(broker: core.Broker, clock: ManualClock, seconds: float) -> None:
    """Moves `clock` on by `seconds`, stopping at every deadline of `broker` on the way."""
    if seconds < 0:
        raise ValueError(f"the clock cannot go back: advance({seconds})")
    target = clock.now + seconds
    while (deadline := broker.next_deadline()) is not None and deadline <= target:
        clock.now = max(clock.now, deadline)
        _expire(broker, clock.now)
    clock.now = target
    _expire(broker, target)


def _expire(broker: core.Broker, now: float) -> None:
    while broker.expire(now):
        pass
    broker.expire_deliveries()
