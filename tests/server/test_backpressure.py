"""A client that stops reading does not make the broker buffer without bound."""

from __future__ import annotations

import time

import pika

from amqpbroker.server.amqp import HIGH_WATERMARK
from amqpbroker.testing import Broker

MESSAGE_SIZE = 10_000
MESSAGES = 3_000  # 30 MB: far more than the watermark plus what the kernel's socket buffers hold


def test_consumer_that_stops_reading_leaves_messages_in_the_queue() -> None:
    with Broker(port=0) as broker:
        params = pika.URLParameters(broker.url)
        consumer = pika.BlockingConnection(params)
        consumer_channel = consumer.channel()
        consumer_channel.queue_declare("bp")
        received: list[bytes] = []
        consumer_channel.basic_consume("bp", lambda ch, m, p, body: received.append(body), auto_ack=True)

        publisher = pika.BlockingConnection(params)
        publisher_channel = publisher.channel()
        publisher_channel.confirm_delivery()
        for n in range(MESSAGES):
            publisher_channel.basic_publish("", "bp", n.to_bytes(4, "big") + bytes(MESSAGE_SIZE - 4))

        def state() -> tuple[int, int]:
            queue = broker.server.broker.vhosts["/"].queues["bp"]
            buffered = max(connection.pending_bytes for connection in broker.server.connections)
            return queue.message_count, buffered

        ready, buffered = broker.call(state)
        assert ready > MESSAGES // 2, "messages went into the stalled consumer's buffers, not the queue"
        assert buffered <= HIGH_WATERMARK + MESSAGE_SIZE + 1024

        deadline = time.monotonic() + 30
        while len(received) < MESSAGES and time.monotonic() < deadline:
            consumer.process_data_events(time_limit=0.1)
        assert [int.from_bytes(body[:4], "big") for body in received] == list(range(MESSAGES))
        publisher.close()
        consumer.close()
