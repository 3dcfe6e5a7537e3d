"""The manual clock, observed by pika: every broker timer moves only when the test advances it."""

from __future__ import annotations

import pika
import pika.exceptions
import pytest

from amqpbroker.testing import Broker


@pytest.fixture
def broker(amqp_broker_factory):
    return amqp_broker_factory(clock="manual")


def expires_in(ms: int) -> pika.BasicProperties:
    return pika.BasicProperties(expiration=str(ms))


def bodies(channel, queue: str) -> list[bytes]:
    found = []
    while True:
        method, _, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return found
        found.append(body)


def dead_lettering_to(target: str, ttl_ms: int | None = None) -> dict:
    arguments = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": target}
    if ttl_ms is not None:
        arguments["x-message-ttl"] = ttl_ms
    return arguments


def test_advancing_expires_and_dead_letters_in_deadline_order_at_once(broker, connect):
    channel = connect(broker.url).channel()
    channel.confirm_delivery()  # each publish has arrived when basic_publish returns
    channel.queue_declare("parked")
    channel.queue_declare("slow", arguments=dead_lettering_to("parked", 30_000))
    channel.queue_declare("fast", arguments=dead_lettering_to("parked"))
    channel.basic_publish("", "slow", b"thirty")
    channel.basic_publish("", "fast", b"ten", expires_in(10_000))
    channel.basic_publish("", "fast", b"twenty", expires_in(20_000))

    broker.advance(9.5)
    assert bodies(channel, "parked") == []
    assert broker.queue("fast").message_count == 2

    broker.advance(25)
    assert bodies(channel, "parked") == [b"ten", b"twenty", b"thirty"]
    expired = [(event.body, event.queue, event.at) for event in broker.history() if event.kind == "expired"]
    assert expired == [(b"ten", "fast", 10.0), (b"twenty", "fast", 20.0), (b"thirty", "slow", 30.0)]


def test_a_message_dead_lettered_into_another_ttl_queue_expires_there_within_one_advance(broker, connect):
    channel = connect(broker.url).channel()
    channel.confirm_delivery()
    channel.queue_declare("end")
    channel.queue_declare("second", arguments=dead_lettering_to("end", 10_000))
    channel.queue_declare("first", arguments=dead_lettering_to("second", 10_000))
    channel.basic_publish("", "first", b"hop")

    broker.advance(25)

    [message] = broker.messages("end")
    deaths = message.properties.headers["x-death"]
    assert [(death["queue"], death["reason"]) for death in deaths] == [("second", "expired"), ("first", "expired")]
    assert [(event.kind, event.queue, event.at) for event in broker.history() if event.kind == "expired"] == [
        ("expired", "first", 10.0), ("expired", "second", 20.0)]


def test_x_expires_deletes_the_unused_queue_when_the_clock_says(broker, connect):
    connection = connect(broker.url)
    connection.channel().queue_declare("idle", arguments={"x-expires": 60_000})

    broker.advance(59)
    connection.channel().queue_declare("idle", passive=True)
    broker.advance(61)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        connection.channel().queue_declare("idle", passive=True)
    assert closed.value.reply_code == 404


def test_a_delayed_message_is_released_when_the_clock_reaches_its_delay(broker, connect):
    channel = connect(broker.url).channel()
    channel.confirm_delivery()
    channel.exchange_declare("later", "x-delayed-message", arguments={"x-delayed-type": "direct"})
    channel.queue_declare("due")
    channel.queue_bind("due", "later", "due")
    channel.basic_publish("later", "due", b"in a minute", pika.BasicProperties(headers={"x-delay": 60_000}))

    broker.advance(59.9)
    assert bodies(channel, "due") == []
    broker.advance(0.1)
    assert bodies(channel, "due") == [b"in a minute"]


def test_the_consumer_timeout_closes_the_channel_when_the_clock_passes_it(amqp_broker_factory, connect):
    broker = amqp_broker_factory(clock="manual", consumer_timeout=60_000)
    connection = connect(broker.url)
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare("slow")
    channel.basic_publish("", "slow", b"work")
    channel.basic_consume("slow", lambda *_: None)
    broker.wait_for(lambda: broker.queue("slow").unacked_count == 1)

    broker.advance(59)
    connection.process_data_events(time_limit=0.05)
    assert channel.is_open
    broker.advance(2)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.start_consuming()
    assert closed.value.reply_code == 406
    assert "delivery acknowledgement on channel 1 timed out" in closed.value.reply_text
    assert broker.queue("slow").message_count == 1


def test_the_real_clock_is_the_default_and_cannot_be_advanced(amqp_broker):
    with pytest.raises(RuntimeError, match="clock='manual'"):
        amqp_broker.advance(1)


def test_the_clock_cannot_go_back(broker):
    with pytest.raises(ValueError):
        broker.advance(-1)


def test_an_unknown_clock_is_refused():
    with pytest.raises(ValueError, match="'real' or 'manual'"):
        Broker(clock="fast").start()


def test_a_restart_keeps_the_manual_clock(amqp_broker_factory, connect, tmp_path):
    broker = amqp_broker_factory(clock="manual", data_dir=str(tmp_path))
    channel = connect(broker.url).channel()
    channel.confirm_delivery()
    channel.queue_declare("kept", durable=True, arguments={"x-message-ttl": 60_000})
    channel.basic_publish("", "kept", b"persistent", pika.BasicProperties(delivery_mode=2))
    broker.advance(30)

    broker.restart(close_timeout=0)
    assert broker.queue("kept").message_count == 1
    broker.advance(31)
    assert broker.queue("kept").message_count == 0


def test_the_default_wait_gives_up_with_a_timeout_error(broker):
    with pytest.raises(TimeoutError):
        broker.wait_for(lambda: False, timeout=0.05)


def test_advancing_heartbeats_too_drops_a_client_that_missed_them(broker):
    params = pika.URLParameters(broker.url)
    params.heartbeat = 60
    connection = pika.BlockingConnection(params)
    broker.advance(3600)
    connection.process_data_events(time_limit=0.05)
    assert connection.is_open  # heartbeats keep real time unless asked

    broker.advance(121, heartbeats=True)
    with pytest.raises(pika.exceptions.StreamLostError):
        connection.process_data_events(time_limit=5)
