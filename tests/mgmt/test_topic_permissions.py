"""Topic permissions: `/api/topic-permissions*`, `/api/users/{user}/topic-permissions` and
`/api/vhosts/{vhost}/topic-permissions` with RabbitMQ 3.10's statuses and shapes; enforced over AMQP
and the HTTP API with its 403 texts; carried by definitions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel

from .client import ApiClient, segment
from .test_users_vhosts import Made, amqp_connect, made  # noqa: F401 (the fixture)

TOPIC_PERMISSION_KEYS = ["user", "vhost", "exchange", "write", "read"]


@dataclass
class Member:
    """A user with every permission in a vhost of their own; their topic permissions are set with `grant`."""

    api: ApiClient
    amqp_url: str
    user: str
    vhost: str

    @property
    def path(self) -> str:
        return f"/api/topic-permissions/{segment(self.vhost)}/{segment(self.user)}"

    def grant(self, exchange: str, write: str, read: str) -> int:
        return self.api.put(self.path, {"exchange": exchange, "write": write, "read": read}).status

    def listed(self, path: str | None = None) -> list[dict]:
        """The topic permissions at `path` (by default the member's own), by exchange."""
        reply = self.api.get(path or self.path)
        assert reply.status == 200, reply.body
        return sorted(reply.json, key=lambda item: (item["vhost"], item["user"], item["exchange"]))

    def item(self, exchange: str, write: str, read: str) -> dict[str, str]:
        return {"user": self.user, "vhost": self.vhost, "exchange": exchange, "write": write, "read": read}

    def connect(self, client_properties: dict | None = None) -> pika.BlockingConnection:
        return amqp_connect(self.amqp_url, self.user, "pw", self.vhost, client_properties)

    def refused(self, text: str) -> str:
        return f"ACCESS_REFUSED - {text} in vhost '{self.vhost}' refused for user '{self.user}'"


@pytest.fixture
def member(api: ApiClient, made: Made, amqp_url: str) -> Member:  # noqa: F811
    user, vhost = made.user("pw", "management"), made.vhost()
    permission = {"configure": ".*", "write": ".*", "read": ".*"}
    assert api.put(f"/api/permissions/{segment(vhost)}/{segment(user)}", permission).status == 201
    return Member(api, amqp_url, user, vhost)


def refusal(connection: pika.BlockingConnection, act: Callable[[BlockingChannel], object]) -> tuple[int, str] | None:
    """What closing a new channel of `connection` `act` met: the broker's code and text; None if it
    was allowed. A synchronous method after `act` waits for a refusal of a publish."""
    channel = connection.channel()
    try:
        act(channel)
        channel.basic_qos(prefetch_count=1)
    except pika.exceptions.ChannelClosedByBroker as closed:
        return closed.reply_code, closed.reply_text
    channel.close()
    return None


# over the API


def test_topic_permissions_are_set_and_listed(api: ApiClient, member: Member) -> None:
    assert api.get(member.path).status == 404
    assert member.listed(f"/api/users/{segment(member.user)}/topic-permissions") == []
    assert member.listed(f"/api/vhosts/{segment(member.vhost)}/topic-permissions") == []
    # 201 when the user had none in the vhost, 204 once they have one on any exchange.
    assert member.grant("amq.topic", "^a", "^b") == 201
    assert member.grant("amq.topic", "^a2", "^b") == 204
    assert member.grant("x2", "", ".*") == 204
    expected = [member.item("amq.topic", "^a2", "^b"), member.item("x2", "", ".*")]
    assert member.listed() == expected
    assert list(api.get(member.path).json[0]) == TOPIC_PERMISSION_KEYS
    # As RabbitMQ, an exchange in the path of a GET changes nothing: it lists them all.
    assert member.listed(f"{member.path}/x2") == expected
    assert member.listed(f"/api/users/{segment(member.user)}/topic-permissions") == expected
    assert member.listed(f"/api/vhosts/{segment(member.vhost)}/topic-permissions") == expected
    everyone = member.listed("/api/topic-permissions")
    assert [item for item in everyone if item["user"] == member.user] == expected
    # And a PUT sets the body's exchange, whatever the path says.
    assert api.put(f"{member.path}/amq.topic", {"exchange": "x3", "write": "w", "read": "r"}).status == 204
    assert [item["exchange"] for item in member.listed()] == ["amq.topic", "x2", "x3"]


def test_delete_clears_one_exchange_or_all(api: ApiClient, member: Member) -> None:
    assert member.grant("amq.topic", "^a", "^b") == 201
    assert member.grant("x2", "^a", "^b") == 204
    assert api.delete(f"{member.path}/missing").status == 204
    assert api.delete(f"{member.path}/x2").status == 204
    assert member.listed() == [member.item("amq.topic", "^a", "^b")]
    assert api.delete(member.path).status == 204
    assert api.get(member.path).status == 404
    assert api.delete(member.path).status == 404
    assert api.delete(f"{member.path}/amq.topic").status == 404


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"exchange": "amq.topic"}, "[{key_missing,write},{key_missing,read}]"),
        ({}, "[{key_missing,exchange},{key_missing,write},{key_missing,read}]"),
    ],
)
def test_a_put_without_every_field_is_refused(api: ApiClient, member: Member, body: dict, reason: str) -> None:
    reply = api.put(member.path, body)
    assert (reply.status, reply.json["reason"]) == (400, reason)
    assert api.get(member.path).status == 404


