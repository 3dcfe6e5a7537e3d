"""The management HTTP API, as RabbitMQ's management plugin serves it.

`http` moves bytes (h11 on trio), `api` turns requests into answers (routing, authentication, tag
gating, errors, `?columns=`, sorting and pagination), and each resource module holds its own
routes; `ROUTES` lists them, one line each. A resource module looks like:

    routes = Routes()

    @routes.put("/api/things/{vhost}/{name}", access=ADMINISTRATOR)
    def put_thing(request: Request, broker: core.Broker) -> object:
        body = request.json()                  # 400 not_json unless a JSON object
        where = vhost(request, broker)         # the path's vhost, 404 if missing
        ...                                    # core operations; raise HTTPError, not_found(), ...
        return CREATED                         # or NO_CONTENT, Response(...), or JSON-able data (200)
                                               # (a listing: an iterator of it, taken in turns)
"""

from __future__ import annotations

import trio

from .. import core
from . import (
    bindings,
    connections,
    console,
    definitions,
    exchanges,
    limits,
    nodes,
    overview,
    parameters,
    policies,
    queues,
    shovels,
    topic_permissions,
    users,
    vhosts,
)
from .api import Api, Node, Routes
from .http import HTTPLimits, HTTPServer

ROUTES = Routes(
    overview.routes,
    nodes.routes,
    queues.routes,
    exchanges.routes,
    bindings.routes,
    connections.routes,
    users.routes,
    vhosts.routes,
    topic_permissions.routes,
    limits.routes,
    policies.routes,
    definitions.routes,
    console.routes,
    parameters.routes,
    shovels.routes,
)


async def serve(broker: core.Broker, listeners: list[trio.SocketListener], node: Node, limits: HTTPLimits) -> None:
    """Serves the API for `broker` on `listeners` until cancelled."""
    await HTTPServer(Api(broker, ROUTES, node).handle, limits).serve(listeners)


__all__ = ["Api", "HTTPLimits", "Node", "ROUTES", "Routes", "serve"]
