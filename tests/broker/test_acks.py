"""Acknowledgements: ack, nack, reject, recover, and requeueing in the original order."""

from __future__ import annotations

import pytest

from amqpbroker import core
from amqpbroker.protocol import BasicProperties, spec


def fill(peer, queue: str, count: int) -> None:
    peer.declare(queue)
    for i in range(1, count + 1):
        peer.publish("", queue, b"m%d" % i)


def ready(broker: core.Broker, queue: str) -> list[tuple[bytes, bool]]:
    """The queue's ready messages in delivery order, with their redelivered flags."""
    return [(e.message.body, e.redelivered) for e in broker.vhosts["/"].queues[queue].peek()]


def delivered(sink) -> list[tuple[int, bytes, bool]]:
    return [(f.method.delivery_tag, f.body, f.method.redelivered) for f in sink.deliveries()]


def get(peer, queue: str, ch: int = 1, no_ack: bool = False) -> spec.BasicGetOk:
    peer.handle(spec.BasicGet(queue=queue, no_ack=no_ack), ch)
    return peer.sink.frames[-1].method


def test_consumer_deliveries_carry_increasing_tags_and_message_fields(peer) -> None:
    peer.declare("q")
    peer.consume("q", "c")
    peer.publish("", "q", b"a")
    peer.publish("", "q", b"b")
    assert [f.method for f in peer.sink.deliveries()] == [
        spec.BasicDeliver(consumer_tag="c", delivery_tag=1, redelivered=False, exchange="", routing_key="q"),
        spec.BasicDeliver(consumer_tag="c", delivery_tag=2, redelivered=False, exchange="", routing_key="q"),
    ]
    assert peer.sink.bodies() == [b"a", b"b"]


def test_delivery_properties_are_forwarded_unchanged(peer) -> None:
    peer.declare("q")
    peer.consume("q", "c")
    peer.publish("", "q", b"m", headers={"h": "v"})
    frame = peer.sink.deliveries()[0]
    assert frame.properties == BasicProperties(headers={"h": "v"}).encode()


def test_delivery_tags_are_per_channel(peer) -> None:
    fill(peer, "q", 2)
    assert get(peer, "q", ch=1).delivery_tag == 1
    assert get(peer, "q", ch=2).delivery_tag == 1


def test_ack_removes_the_message(broker, peer) -> None:
    fill(peer, "q", 1)
    peer.consume("q", "c")
    peer.ack(1)
    queue = broker.vhosts["/"].queues["q"]
    assert (queue.message_count, queue.unacked_count) == (0, 0)
    peer.handle(spec.BasicCancel(consumer_tag="c"))
    assert ready(broker, "q") == []


def test_multiple_ack_acknowledges_every_tag_up_to_the_one_given(broker, peer) -> None:
    fill(peer, "q", 4)
    peer.consume("q", "c")
    peer.ack(3, multiple=True)
    assert broker.vhosts["/"].queues["q"].unacked_count == 1
    with pytest.raises(core.ChannelException, match="unknown delivery tag 2"):
        peer.ack(2)


def test_multiple_ack_of_tag_zero_acknowledges_everything(broker, peer) -> None:
    fill(peer, "q", 3)
    peer.consume("q", "c")
    peer.ack(0, multiple=True)
    assert broker.vhosts["/"].queues["q"].unacked_count == 0


def test_unknown_delivery_tag_is_406(peer) -> None:
    fill(peer, "q", 1)
    peer.consume("q", "c")
    with pytest.raises(core.ChannelException) as raised:
        peer.ack(99)
    assert (raised.value.reply_code, raised.value.reply_text) == (406, "PRECONDITION_FAILED - unknown delivery tag 99")
    with pytest.raises(core.ChannelException, match="^PRECONDITION_FAILED - unknown delivery tag 5$"):
        peer.ack(5, multiple=True)


def test_double_ack_is_406(peer) -> None:
    fill(peer, "q", 1)
    peer.consume("q", "c")
    peer.ack(1)
    with pytest.raises(core.ChannelException) as raised:
        peer.ack(1)
    assert (raised.value.reply_code, raised.value.reply_text) == (406, "PRECONDITION_FAILED - unknown delivery tag 1")


