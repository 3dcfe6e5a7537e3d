"""`/api/shovels[/{vhost}]` and `/api/shovels/vhost/{vhost}/{name}/restart`: the running shovels'
states, as RabbitMQ's shovel management plugin reports them, and a restart.

The shovels run in the server; the API sees them through `Node.shovels` (see `ShovelView`).
"""

from __future__ import annotations

from typing import Any, Iterator, Protocol

from .. import core
from ..core.shovels import ShovelConfig, redact_uri
from .api import NO_CONTENT, Request, Response, Routes, not_found, vhost, vhosts

routes = Routes()


class ShovelStatus(Protocol):
    state: str
    reason: str | None
    timestamp: Any


class Shovel(Protocol):
    vhost: str
    name: str
    node: str
    config: ShovelConfig
    status: ShovelStatus

    def request_restart(self) -> None: ...


class ShovelView(Protocol):
    def __iter__(self) -> Iterator[Shovel]: ...

    def get(self, key: tuple[str, str]) -> Shovel | None:
        """The shovel of a (vhost, name)."""


def shovel_json(shovel: Shovel) -> dict[str, Any]:
    status = shovel.status
    out: dict[str, Any] = {
        "node": shovel.node,
        "timestamp": status.timestamp.strftime("%Y-%m-%d %H:%M:%S"),
        "name": shovel.name,
        "vhost": shovel.vhost,
        "type": "dynamic",
        "state": status.state,
    }
    if status.state == "terminated":
        out["reason"] = status.reason
    elif status.state == "running":
        config = shovel.config
        out.update({
            "src_uri": redact_uri(config.src_uris[0]),
            "src_protocol": "amqp091",
            "dest_protocol": "amqp091",
            "dest_uri": redact_uri(config.dest_uris[0]),
        })
        endpoints = config.endpoints()
        for key in ("src-queue", "src-exchange", "src-exchange-key", "dest-queue", "dest-exchange",
                    "dest-exchange-key"):
            if key in endpoints:
                out[key.replace("-", "_")] = endpoints[key]
    return out


def _visible(request: Request, broker: core.Broker, names: set[str]) -> list[dict[str, Any]]:
    running = request.node.shovels
    if running is None:
        return []
    found = [shovel for shovel in running if shovel.vhost in names]
    return [shovel_json(shovel) for shovel in sorted(found, key=lambda s: (s.vhost, s.name))]


@routes.get("/api/shovels")
def list_shovels(request: Request, broker: core.Broker) -> list[dict[str, Any]]:
    return _visible(request, broker, {found.name for found in vhosts(request, broker)})


@routes.get("/api/shovels/{vhost}")
def list_vhost_shovels(request: Request, broker: core.Broker) -> list[dict[str, Any]]:
    return _visible(request, broker, {vhost(request, broker).name})


@routes.delete("/api/shovels/vhost/{vhost}/{name}/restart")
def restart_shovel(request: Request, broker: core.Broker) -> Response:
    where = vhost(request, broker)
    running = request.node.shovels
    shovel = running.get((where.name, request.params["name"])) if running is not None else None
    if shovel is None:
        raise not_found()
    shovel.request_restart()
    return NO_CONTENT
