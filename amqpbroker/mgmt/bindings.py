"""`/api/bindings`: bindings as RabbitMQ lists them, the default exchange's implicit ones included;
created with POST (201 and a Location naming its properties key) and deleted by that key."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any, Iterator
from urllib.parse import quote, quote_plus, unquote_plus

from .. import core
from ..core.exchanges import Binding
from ..core.permissions import EXCHANGE, QUEUE
from .api import NO_CONTENT, Request, Response, Routes, access, bad_request, jsonable, not_found, vhost, vhosts
from .exchanges import find_exchange
from .queues import find_queue

routes = Routes()

_KINDS = {"q": "queue", "e": "exchange"}


def properties_key(routing_key: str, arguments: dict) -> str:
    """What names one binding among those between the same two ends, as RabbitMQ writes it: its
    routing key form-encoded (`~` too), then `~` and a hash of its arguments if it has any; `~`
    alone for an empty key without arguments."""
    key = quote_plus(routing_key, safe="").replace("~", "%7E")
    digest = _digest(arguments)
    return f"{key}~{digest}" if digest else key or "~"


def _digest(arguments: dict) -> str:
    if not arguments:
        return ""
    canonical = json.dumps(jsonable(arguments), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()[:4]).rstrip(b"=").decode()


def _named(props: str, routing_key: str, arguments: dict) -> bool:
    """Whether `props`, a properties key as a path gave it (decoded once, so its routing key may or
    may not be encoded still, as tools differ), names this binding."""
    key, _, digest = props.partition("~")
    return unquote_plus(key) == routing_key and digest == _digest(arguments)


def _json(
    vhost_name: str, source: str, destination: str, kind: str, routing_key: str, arguments: dict
) -> dict[str, Any]:
    return {
        "source": source,
        "vhost": vhost_name,
        "destination": destination,
        "destination_type": kind,
        "routing_key": routing_key,
        "arguments": jsonable(arguments),
        "properties_key": properties_key(routing_key, arguments),
    }


def _kind(destination: Any) -> str:
    return QUEUE if isinstance(destination, core.Queue) else EXCHANGE


def _binding_json(vhost_name: str, binding: Binding) -> dict[str, Any]:
    kind = _kind(binding.destination)
    source, destination = binding.source.name, binding.destination.name
    return _json(vhost_name, source, destination, kind, binding.routing_key, binding.arguments)


def _vhost_bindings(where: core.VHost) -> Iterator[dict[str, Any]]:
    """The default exchange's bindings (one per queue, by its name), then every other, in order."""
    for name in sorted(where.queues):
        yield _json(where.name, "", name, "queue", name, {})
    found = [_binding_json(where.name, binding) for exchange in where.exchanges.values()
             for binding in exchange.bindings.values()]
    yield from sorted(found, key=lambda b: (b["source"], b["destination_type"], b["destination"], b["properties_key"]))


@routes.get("/api/bindings")
def list_bindings(request: Request, broker: core.Broker) -> Iterator[dict[str, Any]]:
    return (found for where in vhosts(request, broker) for found in _vhost_bindings(where))


@routes.get("/api/bindings/{vhost}")
def vhost_bindings(request: Request, broker: core.Broker) -> Iterator[dict[str, Any]]:
    return _vhost_bindings(vhost(request, broker))


@routes.get("/api/queues/{vhost}/{name}/bindings")
def queue_bindings(request: Request, broker: core.Broker) -> list[dict[str, Any]]:
    queue = find_queue(request, broker)
    return [b for b in _vhost_bindings(vhost(request, broker))
            if b["destination_type"] == "queue" and b["destination"] == queue.name]


@routes.get("/api/exchanges/{vhost}/{name}/bindings/source")
def exchange_source_bindings(request: Request, broker: core.Broker) -> list[dict[str, Any]]:
    exchange = find_exchange(request, broker)
    return [b for b in vhost_bindings(request, broker) if b["source"] == exchange.name]


@routes.get("/api/exchanges/{vhost}/{name}/bindings/destination")
def exchange_destination_bindings(request: Request, broker: core.Broker) -> list[dict[str, Any]]:
    exchange = find_exchange(request, broker)
    return [b for b in vhost_bindings(request, broker)
            if b["destination_type"] == "exchange" and b["destination"] == exchange.name]


def _between(request: Request, broker: core.Broker) -> tuple[core.VHost, Any, Any]:
    """The vhost, the source exchange and the destination the path names; 404 if one is missing."""
    params = request.params
    kind = _KINDS.get(params["kind"])
    if kind is None:
        raise not_found()
    where = vhost(request, broker)
    source = find_exchange(request, broker, params["source"])
    if kind == "queue":
        destination = find_queue(request, broker, params["destination"])
    else:
        destination = find_exchange(request, broker, params["destination"])
    return where, source, destination


def _bindings_between(where: core.VHost, source: Any, destination: Any) -> list[dict[str, Any]]:
    kind = _kind(destination)
    return [b for b in _vhost_bindings(where)
            if b["source"] == source.name and b["destination_type"] == kind and b["destination"] == destination.name]


@routes.get("/api/bindings/{vhost}/e/{source}/{kind}/{destination}")
def bindings_between(request: Request, broker: core.Broker) -> list[dict[str, Any]]:
    return _bindings_between(*_between(request, broker))


@routes.post("/api/bindings/{vhost}/e/{source}/{kind}/{destination}")
def add_binding(request: Request, broker: core.Broker) -> Response:
    """Binds with {routing_key, arguments}: 201, with the new binding's path in Location."""
    where, source, destination = _between(request, broker)
    body = request.json()
    routing_key = str(body.get("routing_key", ""))
    arguments = body.get("arguments") or {}
    if not isinstance(arguments, dict):
        raise bad_request("arguments must be an object")
    allowed = access(request, broker, where)
    allowed.bind(_kind(destination), destination.name, source.name)
    allowed.bind_topic(source, routing_key)
    # Binding to the default exchange is refused, as over AMQP.
    where.bind(destination, source.name, routing_key, arguments)
    location = f"{quote(destination.name, safe='')}/{quote(properties_key(routing_key, arguments), safe='')}"
    return Response(201, None, [("location", location)])


@routes.get("/api/bindings/{vhost}/e/{source}/{kind}/{destination}/{props}")
def get_binding(request: Request, broker: core.Broker) -> dict[str, Any]:
    for found in _bindings_between(*_between(request, broker)):
        if _named(request.params["props"], found["routing_key"], found["arguments"]):
            return found
    raise not_found()


@routes.delete("/api/bindings/{vhost}/e/{source}/{kind}/{destination}/{props}")
def delete_binding(request: Request, broker: core.Broker) -> Response:
    where, source, destination = _between(request, broker)
    allowed = access(request, broker, where)
    allowed.bind(_kind(destination), destination.name, source.name)
    for binding in list(source.bindings.values()):
        props = request.params["props"]
        if binding.destination is destination and _named(props, binding.routing_key, binding.arguments):
            allowed.bind_topic(source, binding.routing_key)
            if isinstance(destination, core.Queue):
                # The management API may unbind an exclusive queue, as its owner could.
                where.unbind(destination.name, source.name, binding.routing_key, binding.arguments,
                             destination.exclusive_owner)
            else:
                where.unbind_exchange(destination.name, source.name, binding.routing_key, binding.arguments)
            return NO_CONTENT
    raise not_found()
