"""`/api/exchanges`: exchanges, including the default one (named `amq.default` in paths, `""` in
JSON) and the `amq.*` ones; declare, delete, and publish a message with `POST .../publish`."""

from __future__ import annotations

import base64
import binascii
import struct
from typing import Any, Iterator

from .. import core
from ..core.permissions import EXCHANGE
from ..core.publishing import publish_unconfirmed
from ..protocol import BasicProperties
from . import message_stats
from .api import (
    CREATED,
    NO_CONTENT,
    Request,
    Routes,
    access,
    bad_request,
    boolean,
    exchange_name,
    integer,
    jsonable,
    not_found,
    required,
    vhost,
    vhosts,
)

routes = Routes()


def exchange_json(exchange: Any, vhost_name: str) -> dict[str, Any]:
    return {
        "name": exchange.name,
        "vhost": vhost_name,
        "type": exchange.type,
        "durable": exchange.durable,
        "auto_delete": exchange.auto_delete,
        "internal": exchange.internal,
        "arguments": jsonable(exchange.arguments),
        **message_stats.of(exchange.stats),
    }


def find_exchange(request: Request, broker: core.Broker, name: str | None = None) -> Any:
    """The exchange `name` (by default the path's `{name}`; `amq.default` is `""`) in the path's
    vhost; 404 if there is none."""
    name = request.params["name"] if name is None else name
    exchange = vhost(request, broker).exchanges.get(exchange_name(name))
    if exchange is None:
        raise not_found()
    return exchange


def _sorted(where: core.VHost) -> Iterator[dict[str, Any]]:
    exchanges = sorted(where.exchanges.items(), key=lambda item: item[0])
    return (exchange_json(exchange, where.name) for _, exchange in exchanges)


@routes.get("/api/exchanges")
def list_exchanges(request: Request, broker: core.Broker) -> Iterator[dict[str, Any]]:
    return (found for where in vhosts(request, broker) for found in _sorted(where))


@routes.get("/api/exchanges/{vhost}")
def vhost_exchanges(request: Request, broker: core.Broker) -> Iterator[dict[str, Any]]:
    return _sorted(vhost(request, broker))


@routes.get("/api/exchanges/{vhost}/{name}")
def get_exchange(request: Request, broker: core.Broker) -> dict[str, Any]:
    exchange = find_exchange(request, broker)
    return {**exchange_json(exchange, request.params["vhost"]), "incoming": [], "outgoing": []}


@routes.put("/api/exchanges/{vhost}/{name}")
def put_exchange(request: Request, broker: core.Broker) -> object:
    """Declares the exchange (type `direct` unless given): 201 if new, 204 if it was there alike."""
    body = request.json()
    where = vhost(request, broker)
    name = exchange_name(request.params["name"])
    existed = name in where.exchanges
    arguments = body.get("arguments") or {}
    if not isinstance(arguments, dict):
        raise bad_request("arguments must be an object")
    access(request, broker, where).declare(EXCHANGE, name, not existed, arguments)
    where.declare_exchange(
        name,
        str(body.get("type", "direct")),
        durable=boolean(body.get("durable", False)),
        auto_delete=boolean(body.get("auto_delete", False)),
        internal=boolean(body.get("internal", False)),
        arguments=arguments,
    )
    return NO_CONTENT if existed else CREATED


@routes.delete("/api/exchanges/{vhost}/{name}")
def delete_exchange(request: Request, broker: core.Broker) -> object:
    """Deletes the exchange; `?if-unused=true` as exchange.delete's flag."""
    where = vhost(request, broker)
    name = exchange_name(request.params["name"])
    if name and not name.startswith("amq.") and name not in where.exchanges:
        raise not_found()
    access(request, broker, where).delete(EXCHANGE, name)
    where.delete_exchange(name, if_unused=boolean(request.query.get("if-unused", "false")))
    return NO_CONTENT


@routes.post("/api/exchanges/{vhost}/{name}/publish")
def publish(request: Request, broker: core.Broker) -> dict[str, bool]:
    """Publishes one message: {routing_key, properties, payload, payload_encoding string|base64}."""
    body = request.json()
    required(body, "routing_key", "properties", "payload", "payload_encoding")
    where = vhost(request, broker)
    routing_key = str(body["routing_key"])
    try:
        exchange = where.get_exchange(exchange_name(request.params["name"]))
        allowed = access(request, broker, where)
        allowed.publish(exchange.name)
        allowed.publish_topic(exchange, routing_key)
    except core.ChannelException as exc:
        # RabbitMQ publishes through a channel of its own, and reports what closed it.
        raise bad_request(f"{exc.reply_code} {exc.reply_text}") from None
    payload = body["payload"]
    if not isinstance(payload, str):
        raise bad_request(["not_string", payload])
    if body["payload_encoding"] == "base64":
        try:
            data = base64.b64decode(payload, validate=True)
        except binascii.Error:
            raise bad_request(["not_base64", payload]) from None
    elif body["payload_encoding"] == "string":
        data = payload.encode()
    else:
        raise bad_request(["payload_encoding", body["payload_encoding"]])
    properties = _properties(body["properties"])
    routed = publish_unconfirmed(where, exchange if exchange.name else None, routing_key, properties, data)
    return {"routed": routed}


# Properties that are numbers, which a tool may send as strings of digits.
_NUMBERS = ("delivery_mode", "priority", "timestamp")


def _properties(given: Any) -> bytes:
    if given in ([], None):
        given = {}
    if not isinstance(given, dict):
        raise bad_request("properties must be an object")
    unknown = set(given) - set(BasicProperties.__slots__)
    if unknown:
        raise bad_request(f"unknown properties: {', '.join(sorted(unknown))}")
    numbers = {name: integer(given[name]) for name in _NUMBERS if name in given}
    try:
        return BasicProperties(**{**given, **numbers}).encode()
    except (TypeError, ValueError, OverflowError, AttributeError, struct.error) as exc:
        raise bad_request(f"invalid properties: {exc}") from None
