"""The event history and the waits built on it, observed through pika clients."""

from __future__ import annotations

import threading

import pika
import pytest

from amqpbroker.core import history as core_history
from amqpbroker.core.message import Message


def kinds(events, queue=None):
    return [(event.kind, event.queue) for event in events if queue is None or event.queue in (None, queue)]


def test_the_history_lists_what_happened_to_messages_in_order(amqp_broker, amqp_vhost, amqp_url, connect):
    channel = connect(amqp_url).channel()
    channel.confirm_delivery()
    channel.queue_declare("dead")
    channel.queue_declare("work", arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"})
    channel.basic_publish("", "work", b"one", pika.BasicProperties(content_type="text/plain"))
    channel.basic_publish("", "work", b"two")
    channel.basic_publish("", "work", b"three")
    with pytest.raises(pika.exceptions.UnroutableError):
        channel.basic_publish("", "nowhere", b"lost", mandatory=True)

    first, _, _ = channel.basic_get("work")
    channel.basic_ack(first.delivery_tag)
    second, _, _ = channel.basic_get("work")
    channel.basic_nack(second.delivery_tag, requeue=True)
    again, _, _ = channel.basic_get("work")
    channel.basic_reject(again.delivery_tag, requeue=False)
    channel.basic_get("dead")  # a round trip: the broker has handled the reject

    events = amqp_broker.history(amqp_vhost)
    assert kinds(events) == [
        ("published", None), ("routed", "work"),
        ("published", None), ("routed", "work"),
        ("published", None), ("routed", "work"),
        ("published", None), ("returned", None),
        ("delivered", "work"), ("acked", "work"),
        ("delivered", "work"), ("nacked", "work"),
        ("delivered", "work"), ("rejected", "work"), ("dead-lettered", "work"), ("routed", "dead"),
        ("delivered", "dead"),
    ]
    published = events[0]
    assert (published.exchange, published.routing_key, published.body) == ("", "work", b"one")
    assert published.properties.content_type == "text/plain"
    assert [event.body for event in events if event.kind == "delivered"] == [b"one", b"two", b"two", b"two"]
    returned = next(event for event in events if event.kind == "returned")
    assert (returned.routing_key, returned.reason, returned.body) == ("nowhere", "NO_ROUTE", b"lost")
    dead_lettered = next(event for event in events if event.kind == "dead-lettered")
    assert dead_lettered.reason == "rejected"
    rerouted = events[events.index(dead_lettered) + 1]
    assert rerouted.properties.headers["x-death"][0]["reason"] == "rejected"


def test_the_history_keeps_only_the_newest_events(amqp_broker_factory, connect):
    broker = amqp_broker_factory(history_limit=3)
    channel = connect(broker.url).channel()
    channel.confirm_delivery()
    channel.queue_declare("q")
    for body in (b"1", b"2", b"3"):
        channel.basic_publish("", "q", body)

    events = broker.history()
    assert [(event.kind, event.body) for event in events] == [("routed", b"2"), ("published", b"3"), ("routed", b"3")]
    assert broker.count("routed", "q") == 3


def test_wait_acked_returns_once_a_consumer_in_another_thread_acked(amqp_broker, amqp_vhost, amqp_url, connect):
    channel = connect(amqp_url).channel()
    channel.confirm_delivery()
    channel.queue_declare("jobs")
    for n in range(3):
        channel.basic_publish("", "jobs", str(n).encode())

    def worker():
        consumer = connect(amqp_url).channel()
        for method, _, _ in consumer.consume("jobs", inactivity_timeout=5):
            if method is None:
                return
            consumer.basic_ack(method.delivery_tag)
            if method.delivery_tag == 3:
                return

    thread = threading.Thread(target=worker)
    thread.start()
    amqp_broker.wait_acked("jobs", 3, amqp_vhost)
    assert amqp_broker.queue("jobs", amqp_vhost).message_count == 0
    thread.join()


def test_wait_for_wakes_on_broker_events(amqp_broker, amqp_vhost, amqp_url, connect):
    channel = connect(amqp_url).channel()
    channel.queue_declare("inbox")
    publisher = threading.Timer(0.05, lambda: channel.basic_publish("", "inbox", b"late"))
    publisher.start()
    try:
        amqp_broker.wait_for(lambda: amqp_broker.queue("inbox", amqp_vhost).message_count == 1)
    finally:
        publisher.join()
    assert [message.body for message in amqp_broker.messages("inbox", amqp_vhost)] == [b"late"]


def test_wait_for_gives_up_with_a_timeout_error(amqp_broker):
    with pytest.raises(TimeoutError, match="still false after 0.05 s"):
        amqp_broker.wait_for(lambda: False, timeout=0.05)


def test_the_history_lets_its_oldest_records_go_past_its_bytes_of_bodies(monkeypatch):
    monkeypatch.setattr(core_history, "BODY_BYTES_LIMIT", 10)
    recorded = core_history.History(clock=lambda: 0.0)
    for body in (b"aaaa", b"bbbb", b"cccc"):
        recorded.record("published", "/", Message("", "q", b"", body))

    assert [record.body for record in recorded.records] == [b"bbbb", b"cccc"]
    assert recorded.dropped == 1
