"""`/api/overview`, `/api/cluster-name` and `/api/whoami`: the broker at a glance, and who is asking."""

from __future__ import annotations

import sys
from typing import Any

from .. import __version__, core
from ..core.exchanges import EXCHANGE_TYPES
from ..core.parameters import CLUSTER_NAME
from ..core.vhost import PLUGIN_EXCHANGE_TYPES
from . import message_stats
from .api import ADMINISTRATOR, MONITORING, NO_CONTENT, Node, Request, Response, Routes, bad_request, vhosts

routes = Routes()

RABBITMQ_VERSION = "3.10.8"
"""The RabbitMQ release whose management API this one answers as; tools read it to pick features."""

_EXCHANGE_DESCRIPTIONS = {
    "direct": "AMQP direct exchange, as per the AMQP specification",
    "fanout": "AMQP fanout exchange, as per the AMQP specification",
    "headers": "AMQP headers exchange, as per the AMQP specification",
    "topic": "AMQP topic exchange, as per the AMQP specification",
    "x-delayed-message": "Delayed Message Exchange.",
    "x-message-deduplication": "Message Deduplication Exchange.",
}


@routes.get("/api/overview")
def overview(request: Request, broker: core.Broker) -> dict[str, Any]:
    node = request.node
    # Monitoring users see the whole broker's totals, as in RabbitMQ; others those of their vhosts.
    if {MONITORING, ADMINISTRATOR}.intersection(request.user.tags):
        visible = list(broker.vhosts.values())
    else:
        visible = vhosts(request, broker)
    return {
        "management_version": RABBITMQ_VERSION,
        "rates_mode": "basic",
        "exchange_types": exchange_types(),
        "product_version": __version__,
        "product_name": "amqpbroker",
        "rabbitmq_version": RABBITMQ_VERSION,
        "cluster_name": broker.parameters.cluster_name(node.name),
        "erlang_version": f"Python {sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}",
        "disable_stats": False,
        "enable_queue_totals": False,
        "message_stats": message_stats.overview(broker),
        "churn_rates": message_stats.churn(broker),
        "queue_totals": queue_totals(visible),
        "object_totals": object_totals(broker, visible),
        "statistics_db_event_queue": 0,
        "node": node.name,
        "listeners": node.listeners,
        # Tools find the node's name here.
        "contexts": [{**context, "node": node.name, "ssl_opts": []} for context in contexts(node)],
    }


def contexts(node: Node) -> list[dict[str, Any]]:
    """The management API's listeners, in RabbitMQ's shape (its port is a string there)."""
    return [
        {"description": "amqpbroker management", "path": "/", "port": str(listener["port"])}
        for listener in node.listeners
        if listener["protocol"] in ("http", "https")
    ]


def exchange_types() -> list[dict[str, Any]]:
    return [
        {"name": name, "description": _EXCHANGE_DESCRIPTIONS.get(name, ""), "enabled": True}
        for name in sorted(EXCHANGE_TYPES + PLUGIN_EXCHANGE_TYPES)
    ]


def queue_totals(vhosts: list[core.VHost]) -> dict[str, int]:
    ready = unacked = 0
    for vhost in vhosts:
        for queue in vhost.queues.values():
            ready += queue.messages_ready
            unacked += queue.unacked_count
    return {"messages": ready + unacked, "messages_ready": ready, "messages_unacknowledged": unacked}


def object_totals(broker: core.Broker, vhosts: list[core.VHost]) -> dict[str, int]:
    connections = broker.connections
    return {
        "channels": sum(len(connection.sessions) for connection in connections),
        "connections": len(connections),
        "consumers": sum(len(queue.consumers) for vhost in vhosts for queue in vhost.queues.values()),
        "exchanges": sum(len(vhost.exchanges) for vhost in vhosts),
        "queues": sum(len(vhost.queues) for vhost in vhosts),
    }


@routes.get("/api/cluster-name")
def cluster_name(request: Request, broker: core.Broker) -> dict[str, Any]:
    return {"name": broker.parameters.cluster_name(request.node.name)}


@routes.put("/api/cluster-name", access=ADMINISTRATOR)
def set_cluster_name(request: Request, broker: core.Broker) -> Response:
    body = request.json()
    if "name" not in body:
        raise bad_request("[{key_missing,name}]")
    if not isinstance(body["name"], str):
        raise bad_request("name must be a string")
    broker.parameters.set_global(CLUSTER_NAME, body["name"])
    return NO_CONTENT


@routes.get("/api/whoami")
def whoami(request: Request, broker: core.Broker) -> dict[str, Any]:
    return {"name": request.user.name, "tags": list(request.user.tags)}
