"""A broker served in a trio run, with the controls a test needs: inspection and fault injection.

`serve_broker` runs a `TrioBroker` in the caller's trio run; `Broker` (in `_embedded`) runs one in a
thread of its own and calls the same methods through `trio.from_thread`. Every method here reads or
changes broker state, so it runs in the trio thread that serves the broker and nowhere else.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import quote

import trio

from .. import core
from ..protocol import BasicProperties
from ..server import Limits, Server
from ..server.disk import disk_free_bytes
from ..store import Store, open_store

CLOSED_TEXT = "CONNECTION_FORCED - Closed via amqpbroker.testing"


@dataclass(frozen=True)
class QueueInfo:
    name: str
    durable: bool
    exclusive: bool
    auto_delete: bool
    arguments: dict
    message_count: int
    """Messages ready for delivery."""
    unacked_count: int
    """Messages delivered to consumers and not yet acknowledged."""
    consumer_count: int


@dataclass(frozen=True)
class ExchangeInfo:
    name: str
    type: str
    durable: bool
    auto_delete: bool
    internal: bool
    arguments: dict


@dataclass(frozen=True)
class BindingInfo:
    source: str
    """The exchange's name."""
    destination: str
    destination_type: str
    """"queue", or "exchange" for an exchange-to-exchange binding."""
    routing_key: str
    arguments: dict


@dataclass(frozen=True)
class MessageInfo:
    exchange: str
    routing_key: str
    properties: BasicProperties
    body: bytes
    redelivered: bool


def amqp_url(host: str, port: int, vhost: str | None = None) -> str:
    """The guest URL of `vhost`; None gives the form without a path segment, which clients read as '/'."""
    path = "" if vhost is None else quote(vhost, safe="")
    return f"amqp://guest:guest@{host}:{port}/{path}"


def amqps_url(host: str, port: int | None) -> str:
    if port is None:
        raise RuntimeError("AMQPS is not served: start the broker with a tls_context")
    return f"amqps://guest:guest@{host}:{port}/"


def http_url(host: str, port: int | None, tls: bool = False) -> str:
    if port is None:
        raise RuntimeError("the management API is not served: start the broker with http_port=0")
    return f"http{'s' if tls else ''}://{host}:{port}"


