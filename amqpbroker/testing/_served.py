"""A broker served in a trio run, with the controls a test needs: inspection and fault injection.

`serve_broker` runs a `TrioBroker` in the caller's trio run; `Broker` (in `_embedded`) runs one in a
thread of its own and calls the same methods through `trio.from_thread`. Every method here reads or
changes broker state, so it runs in the trio thread that serves the broker and nowhere else.
"""

from __future__ import annotations

import math
import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import trio

from .. import core
from ..core.definitions import import_definitions
from ..core.history import DEFAULT_LIMIT, History, Record
from ..core.policies import parse_policy
from ..protocol import BasicProperties
from ..server import Limits, Server
from ..server.amqp import AMQPConnection
from ..server.disk import disk_free_bytes
from ..store import Store, open_store
from ._clock import ManualClock, advance
from ._faults import Faults, FaultyStream

CLOSED_TEXT = "CONNECTION_FORCED - Closed via amqpbroker.testing"
WAIT_TIMEOUT = 5.0
"""Seconds `wait_for` and `wait_acked` wait by default before giving up."""


@dataclass(frozen=True)
class QueueInfo:
    name: str
    durable: bool
    exclusive: bool
    auto_delete: bool
    arguments: dict
    message_count: int
    """Messages ready for delivery (a stream's whole log, as RabbitMQ's management API counts it)."""
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


@dataclass(frozen=True)
class ConnectionInfo:
    peer: str
    """The client's address and port, `127.0.0.1:54321`."""
    vhost: str
    """Empty until the client has opened its connection."""
    user: str
    name: str | None
    """The `connection_name` the client gave in its client properties, if any."""


