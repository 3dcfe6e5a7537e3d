"""The Prometheus endpoint: `/metrics`, `/metrics/per-object` and `/metrics/detailed` on a listener
of their own (as RabbitMQ's `rabbitmq_prometheus` serves them on port 15692), through the management
API's HTTP server. Like RabbitMQ's, it asks for no credentials.
"""

from __future__ import annotations

import os
import resource
import time
from urllib.parse import parse_qsl, urlsplit

import trio

from .. import __version__, core
from .api import Node, in_turns
from .http import HTTPLimits, HTTPRequest, HTTPResponse, HTTPServer
from .nodes import open_file_descriptors, resident_memory_bytes
from .overview import RABBITMQ_VERSION
from .prometheus import CONTENT_TYPE, NodeStatus, detailed_exposition, exposition, text

_PATHS = ("/metrics", "/metrics/per-object", "/metrics/detailed")
_ALLOW = ("allow", "HEAD, GET, OPTIONS")


class MetricsEndpoint:
    """Answers scrapes of `broker`, served as `node`."""

    def __init__(self, broker: core.Broker, node: Node) -> None:
        self._broker = broker
        self._node = node

    async def handle(self, request: HTTPRequest) -> HTTPResponse:
        target = urlsplit(request.target)
        if target.path not in _PATHS:
            return HTTPResponse(404)
        if request.method == "OPTIONS":
            return HTTPResponse(200, headers=[_ALLOW])
        if request.method == "HEAD":
            return HTTPResponse(204)  # as RabbitMQ answers it
        if request.method != "GET":
            return HTTPResponse(405, headers=[_ALLOW])
        # In a thread: it reads the file system, and a hung disk must hang a scrape, not the broker.
        status = await trio.to_thread.run_sync(self._status, abandon_on_cancel=True)
        if target.path == "/metrics/detailed":
            query = parse_qsl(target.query, keep_blank_values=True)
            # With no `vhost=`, the queues of every vhost; with some, those of the vhosts named.
            vhosts = _values(query, "vhost")
            lines = detailed_exposition(self._broker, status, _values(query, "family") or (), vhosts)
        else:
            lines = exposition(self._broker, status, per_object=target.path == "/metrics/per-object")
        return HTTPResponse(200, text(await in_turns(lines)).encode(), [("content-type", CONTENT_TYPE)])

    def _status(self) -> NodeStatus:
        node = self._node
        return NodeStatus(
            node=node.name,
            version=RABBITMQ_VERSION,
            product_version=__version__,
            start_time=_process_start_time(),
            resident_memory_bytes=resident_memory_bytes(),
            open_fds=open_file_descriptors() or 0,
            max_fds=resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            disk_free_bytes=node.disk_free(),
            disk_free_limit_bytes=node.disk_free_limit,
            disk_alarm="disk" in node.alarms(),
            store_size_bytes=self._broker.store.size_on_disk(),
        )


async def serve_metrics(
    broker: core.Broker, listeners: list[trio.SocketListener], node: Node, limits: HTTPLimits
) -> None:
    """Serves the metrics of `broker` on `listeners` until cancelled."""
    await HTTPServer(MetricsEndpoint(broker, node).handle, limits).serve(listeners)


def _values(query: list[tuple[str, str]], key: str) -> set[str] | None:
    """The values `key` has in `query`; None where it has none."""
    values = [value for name, value in query if name == key]
    return set(values) if values else None


_IMPORTED_AT = time.time()


def _process_start_time() -> float:
    """When the process started, in seconds since the epoch (about when the broker was imported
    where Linux's /proc is not there)."""
    try:
        with open("/proc/self/stat", "rb") as stat:
            # After the command name in parentheses, `starttime` (field 22) is the 20th field.
            ticks = int(stat.read().rpartition(b")")[2].split()[19])
        with open("/proc/stat", "rb") as system:
            boot = next(int(line.split()[1]) for line in system if line.startswith(b"btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return _IMPORTED_AT
    return boot + ticks / os.sysconf("SC_CLK_TCK")
