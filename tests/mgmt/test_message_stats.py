"""`message_stats` in the API's JSON, keyed as RabbitMQ 3.10 keys them."""

from __future__ import annotations

import time

from broker.test_stats import CHANNEL_KEYS, NOT_COUNTED, keys


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
