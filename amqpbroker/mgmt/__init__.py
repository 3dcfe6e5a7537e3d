"""The management HTTP API, as RabbitMQ's management plugin serves it.

`http` moves bytes (h11 on trio), `api` turns requests into answers (routing, authentication,
errors), and each resource module holds its own routes; `ROUTES` lists them, one line each.
"""

from __future__ import annotations

import trio

from .. import core
from . import overview, users, vhosts
from .api import Api, Node, Routes
from .http import HTTPLimits, HTTPServer

ROUTES = Routes(
    overview.routes,
    users.routes,
    vhosts.routes,
)


async def serve(broker: core.Broker, listeners: list[trio.SocketListener], node: Node, limits: HTTPLimits) -> None:
    """Serves the API for `broker` on `listeners` until cancelled."""
    await HTTPServer(Api(broker, ROUTES, node).handle, limits).serve(listeners)


__all__ = ["Api", "HTTPLimits", "Node", "ROUTES", "Routes", "serve"]