@pytest.mark.parametrize(
    "method",
    [spec.BasicReject(delivery_tag=1), spec.BasicNack(delivery_tag=1)],
    ids=lambda m: m.NAME,
)
def test_settling_an_already_acked_tag_is_406(peer, method) -> None:
    fill(peer, "q", 1)
    peer.consume("q", "c")
    peer.ack(1)
    with pytest.raises(core.ChannelException, match="unknown delivery tag 1"):
        peer.handle(method)


def test_delivery_tag_of_another_channel_is_unknown(peer) -> None:
    fill(peer, "q", 1)
    peer.consume("q", "c", ch=1)
    with pytest.raises(core.ChannelException, match="unknown delivery tag 1"):
        peer.ack(1, ch=2)


def test_no_ack_consumer_leaves_nothing_to_acknowledge(broker, peer) -> None:
    fill(peer, "q", 2)
    peer.consume("q", "c", no_ack=True)
    assert len(peer.sink.deliveries()) == 2
    assert broker.vhosts["/"].queues["q"].unacked_count == 0
    with pytest.raises(core.ChannelException, match="unknown delivery tag 1"):
        peer.ack(1)


@pytest.mark.parametrize(
    "method",
    [spec.BasicNack(delivery_tag=2, requeue=True), spec.BasicReject(delivery_tag=2, requeue=True)],
    ids=lambda m: m.NAME,
)
def test_requeued_message_returns_to_its_original_position_redelivered(broker, peer, method) -> None:
    fill(peer, "q", 4)
    for _ in range(3):
        get(peer, "q")
    peer.handle(method)
    assert ready(broker, "q") == [(b"m2", True), (b"m4", False)]


@pytest.mark.parametrize(
    "method",
    [spec.BasicNack(delivery_tag=1, requeue=False), spec.BasicReject(delivery_tag=1, requeue=False)],
    ids=lambda m: m.NAME,
)
def test_settling_without_requeue_drops_the_message(broker, peer, method) -> None:
    fill(peer, "q", 2)
    get(peer, "q")
    peer.handle(method)
    queue = broker.vhosts["/"].queues["q"]
    assert ready(broker, "q") == [(b"m2", False)]
    assert queue.unacked_count == 0


def test_multiple_nack_requeues_every_tag_up_to_the_one_given_in_order(broker, peer) -> None:
    fill(peer, "q", 5)
    for _ in range(4):
        get(peer, "q")
    peer.handle(spec.BasicNack(delivery_tag=3, multiple=True, requeue=True))
    assert ready(broker, "q") == [(b"m1", True), (b"m2", True), (b"m3", True), (b"m5", False)]
    peer.ack(4)


def test_requeues_in_any_order_restore_publish_order(broker, peer) -> None:
    fill(peer, "q", 6)
    for _ in range(6):
        get(peer, "q")
    for tag in (5, 2, 6, 1):
        peer.handle(spec.BasicReject(delivery_tag=tag, requeue=True))
    peer.publish("", "q", b"m7")
    assert [body for body, _ in ready(broker, "q")] == [b"m1", b"m2", b"m5", b"m6", b"m7"]


def test_nack_with_requeue_redelivers_to_a_waiting_consumer(peer) -> None:
    fill(peer, "q", 1)
    peer.qos(1)
    peer.consume("q", "c")
    peer.handle(spec.BasicNack(delivery_tag=1, requeue=True))
    assert delivered(peer.sink) == [(1, b"m1", False), (2, b"m1", True)]


def test_unacked_messages_of_a_closed_channel_are_requeued_in_order(broker, peer) -> None:
    fill(peer, "q", 4)
    peer.consume("q", "c", ch=2)
    peer.ack(2, ch=2)
    peer.publish("", "q", b"m5")  # delivered to the consumer too, so redelivered like the others
    peer.client.close_channel(2)
    assert ready(broker, "q") == [(b"m1", True), (b"m3", True), (b"m4", True), (b"m5", True)]


