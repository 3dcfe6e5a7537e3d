"""`/api/vhosts[/{vhost}]` and `/api/vhosts/{vhost}/permissions`: virtual hosts listed, created,
described and deleted, as RabbitMQ 3.10's management plugin answers."""

from __future__ import annotations

from typing import Any

from .. import core
from ..core.access_definitions import InvalidDefinitions, parse_tags
from .api import ADMINISTRATOR, CREATED, NO_CONTENT, Request, Response, Routes, bad_request, boolean, vhost
from .users import permission_json

routes = Routes()

_MONITORS = {"monitoring", "administrator"}


def visible_vhosts(broker: core.Broker, user: core.User) -> list[str]:
    """The vhosts `user` sees in listings: all of them for monitoring and administrator users, as in
    RabbitMQ; for others, those they hold a permission in."""
    if _MONITORS.intersection(user.tags):
        return list(broker.vhosts)
    return [name for name in broker.vhosts if broker.permissions.get(name, user.name) is not None]


def vhost_json(broker: core.Broker, found: core.VHost, node: str) -> dict[str, Any]:
    ready = sum(queue.messages_ready for queue in found.queues.values())
    unacked = sum(queue.unacked_count for queue in found.queues.values())
    return {
        "name": found.name,
        "description": found.description,
        "tags": list(found.tags),
        "default_queue_type": "undefined",
        "metadata": {"description": found.description, "tags": list(found.tags)},
        "tracing": found.tracing,
        "cluster_state": {node: "running"},
        "messages": ready + unacked,
        "messages_ready": ready,
        "messages_unacknowledged": unacked,
    }


@routes.get("/api/vhosts")
def list_vhosts(request: Request, broker: core.Broker) -> list[dict[str, Any]]:
    node = request.node.name
    return [vhost_json(broker, broker.vhosts[name], node) for name in visible_vhosts(broker, request.user)]


@routes.get("/api/vhosts/{vhost}", access=ADMINISTRATOR)
def get_vhost(request: Request, broker: core.Broker) -> dict[str, Any]:
    return vhost_json(broker, vhost(request, broker), request.node.name)


@routes.put("/api/vhosts/{vhost}", access=ADMINISTRATOR)
def put_vhost(request: Request, broker: core.Broker) -> Response:
    """Creates the vhost, giving the user who asks every permission in it, or describes it anew:
    description and tags are replaced (absent: empty), tracing is kept unless given."""
    name = request.params["vhost"]
    body = request.json()
    description = body.get("description", "")
    if not isinstance(description, str):
        raise bad_request("description must be a string")
    try:
        tags = parse_tags(body.get("tags", []))
    except InvalidDefinitions as exc:
        raise bad_request(str(exc)) from None
    existing = broker.vhosts.get(name)
    tracing = boolean(body.get("tracing", existing.tracing if existing is not None else False))
    broker.add_vhost(name, granted_to=request.user.name)
    broker.describe_vhost(name, description, tags, tracing)
    return CREATED if existing is None else NO_CONTENT


@routes.delete("/api/vhosts/{vhost}", access=ADMINISTRATOR)
def delete_vhost(request: Request, broker: core.Broker) -> Response:
    """Deletes the vhost with everything in it; its connections are closed with 320."""
    broker.delete_vhost(vhost(request, broker).name)
    return NO_CONTENT


@routes.get("/api/vhosts/{vhost}/permissions", access=ADMINISTRATOR)
def vhost_permissions(request: Request, broker: core.Broker) -> list[dict[str, Any]]:
    name = vhost(request, broker).name
    return [permission_json(permission) for permission in broker.permissions.of_vhost(name)]
