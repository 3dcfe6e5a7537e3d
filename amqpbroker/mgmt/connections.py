"""`/api/connections`, `/api/channels` and `/api/consumers`: the clients attached, as RabbitMQ
lists them. A connection is named `peer -> local`, a channel `connection (number)`. As in RabbitMQ,
a user tagged neither `monitoring` nor `administrator` sees only their own connections and channels."""

from __future__ import annotations

from typing import Any, Iterator

from .. import core
from ..core.queue import Consumer
from . import message_stats
from .api import (
    ADMINISTRATOR,
    MONITORING,
    NO_CONTENT,
    HTTPError,
    Node,
    Request,
    Routes,
    check_object_access,
    jsonable,
    not_found,
    vhost,
    vhosts,
)

routes = Routes()

CLOSED_TEXT = "CONNECTION_FORCED - Closed via management plugin"


_SEE_ALL = {"monitoring", "administrator"}


def _connections(request: Request, broker: core.Broker) -> list[core.ClientConnection]:
    """The connections `request`'s user may see, by name."""
    user = request.user
    connections = broker.connections
    if not _SEE_ALL.intersection(user.tags):
        connections = {connection for connection in connections if connection.username == user.name}
    return sorted(connections, key=lambda connection: connection.info.name)


def _connection(request: Request, broker: core.Broker) -> core.ClientConnection:
    name = request.params["name"]
    for connection in broker.connections:
        if connection.info.name == name:
            if connection not in _connections(request, broker):
                raise HTTPError(401, "not_authorised", "User not authorised to access object")
            return connection
    raise not_found()


def connection_json(connection: core.ClientConnection, node: Node) -> dict[str, Any]:
    info = connection.info
    properties = jsonable(info.client_properties)
    found = {
        "name": info.name,
        "node": node.name,
        "type": "network",
        "protocol": "AMQP 0-9-1",
        "state": "closing" if connection.closed else "running",
        "vhost": connection.vhost.name,
        "user": connection.username,
        "user_who_performed_action": connection.username,
        "auth_mechanism": "PLAIN",
        "channels": len(connection.sessions),
        "channel_max": info.channel_max,
        "frame_max": info.frame_max,
        "timeout": info.heartbeat,
        "connected_at": info.connected_at,
        "host": info.host,
        "port": info.port,
        "peer_host": info.peer_host,
        "peer_port": info.peer_port,
        "ssl": False,
        "client_properties": properties,
    }
    if "connection_name" in properties:
        found["user_provided_name"] = properties["connection_name"]
    return found


def channel_name(session: core.Session) -> str:
    return f"{session.connection.info.name} ({session.channel})"


def channel_details(session: core.Session, node: Node) -> dict[str, Any]:
    """A channel as a consumer or queue names it."""
    info = session.connection.info
    return {
        "name": channel_name(session),
        "number": session.channel,
        "connection_name": info.name,
        "peer_host": info.peer_host,
        "peer_port": info.peer_port,
        "user": session.connection.username,
        "node": node.name,
    }


def channel_json(session: core.Session, node: Node) -> dict[str, Any]:
    connection = session.connection
    info = connection.info
    delivery = session.delivery
    messages_uncommitted, acks_uncommitted = session.uncommitted
    return {
        "name": channel_name(session),
        "number": session.channel,
        "node": node.name,
        "user": connection.username,
        "user_who_performed_action": connection.username,
        "vhost": connection.vhost.name,
        "state": "running",
        "consumer_count": len(delivery.consumers),
        "messages_unacknowledged": delivery.unacked_count,
        "messages_unconfirmed": session.confirms.unconfirmed,
        "messages_uncommitted": messages_uncommitted,
        "acks_uncommitted": acks_uncommitted,
        "prefetch_count": delivery.prefetch_count,
        "global_prefetch_count": delivery.global_prefetch_count,
        "confirm": session.publisher.confirm_mode,
        "transactional": session.transactional,
        "connection_details": {"name": info.name, "peer_host": info.peer_host, "peer_port": info.peer_port},
        **message_stats.idle_since(session.stats, connection.broker.timers),
        **message_stats.of(session.stats),
    }


def session_of(consumer: Consumer) -> core.Session:
    """The channel `consumer` consumes on."""
    delivery = consumer.channel
    return delivery.connection.sessions[delivery.channel_number]


def consumer_json(consumer: Consumer, session: core.Session, node: Node) -> dict[str, Any]:
    # In a single-active-consumer queue the others wait their turn.
    single_active = consumer.queue.consumers.single_active
    active = single_active is None or single_active is consumer
    status = "up" if single_active is None else "single_active" if active else "waiting"
    return {
        "consumer_tag": consumer.tag,
        "queue": {"name": consumer.queue.name, "vhost": consumer.queue.vhost},
        "channel_details": channel_details(session, node),
        "ack_required": not consumer.no_ack,
        "exclusive": consumer.exclusive,
        "prefetch_count": consumer.prefetch_count,
        "active": active,
        "activity_status": status,
        "arguments": jsonable(consumer.arguments),
    }