def test_unacked_messages_of_a_closed_channel_go_to_the_remaining_consumer(peer, connect) -> None:
    fill(peer, "q", 3)
    peer.consume("q", "c", ch=2)
    other = connect()
    other.consume("q", "c2")
    # Round-robin had nothing left for c2; the closed channel's messages now go to it, in order.
    peer.client.close_channel(2)
    assert delivered(other.sink) == [(1, b"m1", True), (2, b"m2", True), (3, b"m3", True)]


def test_unacked_messages_of_a_closed_connection_are_requeued_in_order(broker, peer, connect) -> None:
    fill(peer, "q", 5)
    consumer = connect()
    consumer.qos(2, ch=1)
    consumer.consume("q", "c1", ch=1)
    consumer.consume("q", "c2", ch=2)
    consumer.handle(spec.BasicGet(queue="q"), ch=3)
    consumer.client.close()
    assert ready(broker, "q") == [(b"m1", True), (b"m2", True), (b"m3", True), (b"m4", True), (b"m5", True)]
    assert broker.vhosts["/"].queues["q"].unacked_count == 0


def test_basic_recover_requeues_and_redelivers_unacked_messages(peer) -> None:
    fill(peer, "q", 3)
    peer.consume("q", "c")
    peer.ack(2)
    peer.sink.take()
    peer.handle(spec.BasicRecover(requeue=True))
    frames = peer.sink.take()
    # recover-ok is the reply to the client's request; the redeliveries follow it.
    assert frames[0].method == spec.BasicRecoverOk()
    assert [(f.method.delivery_tag, f.body, f.method.redelivered) for f in frames[1:]] == [
        (4, b"m1", True),
        (5, b"m3", True),
    ]


def test_basic_recover_async_requeues_without_a_reply(broker, peer) -> None:
    fill(peer, "q", 2)
    get(peer, "q")
    get(peer, "q")
    peer.sink.take()
    peer.handle(spec.BasicRecoverAsync(requeue=True))
    assert peer.sink.frames == []
    assert ready(broker, "q") == [(b"m1", True), (b"m2", True)]


def test_basic_get_returns_message_and_remaining_count(peer) -> None:
    fill(peer, "q", 3)
    ok = get(peer, "q")
    assert ok == spec.BasicGetOk(delivery_tag=1, redelivered=False, exchange="", routing_key="q", message_count=2)
    assert peer.sink.frames[-1].body == b"m1"


def test_basic_get_on_empty_queue_is_get_empty(peer) -> None:
    peer.declare("q")
    assert get(peer, "q") == spec.BasicGetEmpty()


def test_basic_get_with_manual_ack_waits_for_ack(broker, peer) -> None:
    fill(peer, "q", 1)
    get(peer, "q")
    queue = broker.vhosts["/"].queues["q"]
    assert (queue.message_count, queue.unacked_count) == (0, 1)
    peer.ack(1)
    assert queue.unacked_count == 0


def test_basic_get_no_ack_needs_no_ack(broker, peer) -> None:
    fill(peer, "q", 1)
    get(peer, "q", no_ack=True)
    assert broker.vhosts["/"].queues["q"].unacked_count == 0
    with pytest.raises(core.ChannelException, match="unknown delivery tag 1"):
        peer.ack(1)


def test_basic_get_of_requeued_message_is_redelivered(peer) -> None:
    fill(peer, "q", 1)
    get(peer, "q")
    peer.handle(spec.BasicReject(delivery_tag=1, requeue=True))
    ok = get(peer, "q")
    assert (ok.delivery_tag, ok.redelivered, ok.message_count) == (2, True, 0)


def test_ack_after_queue_deleted_is_accepted(peer) -> None:
    fill(peer, "q", 2)
    get(peer, "q")
    get(peer, "q")
    peer.handle(spec.QueueDelete(queue="q"))
    peer.ack(1)
    peer.handle(spec.BasicReject(delivery_tag=2, requeue=True))
