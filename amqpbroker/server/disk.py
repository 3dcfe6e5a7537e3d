"""The disk alarm: a task that checks the free space of the data directory's disk and raises the
"disk" alarm while it is below the limit.

Like RabbitMQ, it checks more often the closer free space is to the limit: the interval is the time
the remaining headroom would last at a fast fill rate, between 0.1 and 10 seconds.
"""

from __future__ import annotations

import logging
import shutil
from typing import Callable

import trio

log = logging.getLogger("amqpbroker.disk")

_FILL_RATE = 250_000_000  # bytes per second
_MIN_INTERVAL = 0.1
_MAX_INTERVAL = 10.0


def disk_free_bytes(path: str) -> int:
    return shutil.disk_usage(path).free


class DiskMonitor:
    def __init__(self, path: str, limit: int, free_space: Callable[[str], int] = disk_free_bytes) -> None:
        self.path = path
        self.limit = limit
        self._free_space = free_space
        self.free: int | None = None
        """Free bytes at the last check; None before the first."""

    async def run(self, set_alarm: Callable[[bool], None]) -> None:
        """Checks until cancelled; reports every change of the alarm to `set_alarm`."""
        alarm = False
        while True:
            try:
                # In a thread: a hung disk may hang statvfs too, and must not stop the broker.
                free = await trio.to_thread.run_sync(self._free_space, self.path, abandon_on_cancel=True)
            except OSError as exc:
                log.warning("cannot read the free space of %s: %s", self.path, exc)
                interval = _MAX_INTERVAL
            else:
                self.free = free
                low = free < self.limit
                if low != alarm:
                    alarm = low
                    if low:
                        log.warning("free disk space %d bytes is below the limit of %d bytes", free, self.limit)
                    set_alarm(low)
                interval = min(max((free - self.limit) / _FILL_RATE, _MIN_INTERVAL), _MAX_INTERVAL)
            await trio.sleep(interval)
