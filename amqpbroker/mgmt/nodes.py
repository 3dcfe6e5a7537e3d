"""`/api/nodes`, the health checks, `/api/aliveness-test` and `/api/feature-flags`: is this
broker well, what does it use, and what can it do. One node: this process."""

from __future__ import annotations

import os
import resource
import time
from typing import Any

from .. import core
from ..core.publishing import publish_unconfirmed
from ..protocol import BasicProperties
from . import message_stats
from .api import ADMINISTRATOR, MONITORING, NO_CONTENT, Node, Request, Response, Routes, bad_request, not_found, vhost
from .overview import contexts, exchange_types

routes = Routes()

ALIVENESS_QUEUE = "aliveness-test"


def resident_memory_bytes() -> int:
    """This process's resident set size (Linux's /proc; elsewhere its peak, from getrusage)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def physical_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def open_file_descriptors() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def node_json(node: Node, broker: core.Broker) -> dict[str, Any]:
    alarms = node.alarms()
    return {
        "name": node.name,
        "type": "disc",
        "running": True,
        "os_pid": str(os.getpid()),
        "uptime": int((time.monotonic() - node.started_at) * 1000),
        "processors": os.cpu_count() or 1,
        "rates_mode": "basic",
        "partitions": [],
        "mem_used": resident_memory_bytes(),
        # Without a limit, the machine's memory: tools divide by it.
        "mem_limit": broker.memory.limit if broker.memory.limit is not None else physical_memory_bytes(),
        "mem_alarm": "memory" in alarms,
        "disk_free": node.disk_free(),
        "disk_free_limit": node.disk_free_limit,
        "disk_free_alarm": "disk" in alarms,
        "fd_used": open_file_descriptors(),
        "fd_total": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "sockets_used": len(broker.connections),
        "exchange_types": exchange_types(),
        "contexts": contexts(node),
        **message_stats.churn(broker),
    }


@routes.get("/api/nodes", access=MONITORING)
def list_nodes(request: Request, broker: core.Broker) -> list[dict[str, Any]]:
    return [node_json(request.node, broker)]


@routes.get("/api/nodes/{name}", access=MONITORING)
def get_node(request: Request, broker: core.Broker) -> dict[str, Any]:
    if request.params["name"] != request.node.name:
        raise not_found()
    return node_json(request.node, broker)


_OK = {"status": "ok"}
_SINGLE_NODE = {"status": "ok", "reason": "single node cluster"}


@routes.get("/api/healthchecks/node")
def node_health(request: Request, broker: core.Broker) -> dict[str, Any]:
    return _OK


@routes.get("/api/healthchecks/node/{name}")
def named_node_health(request: Request, broker: core.Broker) -> dict[str, Any]:
    """The same check, of the node named: this one, or 404 as RabbitMQ answers a node it does not know."""
    if request.params["name"] != request.node.name:
        raise not_found()
    return _OK


@routes.get("/api/health/checks/virtual-hosts")
def virtual_hosts_health(request: Request, broker: core.Broker) -> dict[str, Any]:
    return _OK


@routes.get("/api/health/checks/node-is-quorum-critical")
def quorum_critical_health(request: Request, broker: core.Broker) -> dict[str, Any]:
    """Whether stopping this node would leave a quorum queue without a majority: never, being one node."""
    return _SINGLE_NODE


@routes.get("/api/health/checks/node-is-mirror-sync-critical")
def mirror_sync_critical_health(request: Request, broker: core.Broker) -> dict[str, Any]:
    """Whether stopping this node would lose a mirrored queue's only synchronised copy: never, as above."""
    return _SINGLE_NODE


@routes.get("/api/health/checks/alarms")
def alarms_health(request: Request, broker: core.Broker) -> object:
    return _alarms(request.node)


@routes.get("/api/health/checks/local-alarms")
def local_alarms_health(request: Request, broker: core.Broker) -> object:
    return _alarms(request.node)


def _alarms(node: Node) -> object:
    alarms = sorted(node.alarms())
    if not alarms:
        return _OK
    return Response(503, {
        "status": "failed",
        "reason": "resource alarm(s) in effect in the cluster",
        "alarms": [{"node": node.name, "resource": resource} for resource in alarms],
    })


@routes.get("/api/health/checks/port-listener/{port}")
def port_listener_health(request: Request, broker: core.Broker) -> object:
    ports = sorted(listener["port"] for listener in request.node.listeners)
    port = request.params["port"]
    if port.isdigit() and int(port) in ports:
        return {"status": "ok", "port": int(port)}
    return Response(503, {"status": "failed", "reason": "No active listener", "missing": port, "ports": ports})


@routes.get("/api/health/checks/protocol-listener/{protocol}")
def protocol_listener_health(request: Request, broker: core.Broker) -> object:
    protocols = sorted({listener["protocol"] for listener in request.node.listeners})
    protocol = request.params["protocol"]
    if protocol in protocols:
        return {"status": "ok", "protocol": protocol}
    return Response(503, {"status": "failed", "reason": "No active listener", "missing": protocol,
                          "protocols": protocols})


@routes.get("/api/aliveness-test/{vhost}")
def aliveness_test(request: Request, broker: core.Broker) -> object:
    """Declares the `aliveness-test` queue, publishes a message to it and takes it back, as RabbitMQ does."""
    where = vhost(request, broker)
    queue = where.declare_queue(ALIVENESS_QUEUE, None)
    broker.queue_declared(queue)
    body = b"test_message"
    publish_unconfirmed(where, None, ALIVENESS_QUEUE, BasicProperties().encode(), body)
    entry = queue.take()
    if entry is None or entry.message.body != body:
        return Response(503, {"status": "failed", "reason": "the test message did not come back"})
    queue.forget(entry)
    return _OK


# RabbitMQ 3.10's feature flags (name, what it stands for, the plugin that brings it), in its order.
# Each is something this broker does from its first start, so all are enabled and stay so.
FEATURE_FLAGS = (
    ("classic_mirrored_queue_version", "a queue version policy may apply to mirrored classic queues", "rabbit"),
    ("drop_unroutable_metric", "statistics count unroutable publishes that were dropped", "rabbitmq_management_agent"),
    ("empty_basic_get_metric", "statistics count basic.get answered with get-empty", "rabbitmq_management_agent"),
    ("implicit_default_bindings", "every queue is bound to the default exchange without a stored binding", "rabbit"),
    ("maintenance_mode_status", "the node keeps a maintenance status", "rabbit"),
    ("quorum_queue", "quorum queues (x-queue-type quorum)", "rabbit"),
    ("stream_queue", "stream queues (x-queue-type stream)", "rabbit"),
    ("user_limits", "per-user limits on connections and channels", "rabbit"),
    ("virtual_host_metadata", "virtual hosts have a description, tags and a default queue type", "rabbit"),
)


@routes.get("/api/feature-flags", access=ADMINISTRATOR)
def feature_flags(request: Request, broker: core.Broker) -> list[dict[str, Any]]:
    return [
        {"name": name, "desc": desc, "doc_url": "", "state": "enabled", "stability": "stable", "provided_by": plugin}
        for name, desc, plugin in FEATURE_FLAGS
    ]


@routes.put("/api/feature-flags/{name}/enable", access=ADMINISTRATOR)
def enable_feature_flag(request: Request, broker: core.Broker) -> Response:
    """Enabling a flag that is already enabled: 204, as RabbitMQ answers; one it does not know: 400."""
    if request.params["name"] not in {name for name, _, _ in FEATURE_FLAGS}:
        raise bad_request("unsupported")
    return NO_CONTENT
