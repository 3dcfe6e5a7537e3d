"""A queue's ready messages in delivery order: one FIFO lane, or one lane per priority.

A lane keeps new messages in a deque in publish order. A requeued message goes into a small heap
keyed by its original sequence number; every requeued message was taken from the front earlier,
so it precedes everything still in the deque, and taking the heap first keeps the original order.

A priority queue is one lane per priority level: the highest non-empty lane is taken first, and
a requeued message goes back into its own lane, where it keeps its place.

"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Iterator

from .message import QueueEntry


class Lane:
    __slots__ = ("_ready", "_requeued")

    def __init__(self) -> None:
        self._ready: deque[QueueEntry] = deque()
        self._requeued: list[QueueEntry] = []

    def __len__(self) -> int:
        return len(self._ready) + len(self._requeued)

    def append(self, entry: QueueEntry) -> None:
        """Adds a new entry, or one recovered from the store in sequence order, at the end."""
        self._ready.append(entry)

    def take(self) -> QueueEntry | None:
        """The first entry, removed; None if there is none."""
        if self._requeued:
            return heapq.heappop(self._requeued)
        if self._ready:
            return self._ready.popleft()
        return None

    def head(self) -> QueueEntry | None:
        """The entry `take` would return, left in place."""
        if self._requeued:
            return self._requeued[0]
        if self._ready:
            return self._ready[0]
        return None

    def put_back(self, entry: QueueEntry) -> None:
        """Returns a taken entry to its place."""
        heapq.heappush(self._requeued, entry)

    def __iter__(self) -> Iterator[QueueEntry]:
        """The entries in delivery order."""
        yield from sorted(self._requeued)
        yield from self._ready

    def clear(self) -> None:
        self._ready.clear()
        self._requeued.clear()


class PriorityLanes:
    """The backlog of a queue declared with `x-max-priority`: lane 0 to `max_priority`."""

    __slots__ = ("_lanes", "_max_priority", "_count")

    def __init__(self, max_priority: int) -> None:
        self._max_priority = max_priority
        self._count = 0
        # Highest priority first, the order they are searched in.
        self._lanes = [Lane() for _ in range(max_priority + 1)]

    def _lane(self, entry: QueueEntry) -> Lane:
        # Above the maximum counts as the maximum; absent is 0.
        return self._lanes[self._max_priority - min(entry.message.priority, self._max_priority)]

    def __len__(self) -> int:
        return self._count

    def append(self, entry: QueueEntry) -> None:
        self._lane(entry).append(entry)
        self._count += 1

    def take(self) -> QueueEntry | None:
        if self._count:
            for lane in self._lanes:
                if lane:
                    self._count -= 1
                    return lane.take()
        return None

    def head(self) -> QueueEntry | None:
        for lane in self._lanes:
            if lane:
                return lane.head()
        return None

    def put_back(self, entry: QueueEntry) -> None:
        self._lane(entry).put_back(entry)
        self._count += 1

    def __iter__(self) -> Iterator[QueueEntry]:
        for lane in self._lanes:
            yield from lane

    def clear(self) -> None:
        for lane in self._lanes:
            lane.clear()
        self._count = 0
