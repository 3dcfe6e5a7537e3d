"""The broker process: listeners, connection tasks, and graceful shutdown.

`Server.serve()` runs until cancelled or until `shutdown()`; shutdown tells every client
`connection.close` 320 CONNECTION_FORCED and waits briefly for their close-ok.
"""

from __future__ import annotations

import logging

import trio

from .. import core
from .amqp import CLOSE_TIMEOUT, AMQPConnection
from .flow import PublishGate
from .persister import run_persister
from .timers import run_timers

log = logging.getLogger("amqpbroker")

SHUTDOWN_TEXT = "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"


def single_error(exc: BaseException) -> BaseException:
    """The one error inside (nested) exception groups, as trio's nurseries wrap it, or `exc` itself."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


class Server:
    def __init__(self, broker: core.Broker | None = None, *, host: str = "0.0.0.0", port: int = 5672,
                 heartbeat: int = 60) -> None:
        self.broker = broker if broker is not None else core.Broker()
        self.host = host
        self.port = port
        self.heartbeat = heartbeat
        self.connections: set[AMQPConnection] = set()
        self._gate = PublishGate(self.broker.memory)
        self._stopped = trio.Event()
        self._all_closed = trio.Event()
        self._all_closed.set()

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listens and serves clients; reports the bound port through `task_status`."""
        listeners = await trio.open_tcp_listeners(self.port, host=self.host)
        self.port = listeners[0].socket.getsockname()[1]
        log.info("listening on %s:%d", self.host, self.port)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_persister, self.broker)
            nursery.start_soon(run_timers, self.broker)
            nursery.start_soon(trio.serve_listeners, self._handle, listeners)
            task_status.started(self.port)
            await self._stopped.wait()
            for connection in list(self.connections):
                connection.close(320, SHUTDOWN_TEXT)
            with trio.move_on_after(CLOSE_TIMEOUT):
                await self._all_closed.wait()
            nursery.cancel_scope.cancel()
        # What the persister had not taken yet still belongs on disk.
        self.broker.commit()
        log.info("stopped")

    def shutdown(self) -> None:
        """Starts a graceful shutdown; `serve()` returns once clients are told."""
        self._stopped.set()

    async def _handle(self, stream: trio.SocketStream) -> None:
        if self._stopped.is_set():
            # Accepted while shutting down: the client finds the broker gone and connects again
            # later, instead of opening a connection that shutdown would neither close nor wait for.
            await stream.aclose()
            return
        try:
            host, port = stream.socket.getpeername()[:2]
            peer = f"{host}:{port}"
        except OSError:
            peer = "?"
        connection = AMQPConnection(stream, self.broker, peer, self._gate, heartbeat=self.heartbeat)
        self.connections.add(connection)
        self._all_closed = trio.Event()
        try:
            await connection.run()
        except Exception:
            log.exception("connection %s failed", peer)
        finally:
            self.connections.discard(connection)
            if not self.connections:
                self._all_closed.set()
