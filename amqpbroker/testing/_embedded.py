"""An embedded broker in a background thread, for tests and scripts, sync or asyncio.

    with Broker(port=0) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))

    async with Broker(port=0) as broker:      # asyncio: starts and stops without blocking the loop
        connection = await aio_pika.connect(broker.url)

The broker runs its own trio loop in its thread; each method below runs there through
`trio.from_thread`, so it may be called from any other thread. In trio code use `serve_broker`.
"""

from __future__ import annotations

import concurrent.futures
import functools
import math
import ssl
import threading
import time
from typing import Any, Callable, Iterator, TypeVar

import trio

from .. import core
from ..server import Limits, Server, single_error
from ..core.history import DEFAULT_LIMIT
from ..server.disk import disk_free_bytes
from ..store import open_store
from ._served import (
    CLOSED_TEXT,
    WAIT_TIMEOUT,
    BindingInfo,
    ConnectionInfo,
    Event,
    ExchangeInfo,
    MessageInfo,
    QueueInfo,
    TrioBroker,
    amqp_url,
    amqps_url,
    http_url,
)

T = TypeVar("T")


class Broker:
    """A broker serving on `host:port` in its own thread while started.

    `port=0` picks a free port. Storage is in memory unless `data_dir` names a directory for LMDB.
    Publishers are blocked while queued message bodies exceed `memory_limit` bytes, or while
    `data_dir`'s disk has fewer than `disk_free_limit` bytes free as `free_space(data_dir)` reports
    (default: no limits). A publish larger than `max_message_size` gets 406 PRECONDITION_FAILED; a
    client that has not opened its connection within `handshake_timeout` seconds is dropped.
    A channel holding a delivery unacknowledged for more than `consumer_timeout` milliseconds
    (default: RabbitMQ's 30 minutes; None: never) is closed with 406. With `http_port` (0: any
    free one; default: not served) the management HTTP API is served too, at `http_url`; with
    `metrics_port` likewise the Prometheus metrics (`/metrics`). With a `tls_context`
    (`amqpbroker.server.tls.server_context`), AMQPS is served on `tls_port` (0: any free one), at
    `amqps_url`, and with `http_tls` the management API over HTTPS. With `clock="manual"` the
    broker's time moves only by `advance(seconds)`; `history()` keeps the newest `history_limit` events.
    """

    def __init__(
        self,
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
    ) -> None:
        self.host = host
        self._clock = clock
        self._history_limit = history_limit
        # Broker events so far, counted in the broker's thread; waiters in other threads wait on it.
        self._events = threading.Condition()
        self._event_count = 0
        self._http_port = http_port
        self._tls = {"tls_context": tls_context, "tls_port": tls_port, "http_tls": http_tls}
        self._metrics_port = metrics_port
        self._port = port
        self._heartbeat = heartbeat
        self._memory_limit = memory_limit
        self._limits = Limits(
            max_message_size=max_message_size, handshake_timeout=handshake_timeout, disk_free_limit=disk_free_limit
        )
        self._free_space = free_space
        self._consumer_timeout = consumer_timeout
        self._data_dir = data_dir
        self._served: TrioBroker | None = None
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        return self._served.port if self._served is not None else self._port

    @property
    def server(self) -> Server:
        """The running `Server` (a restart replaces it); its state may be touched only through `call`."""
        return self._running().server

    @property
    def url(self) -> str:
        """`amqp://guest:guest@HOST:PORT/`: the default vhost '/'."""
        return amqp_url(self.host, self.port)

    def vhost_url(self, vhost: str) -> str:
        return amqp_url(self.host, self.port, vhost)

    @property
    def tls_port(self) -> int | None:
        """The AMQPS port once started; None when AMQPS is not served."""
        return self._running().tls_port

    @property
    def amqps_url(self) -> str:
        """`amqps://guest:guest@HOST:PORT/`: the default vhost '/' over TLS."""
        return amqps_url(self.host, self.tls_port)

    @property
    def http_port(self) -> int | None:
        """The management API's bound port once started; None when it is not served."""
        return self._served.http_port if self._served is not None else self._http_port

    @property
    def http_url(self) -> str:
        """`http://HOST:PORT` (`https://` over TLS), the management API's base (its paths start with `/api/`)."""
        return http_url(self.host, self.http_port, self._tls["http_tls"])

    @property
    def metrics_port(self) -> int | None:
        """The Prometheus metrics' bound port once started; None when they are not served."""
        return self._served.metrics_port if self._served is not None else self._metrics_port

    # Running

    def start(self) -> Broker:
        """Returns once the broker accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the broker is already running")
        store = open_store(self._data_dir)
        self._served = TrioBroker(
            store,
            host=self.host,
            port=self._port,
            heartbeat=self._heartbeat,
            memory_limit=self._memory_limit,
            limits=self._limits,
            data_dir=self._data_dir,
            free_space=self._free_space,
            consumer_timeout=self._consumer_timeout,
            http_port=self._http_port,
            metrics_port=self._metrics_port,
            clock=self._clock,
            history_limit=self._history_limit,
            **self._tls,
        )
        self._served.listen(self._event_happened)
        self._started.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="amqpbroker", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            self._thread.join()
            self._thread = None
            store.close()
            raise self._error
        return self

    def stop(self, *, close_timeout: float = 1.0) -> None:
        """Shuts down and closes the store. Clients get connection.close 320; those that have not
        answered within `close_timeout` seconds are reset."""
        if self._thread is None:
            return
        assert self._served is not None
        stop = functools.partial(self._served.stop, close_timeout=close_timeout)
        try:
            trio.from_thread.run_sync(stop, trio_token=self._token)
        except trio.RunFinishedError:
            pass
        self._thread.join()
        self._thread = None
        # A run that ended in an error may not have written everything: the next start must know.
        self._served.store.close(clean=self._error is None)
        if self._error is not None:
            raise self._error

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Runs `fn(*args)` in the broker's thread, where the broker's state may be touched.

        It blocks the calling thread for that one round trip, from any thread but the broker's:
        also from a trio run of its own (a pytest-trio or anyio test), where `trio.from_thread`
        would refuse to block.
        """
        self._running()
        if threading.current_thread() is self._thread:
            raise RuntimeError("Broker.call from the broker's own thread would wait for itself")
        result: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                result.set_result(fn(*args))
            except BaseException as exc:
                result.set_exception(exc)

        assert self._token is not None
        self._token.run_sync_soon(run)
        return result.result()

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:
            self._error = single_error(exc)
            self._started.set()

    async def _main(self) -> None:
        assert self._served is not None
        self._token = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            await nursery.start(self._served.run)
            self._started.set()

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # asyncio is imported here, not at the top: `import amqpbroker` (and the command line) need not pay for it.

    async def __aenter__(self) -> Broker:
        import asyncio

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "`async with Broker()` is for asyncio code; in trio use `amqpbroker.testing.serve_broker()`"
            ) from None
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc_info: object) -> None:
        import asyncio

        await asyncio.to_thread(self.stop)

    # Virtual hosts, inspection and faults: see TrioBroker for what each does.

    def vhosts(self) -> list[str]:
        return self.call(self._running().vhosts)

    def add_vhost(self, name: str) -> None:
        self.call(self._running().add_vhost, name)

    def delete_vhost(self, name: str) -> None:
        """Deletes the vhost with everything in it; connections to it get connection.close 320."""
        self.call(self._running().delete_vhost, name)

    def set_policy(self, name: str, pattern: str, definition: dict[str, Any], **options: Any) -> None:
        """Sets a policy; `options` (vhost, apply_to, priority, operator) as `TrioBroker.set_policy`'s."""
        self.call(functools.partial(self._running().set_policy, **options), name, pattern, definition)

    def clear_policy(self, name: str, *, vhost: str = "/", operator: bool = False) -> None:
        self.call(functools.partial(self._running().clear_policy, vhost=vhost, operator=operator), name)

    def import_definitions(self, definitions: dict[str, Any], *, vhost: str | None = None) -> None:
        """Imports a definitions document in RabbitMQ's format, or one vhost's part into `vhost`."""
        self.call(functools.partial(self._running().import_definitions, vhost=vhost), definitions)

    def queues(self, vhost: str = "/") -> list[QueueInfo]:
        return self.call(self._running().queues, vhost)

    def queue(self, name: str, vhost: str = "/") -> QueueInfo:
        """One queue's state, with its ready and unacked message counts; LookupError if there is none."""
        return self.call(self._running().queue, name, vhost)

    def exchanges(self, vhost: str = "/") -> list[ExchangeInfo]:
        return self.call(self._running().exchanges, vhost)

    def bindings(self, vhost: str = "/") -> list[BindingInfo]:
        return self.call(self._running().bindings, vhost)

    def messages(self, queue: str, vhost: str = "/") -> list[MessageInfo]:
        """The queue's ready messages in delivery order, left in the queue."""
        return self.call(self._running().messages, queue, vhost)

    def close_connections(self, reply_text: str = CLOSED_TEXT) -> int:
        """Closes every client connection with connection.close 320; returns how many there were."""
        return self.call(self._running().close_connections, reply_text)

    def reset_connections(self) -> int:
        """Drops every client connection with a TCP reset; returns how many there were."""
        return self.call(self._running().reset_connections)

    def connections(self, vhost: str | None = None) -> list[ConnectionInfo]:
        return self.call(self._running().connections, vhost)

    # Network faults: see TrioBroker. Without `vhost` or `connection` they are for the whole
    # broker, new connections included.

    def set_latency(self, seconds: float, *, vhost: str | None = None, connection: str | None = None) -> None:
        self.call(functools.partial(self._running().set_latency, seconds, vhost=vhost, connection=connection))

    def stall(self, *, vhost: str | None = None, connection: str | None = None) -> int:
        return self.call(functools.partial(self._running().stall, vhost=vhost, connection=connection))

    def unstall(self, *, vhost: str | None = None, connection: str | None = None) -> None:
        self.call(functools.partial(self._running().unstall, vhost=vhost, connection=connection))

    def cut(self, *, vhost: str | None = None, connection: str | None = None) -> int:
        """Cuts connections mid-frame; returns once they are reset."""
        cut = functools.partial(self._running().cut, vhost=vhost, connection=connection)
        return trio.from_thread.run(cut, trio_token=self._token)

    def refuse_connections(self, seconds: float = math.inf) -> None:
        self.call(self._running().refuse_connections, seconds)

    def accept_connections(self) -> None:
        self.call(self._running().accept_connections)

    def heal(self) -> None:
        self.call(self._running().heal)

    def restart(self, *, close_timeout: float = 1.0) -> None:
        """Restarts on the same port with the same store; see `TrioBroker.restart`."""
        served = self._running()
        trio.from_thread.run(functools.partial(served.restart, close_timeout=close_timeout), trio_token=self._token)

    # Time and history: see TrioBroker. `advance` and `history` only take a round trip to the
    # broker's thread, so asyncio code calls them directly too; waiting has a variant for each.

    def advance(self, seconds: float, *, heartbeats: bool = False) -> None:
        """Moves the manual clock on by `seconds`, expiring what is due by then in deadline order;
        with `heartbeats`, connections whose clients missed their heartbeats by then are closed."""
        self.call(functools.partial(self._running().advance, seconds, heartbeats=heartbeats))

    def history(self, vhost: str = "/") -> list[Event]:
        return self.call(self._running().history, vhost)

    def count(self, kind: str, queue: str, vhost: str = "/") -> int:
        return self.call(self._running().count, kind, queue, vhost)

    def wait_for(self, predicate: Callable[[], object], timeout: float = WAIT_TIMEOUT) -> None:
        """Blocks until `predicate()` is true, asking it again after each broker event (no polling);
        TimeoutError after `timeout` seconds. From asyncio code use `async_wait_for`."""
        for seen, remaining in self._waits(predicate, timeout):
            self._wait_event(seen, remaining)

    def wait_acked(self, queue: str, n: int, vhost: str = "/", timeout: float = WAIT_TIMEOUT) -> None:
        """Blocks until `n` messages have been acknowledged from `queue` since the broker started."""
        self.wait_for(lambda: self.count("acked", queue, vhost) >= n, timeout)

    async def async_wait_for(self, predicate: Callable[[], object], timeout: float = WAIT_TIMEOUT) -> None:
        """`wait_for` for async code (asyncio, trio, anyio on either): the predicate runs in the
        caller's event loop, which keeps running while a thread waits for the next broker event."""
        for seen, remaining in self._waits(predicate, timeout):
            await _in_thread(self._wait_event, seen, remaining)

    async def async_wait_acked(self, queue: str, n: int, vhost: str = "/", timeout: float = WAIT_TIMEOUT) -> None:
        await self.async_wait_for(lambda: self.count("acked", queue, vhost) >= n, timeout)

    def _waits(self, predicate: Callable[[], object], timeout: float) -> Iterator[tuple[int, float]]:
        """The waits for broker events until `predicate()` is true: for each, the count of events
        seen and the seconds left; TimeoutError once none are left."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self._event_count
            if predicate():
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{predicate!r} still false after {timeout} s")
            yield seen, remaining

    def _wait_event(self, seen: int, timeout: float) -> None:
        """Returns once a broker event came after the `seen`-th, or after `timeout` seconds."""
        with self._events:
            self._events.wait_for(lambda: self._event_count != seen, timeout)

    def _event_happened(self) -> None:
        with self._events:
            self._event_count += 1
            self._events.notify_all()

    def pause(self, queue: str, vhost: str = "/") -> None:
        """Stops deliveries from the queue to its consumers until `resume`."""
        self.call(self._running().pause, queue, vhost)

    def resume(self, queue: str, vhost: str = "/") -> None:
        self.call(self._running().resume, queue, vhost)

    def _running(self) -> TrioBroker:
        if self._thread is None or self._served is None:
            raise RuntimeError("the broker is not running: use `with Broker() as broker:` or start()")
        return self._served


async def _in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Runs `fn(*args)` in a worker thread of the running event loop, trio's or asyncio's."""
    import sniffio

    if sniffio.current_async_library() == "trio":
        return await trio.to_thread.run_sync(fn, *args)
    import asyncio

    return await asyncio.to_thread(fn, *args)
