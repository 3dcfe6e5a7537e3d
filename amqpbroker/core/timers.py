"""The broker's clock and its deadlines: when each queue (or delayed exchange) next needs the
timer, earliest first.

A queue asks for a turn at a time (its head message expires, it has been unused for its
`x-expires`), a delayed exchange when its next held message is due; the server's timer task
sleeps until the earliest deadline and then gives the due ones their turn. Each asks again only
when it needs a turn earlier than the one it has, so a deadline that passed with nothing to do
costs one turn, which finds the next one. Superseded deadlines stay in the heap until they come
up and are skipped.

All times are on `clock` (monotonic seconds by default); `wall_clock` gives the time of day
for what outlives the process, such as an expiry stored with a message.
"""

from __future__ import annotations

import heapq
import itertools
import time
from typing import Callable, Protocol


class Scheduled(Protocol):
    """What has turns on the timers: a queue, a delayed exchange."""

    deadline: float | None
    """When its turn is; a heap entry at another time is superseded."""
    deleted: bool


class Timers:
    def __init__(
        self, clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time
    ) -> None:
        self.clock = clock
        self.wall_clock = wall_clock
        self.wake: Callable[[], None] | None = None
        """Set by the timer task: called when a deadline earlier than all others is added."""
        self._heap: list[tuple[float, int, Scheduled]] = []
        self._order = itertools.count()

    def schedule(self, owner: Scheduled, when: float) -> None:
        """Gives `owner` a turn at `when`; its `deadline` must already say `when`."""
        heap = self._heap
        earliest = not heap or when < heap[0][0]
        heapq.heappush(heap, (when, next(self._order), owner))
        if earliest and self.wake is not None:
            self.wake()

    def next_deadline(self) -> float | None:
        """When the next turn is due, or None if nothing needs one."""
        heap = self._heap
        while heap:
            when, _, owner = heap[0]
            if owner.deadline == when and not owner.deleted:
                return when
            heapq.heappop(heap)
        return None

    def due(self, now: float) -> Scheduled | None:
        """A queue or exchange whose turn is due at `now`, taken off the schedule; None when none is."""
        when = self.next_deadline()
        if when is None or when > now:
            return None
        owner = heapq.heappop(self._heap)[2]
        owner.deadline = None
        return owner

    def to_wall_ms(self, when: float) -> int:
        """A time on `clock` as milliseconds since the epoch, to store."""
        return round((self.wall_clock() + when - self.clock()) * 1000)

    def from_wall_ms(self, wall_ms: int) -> float:
        """A stored time of day in milliseconds back on `clock`."""
        return self.clock() + wall_ms / 1000 - self.wall_clock()
