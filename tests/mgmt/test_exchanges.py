"""`/api/exchanges`: the default and `amq.*` exchanges listed, declare and delete, and publish."""

from __future__ import annotations

import pytest

from .client import ApiClient, eventually, segment

EXCHANGE_KEYS = {"name", "vhost", "type", "durable", "auto_delete", "internal", "arguments"}


def path(name: str, vhost: str = "/") -> str:
    return f"/api/exchanges/{segment(vhost)}/{segment(name)}"


def publish_body(routing_key: str, payload: str = "hello", **more) -> dict:
    return {"routing_key": routing_key, "payload": payload, "payload_encoding": "string", "properties": {}, **more}


def test_lists_the_default_and_amq_exchanges(api: ApiClient) -> None:
    for listing in ("/api/exchanges", "/api/exchanges/%2F"):
        exchanges = {(e["vhost"], e["name"]): e for e in api.get(listing).json if e["vhost"] == "/"}
        for name, kind in [("", "direct"), ("amq.direct", "direct"), ("amq.fanout", "fanout"),
                           ("amq.topic", "topic"), ("amq.headers", "headers"), ("amq.match", "headers")]:
            assert EXCHANGE_KEYS <= exchanges[("/", name)].keys()
            assert exchanges[("/", name)]["type"] == kind
            assert exchanges[("/", name)]["durable"] is True


def test_amq_default_names_the_default_exchange(api: ApiClient) -> None:
    reply = api.get(path("amq.default"))
    assert reply.status == 200
    assert (reply.json["name"], reply.json["type"]) == ("", "direct")


def test_put_creates_with_201_then_redeclares_with_204(api: ApiClient, unique, cleanup) -> None:
    name = cleanup.exchange(unique("x"))
    body = {"type": "topic", "durable": "true", "arguments": {"alternate-exchange": "amq.fanout"}}
    assert api.put(path(name), body).status == 201
    assert api.put(path(name), body).status == 204
    exchange = api.get(path(name)).json
    assert EXCHANGE_KEYS <= exchange.keys()
    assert (exchange["name"], exchange["type"], exchange["durable"], exchange["auto_delete"], exchange["internal"]) == (
        name, "topic", True, False, False)
    assert exchange["arguments"] == {"alternate-exchange": "amq.fanout"}


def test_redeclaring_with_another_type_is_400(api: ApiClient, unique, cleanup) -> None:
    name = cleanup.exchange(unique("x"))
    api.put(path(name), {"type": "direct"})
    reply = api.put(path(name), {"type": "topic"})
    assert reply.status == 400
    assert reply.json["reason"] == (
        f"inequivalent arg 'type' for exchange '{name}' in vhost '/': received 'topic' but current is 'direct'")


def test_an_unknown_type_is_400(api: ApiClient, unique, cleanup) -> None:
    assert api.put(path(cleanup.exchange(unique("x"))), {"type": "nosuch"}).status == 400


@pytest.mark.parametrize("name", ["amq.default", "amq.direct"])
def test_the_default_and_amq_exchanges_cannot_be_deleted(api: ApiClient, name: str) -> None:
    reply = api.delete(path(name))
    assert reply.status == 401
    assert reply.json["error"] == "not_authorised"


def test_a_reserved_name_cannot_be_declared(api: ApiClient, unique) -> None:
    assert api.put(path("amq." + unique("x")), {"type": "direct"}).status == 401


def test_delete_is_204_then_404_and_if_unused_refuses_a_bound_one(api: ApiClient, unique, cleanup) -> None:
    name, queue = unique("x"), cleanup.queue(unique("q"))
    api.put(path(name), {"type": "direct"})
    api.put(f"/api/queues/%2F/{segment(queue)}")
    api.post(f"/api/bindings/%2F/e/{segment(name)}/q/{segment(queue)}", {"routing_key": "k"})
    reply = api.delete(path(name) + "?if-unused=true")
    assert reply.status == 400
    assert reply.json["reason"] == f"exchange '{name}' in vhost '/' in use"
    assert api.delete(path(name)).status == 204
    assert api.delete(path(name)).status == 404


