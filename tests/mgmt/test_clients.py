"""`/api/connections`, `/api/channels` and `/api/consumers`: the keys tools read, and closing a
connection with 320 CONNECTION_FORCED."""

from __future__ import annotations

import pika
import pytest

from .client import ApiClient, eventually, segment

CONNECTION_KEYS = {
    "name", "vhost", "user", "state", "channels", "node", "peer_host", "peer_port", "host", "port", "protocol",
    "client_properties", "connected_at", "timeout", "frame_max", "channel_max",
}
CHANNEL_KEYS = {
    "name", "number", "user", "vhost", "state", "consumer_count", "messages_unacknowledged", "prefetch_count",
    "confirm", "transactional", "connection_details", "node",
}
CONSUMER_KEYS = {"consumer_tag", "queue", "channel_details", "ack_required", "exclusive", "prefetch_count", "arguments"}


@pytest.fixture
def named(amqp_url: str, unique):
    """A connection that names itself (client property `connection_name`), and that name."""
    name = unique("connection")
    params = pika.URLParameters(amqp_url)
    params.client_properties = {"connection_name": name}
    connection = pika.BlockingConnection(params)
    yield connection, name
    if connection.is_open:
        connection.close()


def _find(api: ApiClient, provided: str) -> dict:
    found = [c for c in api.get("/api/connections").json if c.get("user_provided_name") == provided]
    assert len(found) == 1
    return found[0]


def test_connections_list_their_origin_and_client(api: ApiClient, named) -> None:
    connection, provided = named
    connection.channel()

    def with_stats() -> dict:
        # RabbitMQ lists a connection before its first statistics (state, channels) come in.
        found = _find(api, provided)
        assert CONNECTION_KEYS <= found.keys()
        return found

    listed = eventually(with_stats)
    local = connection._impl._transport._sock.getsockname()
    assert (listed["peer_host"], listed["peer_port"]) == local[:2]
    assert (listed["vhost"], listed["user"], listed["protocol"], listed["state"]) == (
        "/", "guest", "AMQP 0-9-1", "running")
    assert listed["client_properties"]["product"] == "Pika Python Client Library"
    assert listed["name"] == f"{local[0]}:{local[1]} -> {listed['host']}:{listed['port']}"
    one = api.get(f"/api/connections/{segment(listed['name'])}")
    assert one.status == 200 and one.json["name"] == listed["name"]
    eventually(lambda: _channel_count(api, listed["name"]))


def _channel_count(api: ApiClient, name: str) -> None:
    assert api.get(f"/api/connections/{segment(name)}").json["channels"] == 1
    assert len(api.get(f"/api/connections/{segment(name)}/channels").json) == 1


@pytest.mark.parametrize(("headers", "text"), [
    ({}, "CONNECTION_FORCED - Closed via management plugin"),
    ({"X-Reason": "maintenance"}, "CONNECTION_FORCED - maintenance"),
])
def test_delete_closes_the_connection_with_320(api: ApiClient, named, headers: dict, text: str) -> None:
    connection, provided = named
    name = eventually(lambda: _find(api, provided))["name"]
    assert api.delete(f"/api/connections/{segment(name)}", headers=headers).status == 204
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
        connection.process_data_events(time_limit=5)
    assert (closed.value.reply_code, closed.value.reply_text) == (320, text)


def test_a_missing_connection_or_channel_is_404(api: ApiClient, unique) -> None:
    assert api.get(f"/api/connections/{unique('missing')}").status == 404
    assert api.delete(f"/api/connections/{unique('missing')}").status == 404
    assert api.get(f"/api/channels/{unique('missing')}").status == 404


def test_channels_list_their_state(api: ApiClient, named, unique, cleanup) -> None:
    connection, provided = named
    channel = connection.channel()
    channel.basic_qos(prefetch_count=3)
    channel.confirm_delivery()
    queue = cleanup.queue(unique("q"))
    channel.queue_declare(queue)
    channel.basic_consume(queue, lambda *args: None)
    name = eventually(lambda: _find(api, provided))["name"]

    def listed() -> dict:
        found = [c for c in api.get("/api/channels").json if c["connection_details"]["name"] == name]
        assert len(found) == 1 and found[0]["consumer_count"] == 1
        return found[0]

    found = eventually(listed)
    assert CHANNEL_KEYS <= found.keys()
    assert (found["number"], found["prefetch_count"], found["confirm"], found["transactional"]) == (
        channel.channel_number, 3, True, False)
    assert found["name"] == f"{name} ({channel.channel_number})"
    assert {"name", "peer_host", "peer_port"} <= found["connection_details"].keys()
    one = api.get(f"/api/channels/{segment(found['name'])}")
    assert one.status == 200 and one.json["number"] == channel.channel_number


def test_a_transactional_channel_counts_what_waits_for_its_commit(api: ApiClient, named, unique, cleanup) -> None:
    connection, provided = named
    channel = connection.channel()
    queue = cleanup.queue(unique("q"))
    channel.queue_declare(queue)
    channel.basic_publish("", queue, b"to ack")
    channel.basic_publish("", queue, b"to reject")
    channel.tx_select()
    for body in (b"one", b"two", b"three"):
        channel.basic_publish("", queue, body)
    acked, _, _ = channel.basic_get(queue)
    rejected, _, _ = channel.basic_get(queue)
    channel.basic_ack(acked.delivery_tag)
    channel.basic_reject(rejected.delivery_tag, requeue=False)  # not an ack: RabbitMQ leaves it out
    name = eventually(lambda: _find(api, provided))["name"]
    path = f"/api/channels/{segment(f'{name} ({channel.channel_number})')}"

    def counted(expected: tuple[int, int]) -> None:
        found = api.get(path).json
        assert (found["messages_uncommitted"], found["acks_uncommitted"], found["messages_unconfirmed"]) == (
            *expected, 0)

    eventually(lambda: counted((3, 1)))
    channel.tx_commit()
    eventually(lambda: counted((0, 0)))


