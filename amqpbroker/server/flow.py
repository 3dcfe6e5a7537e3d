"""Flow control for publishers: while the broker's memory alarm is on, publishing connections are
not read from, and those that asked for it are told with `connection.blocked` / `unblocked`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from ..core.memory import MemoryWatermark

if TYPE_CHECKING:
    from .amqp import AMQPConnection


class PublishGate:
    def __init__(self, memory: MemoryWatermark) -> None:
        self._open = trio.Event()
        self._open.set()
        self._held: set[AMQPConnection] = set()
        memory.on_alarm = self._alarm
        if memory.alarm:
            self._alarm(True)

    @property
    def closed(self) -> bool:
        return not self._open.is_set()

    async def wait(self, connection: AMQPConnection) -> None:
        """Holds a publishing connection until the alarm clears."""
        self._held.add(connection)
        connection.blocked("low on memory")
        try:
            await self._open.wait()
        finally:
            self._held.discard(connection)

    def _alarm(self, on: bool) -> None:
        if on:
            if self._open.is_set():
                self._open = trio.Event()
            return
        self._open.set()
        for connection in self._held:
            connection.unblocked()
