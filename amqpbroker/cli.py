"""The `amqpbroker` command: read the settings, configure logging, serve until SIGINT or SIGTERM;
`amqpbroker ctl ...` runs the command-line client of a running broker instead (`ctl`)."""

from __future__ import annotations

import ctypes
import gc
import json
import logging
import signal
import ssl
import sys

import trio

from . import config, core, ctl
from .core.definitions import DefinitionsError, import_definitions
from .server import Limits, Server, single_error
from .server.tls import server_context
from .store import StoreError, open_store


async def _serve(server: Server) -> None:
    # The receiver outlives the nursery: if serving fails, the task reading it is cancelled first.
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_stop_on_signal, signals, server)
            await server.serve()
            nursery.cancel_scope.cancel()


async def _stop_on_signal(signals, server: Server) -> None:
    async for signum in signals:
        logging.getLogger("amqpbroker").info("received %s, shutting down", signal.Signals(signum).name)
        server.shutdown()
        return


GC_THRESHOLDS = (5_000, 1_000, 100)
# glibc's mallopt parameters and what the broker sets them to: blocks up to 4 MiB (large bodies)
# come from the heap, and up to 64 MiB freed at its top stay there rather than go back to the system.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 4 * 1024 * 1024
_TRIM_THRESHOLD = 64 * 1024 * 1024


def _keep_freed_memory() -> None:
    """Large bodies are allocated and freed at a high rate (1 MiB ones: a thousand a second). By
    default glibc hands freed heap memory back to the system once 2 MiB of it lie at the heap's
    top, and the next body faults every page in again: 7% of the broker's time with 1 MiB bodies.
    Nothing where the C library is not glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
    mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["ctl"]:
        return ctl.main(argv[1:])
    try:
        settings = config.load(argv)
        tls_context = _tls_context(settings)
    except config.ConfigError as exc:
        print(f"amqpbroker: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings["log.level"].upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    log = logging.getLogger("amqpbroker")
    data_dir = None if settings["storage.in_memory"] else settings["storage.data_dir"]
    try:
        store = open_store(data_dir)
    except StoreError as exc:
        print(f"amqpbroker: {exc}", file=sys.stderr)
        return 1
    log.info("storage: %s", data_dir or "in memory")
    # A backlog is many long-lived objects that the collector's default thresholds walk again and
    # again for nothing (full collections of 80 ms with 200k messages queued, stalling every client):
    # the older generations are collected rarely. The youngest is collected often, for a collection
    # walks every object allocated since the last one, two per queued message (its Message and
    # QueueEntry): 100k of them stalled the event loop 12-30 ms, 5k take under a millisecond.
    gc.set_threshold(*GC_THRESHOLDS)
    _keep_freed_memory()
    limits = Limits(
        max_message_size=settings["limits.max_message_size"],
        handshake_timeout=settings["limits.handshake_timeout"],
        disk_free_limit=settings["limits.disk_free"],
        shutdown_timeout=settings["limits.shutdown_timeout"],
    )
    # Unless the server stopped in order, what it journaled may not all be in the store (the marks
    # of deliveries among it): the next start must then treat the store as after a crash.
    clean = False
    server: Server | None = None
    try:
        broker = core.Broker(
            store=store,
            memory_limit=settings["limits.memory"],
            consumer_timeout=settings["limits.consumer_timeout"],
            loopback_users=settings["auth.loopback_users"],
            defaults=settings["definitions.load"] is None,
        )
        if settings["definitions.load"] is not None:
            error = _load_definitions(broker, settings["definitions.load"])
            if error is not None:
                clean = True  # it never listened, so it delivered nothing
                print(f"amqpbroker: cannot load definitions from {settings['definitions.load']}: {error}",
                      file=sys.stderr)
                return 1
            if not any(broker.users):
                log.warning("no user can log in: the broker has none, and %s defines none",
                            settings["definitions.load"])
        server = Server(
            broker,
            host=settings["amqp.host"],
            port=settings["amqp.port"] if settings["amqp.enabled"] else None,
            limits=limits,
            data_dir=data_dir,
            http_port=settings["http.port"] if settings["http.enabled"] else None,
            tls_context=tls_context,
            tls_port=settings["tls.port"],
            http_tls=settings["http.tls"],
            metrics_port=settings["metrics.port"] if settings["metrics.enabled"] else None,
        )
        trio.run(_serve, server)
        clean = True
    except (StoreError, OSError, BaseExceptionGroup) as raised:
        exc = single_error(raised)
        if isinstance(exc, StoreError):
            print(f"amqpbroker: {exc}", file=sys.stderr)
        elif isinstance(exc, OSError):
            clean = True  # it never listened, so it delivered nothing
            # A ListenError names the port, AMQP's or the management API's.
            print(f"amqpbroker: {exc.strerror or exc}", file=sys.stderr)
        else:
            raise
        return 1
    finally:
        # A store write still running in a thread shutdown gave up on: closing the store under it is
        # not safe; the interpreter exits without waiting for that thread (a daemon).
        if server is None or not server.store_hung:
            store.close(clean=clean)
    return 0


def _load_definitions(broker: core.Broker, path: str) -> str | None:
    """Imports a definitions file; what is wrong with it, or None."""
    try:
        with open(path, encoding="utf-8") as file:
            definitions = json.load(file)
    except OSError as exc:
        return exc.strerror or str(exc)
    except ValueError as exc:
        return f"not JSON: {exc}"
    try:
        import_definitions(broker, definitions)
    except DefinitionsError as exc:
        return exc.reason
    return None


def _tls_context(settings: config.Settings) -> ssl.SSLContext | None:
    """The server's TLS context when a certificate is configured; ConfigError if its files are unusable."""
    if settings["tls.certfile"] is None:
        return None
    try:
        return server_context(
            settings["tls.certfile"], settings["tls.keyfile"], settings["tls.cafile"], settings["tls.verify_peer"]
        )
    except (OSError, ssl.SSLError) as exc:
        raise config.ConfigError(f"tls: cannot load the certificate, key or CA files: {exc}") from None
