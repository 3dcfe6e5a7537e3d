"""Length limits: `x-max-length`, `x-max-length-bytes` and what `x-overflow` does at the limit."""

from __future__ import annotations

import pytest

from amqpbroker import core
from amqpbroker.protocol import spec
from amqpbroker.store import MemoryStore

from .conftest import Peer
from .test_ttl import dropped, queue  # noqa: F401 (the fixture)


def bodies(broker: core.Broker, name: str) -> list[bytes]:
    return [entry.message.body for entry in queue(broker, name).peek()]


def confirm(peer) -> None:
    peer.handle(spec.ConfirmSelect())
    peer.sink.take()


def confirms(peer) -> list[tuple[str, int, bool]]:
    peer.client.flush_confirms()
    return [
        (type(f.method).__name__, f.method.delivery_tag, f.method.multiple)
        for f in peer.sink.take()
        if type(f.method) in (spec.BasicAck, spec.BasicNack)
    ]


def test_drop_head_drops_the_oldest(peer, broker, dropped) -> None:
    peer.declare("q", arguments={"x-max-length": 2})
    for body in (b"1", b"2", b"3", b"4"):
        peer.publish("", "q", body)
    assert bodies(broker, "q") == [b"3", b"4"]
    assert dropped == [("q", b"1", "maxlen"), ("q", b"2", "maxlen")]


def test_max_length_counts_ready_messages_only(peer, broker) -> None:
    peer.declare("q", arguments={"x-max-length": 1})
    peer.qos(1)
    peer.consume("q")
    peer.publish("", "q", b"unacked")
    peer.publish("", "q", b"ready")
    assert bodies(broker, "q") == [b"ready"]
    assert peer.sink.bodies() == [b"unacked"]


def test_max_length_bytes_counts_bodies(peer, broker, dropped) -> None:
    peer.declare("q", arguments={"x-max-length-bytes": 10})
    peer.publish("", "q", b"aaaa")
    peer.publish("", "q", b"bbbb")
    peer.publish("", "q", b"cc")
    assert bodies(broker, "q") == [b"aaaa", b"bbbb", b"cc"]
    peer.publish("", "q", b"d")
    assert bodies(broker, "q") == [b"bbbb", b"cc", b"d"]
    # A message larger than the limit by itself leaves nothing behind it.
    peer.publish("", "q", b"x" * 11)
    assert bodies(broker, "q") == []
    assert [reason for _, _, reason in dropped] == ["maxlen"] * 5


def test_a_requeue_gives_the_bytes_back(peer, broker) -> None:
    peer.declare("q", arguments={"x-max-length-bytes": 4})
    peer.publish("", "q", b"ab")
    assert peer.get("q", no_ack=False) == b"ab"
    peer.publish("", "q", b"cd")
    peer.publish("", "q", b"ef")
    assert bodies(broker, "q") == [b"cd", b"ef"]
    peer.handle(spec.BasicRecover(requeue=True))
    # The requeued message is back in front, and over the limit: dropped from the head at once,
    # as RabbitMQ 3.10 does.
    assert bodies(broker, "q") == [b"cd", b"ef"]
    peer.publish("", "q", b"gh")
    assert bodies(broker, "q") == [b"ef", b"gh"]


@pytest.mark.parametrize("queue_type", ["classic", "quorum"])
def test_messages_returned_over_the_limit_are_dropped_from_the_head(peer, broker, dropped, connect,
                                                                     queue_type: str) -> None:
    peer.declare("q", durable=True, arguments={"x-max-length": 2, "x-queue-type": queue_type})
    consumer = connect()
    consumer.qos(2)
    consumer.consume("q")
    for body in (b"a0", b"a1", b"b0", b"b1"):
        peer.publish("", "q", body)
    assert consumer.sink.bodies() == [b"a0", b"a1"]
    consumer.client.close_channel(1)
    assert bodies(broker, "q") == [b"b0", b"b1"]
    assert dropped == [("q", b"a0", "maxlen"), ("q", b"a1", "maxlen")]


@pytest.mark.parametrize("overflow", ["reject-publish", "reject-publish-dlx"])
def test_reject_publish_nacks_what_does_not_fit(peer, broker, overflow) -> None:
    peer.declare("q", arguments={"x-max-length": 2, "x-overflow": overflow})
    confirm(peer)
    for body in (b"1", b"2", b"3"):
        peer.publish("", "q", body)
    assert confirms(peer) == [("BasicAck", 2, True), ("BasicNack", 3, False)]
    assert bodies(broker, "q") == [b"1", b"2"]
    assert peer.get("q") == b"1"
    peer.publish("", "q", b"4")
    assert confirms(peer) == [("BasicAck", 4, False)]
    assert bodies(broker, "q") == [b"2", b"4"]


