"""The broker process: listeners, connection tasks, the alarms' monitors, and graceful shutdown.

`Server.serve()` runs until cancelled or until `shutdown()`; shutdown tells every client
`connection.close` 320 CONNECTION_FORCED, waits briefly for their close-ok, then for the store's
last writes up to `Limits.shutdown_timeout` (StoreError if they failed or did not finish). A timer
closes channels whose deliveries stay unacknowledged longer than the broker's consumer timeout;
another samples the statistics for their rates.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import socket
import ssl
from typing import Callable

import trio

from .. import core, mgmt
from ..core.stats import SAMPLE_INTERVAL
from ..core.users import is_loopback
from ..mgmt.metrics import serve_metrics
from ..store import StoreError
from .amqp import CLOSE_TIMEOUT, AMQPConnection
from .bodies import read_bodies
from .disk import DiskMonitor, disk_free_bytes
from .flow import PublishGate
from .limits import Limits
from .persister import Persister
from .link_definitions import LinkDefinitions
from .timers import run_timers
from .tls import certificate_login, transport_socket

log = logging.getLogger("amqpbroker")

# The longest wait between two checks for overdue deliveries: a delivery times out at most this
# much later than its timeout (RabbitMQ checks once a minute).
CONSUMER_TIMEOUT_CHECK_INTERVAL = 1.0

SHUTDOWN_TEXT = "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"


def single_error(exc: BaseException) -> BaseException:
    """The one error inside (nested) exception groups, as trio's nurseries wrap it, or `exc` itself."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


class ListenError(OSError):
    """A port the server could not listen on, named in the message."""

    def __init__(self, host: str, port: int, cause: OSError) -> None:
        super().__init__(cause.errno, f"cannot listen on {host}:{port}: {cause.strerror or cause}")


EVERY_ADDRESS = ""
"""The host that means every address of this machine, IPv4 and IPv6, on one port: where RabbitMQ
listens by default."""


async def _listen(host: str, port: int) -> list[trio.SocketListener]:
    try:
        if host != EVERY_ADDRESS:
            return await trio.open_tcp_listeners(port, host=host)
        return await _listen_everywhere(port)
    except OSError as exc:
        raise ListenError(host or "*", port, exc) from exc


async def _listen_everywhere(port: int) -> list[trio.SocketListener]:
    """Listens on every IPv4 address, then on every IPv6 address on the same port (the one the
    first got, for port 0), unless this machine has no IPv6. For port 0, a port taken for IPv6
    only is given up for another."""
    for _ in range(3 if port == 0 else 1):
        listeners = await trio.open_tcp_listeners(port, host="0.0.0.0")
        try:
            return listeners + await trio.open_tcp_listeners(listeners[0].socket.getsockname()[1], host="::")
        except OSError as exc:
            if isinstance(exc, socket.gaierror) or exc.errno in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
                return listeners
            for listener in listeners:
                await listener.aclose()
            if exc.errno != errno.EADDRINUSE or port != 0:
                raise
    raise OSError(errno.EADDRINUSE, "no port free for both IPv4 and IPv6")


def _bound(listeners: list[trio.SocketListener], shape: str = "{}") -> str:
    """Where `listeners` listen, for the log: each `address:port`, put in `shape`."""
    where = []
    for listener in listeners:
        host, port = listener.socket.getsockname()[:2]
        where.append(shape.format(f"[{host}]:{port}" if ":" in host else f"{host}:{port}"))
    return " and ".join(where)


def node_name() -> str:
    """This broker's name in the management API, as RabbitMQ's `rabbit@host`."""
    return f"amqpbroker@{socket.gethostname().split('.')[0]}"


async def _every(interval: float, action: Callable[[], None], what: str) -> None:
    """Calls `action` every `interval` seconds; a bug in it costs one turn, not the broker."""
    while True:
        await trio.sleep(interval)
        try:
            action()
        except Exception:
            log.exception("%s failed", what)


