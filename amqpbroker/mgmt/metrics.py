"""The Prometheus endpoint: `/metrics` and `/metrics/per-object` on a listener of their own (as
RabbitMQ's `rabbitmq_prometheus` serves them on port 15692), through the management API's HTTP
server. Like RabbitMQ's, it asks for no credentials.
"""

from __future__ import annotations

from typing import Callable
from urllib.parse import urlsplit

import trio

from .. import core
from .http import HTTPLimits, HTTPRequest, HTTPResponse, HTTPServer
from .prometheus import CONTENT_TYPE, NodeStatus, render

_PATHS = {"/metrics": False, "/metrics/per-object": True}
_ALLOW = ("allow", "HEAD, GET, OPTIONS")


class MetricsEndpoint:
    """Answers scrapes of `broker`; `status` reads the process's state (in a thread: a hung disk
    must hang a scrape, not the broker)."""

    def __init__(self, broker: core.Broker, status: Callable[[], NodeStatus]) -> None:
        self._broker = broker
        self._status = status

    async def handle(self, request: HTTPRequest) -> HTTPResponse:
        per_object = _PATHS.get(urlsplit(request.target).path)
        if per_object is None:
            return HTTPResponse(404)
        if request.method == "OPTIONS":
            return HTTPResponse(200, headers=[_ALLOW])
        if request.method == "HEAD":
            return HTTPResponse(204)  # as RabbitMQ answers it
        if request.method != "GET":
            return HTTPResponse(405, headers=[_ALLOW])
        node = await trio.to_thread.run_sync(self._status, abandon_on_cancel=True)
        text = render(self._broker, node, per_object=per_object)
        return HTTPResponse(200, text.encode(), [("content-type", CONTENT_TYPE)])


async def serve_metrics(
    broker: core.Broker, listeners: list[trio.SocketListener], status: Callable[[], NodeStatus], limits: HTTPLimits
) -> None:
    """Serves the metrics of `broker` on `listeners` until cancelled."""
    await HTTPServer(MetricsEndpoint(broker, status).handle, limits).serve(listeners)