def test_a_malformed_expression_is_refused(api: ApiClient, member: Member) -> None:
    reply = api.put(member.path, {"exchange": "amq.topic", "write": "(", "read": ""})
    assert reply.status == 400
    assert "invalid_regexp" in str(reply.json["reason"]) and "(" in str(reply.json["reason"])
    assert api.get(member.path).status == 404


def test_a_missing_user_or_vhost(api: ApiClient, member: Member, unique) -> None:
    user, vhost, missing = segment(member.user), segment(member.vhost), unique("missing")
    body = {"exchange": "amq.topic", "write": ".*", "read": ".*"}
    for path in (f"/api/topic-permissions/{vhost}/{missing}", f"/api/topic-permissions/{missing}/{user}"):
        reply = api.put(path, body)
        assert (reply.status, reply.json["reason"]) == (400, "vhost_or_user_not_found")
        assert api.get(path).status == 404
        assert api.delete(path).status == 404
    assert api.get(f"/api/users/{missing}/topic-permissions").status == 404
    assert api.get(f"/api/vhosts/{missing}/topic-permissions").status == 404


def test_only_administrators_see_and_change_topic_permissions(member: Member, make_user) -> None:
    assert member.grant("amq.topic", ".*", ".*") == 201
    manager = make_user(["management", "policymaker", "monitoring"])
    body = {"exchange": "amq.topic", "write": "", "read": ""}
    for reply in (
        manager.get("/api/topic-permissions"),
        manager.get(member.path),
        manager.put(member.path, body),
        manager.delete(member.path),
        manager.get(f"/api/users/{segment(member.user)}/topic-permissions"),
        manager.get(f"/api/vhosts/{segment(member.vhost)}/topic-permissions"),
    ):
        assert (reply.status, reply.json["reason"]) == (401, "Not administrator user")
    assert member.listed() == [member.item("amq.topic", ".*", ".*")]


def test_deleting_the_vhost_or_the_user_takes_their_topic_permissions(
    api: ApiClient, member: Member, made: Made  # noqa: F811
) -> None:
    other = made.vhost()
    assert api.put(f"/api/topic-permissions/{segment(other)}/{segment(member.user)}",
                   {"exchange": "amq.topic", "write": "w", "read": "r"}).status == 201
    assert member.grant("amq.topic", "w", "r") == 201
    assert api.delete(f"/api/vhosts/{segment(other)}").status == 204
    assert member.listed(f"/api/users/{segment(member.user)}/topic-permissions") == [member.item("amq.topic", "w", "r")]
    # Made again under its name, the vhost has none.
    assert api.put(f"/api/vhosts/{segment(other)}", {}).status == 201
    assert member.listed(f"/api/vhosts/{segment(other)}/topic-permissions") == []
    assert api.delete(f"/api/users/{segment(member.user)}").status == 204
    assert member.listed(f"/api/vhosts/{segment(member.vhost)}/topic-permissions") == []
    assert api.put(f"/api/users/{segment(member.user)}", {"password": "pw", "tags": ""}).status == 201
    assert member.listed(f"/api/users/{segment(member.user)}/topic-permissions") == []