class TrioBroker:
    """A broker served in the current trio run; made by `serve_broker`.

    A restart replaces `server` (and its `core.Broker`) and keeps `store`, the host and the port.
    """

    def __init__(
        self,
        store: Store,
        *,
        host: str,
        port: int,
        heartbeat: int,
        memory_limit: int | None = None,
        limits: Limits = Limits(),
        data_dir: str | None = None,
        free_space: Callable[[str], int] = disk_free_bytes,
        consumer_timeout: int | None = core.DEFAULT_CONSUMER_TIMEOUT,
        http_port: int | None = None,
        tls_context: ssl.SSLContext | None = None,
        tls_port: int = 0,
        http_tls: bool = False,
        metrics_port: int | None = None,
    ) -> None:
        self.store = store
        self.host = host
        self.server = Server(
            core.Broker(store=store, memory_limit=memory_limit, consumer_timeout=consumer_timeout),
            host=host,
            port=port,
            heartbeat=heartbeat,
            limits=limits,
            data_dir=data_dir,
            free_space=free_space,
            http_port=http_port,
            tls_context=tls_context,
            tls_port=tls_port,
            http_tls=http_tls,
            metrics_port=metrics_port,
        )
        self._stop_requested = trio.Event()
        self._close_timeout = 1.0
        self._served = trio.Event()
        self._nursery: trio.Nursery | None = None

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        """`amqp://guest:guest@HOST:PORT/`: the default vhost '/'."""
        return amqp_url(self.host, self.port)

    def vhost_url(self, vhost: str) -> str:
        return amqp_url(self.host, self.port, vhost)

    @property
    def tls_port(self) -> int | None:
        """The AMQPS port, None when AMQPS is not served."""
        return self.server.tls_port

    @property
    def amqps_url(self) -> str:
        """`amqps://guest:guest@HOST:PORT/`: the default vhost '/' over TLS."""
        return amqps_url(self.host, self.server.tls_port)

    @property
    def http_port(self) -> int | None:
        """The management API's port, None when it is not served."""
        return self.server.http_port

    @property
    def http_url(self) -> str:
        """`http://HOST:PORT` (`https://` over TLS), the management API's base (its paths start with `/api/`)."""
        return http_url(self.host, self.server.http_port, self.server.http_tls)

    @property
    def metrics_port(self) -> int | None:
        """The Prometheus metrics' port, None when they are not served."""
        return self.server.metrics_port

    # Running

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serves, through any number of restarts, until `stop()`."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self._serve, self.server)
            task_status.started()
            await self._stop_requested.wait()
            await self._stop_server(self._close_timeout)

    def stop(self, *, close_timeout: float = 1.0) -> None:
        """Shuts down: clients get connection.close 320, and those that have not answered within
        `close_timeout` seconds are reset. `run()` returns when all are gone."""
        self._close_timeout = close_timeout
        self._stop_requested.set()

    async def _stop_server(self, close_timeout: float) -> None:
        server = self.server
        server.shutdown()
        with trio.move_on_after(close_timeout):
            await self._served.wait()
        for connection in list(server.connections):
            connection.abort()
        await self._served.wait()

    async def _serve(self, server: Server, *, task_status: trio.TaskStatus[int]) -> None:
        served = self._served = trio.Event()
        try:
            await server.serve(task_status=task_status)
        finally:
            served.set()

    async def restart(self, *, close_timeout: float = 1.0) -> None:
        """Stops the server and serves the same store again on the same port, as a broker restart would.

        Clients get connection.close 320; those that have not answered within `close_timeout` seconds
        are reset. What is durable comes back (durable exchanges, queues and bindings, persistent
        messages on durable queues, delivered ones marked redelivered); everything else is gone.
        """
        old = self.server
        await self._stop_server(close_timeout)
        broker = core.Broker(
            store=self.store,
            memory_limit=old.broker.memory.limit,
            consumer_timeout=old.broker.consumer_timeout,
            loopback_users=old.broker.users.loopback_users,
        )
        self.server = Server(
            broker,
            host=self.host,
            port=old.port,
            heartbeat=old.heartbeat,
            limits=old.limits,
            data_dir=old.data_dir,
            free_space=old.free_space,
            http_port=old.http_port,
            http_limits=old.http_limits,
            tls_context=old.tls_context,
            tls_port=old.tls_port,
            http_tls=old.http_tls,
            metrics_port=old.metrics_port,
        )
        assert self._nursery is not None, "restart() before run()"
        await self._nursery.start(self._serve, self.server)

    # Virtual hosts

    def vhosts(self) -> list[str]:
        return sorted(self.server.broker.vhosts)

    def add_vhost(self, name: str) -> None:
        """Adds a vhost where guest may do anything (as RabbitMQ's HTTP API grants its creator)."""
        self.server.broker.add_vhost(name, granted_to="guest")

    def delete_vhost(self, name: str) -> None:
        """Deletes the vhost with everything in it; connections to it get connection.close 320."""
        self.server.broker.delete_vhost(name)

    # Inspection

    def queues(self, vhost: str = "/") -> list[QueueInfo]:
        return [_queue_info(queue) for queue in self._vhost(vhost).queues.values()]

    def queue(self, name: str, vhost: str = "/") -> QueueInfo:
        """One queue's state, with its ready and unacked message counts."""
        return _queue_info(self._queue(name, vhost))

    def exchanges(self, vhost: str = "/") -> list[ExchangeInfo]:
        return [
            ExchangeInfo(e.name, e.type, e.durable, e.auto_delete, e.internal, dict(e.arguments))
            for e in self._vhost(vhost).exchanges.values()
        ]

    def bindings(self, vhost: str = "/") -> list[BindingInfo]:
        """The bindings made with queue.bind and exchange.bind (not the default exchange's implicit ones)."""
        found = []
        for exchange in self._vhost(vhost).exchanges.values():
            for binding in exchange.bindings.values():
                destination = binding.destination
                kind = "queue" if isinstance(destination, core.Queue) else "exchange"
                found.append(
                    BindingInfo(exchange.name, destination.name, kind, binding.routing_key, dict(binding.arguments))
                )
        return found

    def messages(self, queue: str, vhost: str = "/") -> list[MessageInfo]:
        """The queue's ready messages in delivery order, left in the queue."""
        found = []
        for entry in self._queue(queue, vhost).peek():
            message = entry.message
            body = message.body
            if body is None:
                body = self.store.load_body(message.message_id)
            properties = BasicProperties.decode(message.properties)
            found.append(MessageInfo(message.exchange, message.routing_key, properties, body, entry.redelivered))
        return found

    # Faults

    def close_connections(self, reply_text: str = CLOSED_TEXT) -> int:
        """Closes every client connection with connection.close 320; returns how many there were."""
        connections = list(self.server.connections)
        for connection in connections:
            connection.close(320, reply_text)
        return len(connections)

    def reset_connections(self) -> int:
        """Drops every client connection with a TCP reset; returns how many there were."""
        connections = list(self.server.connections)
        for connection in connections:
            connection.abort()
        return len(connections)

    def pause(self, queue: str, vhost: str = "/") -> None:
        """Stops deliveries from the queue to its consumers; publishes and basic.get still work."""
        self._queue(queue, vhost).paused = True

    def resume(self, queue: str, vhost: str = "/") -> None:
        """Delivers again what waited while the queue was paused, and what comes after."""
        found = self._queue(queue, vhost)
        found.paused = False
        found.dispatch()

    def _vhost(self, name: str) -> core.VHost:
        vhost = self.server.broker.vhosts.get(name)
        if vhost is None:
            raise LookupError(f"no vhost {name!r}")
        return vhost

    def _queue(self, name: str, vhost: str) -> core.Queue:
        queue = self._vhost(vhost).queues.get(name)
        if queue is None:
            raise LookupError(f"no queue {name!r} in vhost {vhost!r}")
        return queue


