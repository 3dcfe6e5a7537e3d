"""Many messages through one queue: order and exactly-once delivery hold at volume."""

from __future__ import annotations

import pytest

from .support import wait_until

COUNT = 10_000


@pytest.mark.slow
def test_ten_thousand_messages_arrive_in_order_exactly_once_with_manual_ack(connect):
    consumer_connection = connect()
    consumer = consumer_connection.channel()
    queue = consumer.queue_declare("", exclusive=True).method.queue
    consumer.basic_qos(prefetch_count=500)
    received: list[int] = []

    def on_message(channel, method, properties, body):
        received.append(int(body))
        if len(received) % 100 == 0:
            channel.basic_ack(method.delivery_tag, multiple=True)

    consumer.basic_consume(queue, on_message)
    publisher = connect().channel()
    for number in range(COUNT):
        publisher.basic_publish("", queue, b"%d" % number)

    wait_until(consumer_connection, lambda: len(received) >= COUNT, timeout=15, what=f"{COUNT} messages")
    consumer_connection.process_data_events(time_limit=0.2)
    consumer.close()

    assert received == list(range(COUNT))
    assert consumer_connection.channel().basic_get(queue) == (None, None, None), "every message was acked"