@dataclass(frozen=True)
class Event:
    """One entry of the broker's history: see `TrioBroker.history`."""

    kind: str
    """published, routed, returned, delivered, acked, nacked, rejected, requeued, expired or dead-lettered."""
    exchange: str
    routing_key: str
    queue: str | None
    """The queue it happened in; None for published and returned."""
    properties: BasicProperties
    body: bytes | None
    """None only for a message recovered at a restart whose body the store no longer holds."""
    reason: str | None
    """Why it was dead-lettered (expired, rejected, maxlen, delivery_limit) or returned (NO_ROUTE)."""
    at: float
    """When, in seconds on the broker's clock (with a manual clock: since the broker started)."""


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

    A restart replaces `server` (and its `core.Broker`) and keeps `store`, the host, the port, the
    clock and the history.
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
        clock: str = "real",
        history_limit: int = DEFAULT_LIMIT,
    ) -> None:
        if clock not in ("real", "manual"):
            raise ValueError(f"clock must be 'real' or 'manual', not {clock!r}")
        self.store = store
        self.host = host
        self.clock = ManualClock() if clock == "manual" else None
        """The manual clock that `advance` moves; None on the real clock."""
        clocks = {} if self.clock is None else {"clock": self.clock.monotonic, "wall_clock": self.clock.wall}
        self._history = History(clocks.get("clock", time.monotonic), history_limit)
        self._history.listeners.append(self._event_happened)
        self._event_waited: trio.Event | None = None
        self._faults = Faults()
        self.server = Server(
            core.Broker(
                store=store,
                memory_limit=memory_limit,
                consumer_timeout=consumer_timeout,
                history=self._history,
                **clocks,
            ),
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
            timers=self.clock is None,
            wrap_stream=self._faults.wrap,
            **({} if self.clock is None else {"heartbeat_clock": self.clock.heartbeat_time}),
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
        # A stalled client could not be told, nor be reset: the faults end with the server.
        self._faults.heal()
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
        timers = old.broker.timers
        broker = core.Broker(
            store=self.store,
            memory_limit=old.broker.memory.limit,
            consumer_timeout=old.broker.consumer_timeout,
            loopback_users=old.broker.users.loopback_users,
            clock=timers.clock,
            wall_clock=timers.wall_clock,
            history=self._history,
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
            timers=old.timers,
            wrap_stream=old.wrap_stream,
            heartbeat_clock=old.heartbeat_clock,
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

    # Policies and definitions

    def set_policy(
        self,
        name: str,
        pattern: str,
        definition: dict[str, Any],
        *,
        vhost: str = "/",
        apply_to: str = "all",
        priority: int | float = 0,
        operator: bool = False,
    ) -> None:
        """Sets a policy, or with `operator` an operator policy, as RabbitMQ's HTTP API sets one: it
        applies to the queues and exchanges it matches at once. ValueError with RabbitMQ's reason for
        one it would refuse."""
        self._vhost(vhost)
        body = {"pattern": pattern, "definition": definition, "apply-to": apply_to, "priority": priority}
        self.server.broker.set_policy(parse_policy(vhost, name, body, operator=operator), operator=operator)

    def clear_policy(self, name: str, *, vhost: str = "/", operator: bool = False) -> None:
        """Clears a policy, or with `operator` an operator policy; LookupError if there is none."""
        if not self.server.broker.clear_policy(vhost, name, operator=operator):
            raise LookupError(f"no {'operator policy' if operator else 'policy'} {name!r} in vhost {vhost!r}")

    def import_definitions(self, definitions: dict[str, Any], *, vhost: str | None = None) -> None:
        """Imports a definitions document in RabbitMQ's format (what `rabbitmqctl export_definitions`
        writes), or with `vhost` one vhost's part into that vhost; a vhost it makes gives guest every
        permission, as `add_vhost` does. ValueError (`DefinitionsError`) saying what is wrong in one
        that cannot be imported."""
        if vhost is not None:
            self._vhost(vhost)
        import_definitions(self.server.broker, definitions, vhost, acting_user="guest")

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
            found.append(
                # bytes: a large body is kept as the bytearray it was received into.
                MessageInfo(message.exchange, message.routing_key, properties, bytes(body), entry.redelivered)
            )
        return found

    # Time

    def advance(self, seconds: float, *, heartbeats: bool = False) -> None:
        """Moves the manual clock on by `seconds`: what RabbitMQ would have expired, dead-lettered,
        deleted (`x-expires`), released (delayed messages) or timed out (consumer timeouts) by then
        happens now, in deadline order. Clients see the results as soon as they read them.

        With `heartbeats`, the seconds count for heartbeats too: a connection whose client has sent
        nothing for two heartbeat timeouts by then is closed as RabbitMQ closes it ("missed
        heartbeats from client"). Otherwise heartbeats keep real time, so clients stay connected.
        """
        clock = self.clock
        if clock is None:
            raise RuntimeError("the broker runs on the real clock: start it with clock='manual' to advance it")
        advance(self.server.broker, clock, seconds)
        if heartbeats:
            clock.heartbeats_skipped += seconds
            for connection in list(self.server.connections):
                connection.check_heartbeats()

    # History

    def history(self, vhost: str = "/") -> list[Event]:
        """What happened to messages in `vhost`, oldest first: the newest `history_limit` events of
        the whole broker (10,000 by default), so a long-running broker forgets the oldest."""
        return [self._event(record) for record in self._history.records if record.vhost == vhost]

    def count(self, kind: str, queue: str, vhost: str = "/") -> int:
        """How many events of `kind` happened in `queue` since the broker started, forgotten ones included."""
        return self._history.totals[vhost, queue, kind]

    async def wait_for(self, predicate: Callable[[], object], timeout: float = WAIT_TIMEOUT) -> None:
        """Returns once `predicate()` is true, asking it again after each broker event, without
        polling; TimeoutError after `timeout` seconds."""
        with trio.move_on_after(timeout):
            while not predicate():
                if self._event_waited is None:
                    self._event_waited = trio.Event()
                await self._event_waited.wait()
            return
        raise TimeoutError(f"{predicate!r} still false after {timeout} s")

    async def wait_acked(self, queue: str, n: int, vhost: str = "/", timeout: float = WAIT_TIMEOUT) -> None:
        """Returns once `n` messages have been acknowledged from `queue` since the broker started."""
        await self.wait_for(lambda: self.count("acked", queue, vhost) >= n, timeout)

    def listen(self, listener: Callable[[], None]) -> None:
        """Calls `listener()` after each event, in this thread: how another thread waits for events."""
        self._history.listeners.append(listener)

    def _event_happened(self) -> None:
        waited = self._event_waited
        if waited is not None:
            self._event_waited = None
            waited.set()

    def _event(self, record: Record) -> Event:
        body = record.body
        if body is None:
            try:
                body = self.store.load_body(record.message_id)
            except KeyError:
                pass
        properties = BasicProperties.decode(record.properties)
        if body is not None:
            body = bytes(body)  # a large body is kept as the bytearray it was received into
        return Event(
            record.kind, record.exchange, record.routing_key, record.queue, properties, body, record.reason, record.at
        )

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
        self._faults.changed()
        return len(connections)

    def connections(self, vhost: str | None = None) -> list[ConnectionInfo]:
        """The client connections, or those opened on `vhost`."""
        return [
            ConnectionInfo(
                connection.peer,
                connection.protocol.vhost,
                connection.protocol.username,
                connection.protocol.client_properties.get("connection_name"),
            )
            for connection in self._connections(vhost, None)
        ]

    # Network faults: without `vhost` or `connection`, for the whole broker (new connections too);
    # with them, for the connections opened on `vhost`, or the one whose peer (`127.0.0.1:54321`)
    # or `connection_name` is `connection`.

    def set_latency(self, seconds: float, *, vhost: str | None = None, connection: str | None = None) -> None:
        """Delays every read and write by `seconds` (0: none)."""
        if vhost is None and connection is None:
            self._faults.latency = seconds
        for stream in self._streams(vhost, connection):
            stream.latency = seconds

    def stall(self, *, vhost: str | None = None, connection: str | None = None) -> int:
        """No bytes go either way until `unstall`: the client's heartbeats must notice. Returns how
        many connections are stalled now."""
        streams = self._streams(vhost, connection)
        if vhost is None and connection is None:
            self._faults.stalled = True
        for stream in streams:
            stream.stalled = True
        return len(streams)

    def unstall(self, *, vhost: str | None = None, connection: str | None = None) -> None:
        """Lets bytes flow again; without arguments, on every connection."""
        if vhost is None and connection is None:
            self._faults.stalled = False
        for stream in self._streams(vhost, connection):
            stream.stalled = False
        self._faults.changed()

    async def cut(self, *, vhost: str | None = None, connection: str | None = None) -> int:
        """Cuts connections in the middle of a frame: the client gets the first bytes of a frame,
        then a TCP reset. Returns how many."""
        streams = self._streams(vhost, connection)
        for stream in streams:
            await stream.cut()
        return len(streams)

    def refuse_connections(self, seconds: float = math.inf) -> None:
        """Resets every new connection at once, for `seconds` or until `accept_connections`."""
        self._faults.refusing_until = trio.current_time() + seconds

    def accept_connections(self) -> None:
        self._faults.refusing_until = None

    def heal(self) -> None:
        """Ends every network fault: latency, stalls and refusals."""
        self._faults.heal()

    def _connections(self, vhost: str | None, connection: str | None) -> list[AMQPConnection]:
        return [
            found
            for found in self.server.connections
            if (vhost is None or found.protocol.vhost == vhost)
            and (
                connection is None
                or connection in (found.peer, found.protocol.client_properties.get("connection_name"))
            )
        ]

    def _streams(self, vhost: str | None, connection: str | None) -> list[FaultyStream]:
        return [found.stream for found in self._connections(vhost, connection)]

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
        queue.messages_ready,
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
    clock: str = "real",
    history_limit: int = DEFAULT_LIMIT,
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
    `tls_port` (0: any free one), at `amqps_url`, and with `http_tls` the API over HTTPS. With
    `clock="manual"` the broker's time moves only by `advance(seconds)`. `history()` keeps the newest
    `history_limit` events. The broker's methods are called directly (this is its thread);
    `restart()`, `wait_for` and `wait_acked` are awaited.
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
            clock=clock,
            history_limit=history_limit,
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