# enforced over AMQP


def test_a_publish_to_a_topic_exchange_needs_write_on_its_routing_key(member: Member) -> None:
    assert member.grant("amq.topic", r"^{username}\.", r"^{vhost}\.") == 201
    connection = member.connect()
    assert refusal(connection, lambda channel: channel.basic_publish("amq.topic", f"{member.user}.x", b"m")) is None
    for routing_key in ("other.x", "{username}.x"):
        assert refusal(connection, lambda channel: channel.basic_publish("amq.topic", routing_key, b"m")) == (
            403, member.refused(f"access to topic '{routing_key}' in exchange 'amq.topic'")
        )
    connection.close()


def test_only_topic_exchanges_with_a_topic_permission_are_checked(member: Member) -> None:
    connection = member.connect()
    setup = connection.channel()
    setup.exchange_declare("direct", "direct")
    setup.exchange_declare("open", "topic")
    setup.queue_declare("q")
    assert member.grant("direct", "^nothing$", "^nothing$") == 201
    for exchange in ("direct", "open"):
        assert refusal(connection, lambda channel: channel.basic_publish(exchange, "any", b"m")) is None
        assert refusal(connection, lambda channel: channel.queue_bind("q", exchange, "any")) is None
    connection.close()


def test_an_empty_expression_allows_only_the_empty_key(member: Member) -> None:
    assert member.grant("amq.topic", "", "") == 201
    connection = member.connect()
    connection.channel().queue_declare("q")
    assert refusal(connection, lambda channel: channel.basic_publish("amq.topic", "", b"m")) is None
    assert refusal(connection, lambda channel: channel.queue_bind("q", "amq.topic", "")) is None
    assert refusal(connection, lambda channel: channel.basic_publish("amq.topic", "x", b"m")) == (
        403, member.refused("access to topic 'x' in exchange 'amq.topic'")
    )
    connection.close()


def test_client_id_is_not_expanded_for_amqp_clients(member: Member) -> None:
    assert member.grant("amq.topic", r"^{client_id}\.", "") == 201
    connection = member.connect({"client_id": "abc"})
    assert refusal(connection, lambda channel: channel.basic_publish("amq.topic", "abc.x", b"m")) == (
        403, member.refused("access to topic 'abc.x' in exchange 'amq.topic'")
    )
    assert refusal(connection, lambda channel: channel.basic_publish("amq.topic", "{client_id}.x", b"m")) is None
    connection.close()


def test_a_binding_from_a_topic_exchange_needs_read_on_its_key(member: Member) -> None:
    assert member.grant("amq.topic", "", r"^{vhost}\.") == 201
    connection = member.connect()
    setup = connection.channel()
    setup.queue_declare("q")
    setup.exchange_declare("direct", "direct")
    allowed = f"{member.vhost}.k"
    refused = (403, member.refused("access to topic 'zzz.k' in exchange 'amq.topic'"))
    assert refusal(connection, lambda channel: channel.queue_bind("q", "amq.topic", allowed)) is None
    assert refusal(connection, lambda channel: channel.queue_unbind("q", "amq.topic", allowed)) is None
    for act in (
        lambda channel: channel.queue_bind("q", "amq.topic", "zzz.k"),
        lambda channel: channel.queue_unbind("q", "amq.topic", "zzz.k"),
        lambda channel: channel.exchange_bind("direct", "amq.topic", "zzz.k"),
        lambda channel: channel.exchange_unbind("direct", "amq.topic", "zzz.k"),
        # Before the queue is looked for: 403, not 404.
        lambda channel: channel.queue_bind("missing", "amq.topic", "zzz.k"),
    ):
        assert refusal(connection, act) == refused
    # A binding's destination is not checked.
    assert refusal(connection, lambda channel: channel.exchange_bind("amq.topic", "direct", "zzz.k")) is None
    connection.close()