def _sessions(connections: list[core.ClientConnection]) -> Iterator[core.Session]:
    for connection in connections:
        yield from sorted(connection.sessions.values(), key=lambda session: session.channel)


@routes.get("/api/connections")
def list_connections(request: Request, broker: core.Broker) -> Iterator[dict[str, Any]]:
    return (connection_json(connection, request.node) for connection in _connections(request, broker))


@routes.get("/api/vhosts/{vhost}/connections")
def vhost_connections(request: Request, broker: core.Broker) -> Iterator[dict[str, Any]]:
    name = vhost(request, broker).name
    return (
        connection_json(connection, request.node)
        for connection in _connections(request, broker)
        if connection.vhost.name == name
    )


@routes.get("/api/connections/{name}")
def get_connection(request: Request, broker: core.Broker) -> dict[str, Any]:
    return connection_json(_connection(request, broker), request.node)


def _force_close(request: Request, connection: core.ClientConnection) -> None:
    """Closes the connection with 320 CONNECTION_FORCED; an `X-Reason` header gives the text."""
    reason = request.headers.get("x-reason")
    connection.sink.close(320, f"CONNECTION_FORCED - {reason}" if reason else CLOSED_TEXT)


@routes.delete("/api/connections/{name}")
def close_connection(request: Request, broker: core.Broker) -> object:
    _force_close(request, _connection(request, broker))
    return NO_CONTENT


def _of_user(request: Request, broker: core.Broker, level: str) -> list[core.ClientConnection]:
    """The connections of the path's user, for a user of `level` (MONITORING, ADMINISTRATOR)."""
    check_object_access(request, level)
    name = request.params["username"]
    return sorted((c for c in broker.connections if c.username == name), key=lambda c: c.info.name)


@routes.get("/api/connections/username/{username}")
def user_connections(request: Request, broker: core.Broker) -> list[dict[str, Any]]:
    """A user's connections, briefly, as RabbitMQ lists those it tracks (monitoring users)."""
    node = request.node.name
    return [
        {"name": c.info.name, "vhost": c.vhost.name, "user": c.username, "node": node}
        for c in _of_user(request, broker, MONITORING)
    ]


@routes.delete("/api/connections/username/{username}")
def close_user_connections(request: Request, broker: core.Broker) -> object:
    """Closes every connection of a user, as `DELETE /api/connections/{name}` closes one (administrators)."""
    for connection in _of_user(request, broker, ADMINISTRATOR):
        _force_close(request, connection)
    return NO_CONTENT


@routes.get("/api/connections/{name}/channels")
def connection_channels(request: Request, broker: core.Broker) -> Iterator[dict[str, Any]]:
    return (channel_json(session, request.node) for session in _sessions([_connection(request, broker)]))


@routes.get("/api/channels")
def list_channels(request: Request, broker: core.Broker) -> Iterator[dict[str, Any]]:
    return (channel_json(session, request.node) for session in _sessions(_connections(request, broker)))


@routes.get("/api/vhosts/{vhost}/channels")
def vhost_channels(request: Request, broker: core.Broker) -> Iterator[dict[str, Any]]:
    name = vhost(request, broker).name
    connections = [connection for connection in _connections(request, broker) if connection.vhost.name == name]
    return (channel_json(session, request.node) for session in _sessions(connections))


@routes.get("/api/channels/{name}")
def get_channel(request: Request, broker: core.Broker) -> dict[str, Any]:
    for session in _sessions(_connections(request, broker)):
        if channel_name(session) == request.params["name"]:
            return channel_json(session, request.node)
    raise not_found()


def _consumers(broker: core.Broker) -> Iterator[tuple[core.Session, Consumer]]:
    """Every consumer with its channel, whoever's: RabbitMQ shows them by vhost, not by connection.
    Each channel's consumers are taken as they are at its turn."""
    connections = sorted(broker.connections, key=lambda connection: connection.info.name)
    for session in _sessions(connections):
        for consumer in list(session.delivery.consumers.values()):
            yield session, consumer


@routes.get("/api/consumers")
def list_consumers(request: Request, broker: core.Broker) -> Iterator[dict[str, Any]]:
    visible = {where.name for where in vhosts(request, broker)}
    return (consumer_json(consumer, session, request.node)
            for session, consumer in _consumers(broker) if consumer.queue.vhost in visible)


@routes.get("/api/consumers/{vhost}")
def vhost_consumers(request: Request, broker: core.Broker) -> Iterator[dict[str, Any]]:
    name = vhost(request, broker).name
    return (consumer_json(consumer, session, request.node)
            for session, consumer in _consumers(broker) if consumer.queue.vhost == name)
