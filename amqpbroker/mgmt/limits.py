"""`/api/vhost-limits[/{vhost}[/{name}]]` and `/api/user-limits[/{user}[/{name}]]`: vhost and user
limits listed by management users, set (`{"value": N}`) and cleared by administrators, as RabbitMQ
3.10's management API answers. Setting or clearing a limit keeps the others of its vhost or user."""

from __future__ import annotations

from typing import Any

from .. import core
from .api import ADMINISTRATOR, NO_CONTENT, HTTPError, Request, Response, Routes, bad_request, not_found, required
from .api import vhost as visible_vhost
from .api import vhosts as visible_vhosts

routes = Routes()


def _vhost_limits(broker: core.Broker, names: list[str]) -> list[dict[str, Any]]:
    listed = ((name, broker.limits.of_vhost(name)) for name in names)
    return [{"vhost": name, "value": dict(sorted(limits.items()))} for name, limits in listed if limits]


def _user_limits(users: list[core.User]) -> list[dict[str, Any]]:
    return [{"user": user.name, "value": dict(sorted(user.limits.items()))} for user in users if user.limits]


def _existing_vhost(request: Request, broker: core.Broker) -> str:
    name = request.params["vhost"]
    if name not in broker.vhosts:
        raise HTTPError(404, "not_found", "vhost_not_found")
    return name


@routes.get("/api/vhost-limits")
def list_vhost_limits(request: Request, broker: core.Broker) -> list[dict[str, Any]]:
    return _vhost_limits(broker, [found.name for found in visible_vhosts(request, broker)])


@routes.get("/api/vhost-limits/{vhost}")
def get_vhost_limits(request: Request, broker: core.Broker) -> list[dict[str, Any]]:
    return _vhost_limits(broker, [visible_vhost(request, broker).name])


@routes.put("/api/vhost-limits/{vhost}/{name}", access=ADMINISTRATOR)
def put_vhost_limit(request: Request, broker: core.Broker) -> Response:
    name = _existing_vhost(request, broker)
    body = request.json()
    required(body, "value")
    try:
        broker.limits.set_vhost_limit(name, request.params["name"], body["value"])
    except ValueError as error:
        raise bad_request(str(error)) from None
    return NO_CONTENT


@routes.delete("/api/vhost-limits/{vhost}/{name}", access=ADMINISTRATOR)
def delete_vhost_limit(request: Request, broker: core.Broker) -> Response:
    broker.limits.clear_vhost_limit(_existing_vhost(request, broker), request.params["name"])
    return NO_CONTENT


@routes.get("/api/user-limits")
def list_user_limits(request: Request, broker: core.Broker) -> list[dict[str, Any]]:
    return _user_limits(list(broker.users))


@routes.get("/api/user-limits/{user}")
def get_user_limits(request: Request, broker: core.Broker) -> list[dict[str, Any]]:
    user = broker.users.get(request.params["user"])
    if user is None:
        raise not_found()
    return _user_limits([user])


@routes.put("/api/user-limits/{user}/{name}", access=ADMINISTRATOR)
def put_user_limit(request: Request, broker: core.Broker) -> Response:
    body = request.json()
    required(body, "value")
    name = request.params["user"]
    try:
        broker.limits.set_user_limits(name, {request.params["name"]: body["value"]})
    except ValueError as error:
        raise bad_request(str(error)) from None
    except KeyError:
        raise bad_request(["no_such_user", name]) from None
    return NO_CONTENT


@routes.delete("/api/user-limits/{user}/{name}", access=ADMINISTRATOR)
def delete_user_limit(request: Request, broker: core.Broker) -> Response:
    name = request.params["user"]
    if name not in broker.users:
        raise not_found()
    broker.limits.clear_user_limit(name, request.params["name"])
    return NO_CONTENT