def test_a_change_applies_to_channels_opened_after_it(member: Member) -> None:
    assert member.grant("amq.topic", ".*", ".*") == 201
    connection = member.connect()
    assert refusal(connection, lambda channel: channel.basic_publish("amq.topic", "k", b"m")) is None
    assert member.grant("amq.topic", "^nothing$", ".*") == 204
    assert refusal(connection, lambda channel: channel.basic_publish("amq.topic", "k", b"m")) == (
        403, member.refused("access to topic 'k' in exchange 'amq.topic'")
    )
    assert member.api.delete(member.path).status == 204
    assert refusal(connection, lambda channel: channel.basic_publish("amq.topic", "k", b"m")) is None
    connection.close()


# enforced over the API


def test_the_api_checks_publishes_and_bindings_as_amqp(member: Member) -> None:
    client = member.api.as_user(member.user, "pw")
    vhost = segment(member.vhost)
    assert client.put(f"/api/queues/{vhost}/q", {}).status == 201
    assert client.post(f"/api/bindings/{vhost}/e/amq.topic/q/q", {"routing_key": "no.1"}).status == 201
    assert member.grant("amq.topic", r"^ok\.", r"^ok\.") == 201
    message = {"properties": {}, "payload": "m", "payload_encoding": "string"}
    reply = client.post(f"/api/exchanges/{vhost}/amq.topic/publish", {**message, "routing_key": "ok.1"})
    assert (reply.status, reply.json) == (200, {"routed": False})
    # RabbitMQ publishes through a channel of its own, and reports what closed it.
    reply = client.post(f"/api/exchanges/{vhost}/amq.topic/publish", {**message, "routing_key": "no.1"})
    assert (reply.status, reply.json["reason"]) == (
        400, "403 " + member.refused("access to topic 'no.1' in exchange 'amq.topic'")
    )
    refused = {"error": "not_authorised", "reason": "Access refused."}
    reply = client.post(f"/api/bindings/{vhost}/e/amq.topic/q/q", {"routing_key": "no.2"})
    assert (reply.status, reply.json) == (401, refused)
    reply = client.delete(f"/api/bindings/{vhost}/e/amq.topic/q/q/no.1")
    assert (reply.status, reply.json) == (401, refused)
    assert client.post(f"/api/bindings/{vhost}/e/amq.topic/q/q", {"routing_key": "ok.2"}).status == 201
    assert client.delete(f"/api/bindings/{vhost}/e/amq.topic/q/q/ok.2").status == 204


# definitions


def test_definitions_export_and_import_topic_permissions(api: ApiClient, member: Member, unique) -> None:
    assert member.grant("amq.topic", r"^{username}\.", "^b") == 201
    assert member.grant("x2", "", ".*") == 204
    expected = [member.item("amq.topic", r"^{username}\.", "^b"), member.item("x2", "", ".*")]
    exported = api.get("/api/definitions").json["topic_permissions"]
    mine = [item for item in exported if item["user"] == member.user]
    assert sorted(mine, key=lambda item: item["exchange"]) == expected
    assert "topic_permissions" not in api.get(f"/api/definitions/{segment(member.vhost)}").json
    assert api.delete(member.path).status == 204
    assert api.post("/api/definitions", {"topic_permissions": expected}).status == 204
    assert member.listed() == expected
    # One vhost's import takes no notice of them.
    assert api.delete(member.path).status == 204
    assert api.post(f"/api/definitions/{segment(member.vhost)}", {"topic_permissions": expected}).status == 204
    assert api.get(member.path).status == 404
    missing = unique("missing")
    reply = api.post("/api/definitions", {"topic_permissions": [{**expected[0], "user": missing}]})
    assert reply.status == 400 and missing in str(reply.json["reason"])
