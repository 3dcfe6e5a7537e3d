"""`/api/parameters[/{component}[/{vhost}[/{name}]]]`: vhost-scoped runtime parameters listed, set
and cleared, as RabbitMQ's management API does. Setting one validates it for its component; the
server starts, restarts or stops what it defines (shovels, federation links) on its own.
`/api/global-parameters[/{name}]`: the global ones (`cluster_name` names the cluster)."""

from __future__ import annotations

import html
from typing import Any

from .. import core
from ..core.parameters import check_value
from .api import (
    CREATED,
    NO_CONTENT,
    POLICYMAKER,
    HTTPError,
    Request,
    Response,
    Routes,
    bad_request,
    check_object_access,
    not_found,
    vhost,
    vhosts,
)

routes = Routes()


def parameter_json(vhost_name: str, component: str, name: str, value: Any) -> dict[str, Any]:
    return {"value": value, "vhost": vhost_name, "component": component, "name": name}


def _listed(broker: core.Broker, component: str | None, names: set[str]) -> list[dict[str, Any]]:
    return [
        parameter_json(vhost_name, kind, name, value)
        for (vhost_name, kind, name), value in sorted(broker.parameters.scoped.items())
        if vhost_name in names and (component is None or kind == component)
    ]


@routes.get("/api/parameters")
def list_all(request: Request, broker: core.Broker) -> list[dict[str, Any]]:
    check_object_access(request, POLICYMAKER)
    return _listed(broker, None, {found.name for found in vhosts(request, broker)})


@routes.get("/api/parameters/{component}")
def list_component(request: Request, broker: core.Broker) -> list[dict[str, Any]]:
    check_object_access(request, POLICYMAKER)
    names = {found.name for found in vhosts(request, broker)}
    return _listed(broker, request.params["component"], names)


@routes.get("/api/parameters/{component}/{vhost}")
def list_vhost(request: Request, broker: core.Broker) -> list[dict[str, Any]]:
    check_object_access(request, POLICYMAKER)
    return _listed(broker, request.params["component"], {vhost(request, broker).name})


@routes.get("/api/parameters/{component}/{vhost}/{name}")
def get(request: Request, broker: core.Broker) -> dict[str, Any]:
    check_object_access(request, POLICYMAKER)
    where, component, name = vhost(request, broker).name, request.params["component"], request.params["name"]
    value = broker.parameters.scoped.get((where, component, name), _MISSING)
    if value is _MISSING:
        raise not_found()
    return parameter_json(where, component, name, value)


@routes.put("/api/parameters/{component}/{vhost}/{name}")
def put(request: Request, broker: core.Broker) -> Response:
    check_object_access(request, POLICYMAKER)
    component, name, vhost_name = request.params["component"], request.params["name"], request.params["vhost"]
    if vhost_name not in broker.vhosts:
        raise HTTPError(404, "not_found", "vhost_not_found")
    body = request.json()
    if "value" not in body:
        raise bad_request("[{key_missing,value}]")
    try:
        check_value(component, name, body["value"])
    except ValueError as error:
        # RabbitMQ's reasons quote Erlang terms such as <<"x">>, which it escapes as HTML.
        raise bad_request(html.escape(str(error), quote=False)) from None
    existed = (vhost_name, component, name) in broker.parameters.scoped
    broker.parameters.set(vhost_name, component, name, body["value"])
    return NO_CONTENT if existed else CREATED


@routes.delete("/api/parameters/{component}/{vhost}/{name}")
def delete(request: Request, broker: core.Broker) -> Response:
    check_object_access(request, POLICYMAKER)
    if not broker.parameters.delete(vhost(request, broker).name, request.params["component"], request.params["name"]):
        raise not_found()
    return NO_CONTENT


_MISSING = object()


def _global_json(name: str, value: Any) -> dict[str, Any]:
    return {"name": name, "value": value}


@routes.get("/api/global-parameters")
def list_global(request: Request, broker: core.Broker) -> list[dict[str, Any]]:
    check_object_access(request, POLICYMAKER)
    return [_global_json(name, value) for name, value in sorted(broker.parameters.global_.items())]


@routes.get("/api/global-parameters/{name}")
def get_global(request: Request, broker: core.Broker) -> dict[str, Any]:
    check_object_access(request, POLICYMAKER)
    name = request.params["name"]
    value = broker.parameters.global_.get(name, _MISSING)
    if value is _MISSING:
        raise not_found()
    return _global_json(name, value)


@routes.put("/api/global-parameters/{name}")
def put_global(request: Request, broker: core.Broker) -> Response:
    check_object_access(request, POLICYMAKER)
    body = request.json()
    if "value" not in body:
        raise bad_request("[{key_missing,value}]")
    existed = request.params["name"] in broker.parameters.global_
    broker.parameters.set_global(request.params["name"], body["value"])
    return NO_CONTENT if existed else CREATED


@routes.delete("/api/global-parameters/{name}")
def delete_global(request: Request, broker: core.Broker) -> Response:
    check_object_access(request, POLICYMAKER)
    if not broker.parameters.delete_global(request.params["name"]):
        raise not_found()
    return NO_CONTENT
