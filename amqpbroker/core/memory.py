"""How many bytes of message bodies the broker holds in memory, against a limit.

Crossing the limit raises the memory alarm, one of the server's set of resource alarms (with the
disk's): publishes are held (and publishers told with `connection.blocked`) until consumers and
acks bring the total back under the limit. Bodies held only in the store do not count.
"""

from __future__ import annotations

from typing import Callable

# Past this share of the limit, bodies the store also holds leave memory (RabbitMQ pages queues
# out at half its high watermark by default).
PAGING_RATIO = 0.5


class MemoryWatermark:
    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        """Bytes of bodies at which publishers are blocked; None for no limit."""
        self.used = 0
        self.paged_out = 0
        """How many messages held by queues have their bodies only in the store (paged out, or
        left there by recovery): when none has, every body is in memory."""
        self.alarm = False
        self.on_alarm: Callable[[bool], None] | None = None

    @property
    def paging(self) -> bool:
        """Whether bodies that are safe in the store should leave memory."""
        return self.limit is not None and self.used >= self.limit * PAGING_RATIO

    def add(self, size: int) -> None:
        self.used += size
        if not self.alarm and self.limit is not None and self.used >= self.limit:
            self._set(True)

    def release(self, size: int) -> None:
        self.used -= size
        if self.alarm and self.used < self.limit:
            self._set(False)

    def _set(self, alarm: bool) -> None:
        self.alarm = alarm
        if self.on_alarm is not None:
            self.on_alarm(alarm)
