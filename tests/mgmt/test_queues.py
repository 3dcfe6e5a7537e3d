"""`/api/queues`: listing with the keys tools read, declare and redeclare, delete, purge, and
`POST .../get` with every ackmode and encoding."""

from __future__ import annotations

import datetime
import re

import pika
import pytest

from .client import ApiClient, eventually, segment

QUEUE_KEYS = {
    "name", "vhost", "durable", "auto_delete", "exclusive", "arguments", "node", "type", "state", "consumers",
    "messages", "messages_ready", "messages_unacknowledged",
}
BYTES = (
    "message_bytes", "message_bytes_ready", "message_bytes_unacknowledged", "message_bytes_ram",
    "message_bytes_persistent", "message_bytes_paged_out", "messages_ram", "messages_ready_ram",
    "messages_unacknowledged_ram", "messages_persistent", "messages_paged_out",
)
MESSAGE_KEYS = {
    "payload", "payload_bytes", "payload_encoding", "redelivered", "exchange", "routing_key", "message_count",
    "properties",
}


def path(name: str, vhost: str = "/") -> str:
    return f"/api/queues/{segment(vhost)}/{segment(name)}"


def get(api: ApiClient, queue: str, count: int | str, ackmode: str = "ack_requeue_true", **more) -> list[dict]:
    reply = api.post(path(queue) + "/get", {"count": count, "ackmode": ackmode, "encoding": "auto", **more})
    assert reply.status == 200, reply.body
    return reply.json


def publish(channel, queue: str, *bodies: bytes, **properties) -> None:
    for body in bodies:
        channel.basic_publish("", queue, body, pika.BasicProperties(**properties))


def filled(api: ApiClient, amqp, name: str, *bodies: bytes):
    """A channel on which `name` was declared and given `bodies`, once the API counts them."""
    channel = amqp.channel()
    channel.queue_declare(name)
    publish(channel, name, *bodies)
    eventually(lambda: _assert_equal(api.get(path(name)).json["messages"], len(bodies)))
    return channel


def test_put_creates_with_201_then_redeclares_with_204(api: ApiClient, unique, cleanup) -> None:
    name = cleanup.queue(unique("q"))
    assert api.put(path(name), {"durable": True, "arguments": {"x-max-length": 10}}).status == 201
    assert api.put(path(name), {"durable": True, "arguments": {"x-max-length": 10}}).status == 204
    queue = eventually(lambda: _with_keys(api.get(path(name)).json, QUEUE_KEYS | {"consumer_details"}))
    assert (queue["name"], queue["vhost"], queue["durable"], queue["auto_delete"], queue["exclusive"]) == (
        name, "/", True, False, False)
    assert queue["arguments"] == {"x-max-length": 10}
    assert queue["type"] == "classic"
    assert queue["consumer_details"] == []


def test_flags_may_be_strings_as_rabbitmqadmin_sends_them(api: ApiClient, unique, cleanup) -> None:
    name = cleanup.queue(unique("q"))
    assert api.put(path(name), {"durable": "true", "auto_delete": "false"}).status == 201
    assert api.get(path(name)).json["durable"] is True


def test_a_queue_is_transient_unless_asked(api: ApiClient, unique, cleanup) -> None:
    name = cleanup.queue(unique("q"))
    assert api.put(path(name)).status == 201
    assert api.get(path(name)).json["durable"] is False


def test_a_name_with_a_slash_is_one_path_segment(api: ApiClient, unique, cleanup) -> None:
    name = cleanup.queue(unique("a/b"))
    assert api.put(path(name)).status == 201
    assert api.get(path(name)).json["name"] == name


def test_redeclaring_differently_is_400_with_the_reason(api: ApiClient, unique, cleanup) -> None:
    name = cleanup.queue(unique("q"))
    api.put(path(name), {"durable": True})
    reply = api.put(path(name), {"durable": False})
    assert reply.status == 400
    assert reply.json == {
        "error": "bad_request",
        "reason": f"inequivalent arg 'durable' for queue '{name}' in vhost '/': received 'false' but current is 'true'",
    }