class Server:
    """Serves `broker`: AMQP on `port` unless it is None. With a `data_dir`, publishers are blocked
    while its disk has less than `limits.disk_free_limit` bytes free, as `free_space(data_dir)`
    reports. With an `http_port` (0: any free one), the management HTTP API is served on it too;
    with a `metrics_port`, the Prometheus metrics. With a `tls_context`, AMQPS is served on
    `tls_port`, and with `http_tls` the API is HTTPS. With `timers=False` nothing runs the broker's
    timers (TTL, `x-expires`, delayed messages, consumer timeouts): whoever moves its clock does, as
    a test's manual clock. `wrap_stream`, if given, gets each accepted client stream and returns the
    stream to serve it through (a test's network faults), or None to close the client's connection
    at once. Connections keep their heartbeats by `heartbeat_clock`."""

    def __init__(
        self,
        broker: core.Broker | None = None,
        *,
        host: str = EVERY_ADDRESS,
        port: int | None = 5672,
        heartbeat: int = 60,
        limits: Limits = Limits(),
        data_dir: str | None = None,
        free_space: Callable[[str], int] = disk_free_bytes,
        http_port: int | None = None,
        http_limits: mgmt.HTTPLimits = mgmt.HTTPLimits(),
        tls_context: ssl.SSLContext | None = None,
        tls_port: int = 5671,
        http_tls: bool = False,
        metrics_port: int | None = None,
        timers: bool = True,
        wrap_stream: Callable[[trio.SocketStream], trio.abc.Stream | None] | None = None,
        heartbeat_clock: Callable[[], float] = trio.current_time,
    ) -> None:
        if http_tls and tls_context is None:
            raise ValueError("http_tls needs a tls_context")
        self.broker = broker if broker is not None else core.Broker()
        self.host = host
        self.port = port
        self.http_port = http_port
        self.http_limits = http_limits
        self.tls_context = tls_context
        self.tls_port = tls_port if tls_context is not None else None
        self.http_tls = http_tls
        self.metrics_port = metrics_port
        self.heartbeat = heartbeat
        self.limits = limits
        self.data_dir = data_dir
        self.free_space = free_space
        self.timers = timers
        self.wrap_stream = wrap_stream
        self.heartbeat_clock = heartbeat_clock
        self.connections: set[AMQPConnection] = set()
        self._gate = PublishGate(self.broker.memory)
        self._persister = Persister(self.broker)
        self.links = LinkDefinitions(self.broker, node_name())
        """The running shovels and federation links."""
        self._stopped = trio.Event()
        self._all_closed = trio.Event()
        self._all_closed.set()

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listens and serves clients; reports the bound port through `task_status`."""
        listeners = tls_listeners = http_listeners = []
        if self.port is not None:
            listeners = await _listen(self.host, self.port)
            self.port = listeners[0].socket.getsockname()[1]
            log.info("listening on %s", _bound(listeners))
        if self.tls_port is not None:
            tls_listeners = await _listen(self.host, self.tls_port)
            self.tls_port = tls_listeners[0].socket.getsockname()[1]
            log.info("listening for AMQPS on %s", _bound(tls_listeners))
        if self.http_port is not None:
            http_listeners = await _listen(self.host, self.http_port)
            self.http_port = http_listeners[0].socket.getsockname()[1]
            log.info("management API on %s", _bound(http_listeners, f"http{'s' if self.http_tls else ''}://{{}}/api/"))
            if self.http_tls:
                http_listeners = [trio.SSLListener(listener, self.tls_context, https_compatible=True)
                                  for listener in http_listeners]
        metrics_listeners = []
        if self.metrics_port is not None:
            metrics_listeners = await _listen(self.host, self.metrics_port)
            self.metrics_port = metrics_listeners[0].socket.getsockname()[1]
            log.info("Prometheus metrics on %s", _bound(metrics_listeners, "http://{}/metrics"))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._persister.run)
            if self.timers:
                nursery.start_soon(run_timers, self.broker)
            nursery.start_soon(read_bodies, self.broker)
            nursery.start_soon(self._gate.run)
            nursery.start_soon(self.links.run)
            monitor = None
            if self.data_dir is not None and self.limits.disk_free_limit is not None:
                monitor = DiskMonitor(self.data_dir, self.limits.disk_free_limit, self.free_space)
                nursery.start_soon(monitor.run, functools.partial(self._gate.set_alarm, "disk"))
            node = self._node(monitor)
            if http_listeners:
                nursery.start_soon(mgmt.serve, self.broker, http_listeners, node, self.http_limits)
            if metrics_listeners:
                nursery.start_soon(serve_metrics, self.broker, metrics_listeners, node, self.http_limits)
            timeout = self.broker.consumer_timeout
            if self.timers and timeout is not None:
                interval = min(CONSUMER_TIMEOUT_CHECK_INTERVAL, timeout / 1000 / 4)
                nursery.start_soon(
                    _every, interval, self.broker.expire_deliveries, "checking for deliveries past the consumer timeout"
                )
            nursery.start_soon(_every, SAMPLE_INTERVAL, self.broker.sample_stats, "sampling the statistics")
            if listeners:
                nursery.start_soon(trio.serve_listeners, self._handle, listeners)
            if tls_listeners:
                nursery.start_soon(trio.serve_listeners, self._handle_tls, tls_listeners)
            task_status.started(self.port)
            await self._stopped.wait()
            self.links.stop()
            for connection in list(self.connections):
                connection.close(320, SHUTDOWN_TEXT)
            with trio.move_on_after(CLOSE_TIMEOUT):
                await self._all_closed.wait()
            self._persister.give_up_at(trio.current_time() + self.limits.shutdown_timeout)
            nursery.cancel_scope.cancel()
        # What the persister had not taken yet still belongs on disk.
        if not await self._persister.flush():
            raise StoreError("the store did not take the last writes at shutdown; they may not be durable")
        log.info("stopped")

    def _node(self, disk: DiskMonitor | None) -> mgmt.Node:
        name = node_name()
        ports = {"amqp": self.port, "amqp/ssl": self.tls_port, "https" if self.http_tls else "http": self.http_port}
        listeners = [
            {"node": name, "protocol": protocol, "ip_address": self.host or "::", "port": port}
            for protocol, port in ports.items()
            if port is not None
        ]
        return mgmt.Node(
            name,
            listeners,
            alarms=lambda: self._gate.alarms,
            disk_free=lambda: disk.free if disk is not None else None,
            disk_free_limit=disk.limit if disk is not None else None,
            shovels=self.links.shovels,
        )

    @property
    def store_hung(self) -> bool:
        """Shutdown gave up on a store write that is still running in a thread: the store must not
        be closed under it."""
        return self._persister.hung

    def shutdown(self) -> None:
        """Starts a graceful shutdown; `serve()` returns once clients are told."""
        self._stopped.set()

    async def _handle_tls(self, stream: trio.SocketStream) -> None:
        """Serves an AMQPS client once its TLS handshake is done; one that fails or stalls past the
        handshake timeout is dropped, as a plain client that never opens its connection."""
        tls_stream = trio.SSLStream(stream, self.tls_context, server_side=True)
        with trio.move_on_after(self.limits.handshake_timeout) as handshake:
            try:
                await tls_stream.do_handshake()
            except trio.BrokenResourceError as exc:
                log.info("connection %s: TLS handshake failed: %s", _peer(stream), exc.__cause__ or exc)
                await trio.aclose_forcefully(stream)
                return
        if handshake.cancelled_caught:
            log.info("connection %s: no TLS handshake in time", _peer(stream))
            await trio.aclose_forcefully(stream)
            return
        await self._handle(tls_stream, certificate_login(tls_stream.getpeercert()))

    async def _handle(self, stream: trio.SocketStream | trio.SSLStream, login: str | None = None) -> None:
        """`login`: the user the client's TLS certificate names, None without one."""
        if self._stopped.is_set():
            # Accepted while shutting down: the client finds the broker gone and connects again
            # later, instead of opening a connection that shutdown would neither close nor wait for.
            await stream.aclose()
            return
        sock = transport_socket(stream)
        try:
            host, port = sock.getpeername()[:2]
            local_host, local_port = sock.getsockname()[:2]
            peer = f"{host}:{port}"
            addresses = (host, port, local_host, local_port)
        except OSError:
            host, peer = "", "?"  # an unknown address is not loopback
            addresses = ("?", 0, "?", 0)
        else:
            _unpaced_if_local(sock, host, local_host)
        served: trio.abc.Stream = stream
        if self.wrap_stream is not None:
            wrapped = self.wrap_stream(stream)
            if wrapped is None:
                # Closed, not reset: a client reset before it has even looked at its new socket
                # can fail in ways of its own (pika raises ValueError) instead of reporting a
                # failed connection.
                await stream.aclose()
                return
            served = wrapped
        connection = AMQPConnection(
            served, self.broker, peer, self._gate, heartbeat=self.heartbeat, limits=self.limits, address=host,
            addresses=addresses, heartbeat_clock=self.heartbeat_clock, certificate_login=login,
            # Beside the protocol's defaults, connection.start names the cluster (federation records
            # it in x-received-from): the name set for it, else the node's, as RabbitMQ's does.
            server_properties={"cluster_name": self.broker.parameters.cluster_name(node_name())},
        )
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


def _unpaced_if_local(sock: trio.socket.SocketType, host: str, local_host: str) -> None:
    """A client on this host gets Reno as its connection's congestion control, which does not pace
    what it sends. Pacing (BBR's, where it is the system's default) spares the queues of a network
    that a local connection never crosses, and costs the broker's one thread a timer for each
    burst of segments it sends: 0.2 ms of 0.85 per MiB delivered, on the reference machine. The
    connections of other hosts keep the system's choice."""
    option = getattr(socket, "TCP_CONGESTION", None)  # Linux only
    if option is not None and (host == local_host or is_loopback(host)):
        with contextlib.suppress(OSError):  # a socket reset meanwhile keeps what it has
            sock.setsockopt(socket.IPPROTO_TCP, option, b"reno")


def _peer(stream: trio.SocketStream) -> str:
    try:
        host, port = stream.socket.getpeername()[:2]
    except OSError:
        return "?"
    return f"{host}:{port}"
