"""Flow control for publishers: the broker's resource alarms (memory, disk) as one set. While any
is on, the publishes of every connection are held (see `amqp`), and the connections that asked are
told with `connection.blocked`; once every alarm has cleared they are released, and told with
`connection.unblocked`.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

import trio

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
        self._cleared = trio.Event()
        memory.on_alarm = functools.partial(self.set_alarm, "memory")
        if memory.alarm:
            self.set_alarm("memory", True)

    @property
    def closed(self) -> bool:
        return bool(self._alarms)

    @property
    def alarms(self) -> frozenset[str]:
        """The resources whose alarm is on: "memory", "disk"."""
        return frozenset(self._alarms)

    @property
    def reason(self) -> str:
        """What `connection.blocked` says, e.g. "low on disk"."""
        return "low on " + " & ".join(resource for resource in RESOURCES if resource in self._alarms)

    async def run(self) -> None:
        """Releases the held connections whenever every alarm has cleared. In a task of its own, so
        that their publishes are not routed from inside whatever cleared the alarm (an ack, say)."""
        while True:
            await self._cleared.wait()
            self._cleared = trio.Event()
            if self._alarms:
                continue  # on again already
            held, self._held = self._held, set()
            for connection in held:
                connection.release_held()

    def hold(self, connection: AMQPConnection) -> None:
        """Holds a publishing connection's publishes until every alarm has cleared; tells it once."""
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
        if not self._alarms:
            self._cleared.set()