def _queue_info(queue: core.Queue) -> QueueInfo:
    return QueueInfo(
        queue.name,
        queue.durable,
        queue.exclusive,
        queue.auto_delete,
        dict(queue.arguments),
        queue.message_count,
        queue.unacked_count,
        len(queue.consumers),
    )


@asynccontextmanager
async def serve_broker(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    heartbeat: int = 60,
    data_dir: str | None = None,
    memory_limit: int | None = None,
    max_message_size: int = Limits.max_message_size,
    handshake_timeout: float = Limits.handshake_timeout,
    disk_free_limit: int | None = None,
    free_space: Callable[[str], int] = disk_free_bytes,
    consumer_timeout: int | None = core.DEFAULT_CONSUMER_TIMEOUT,
    http_port: int | None = None,
    tls_context: ssl.SSLContext | None = None,
    tls_port: int = 0,
    http_tls: bool = False,
    metrics_port: int | None = None,
) -> AsyncIterator[TrioBroker]:
    """Serves a broker in the current trio run while the context is open.

    Storage is in memory unless `data_dir` names a directory for LMDB. Publishers are blocked while
    queued message bodies exceed `memory_limit` bytes, or while `data_dir`'s disk has fewer than
    `disk_free_limit` bytes free as `free_space(data_dir)` reports (no limits by default). A publish
    larger than `max_message_size` is refused; a client has `handshake_timeout` seconds to connect.
    A channel holding a delivery unacknowledged for more than `consumer_timeout` milliseconds
    (None: never) is closed with 406, as RabbitMQ does. With `http_port` (0: any free one) the
    management HTTP API is served, at `http_url`; with `metrics_port`, the Prometheus metrics
    (`/metrics`). With a `tls_context` (`amqpbroker.server.tls.server_context`) AMQPS is served on
    `tls_port` (0: any free one), at `amqps_url`, and with `http_tls` the API over HTTPS. The
    broker's methods are called directly
    (this is its thread); `restart()` is awaited.
    """
    store = open_store(data_dir)
    clean = False
    try:
        limits = Limits(
            max_message_size=max_message_size, handshake_timeout=handshake_timeout, disk_free_limit=disk_free_limit
        )
        broker = TrioBroker(
            store,
            host=host,
            port=port,
            heartbeat=heartbeat,
            memory_limit=memory_limit,
            limits=limits,
            data_dir=data_dir,
            free_space=free_space,
            consumer_timeout=consumer_timeout,
            http_port=http_port,
            tls_context=tls_context,
            tls_port=tls_port,
            http_tls=http_tls,
            metrics_port=metrics_port,
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(broker.run)
            try:
                yield broker
            finally:
                broker.stop()
        clean = True
    finally:
        # A run that ended in an error may not have written everything: the next start must know.
        store.close(clean=clean)
