"""The `amqpbroker` command: parse flags, configure logging, serve until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import signal
import sys

import trio

from . import __version__, core
from .core.definitions import DefinitionsError, import_definitions
from .protocol import MAX_MESSAGE_SIZE_CEILING
from .server import Limits, Server, single_error
from .store import StoreError, open_store

LOG_LEVELS = ("debug", "info", "warning", "error")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="amqpbroker", description="An AMQP 0-9-1 message broker.")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=_port, default=5672, help="AMQP port, 0 for any free one (default: %(default)s)")
    parser.add_argument(
        "--http-port",
        type=_port,
        default=15672,
        help="management HTTP API port, 0 for any free one (default: %(default)s)",
    )
    parser.add_argument("--no-http", action="store_true", help="do not serve the management HTTP API")
    parser.add_argument(
        "--metrics-port",
        type=_port,
        default=15692,
        help="Prometheus metrics port (/metrics), 0 for any free one (default: %(default)s)",
    )
    parser.add_argument("--no-metrics", action="store_true", help="do not serve the Prometheus metrics")
    parser.add_argument(
        "--data-dir",
        default=default_data_dir(),
        help="where durable exchanges, queues, bindings and persistent messages live (default: %(default)s)",
    )
    parser.add_argument(
        "--in-memory", action="store_true", help="keep everything in memory; nothing survives a restart"
    )
    parser.add_argument(
        "--memory-limit",
        type=_size,
        default=default_memory_limit(),
        metavar="SIZE",
        help="message bytes held in memory above which publishers are blocked, e.g. 512MB or 2GiB "
        "(default: 40%% of physical memory, %(default)s bytes)",
    )
    parser.add_argument(
        "--max-message-size",
        type=_message_size,
        default=Limits.max_message_size,
        metavar="SIZE",
        help="largest message body accepted, at most 512MiB; a larger publish gets 406 PRECONDITION_FAILED "
        "(default: 128MiB)",
    )
    parser.add_argument(
        "--disk-free-limit",
        type=_size,
        default=Limits.disk_free_limit,
        metavar="SIZE",
        help="free space on the data directory's disk below which publishers are blocked (default: 50MB)",
    )
    parser.add_argument(
        "--handshake-timeout",
        type=_seconds,
        default=Limits.handshake_timeout,
        metavar="SECONDS",
        help="time a client has from connecting to connection.open-ok (default: %(default)s)",
    )
    parser.add_argument(
        "--shutdown-timeout",
        type=_seconds,
        default=Limits.shutdown_timeout,
        metavar="SECONDS",
        help="time shutdown waits for the store's last writes before exiting without them (default: %(default)s)",
    )
    parser.add_argument(
        "--consumer-timeout",
        type=_timeout,
        default=core.DEFAULT_CONSUMER_TIMEOUT,
        metavar="MS",
        help="close a channel whose delivery stays unacknowledged longer than this, as RabbitMQ's "
        "consumer_timeout; 0 never does (default: %(default)s, 30 minutes)",
    )
    parser.add_argument(
        "--loopback-users",
        type=_names,
        default=("guest",),
        metavar="NAMES",
        help="comma-separated users who may log in only from a loopback address, as RabbitMQ's "
        "loopback_users; '' for none, letting guest in from anywhere (default: guest)",
    )
    parser.add_argument(
        "--load-definitions",
        metavar="FILE",
        help="import this definitions file (RabbitMQ's format, as GET /api/definitions exports it) at start, "
        "as RabbitMQ's load_definitions; what exists already is kept",
    )
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info", help="(default: %(default)s)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser.parse_args(argv)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 0 and 65535, not {port}")
    return port


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _timeout(text: str) -> int | None:
    """Milliseconds; 0 is None: no timeout."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a number of milliseconds: {text!r}")
    return int(text) or None


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


_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def _size(text: str) -> int:
    number = text.strip().upper()
    digits = number.rstrip("KMGIB")
    unit = number[len(digits):]
    if not digits.isdigit() or unit not in _UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (examples: 1048576, 512MB, 2GiB)")
    return int(digits) * _UNITS[unit]


def _message_size(text: str) -> int:
    size = _size(text)
    if size > MAX_MESSAGE_SIZE_CEILING:
        raise argparse.ArgumentTypeError(f"{text} is more than the largest allowed, 512MiB")
    return size


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text}")
    return seconds


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


def default_memory_limit() -> int:
    """40% of physical memory, RabbitMQ's default high watermark."""
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.4)


def default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "amqpbroker")


GC_THRESHOLDS = (100_000, 50, 100)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    log = logging.getLogger("amqpbroker")
    try:
        store = open_store(None if args.in_memory else args.data_dir)
    except StoreError as exc:
        print(f"amqpbroker: {exc}", file=sys.stderr)
        return 1
    log.info("storage: %s", "in memory" if args.in_memory else args.data_dir)
    # A backlog is many long-lived objects that the collector's default thresholds walk again and
    # again for nothing (full collections of 80 ms with 200k messages queued, stalling every client).
    gc.set_threshold(*GC_THRESHOLDS)
    limits = Limits(
        max_message_size=args.max_message_size,
        handshake_timeout=args.handshake_timeout,
        disk_free_limit=args.disk_free_limit,
        shutdown_timeout=args.shutdown_timeout,
    )
    # Unless the server stopped in order, what it journaled may not all be in the store (the marks
    # of deliveries among it): the next start must then treat the store as after a crash.
    clean = False
    server: Server | None = None
    try:
        broker = core.Broker(
            store=store,
            memory_limit=args.memory_limit,
            consumer_timeout=args.consumer_timeout,
            loopback_users=args.loopback_users,
        )
        if args.load_definitions is not None:
            error = _load_definitions(broker, args.load_definitions)
            if error is not None:
                clean = True  # it never listened, so it delivered nothing
                print(f"amqpbroker: cannot load definitions from {args.load_definitions}: {error}", file=sys.stderr)
                return 1
        data_dir = None if args.in_memory else args.data_dir
        server = Server(
            broker,
            host=args.host,
            port=args.port,
            limits=limits,
            data_dir=data_dir,
            http_port=None if args.no_http else args.http_port,
            metrics_port=None if args.no_metrics else args.metrics_port,
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