def test_publish_says_whether_the_message_was_routed(api: ApiClient, amqp, unique, cleanup) -> None:
    queue = cleanup.queue(unique("q"))
    amqp.channel().queue_declare(queue)
    reply = api.post(path("amq.default") + "/publish", publish_body(
        queue, properties={"headers": {"h": "v"}, "delivery_mode": 2, "content_type": "text/plain"}))
    assert (reply.status, reply.json) == (200, {"routed": True})
    assert api.post(path("amq.default") + "/publish", publish_body(unique("nowhere"))).json == {"routed": False}
    method, properties, body = amqp.channel().basic_get(queue, auto_ack=True)
    assert body == b"hello"
    assert (method.exchange, method.routing_key) == ("", queue)
    assert (properties.headers, properties.delivery_mode, properties.content_type) == ({"h": "v"}, 2, "text/plain")


def test_publish_through_a_bound_exchange_and_in_base64(api: ApiClient, amqp, unique, cleanup) -> None:
    exchange, queue = cleanup.exchange(unique("x")), cleanup.queue(unique("q"))
    channel = amqp.channel()
    channel.exchange_declare(exchange, "topic")
    channel.queue_declare(queue)
    channel.queue_bind(queue, exchange, "a.*")
    reply = api.post(path(exchange) + "/publish", publish_body("a.b", "//4=", payload_encoding="base64"))
    assert reply.json == {"routed": True}
    method, _, body = channel.basic_get(queue, auto_ack=True)
    assert (body, method.exchange, method.routing_key) == (b"\xff\xfe", exchange, "a.b")


@pytest.mark.parametrize(("body", "reason"), [
    ({"routing_key": "k", "payload": "x"}, "[{key_missing,properties},{key_missing,payload_encoding}]"),
    ({"routing_key": "k", "payload": "!!", "payload_encoding": "base64", "properties": {}}, ["not_base64", "!!"]),
])
def test_publish_with_a_bad_request_is_400(api: ApiClient, body: dict, reason: object) -> None:
    reply = api.post(path("amq.default") + "/publish", body)
    assert reply.status == 400
    assert reply.json == {"error": "bad_request", "reason": reason}


def test_publish_to_a_missing_exchange_is_400_saying_404(api: ApiClient, unique) -> None:
    name = unique("missing")
    reply = api.post(path(name) + "/publish", publish_body("k"))
    assert reply.status == 400
    assert reply.json["reason"] == f"404 NOT_FOUND - no exchange '{name}' in vhost '/'"


def test_an_exchange_declared_over_amqp_is_listed(api: ApiClient, amqp, unique, cleanup) -> None:
    name = cleanup.exchange(unique("x"))
    amqp.channel().exchange_declare(name, "fanout", auto_delete=False, internal=True)
    exchange = eventually(lambda: api.get(path(name)).json)
    assert (exchange["type"], exchange["internal"], exchange["durable"]) == ("fanout", True, False)


@pytest.mark.parametrize("properties", [
    {"timestamp": "x"}, {"headers": "x"}, {"expiration": 5}, {"content_type": 5}, {"priority": 999},
    {"headers": {"x": 2**70}}, {"nosuch": 1},
])
def test_publish_with_bad_properties_is_400(api: ApiClient, embedded, properties: dict) -> None:
    # RabbitMQ answers some of these with 500 (headers "x"), or publishes them (priority 999).
    reply = api.post(path("amq.default") + "/publish", publish_body("k", properties=properties))
    assert reply.status == 400
    assert reply.json["error"] == "bad_request"


def test_publish_to_a_delayed_exchange_is_held(api: ApiClient, amqp, embedded, unique, cleanup) -> None:
    # RabbitMQ needs its delayed-message plugin for this, which the reference broker has not.
    exchange, queue = cleanup.exchange(unique("x")), cleanup.queue(unique("q"))
    channel = amqp.channel()
    channel.exchange_declare(exchange, "x-delayed-message", arguments={"x-delayed-type": "direct"})
    channel.queue_declare(queue)
    channel.queue_bind(queue, exchange, "k")
    body = publish_body("k", properties={"headers": {"x-delay": 50}})
    assert api.post(path(exchange) + "/publish", body).json == {"routed": False}
    eventually(lambda: _assert_ready(api, queue, 1))


def _assert_ready(api: ApiClient, queue: str, count: int) -> None:
    assert api.get(f"/api/queues/%2F/{segment(queue)}").json["messages_ready"] == count