def test_a_flag_that_is_no_boolean_is_400(api: ApiClient, unique, cleanup) -> None:
    reply = api.put(path(cleanup.queue(unique("q"))), {"durable": "yes"})
    assert reply.status == 400
    assert reply.json == {"error": "bad_request", "reason": ["not_boolean", "yes"]}


def test_an_invalid_argument_is_400(api: ApiClient, unique, cleanup) -> None:
    reply = api.put(path(cleanup.queue(unique("q"))), {"arguments": {"x-max-length": "abc"}})
    assert reply.status == 400
    assert "x-max-length" in reply.json["reason"]


@pytest.mark.parametrize("body", [b"{bad", b"[1]", b"\xff"])
def test_a_body_that_is_no_json_object_is_400(api: ApiClient, unique, cleanup, body: bytes) -> None:
    reply = api.request("PUT", path(cleanup.queue(unique("q"))), raw_body=body)
    assert reply.status == 400
    assert reply.json == {"error": "bad_request", "reason": "not_json"}


def test_a_reserved_name_is_refused(api: ApiClient, unique) -> None:
    reply = api.put(path("amq." + unique("q")))
    assert reply.status == 401
    assert reply.json["error"] == "not_authorised"


def test_a_missing_vhost_is_404(api: ApiClient, unique) -> None:
    assert api.put(f"/api/queues/{unique('vhost')}/q").status == 404
    assert api.get(f"/api/queues/{unique('vhost')}").status == 404


def test_a_missing_queue_is_404(api: ApiClient, unique) -> None:
    reply = api.get(path(unique("missing")))
    assert reply.status == 404
    assert reply.json == {"error": "Object Not Found", "reason": "Not Found"}


def test_lists_all_and_per_vhost_with_columns(api: ApiClient, unique, cleanup) -> None:
    name = cleanup.queue(unique("q"))
    api.put(path(name))
    for listing in ("/api/queues", "/api/queues/%2F"):
        queue = eventually(lambda: _with_keys({q["name"]: q for q in api.get(listing).json}[name], QUEUE_KEYS))
        assert "consumer_details" not in queue
    picked = api.get("/api/queues/%2F?columns=name,messages").json
    assert all(set(queue) == {"name", "messages"} for queue in picked)


def test_counts_ready_and_unacknowledged_messages(api: ApiClient, amqp, unique, cleanup) -> None:
    name = cleanup.queue(unique("q"))
    channel = amqp.channel()
    channel.queue_declare(name)
    publish(channel, name, b"1", b"2", b"3")
    channel.basic_get(name)

    def counted() -> None:
        queue = api.get(path(name)).json
        assert (queue["messages"], queue["messages_ready"], queue["messages_unacknowledged"]) == (3, 2, 1)

    eventually(counted)


def test_counts_the_bytes_and_persistent_messages_ready_and_unacknowledged(
    api: ApiClient, amqp, unique, cleanup
) -> None:
    name = cleanup.queue(unique("q"))
    channel = amqp.channel()
    channel.queue_declare(name, durable=True)
    publish(channel, name, b"x" * 100, delivery_mode=2, timestamp=1_700_000_000)
    publish(channel, name, b"y" * 30, timestamp=1_600_000_000)
    channel.basic_get(name)

    def counted() -> None:
        queue = api.get(path(name)).json
        assert {key: queue[key] for key in BYTES} == {
            "message_bytes": 130, "message_bytes_ready": 30, "message_bytes_unacknowledged": 100,
            "message_bytes_ram": 130, "message_bytes_persistent": 100, "message_bytes_paged_out": 0,
            "messages_ram": 2, "messages_ready_ram": 1, "messages_unacknowledged_ram": 1,
            "messages_persistent": 1, "messages_paged_out": 0,
        }
        # The oldest of the next ready message and the oldest unacknowledged one, as in RabbitMQ.
        assert queue["head_message_timestamp"] == 1_600_000_000

    eventually(counted)