def test_reject_publish_without_confirms_drops_silently(peer, broker) -> None:
    peer.declare("q", arguments={"x-max-length-bytes": 3, "x-overflow": "reject-publish"})
    peer.sink.take()
    peer.publish("", "q", b"abc")
    peer.publish("", "q", b"d")
    assert bodies(broker, "q") == [b"abc"]
    assert peer.sink.frames == []


def test_reject_publish_dlx_drops_the_refused_message_for_maxlen(peer, broker, dropped) -> None:
    peer.declare("q", arguments={"x-max-length": 1, "x-overflow": "reject-publish-dlx"})
    peer.publish("", "q", b"kept")
    peer.publish("", "q", b"refused")
    assert dropped == [("q", b"refused", "maxlen")]
    assert broker.memory.used == len(b"kept")


def test_reject_publish_alone_is_not_dropped(peer, dropped) -> None:
    peer.declare("q", arguments={"x-max-length": 0, "x-overflow": "reject-publish"})
    peer.publish("", "q", b"refused")
    assert dropped == []


def test_one_queue_refusing_is_enough_for_a_nack(peer, broker) -> None:
    peer.exchange("fan", "fanout")
    peer.declare("full", arguments={"x-max-length": 0, "x-overflow": "reject-publish"})
    peer.declare("open")
    peer.bind("full", "fan")
    peer.bind("open", "fan")
    confirm(peer)
    peer.publish("fan", "", b"m")
    assert confirms(peer) == [("BasicNack", 1, False)]
    assert bodies(broker, "open") == [b"m"]


def test_a_nack_waits_for_the_confirms_before_it() -> None:
    store = MemoryStore()
    broker = core.Broker(store=store)
    peer = Peer(broker)
    peer.declare("durable", durable=True)
    peer.declare("full", arguments={"x-max-length": 0, "x-overflow": "reject-publish"})
    confirm(peer)
    peer.channel(1).publish(spec.BasicPublish(exchange="", routing_key="durable"), b"\x10\x00\x02", b"p")
    peer.publish("", "full", b"refused")
    assert confirms(peer) == []
    broker.commit()
    assert [(type(f.method).__name__, f.method.delivery_tag) for f in peer.sink.take()] == [
        ("BasicAck", 1), ("BasicNack", 2)
    ]


def test_a_message_every_durable_queue_refused_is_not_stored() -> None:
    store = MemoryStore()
    broker = core.Broker(store=store)
    peer = Peer(broker)
    peer.declare("q", durable=True, arguments={"x-max-length": 0, "x-overflow": "reject-publish-dlx"})
    peer.channel(1).publish(spec.BasicPublish(exchange="", routing_key="q"), b"\x10\x00\x02", b"p")
    broker.commit()
    assert store.max_message_id() == -1
    assert list(store.queue_entries("/", "q")) == []


def test_drop_head_on_a_durable_queue_removes_the_stored_entry() -> None:
    store = MemoryStore()
    broker = core.Broker(store=store)
    peer = Peer(broker)
    peer.declare("q", durable=True, arguments={"x-max-length": 1})
    publish = spec.BasicPublish(exchange="", routing_key="q")
    peer.channel(1).publish(publish, b"\x10\x00\x02", b"old")
    broker.commit()
    peer.channel(1).publish(publish, b"\x10\x00\x02", b"new")
    broker.commit()
    [(_, message_id, _)] = store.queue_entries("/", "q")
    assert store.load_body(message_id) == b"new"


def test_a_direct_reply_is_confirmed_not_refused(peer, connect) -> None:
    peer.consume("amq.rabbitmq.reply-to", no_ack=True)
    peer.publish("", "nowhere", b"request", reply_to="amq.rabbitmq.reply-to")
    replier = connect()
    replier.channel(1)
    confirm(replier)
    reply_to = next(iter(peer.client.broker.reply_to))
    replier.publish("", f"amq.rabbitmq.reply-to.{reply_to}", b"reply")
    assert confirms(replier) == [("BasicAck", 1, False)]
    assert peer.sink.bodies() == [b"reply"]