def test_consumers_all_and_per_vhost(api: ApiClient, amqp, unique, cleanup) -> None:
    queue = cleanup.queue(unique("q"))
    channel = amqp.channel()
    channel.queue_declare(queue)
    channel.basic_consume(queue, lambda *args: None, auto_ack=True, consumer_tag=unique("tag"),
                          arguments={"x-priority": 5})

    def listed(path: str) -> dict:
        found = [c for c in api.get(path).json if c["queue"]["name"] == queue]
        assert len(found) == 1
        return found[0]

    for path in ("/api/consumers", "/api/consumers/%2F"):
        consumer = eventually(lambda: listed(path))
        assert CONSUMER_KEYS <= consumer.keys()
        assert consumer["queue"] == {"name": queue, "vhost": "/"}
        assert (consumer["ack_required"], consumer["exclusive"]) == (False, False)
        assert consumer["arguments"] == {"x-priority": 5}
    assert api.get(f"/api/consumers/{unique('vhost')}").status == 404


def test_a_management_user_sees_only_their_own_connections(api: ApiClient, make_user, amqp_url: str, named) -> None:
    guests, provided = named
    guests.channel()
    manager = make_user(["management"])
    params = pika.URLParameters(amqp_url)
    params.credentials = pika.PlainCredentials(manager.user, manager.password)
    own = pika.BlockingConnection(params)
    try:
        own.channel()
        guest_name = eventually(lambda: _find(api, provided))["name"]

        def listed() -> list[dict]:
            found = manager.get("/api/connections").json
            assert found and {c["user"] for c in found} == {manager.user}
            return found

        eventually(listed)
        assert {c["user"] for c in eventually(lambda: _some(manager.get("/api/channels").json))} == {manager.user}
        refused = manager.get(f"/api/connections/{segment(guest_name)}")
        assert refused.status == 401
        assert refused.json == {"error": "not_authorised", "reason": "User not authorised to access object"}
        assert manager.delete(f"/api/connections/{segment(guest_name)}").status == 401
        assert guests.is_open
    finally:
        own.close()


def _some(items: list) -> list:
    assert items
    return items


def test_connections_and_channels_per_vhost(api: ApiClient, named, unique) -> None:
    connection, provided = named
    connection.channel()
    name = eventually(lambda: _find(api, provided))["name"]

    def listed() -> None:
        assert name in {c["name"] for c in api.get("/api/vhosts/%2F/connections").json}
        assert name in {c["connection_details"]["name"] for c in api.get("/api/vhosts/%2F/channels").json}

    eventually(listed)
    assert api.get(f"/api/vhosts/{unique('vhost')}/connections").status == 404


def test_a_users_connections_are_listed_and_closed_together(api: ApiClient, make_user, amqp_url: str, unique,
                                                            reference: bool) -> None:
    owner = make_user(["management"])
    params = pika.URLParameters(amqp_url)
    params.credentials = pika.PlainCredentials(owner.user, owner.password)
    connections = [pika.BlockingConnection(params) for _ in range(2)]
    path = f"/api/connections/username/{segment(owner.user)}"
    try:
        def listed() -> list[dict]:
            found = api.get(path).json
            assert len(found) == 2
            return found

        found = eventually(listed)
        node = api.get("/api/overview").json["node"]
        assert all(item == {"name": item["name"], "vhost": "/", "user": owner.user, "node": node} for item in found)

        def also_in_the_listing() -> None:
            # RabbitMQ lists connections from statistics it gathers every few seconds.
            assert {item["name"] for item in found} <= {c["name"] for c in api.get("/api/connections").json}

        eventually(also_in_the_listing)
        if not reference:
            # RabbitMQ 3.10.8 answers a user tagged neither monitoring nor administrator here, and a
            # monitoring user's DELETE, with 500 (spec/errata.md).
            refusal = (401, {"error": "not_authorised", "reason": "User not authorised to access object"})
            reply = owner.get(path)
            assert (reply.status, reply.json) == refusal
            monitor = make_user(["monitoring"])
            assert len(monitor.get(path).json) == 2
            reply = monitor.delete(path)
            assert (reply.status, reply.json) == refusal
            assert all(connection.is_open for connection in connections)

        assert api.delete(path, headers={"X-Reason": "rotating credentials"}).status == 204
        for connection in connections:
            with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
                connection.process_data_events(time_limit=5)
            assert (closed.value.reply_code, closed.value.reply_text) == (
                320, "CONNECTION_FORCED - rotating credentials"
            )
        eventually(lambda: _none(api.get(path).json))
    finally:
        for connection in connections:
            if connection.is_open:
                connection.close()
    nobody = f"/api/connections/username/{unique('nobody')}"
    assert (api.get(nobody).status, api.get(nobody).json) == (200, [])
    assert api.delete(nobody).status == 204


def _none(items: list) -> None:
    assert items == []
