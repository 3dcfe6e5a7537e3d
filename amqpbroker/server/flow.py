"""Flow control for publishers: the broker's resource alarms (memory, disk) as one set. While any
is on, publishing connections are held (not read from), and those that asked for it are told with
`connection.blocked` and, once every alarm has cleared, `connection.unblocked`.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

from ..core.memory import MemoryWatermark

if TYPE_CHECKING:
    from .amqp import AMQPConnection

log = logging.getLogger("amqpbroker.flow")

# The order in which RabbitMQ-style reasons name the resources: "low on memory & disk".
RESOURCES = ("memory", "disk")


class PublishGate:
    def __init__(self, memory: MemoryWatermark) -> None:
        self._alarms: set[str] = set()
        self._held: set[AMQPConnection] = set()
        memory.on_alarm = functools.partial(self.set_alarm, "memory")
        if memory.alarm:
            self.set_alarm("memory", True)

    @property
    def closed(self) -> bool:
        return bool(self._alarms)

    @property
    def reason(self) -> str:
        """What `connection.blocked` says, e.g. "low on disk"."""
        return "low on " + " & ".join(resource for resource in RESOURCES if resource in self._alarms)

    def hold(self, connection: AMQPConnection) -> None:
        """Holds a publishing connection until every alarm has cleared; tells it once."""
        if connection not in self._held:
            self._held.add(connection)
            connection.blocked(self.reason)

    def forget(self, connection: AMQPConnection) -> None:
        """The connection is gone: nothing to tell it when the alarms clear."""
        self._held.discard(connection)

    def set_alarm(self, resource: str, on: bool) -> None:
        if on == (resource in self._alarms):
            return
        if on:
            log.warning("%s alarm set: publishers are blocked", resource)
            self._alarms.add(resource)
            return
        log.info("%s alarm cleared", resource)
        self._alarms.discard(resource)
        if self._alarms:
            return
        held, self._held = self._held, set()
        for connection in held:
            connection.unblocked()
            connection.wake_reader()
