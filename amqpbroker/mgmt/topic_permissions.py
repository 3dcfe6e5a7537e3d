"""`/api/topic-permissions[/{vhost}/{user}[/{exchange}]]`, `/api/users/{user}/topic-permissions` and
`/api/vhosts/{vhost}/topic-permissions`: topic permissions, for administrators only, as RabbitMQ
3.10's management plugin answers.

A user's topic permissions in a vhost are one resource, a list with an item per exchange: a GET
lists them all (404 if there are none), a PUT sets the body's exchange, a DELETE clears them all, or
the path's exchange only. RabbitMQ's GET and PUT take no notice of an exchange in the path, and
neither do we.
"""

from __future__ import annotations

from .. import core
from ..core.access_definitions import set_topic_permission
from .api import ADMINISTRATOR, NO_CONTENT, Request, Response, Routes, bad_request, not_found, strings, vhost
from .users import granted

routes = Routes()


@routes.get("/api/topic-permissions", access=ADMINISTRATOR)
def list_topic_permissions(request: Request, broker: core.Broker) -> list[dict[str, str]]:
    return [permission.as_json() for permission in broker.topic_permissions]


def _granted(request: Request, broker: core.Broker) -> list[core.TopicPermission]:
    """The topic permissions of the path's user in its vhost; 404 if there are none, as when there is
    no such user or vhost."""
    granted = broker.topic_permissions.of(request.params["vhost"], request.params["user"])
    if not granted:
        raise not_found()
    return granted


@routes.get("/api/topic-permissions/{vhost}/{user}", access=ADMINISTRATOR)
@routes.get("/api/topic-permissions/{vhost}/{user}/{exchange}", access=ADMINISTRATOR)
def get_topic_permissions(request: Request, broker: core.Broker) -> list[dict[str, str]]:
    return [permission.as_json() for permission in _granted(request, broker)]


@routes.put("/api/topic-permissions/{vhost}/{user}", access=ADMINISTRATOR)
@routes.put("/api/topic-permissions/{vhost}/{user}/{exchange}", access=ADMINISTRATOR)
def put_topic_permission(request: Request, broker: core.Broker) -> Response:
    """Sets `{"exchange", "write", "read"}`: 201 if the user had no topic permission in the vhost yet,
    204 if they had one, on any exchange."""
    vhost_name, user = request.params["vhost"], request.params["user"]
    if vhost_name not in broker.vhosts or user not in broker.users:
        raise bad_request("vhost_or_user_not_found")
    values = strings(request.json(), "exchange", "write", "read")
    created = not broker.topic_permissions.of(vhost_name, user)
    return granted(created, lambda: set_topic_permission(broker, vhost_name, user, *values))


@routes.delete("/api/topic-permissions/{vhost}/{user}", access=ADMINISTRATOR)
@routes.delete("/api/topic-permissions/{vhost}/{user}/{exchange}", access=ADMINISTRATOR)
def delete_topic_permissions(request: Request, broker: core.Broker) -> Response:
    """Clears them all, or the path's exchange's only (204 whether there was one or not)."""
    _granted(request, broker)
    params = request.params
    broker.topic_permissions.clear(params["vhost"], params["user"], params.get("exchange"))
    return NO_CONTENT


@routes.get("/api/users/{user}/topic-permissions", access=ADMINISTRATOR)
def user_topic_permissions(request: Request, broker: core.Broker) -> list[dict[str, str]]:
    name = request.params["user"]
    if name not in broker.users:
        raise not_found()
    return [permission.as_json() for permission in broker.topic_permissions.of_user(name)]


@routes.get("/api/vhosts/{vhost}/topic-permissions", access=ADMINISTRATOR)
def vhost_topic_permissions(request: Request, broker: core.Broker) -> list[dict[str, str]]:
    name = vhost(request, broker).name
    return [permission.as_json() for permission in broker.topic_permissions.of_vhost(name)]
