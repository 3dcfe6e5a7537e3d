"""`/api/users[/{user}[/permissions]]` and `/api/permissions[/{vhost}/{user}]`: users and their
permissions, for administrators only, as RabbitMQ 3.10's management plugin answers."""

from __future__ import annotations

from typing import Any, Callable

from .. import core
from ..core.access_definitions import InvalidDefinitions, save_user, set_permission, user_from_definition
from .api import ADMINISTRATOR, CREATED, NO_CONTENT, Request, Response, Routes, bad_request, not_found, strings

routes = Routes()


def user_json(user: core.User) -> dict[str, Any]:
    return {
        "name": user.name,
        "password_hash": user.password_hash,
        "hashing_algorithm": user.hashing_algorithm,
        "tags": list(user.tags),
        "limits": dict(sorted(user.limits.items())),
    }


def permission_json(permission: core.Permission) -> dict[str, str]:
    return {
        "user": permission.user,
        "vhost": permission.vhost,
        "configure": permission.configure,
        "write": permission.write,
        "read": permission.read,
    }


def _user(broker: core.Broker, name: str) -> core.User:
    user = broker.users.get(name)
    if user is None:
        raise not_found()
    return user


@routes.get("/api/users", access=ADMINISTRATOR)
def list_users(request: Request, broker: core.Broker) -> list[dict[str, Any]]:
    return [user_json(user) for user in broker.users]


@routes.get("/api/users/without-permissions", access=ADMINISTRATOR)
def users_without_permissions(request: Request, broker: core.Broker) -> list[dict[str, Any]]:
    granted = {permission.user for permission in broker.permissions}
    return [user_json(user) for user in broker.users if user.name not in granted]


@routes.post("/api/users/bulk-delete", access=ADMINISTRATOR)
def bulk_delete_users(request: Request, broker: core.Broker) -> Response:
    names = request.json().get("users")
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise bad_request("users must be a list of names")
    for name in names:
        broker.delete_user(name)
    return NO_CONTENT


@routes.get("/api/users/{user}", access=ADMINISTRATOR)
def get_user(request: Request, broker: core.Broker) -> dict[str, Any]:
    return user_json(_user(broker, request.params["user"]))


@routes.put("/api/users/{user}", access=ADMINISTRATOR)
def put_user(request: Request, broker: core.Broker) -> Response:
    """Creates or replaces a user: `tags`, and `password` or `password_hash` (neither: no password);
    `limits` set those limits, and a replaced user keeps the others."""
    name = request.params["user"]
    try:
        user = user_from_definition(name, request.json())
    except InvalidDefinitions as exc:
        raise bad_request(str(exc)) from None
    created = name not in broker.users
    save_user(broker, user)
    return CREATED if created else NO_CONTENT


@routes.delete("/api/users/{user}", access=ADMINISTRATOR)
def delete_user(request: Request, broker: core.Broker) -> Response:
    """Deletes the user and their permissions; their connections are closed with 320."""
    if not broker.delete_user(request.params["user"]):
        raise not_found()
    return NO_CONTENT


@routes.get("/api/users/{user}/permissions", access=ADMINISTRATOR)
def user_permissions(request: Request, broker: core.Broker) -> list[dict[str, str]]:
    name = _user(broker, request.params["user"]).name
    return [permission_json(permission) for permission in broker.permissions.of_user(name)]


@routes.get("/api/permissions", access=ADMINISTRATOR)
def list_permissions(request: Request, broker: core.Broker) -> list[dict[str, str]]:
    return [permission_json(permission) for permission in broker.permissions]


def _permission(request: Request, broker: core.Broker) -> core.Permission:
    permission = broker.permissions.get(request.params["vhost"], request.params["user"])
    if permission is None:
        raise not_found()
    return permission


@routes.get("/api/permissions/{vhost}/{user}", access=ADMINISTRATOR)
def get_permission(request: Request, broker: core.Broker) -> dict[str, str]:
    return permission_json(_permission(request, broker))


@routes.put("/api/permissions/{vhost}/{user}", access=ADMINISTRATOR)
def put_permission(request: Request, broker: core.Broker) -> Response:
    vhost, user = request.params["vhost"], request.params["user"]
    expressions = strings(request.json(), "configure", "write", "read")
    if vhost not in broker.vhosts or user not in broker.users:
        raise bad_request("vhost_or_user_not_found")
    created = broker.permissions.get(vhost, user) is None
    return granted(created, lambda: set_permission(broker, vhost, user, *expressions))


def granted(created: bool, grant: Callable[[], None]) -> Response:
    """The answer to a PUT of a permission or a topic permission: `grant` done (201 if `created`,
    else 204), or refused with its reason (400)."""
    try:
        grant()
    except InvalidDefinitions as exc:
        raise bad_request(str(exc)) from None
    return CREATED if created else NO_CONTENT


@routes.delete("/api/permissions/{vhost}/{user}", access=ADMINISTRATOR)
def delete_permission(request: Request, broker: core.Broker) -> Response:
    permission = _permission(request, broker)
    broker.permissions.clear(permission.vhost, permission.user)
    return NO_CONTENT