def test_a_transient_queue_keeps_no_persistent_message(api: ApiClient, amqp, unique, cleanup) -> None:
    name = cleanup.queue(unique("q"))
    channel = amqp.channel()
    channel.queue_declare(name)
    publish(channel, name, b"x" * 10, delivery_mode=2)

    def counted() -> None:
        queue = api.get(path(name)).json
        assert (queue["message_bytes"], queue["messages_persistent"], queue["message_bytes_persistent"]) == (10, 0, 0)
        assert queue["head_message_timestamp"] is None

    eventually(counted)


def test_a_quorum_queue_counts_bytes_and_a_stream_does_not(api: ApiClient, amqp, unique, cleanup) -> None:
    quorum, stream = cleanup.queue(unique("quorum")), cleanup.queue(unique("stream"))
    channel = amqp.channel()
    channel.queue_declare(quorum, durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_declare(stream, durable=True, arguments={"x-queue-type": "stream"})
    for name in (quorum, stream):
        publish(channel, name, b"x" * 100, delivery_mode=2)
    publish(channel, quorum, b"y" * 30)

    def counted() -> None:
        queue = api.get(path(quorum)).json
        assert (queue["message_bytes"], queue["message_bytes_ready"], queue["message_bytes_unacknowledged"]) == (
            130, 130, 0)
        # A quorum queue stores every message, the transient one too.
        assert (queue["messages_persistent"], queue["message_bytes_persistent"]) == (2, 130)
        assert "head_message_timestamp" not in queue
        assert api.get(path(stream)).json["messages"] == 1

    eventually(counted)
    assert not set(BYTES) & set(api.get(path(stream)).json)


def test_a_queue_and_its_channel_left_alone_say_since_when_they_are_idle(
    api: ApiClient, amqp, unique, cleanup
) -> None:
    name = cleanup.queue(unique("q"))
    started = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
    channel = amqp.channel()
    channel.queue_declare(name)
    publish(channel, name, b"x")

    def idle(found: dict) -> datetime.datetime:
        # ISO 8601 in UTC to the millisecond, as RabbitMQ 3.10 gives it.
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", found["idle_since"])
        return datetime.datetime.fromisoformat(found["idle_since"])

    # RabbitMQ says so once the queue's process hibernates; ours once a statistics sample (every
    # 5 s) found nothing new since the one before.
    queue_idle = eventually(lambda: idle(api.get(path(name)).json), timeout=20)
    port = amqp._impl._transport._sock.getsockname()[1]

    def ours() -> dict:
        found = [found for found in api.get("/api/channels").json
                 if (found["number"], found["connection_details"]["peer_port"]) == (channel.channel_number, port)]
        assert len(found) == 1
        return found[0]

    channel_idle = eventually(lambda: idle(api.get(f"/api/channels/{segment(ours()['name'])}").json), timeout=20)
    assert started <= queue_idle <= datetime.datetime.now(datetime.timezone.utc)
    assert started <= channel_idle <= datetime.datetime.now(datetime.timezone.utc)


def test_consumer_capacity_is_full_for_idle_consumers_and_falls_while_messages_wait_for_them(
    api: ApiClient, amqp, unique, cleanup
) -> None:
    waiting, idle, quorum, alone, stream = (
        cleanup.queue(unique(kind)) for kind in ("waiting", "idle", "quorum", "alone", "stream"))
    channel = amqp.channel()
    channel.basic_qos(prefetch_count=1)
    channel.queue_declare(quorum, durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_declare(stream, durable=True, arguments={"x-queue-type": "stream"})
    for name in (waiting, idle, alone):
        channel.queue_declare(name)
    for name in (waiting, idle, quorum, stream):
        channel.basic_consume(name, lambda *args: None)
    # The consumer holds the first of these unacknowledged: the other two wait.
    publish(channel, waiting, b"1", b"2", b"3")

    def capacity(name: str) -> float:
        queue = api.get(path(name)).json
        # RabbitMQ's two figures may differ in the sixth decimal: each is read on its own.
        assert queue["consumer_utilisation"] == pytest.approx(queue["consumer_capacity"], abs=1e-3)
        return queue["consumer_capacity"]

    # RabbitMQ gives these keys once the queue's statistics are out (every 5 s). Its figure is a
    # moving average updated when consumers block or unblock (here it stays at about 0.5); ours is
    # the share of the last 5 s (here 0 from the first sample on).
    eventually(lambda: _assert_equal([capacity(idle), capacity(quorum), capacity(alone)], [1.0, 1.0, 0]), timeout=20)
    eventually(lambda: _assert_equal(capacity(waiting) < 0.9, True), timeout=20)
    assert not {"consumer_capacity", "consumer_utilisation"} & set(api.get(path(stream)).json)


def test_one_queue_details_its_consumers(api: ApiClient, amqp, unique, cleanup) -> None:
    name = cleanup.queue(unique("q"))
    channel = amqp.channel()
    channel.queue_declare(name)
    channel.basic_qos(prefetch_count=7)
    channel.basic_consume(name, lambda *args: None, consumer_tag="mgmt-tag")

    def detailed() -> dict:
        queue = api.get(path(name)).json
        assert queue["consumers"] == 1
        assert len(queue["consumer_details"]) == 1
        # RabbitMQ gives [] for channel_details until its statistics know the channel.
        assert queue["consumer_details"][0]["channel_details"]
        return queue["consumer_details"][0]

    consumer = eventually(detailed)
    assert {"consumer_tag", "ack_required", "prefetch_count", "channel_details", "queue", "exclusive"} <= set(consumer)
    assert (consumer["consumer_tag"], consumer["ack_required"], consumer["prefetch_count"]) == ("mgmt-tag", True, 7)
    assert consumer["queue"] == {"name": name, "vhost": "/"}
    assert {"name", "number", "connection_name", "peer_host", "peer_port", "user"} <= consumer["channel_details"].keys()
    assert consumer["channel_details"]["number"] == channel.channel_number


def test_delete_is_204_then_404(api: ApiClient, unique) -> None:
    name = unique("q")
    api.put(path(name))
    assert api.delete(path(name)).status == 204
    assert api.delete(path(name)).status == 404


def test_delete_if_empty_refuses_a_queue_with_messages(api: ApiClient, amqp, unique, cleanup) -> None:
    name = cleanup.queue(unique("q"))
    filled(api, amqp, name, b"x")
    reply = api.delete(path(name) + "?if-empty=true")
    assert reply.status == 400
    assert reply.json["reason"] == f"queue '{name}' in vhost '/' not empty"


def _assert_equal(found: object, expected: object) -> None:
    assert found == expected


def _with_keys(found: dict, keys: set[str]) -> dict:
    assert keys <= found.keys(), keys - found.keys()
    return found


def test_purge_empties_the_queue(api: ApiClient, amqp, unique, cleanup) -> None:
    name = cleanup.queue(unique("q"))
    channel = filled(api, amqp, name, b"1", b"2")
    assert api.delete(path(name) + "/contents").status == 204
    assert channel.queue_declare(name, passive=True).method.message_count == 0
    assert api.delete(path(unique("missing")) + "/contents").status == 404


def test_get_with_requeue_keeps_the_order_and_marks_redelivered(api: ApiClient, amqp, unique, cleanup) -> None:
    name = cleanup.queue(unique("q"))
    channel = filled(api, amqp, name, b"m0", b"m1", b"m2")
    first = get(api, name, 2)
    assert [(m["payload"], m["redelivered"], m["message_count"]) for m in first] == [("m0", False, 2), ("m1", False, 1)]
    assert MESSAGE_KEYS <= first[0].keys()
    assert (first[0]["exchange"], first[0]["routing_key"], first[0]["payload_bytes"]) == ("", name, 2)
    again = get(api, name, "3", "reject_requeue_true")
    assert [(m["payload"], m["redelivered"]) for m in again] == [("m0", True), ("m1", True), ("m2", False)]
    assert [channel.basic_get(name, auto_ack=True)[2] for _ in range(3)] == [b"m0", b"m1", b"m2"]


def test_get_with_ack_takes_the_messages(api: ApiClient, amqp, unique, cleanup) -> None:
    name = cleanup.queue(unique("q"))
    channel = filled(api, amqp, name, b"m0", b"m1")
    assert [m["payload"] for m in get(api, name, 1, "ack_requeue_false")] == ["m0"]
    assert channel.basic_get(name, auto_ack=True)[2] == b"m1"
    assert get(api, name, 1, "ack_requeue_false") == []


def test_get_with_reject_dead_letters(api: ApiClient, amqp, unique, cleanup) -> None:
    name, dead = cleanup.queue(unique("q")), cleanup.queue(unique("dead"))
    channel = amqp.channel()
    channel.queue_declare(dead)
    channel.queue_declare(name, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead})
    publish(channel, name, b"m0")
    eventually(lambda: _assert_equal(api.get(path(name)).json["messages"], 1))
    assert [m["payload"] for m in get(api, name, 1, "reject_requeue_false")] == ["m0"]
    method, properties, body = channel.basic_get(dead, auto_ack=True)
    assert body == b"m0"
    assert properties.headers["x-death"][0]["reason"] == "rejected"


def test_get_encodes_binary_as_base64_and_truncates(api: ApiClient, amqp, unique, cleanup) -> None:
    name = cleanup.queue(unique("q"))
    channel = amqp.channel()
    channel.queue_declare(name)
    publish(channel, name, b"\xff\xfebinary", content_type="application/octet-stream", headers={"h": 1},
            delivery_mode=2, priority=3)
    publish(channel, name, b"hello world")
    eventually(lambda: _assert_equal(api.get(path(name)).json["messages"], 2))
    binary, text = get(api, name, 2, truncate=5)
    assert (binary["payload"], binary["payload_encoding"], binary["payload_bytes"]) == ("//5iaW4=", "base64", 8)
    assert binary["properties"] == {"content_type": "application/octet-stream", "headers": {"h": 1},
                                    "delivery_mode": 2, "priority": 3}
    assert (text["payload"], text["payload_encoding"], text["payload_bytes"]) == ("hello", "string", 11)
    reply = api.post(path(name) + "/get", {"count": 1, "ackmode": "ack_requeue_true", "encoding": "base64"})
    assert reply.json[0]["payload"] == "//5iaW5hcnk="


@pytest.mark.parametrize(("body", "reason"), [
    ({"ackmode": "ack_requeue_true", "encoding": "auto"}, "[{key_missing,count}]"),
    ({"count": 1, "ackmode": "ack_requeue_true"}, "[{key_missing,encoding}]"),
    ({"count": 1, "ackmode": "ack_requeue_true", "encoding": "hex"},
     "Unsupported encoding. Please use auto or base64."),
])
def test_get_with_a_bad_request_is_400(api: ApiClient, unique, cleanup, body: dict, reason: str) -> None:
    name = cleanup.queue(unique("q"))
    api.put(path(name))
    reply = api.post(path(name) + "/get", body)
    assert reply.status == 400
    assert reply.json == {"error": "bad_request", "reason": reason}


def test_a_single_active_consumer_queue_names_its_active_consumer(api: ApiClient, amqp, unique, cleanup) -> None:
    name = cleanup.queue(unique("q"))
    channel = amqp.channel()
    channel.queue_declare(name, arguments={"x-single-active-consumer": True})
    channel.basic_consume(name, lambda *args: None, consumer_tag="first")
    channel.basic_consume(name, lambda *args: None, consumer_tag="second")

    def detailed() -> None:
        queue = api.get(path(name)).json
        assert queue["single_active_consumer_tag"] == "first"
        activity = {c["consumer_tag"]: (c["active"], c["activity_status"]) for c in queue["consumer_details"]}
        assert activity == {"first": (True, "single_active"), "second": (False, "waiting")}

    eventually(detailed)
