"""`/api/definitions[/vhost]`: the broker's setup exported (GET) and imported (POST, 204), in
RabbitMQ's definitions format; `rabbitmqadmin export` and `import` use them."""

from __future__ import annotations

from typing import Any

from .. import __version__, core
from ..core.definitions import DefinitionsError, export_definitions, import_definitions
from .api import ADMINISTRATOR, NO_CONTENT, HTTPError, Request, Response, Routes, bad_request, jsonable
from .overview import RABBITMQ_VERSION

routes = Routes()


@routes.get("/api/definitions", ADMINISTRATOR)
def export_all(request: Request, broker: core.Broker) -> dict[str, Any]:
    return {
        "rabbit_version": RABBITMQ_VERSION,
        "rabbitmq_version": RABBITMQ_VERSION,
        "product_name": "amqpbroker",
        "product_version": __version__,
        **jsonable(export_definitions(broker)),
    }


@routes.get("/api/definitions/{vhost}", ADMINISTRATOR)
def export_vhost(request: Request, broker: core.Broker) -> dict[str, Any]:
    if request.params["vhost"] not in broker.vhosts:
        raise bad_request("vhost_not_found")  # RabbitMQ's answer here, where an import's is 404
    return {"rabbit_version": RABBITMQ_VERSION, **jsonable(export_definitions(broker, request.params["vhost"]))}


@routes.post("/api/definitions", ADMINISTRATOR)
def import_all(request: Request, broker: core.Broker) -> Response:
    return _import(request, broker, None)


@routes.post("/api/definitions/{vhost}", ADMINISTRATOR)
def import_vhost(request: Request, broker: core.Broker) -> Response:
    if request.params["vhost"] not in broker.vhosts:
        raise HTTPError(404, "not_found", "vhost_not_found")
    return _import(request, broker, request.params["vhost"])


def _import(request: Request, broker: core.Broker, vhost_name: str | None) -> Response:
    try:
        import_definitions(broker, request.json(), vhost_name, acting_user=request.user.name)
    except DefinitionsError as error:
        raise bad_request(error.reason) from None
    return NO_CONTENT
