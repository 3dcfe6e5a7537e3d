"""A queue's ready messages in delivery order: one FIFO lane, or one lane per priority.

A lane keeps new messages in a deque in publish order. A requeued message goes into a small heap
keyed by its original sequence number; every requeued message was taken from the front earlier,
so it precedes everything still in the deque, and taking the heap first keeps the original order.

A priority queue is one lane per priority level: the highest non-empty lane is taken first, and
a requeued message goes back into its own lane, where it keeps its place.

Neither counts its entries: the queue keeps that count, which it reads on every dispatch.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Iterator

from .message import QueueEntry


class Lane(deque):
    """New entries are the deque itself (so appending is the deque's own `append`); requeued
    ones are in `requeued`, a heap."""

    __slots__ = ("requeued",)

    def __init__(self) -> None:
        super().__init__()
        self.requeued: list[QueueEntry] = []

    def take(self) -> QueueEntry | None:
        """The first entry, removed; None if there is none."""
        if self.requeued:
            return heapq.heappop(self.requeued)
        if self:
            return self.popleft()
        return None

    def head(self) -> QueueEntry | None:
        """The entry `take` would return, left in place."""
        if self.requeued:
            return self.requeued[0]
        if self:
            return self[0]
        return None

    def put_back(self, entry: QueueEntry) -> None:
        """Returns a taken entry to its place."""
        heapq.heappush(self.requeued, entry)

    def entries(self) -> Iterator[QueueEntry]:
        """The entries in delivery order."""
        yield from sorted(self.requeued)
        yield from self

    def clear(self) -> None:
        super().clear()
        self.requeued.clear()


class PriorityLanes:
    """The backlog of a queue declared with `x-max-priority`: lane 0 to `max_priority`."""

    __slots__ = ("_lanes", "_max_priority")

    def __init__(self, max_priority: int) -> None:
        self._max_priority = max_priority
        # Highest priority first, the order they are searched in.
        self._lanes = [Lane() for _ in range(max_priority + 1)]

    def _lane(self, entry: QueueEntry) -> Lane:
        # Above the maximum counts as the maximum; absent is 0.
        return self._lanes[self._max_priority - min(entry.message.priority, self._max_priority)]

    def append(self, entry: QueueEntry) -> None:
        self._lane(entry).append(entry)

    def take(self) -> QueueEntry | None:
        for lane in self._lanes:
            if lane or lane.requeued:
                return lane.take()
        return None

    def head(self) -> QueueEntry | None:
        for lane in self._lanes:
            if lane or lane.requeued:
                return lane.head()
        return None

    def put_back(self, entry: QueueEntry) -> None:
        self._lane(entry).put_back(entry)

    def entries(self) -> Iterator[QueueEntry]:
        for lane in self._lanes:
            yield from lane.entries()

    def clear(self) -> None:
        for lane in self._lanes:
            lane.clear()
