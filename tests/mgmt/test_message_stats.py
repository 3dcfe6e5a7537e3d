"""`message_stats` in the API's JSON, keyed as RabbitMQ 3.10 keys them."""

from __future__ import annotations

import time

import pika
from broker.test_stats import CHANNEL_KEYS, EXCHANGE_KEYS, NOT_COUNTED, QUEUE_KEYS, keys

from .client import eventually, segment


def test_overview_message_stats_follow_traffic(api, amqp, unique, cleanup) -> None:
    before = api.get("/api/overview").json["message_stats"]
    queue = cleanup.queue(unique("stats"))
    channel = amqp.channel()
    channel.queue_declare(queue)
    channel.confirm_delivery()
    for _ in range(3):
        channel.basic_publish("", queue, b"m")
    method, _, _ = channel.basic_get(queue)
    channel.basic_ack(method.delivery_tag)
    # RabbitMQ's management takes its counts every 5 s; ours are current.
    deadline = time.monotonic() + 15
    while True:
        after = api.get("/api/overview").json["message_stats"]
        grown = {name: after.get(name, 0) - before.get(name, 0) for name in ("publish", "confirm", "get", "ack")}
        if min(grown.values()) >= 1 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    # The reference broker is shared with other tests: its counts grow by at least ours.
    assert grown["publish"] >= 3 and grown["confirm"] >= 3 and grown["get"] >= 1 and grown["ack"] >= 1
    assert keys(after) - NOT_COUNTED == CHANNEL_KEYS


def test_queue_exchange_and_channel_message_stats_follow_traffic(api, amqp_url, unique, cleanup) -> None:
    queue, exchange = cleanup.queue(unique("stats")), cleanup.exchange(unique("stats"))
    provided = unique("connection")
    params = pika.URLParameters(amqp_url)
    params.client_properties = {"connection_name": provided}
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        channel.exchange_declare(exchange, "fanout")
        channel.queue_declare(queue)
        channel.queue_bind(queue, exchange)
        # As RabbitMQ: nothing counted yet, no message_stats at all.
        assert "message_stats" not in api.get(f"/api/queues/%2F/{segment(queue)}").json
        assert "message_stats" not in api.get(f"/api/exchanges/%2F/{segment(exchange)}").json
        for _ in range(4):
            channel.basic_publish(exchange, "", b"m")
        method, _, _ = channel.basic_get(queue)
        channel.basic_ack(method.delivery_tag)

        def counted(path: str, expected: dict[str, int]) -> dict:
            found = api.get(path).json["message_stats"]
            assert {name: found[name] for name in expected} == expected
            return found

        queue_stats = eventually(lambda: counted(
            f"/api/queues/%2F/{segment(queue)}", {"publish": 4, "get": 1, "ack": 1, "deliver_get": 1}))
        assert keys(queue_stats) == QUEUE_KEYS
        exchange_stats = eventually(lambda: counted(
            f"/api/exchanges/%2F/{segment(exchange)}", {"publish_in": 4, "publish_out": 4}))
        assert keys(exchange_stats) == EXCHANGE_KEYS

        def channel_stats() -> dict:
            names = [c["name"] for c in api.get("/api/connections").json if c.get("user_provided_name") == provided]
            assert len(names) == 1
            found = [c for c in api.get("/api/channels").json if c["connection_details"]["name"] == names[0]]
            assert len(found) == 1
            stats = found[0]["message_stats"]
            assert (stats["publish"], stats["get"], stats["ack"]) == (4, 1, 1)
            return stats

        assert keys(eventually(channel_stats)) == CHANNEL_KEYS
    finally:
        connection.close()


CHURN = ("channel_closed", "channel_created", "connection_closed", "connection_created", "queue_created",
         "queue_declared", "queue_deleted")


def churn_counts(api) -> tuple[dict[str, int], dict[str, int]]:
    """The churn counts of the overview's `churn_rates`, and of the node."""
    overview = api.get("/api/overview").json["churn_rates"]
    [node] = api.get("/api/nodes").json
    return {name: overview[name] for name in CHURN}, {name: node[name] for name in CHURN}


def test_the_churn_of_connections_channels_and_queues_is_in_the_overview_and_the_node(api, amqp_url, unique) -> None:
    assert keys(api.get("/api/overview").json["churn_rates"]) == set(CHURN)
    before = churn_counts(api)
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    queue = unique("churn")
    channel.queue_declare(queue)
    channel.queue_delete(queue)
    connection.close()

    def grown() -> None:
        for now, then in zip(churn_counts(api), before):
            # The reference broker is shared with other tests: its counts grow by at least ours.
            assert all(now[name] >= then[name] + 1 for name in CHURN), (now, then)

    eventually(grown)
