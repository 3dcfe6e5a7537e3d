"""Single active consumer (`x-single-active-consumer`): one consumer gets everything; when it goes,
the next takes over, with what the first had not acknowledged."""

from __future__ import annotations

import pytest

from amqpbroker import core
from amqpbroker.protocol import spec

SAC = {"x-single-active-consumer": True}


def tags(peer, channel: int | None = None) -> list[str]:
    return [frame.method.consumer_tag for frame in peer.sink.deliveries(channel)]


def publish(peer, queue: str, count: int, start: int = 1) -> None:
    for i in range(start, start + count):
        peer.publish("", queue, b"m%d" % i)


@pytest.fixture
def queue(peer) -> str:
    return peer.declare("q", arguments=SAC)


def test_only_the_first_consumer_receives(peer, queue) -> None:
    for ch, tag in ((1, "a"), (2, "b"), (3, "c")):
        peer.consume(queue, tag, ch=ch)
    publish(peer, queue, 5)
    assert tags(peer) == ["a"] * 5


def test_an_active_consumer_without_credit_leaves_the_others_waiting_until_it_is_cancelled(peer, queue) -> None:
    peer.qos(1, ch=1)
    peer.consume(queue, "a", ch=1)
    peer.consume(queue, "b", ch=2)
    publish(peer, queue, 3)
    assert tags(peer) == ["a"]
    assert peer.client.vhost.queues[queue].message_count == 2
    peer.sink.take()
    # a keeps m1 unacknowledged; m2 and m3 are b's now, with nothing else happening to the queue.
    peer.handle(spec.BasicCancel(consumer_tag="a"), ch=1)
    assert [(f.method.consumer_tag, f.body) for f in peer.sink.deliveries()] == [("b", b"m2"), ("b", b"m3")]


def test_closing_the_active_consumers_channel_hands_over_its_unacked_messages(peer, queue) -> None:
    peer.consume(queue, "a", ch=1)
    peer.consume(queue, "b", ch=2)
    peer.consume(queue, "c", ch=3)
    publish(peer, queue, 3)
    peer.sink.take()
    peer.client.close_channel(1)
    delivered = peer.sink.deliveries()
    assert [(f.method.consumer_tag, f.body, f.method.redelivered) for f in delivered] == [
        ("b", b"m1", True),
        ("b", b"m2", True),
        ("b", b"m3", True),
    ]


def test_cancelling_the_active_consumer_makes_the_next_active(peer, queue) -> None:
    peer.consume(queue, "a", ch=1)
    peer.consume(queue, "b", ch=2)
    peer.consume(queue, "c", ch=3)
    peer.handle(spec.BasicCancel(consumer_tag="a"), ch=1)
    publish(peer, queue, 2)
    assert tags(peer) == ["b", "b"]


def test_messages_waiting_for_an_active_consumer_whose_channel_closes_go_to_the_next(peer, queue) -> None:
    other = peer.declare("other")
    # Channel 1's one delivery of credit goes to another queue: its active consumer takes nothing.
    peer.qos(1, global_=True, ch=1)
    peer.consume(other, "x", ch=1)
    peer.publish("", other, b"o1")
    peer.consume(queue, "a", ch=1)
    peer.consume(queue, "b", ch=2)
    publish(peer, queue, 2)
    assert tags(peer) == ["x"]
    peer.sink.take()
    peer.client.close_channel(1)
    assert [(f.method.consumer_tag, f.body) for f in peer.sink.deliveries()] == [("b", b"m1"), ("b", b"m2")]


def test_cancelled_consumers_unacked_messages_go_to_the_next_when_its_channel_closes(peer, queue) -> None:
    peer.consume(queue, "a", ch=1)
    peer.consume(queue, "b", ch=2)
    publish(peer, queue, 2)
    peer.handle(spec.BasicCancel(consumer_tag="a"), ch=1)
    peer.sink.take()
    peer.client.close_channel(1)
    assert [(f.method.consumer_tag, f.body) for f in peer.sink.deliveries()] == [("b", b"m1"), ("b", b"m2")]


def test_a_waiting_consumer_that_goes_away_changes_nothing(peer, queue) -> None:
    peer.consume(queue, "a", ch=1)
    peer.consume(queue, "b", ch=2)
    peer.consume(queue, "c", ch=3)
    peer.client.close_channel(2)
    publish(peer, queue, 1)
    peer.client.close_channel(1)
    assert tags(peer) == ["a", "c"]


def test_the_active_consumers_connection_closing_hands_over_to_another_connection(connect, queue, peer) -> None:
    other = connect()
    peer.consume(queue, "a")
    other.consume(queue, "b")
    publish(peer, queue, 2)
    peer.client.close()
    assert [(f.method.consumer_tag, f.body, f.method.redelivered) for f in other.sink.deliveries()] == [
        ("b", b"m1", True),
        ("b", b"m2", True),
    ]


def test_the_waiting_consumer_of_highest_priority_takes_over_first_registered_first(peer, queue) -> None:
    for ch, tag, priority in ((1, "p0", 0), (2, "p1", 1), (3, "p9", 9), (4, "p9b", 9)):
        peer.consume(queue, tag, ch=ch, arguments={"x-priority": priority})
    publish(peer, queue, 1)
    peer.client.close_channel(1)
    publish(peer, queue, 1, start=2)
    peer.client.close_channel(3)
    assert tags(peer) == ["p0", "p9", "p9", "p9b", "p9b"]


def test_consumer_count_counts_waiting_consumers(peer, queue) -> None:
    peer.consume(queue, "a", ch=1)
    peer.consume(queue, "b", ch=2)
    assert peer.declare(queue, arguments=SAC) == queue
    assert peer.sink.methods(spec.QueueDeclareOk)[-1].consumer_count == 2


@pytest.mark.parametrize("others", [0, 1])
def test_an_exclusive_consumer_is_refused_with_403(peer, queue, others) -> None:
    for ch in range(2, 2 + others):
        peer.consume(queue, ch=ch)
    with pytest.raises(core.ChannelException) as raised:
        peer.consume(queue, "x", exclusive=True)
    assert (raised.value.reply_code, raised.value.reply_text) == (
        403,
        "ACCESS_REFUSED - queue 'q' in vhost '/' in exclusive use",
    )


def test_basic_get_takes_from_a_single_active_consumer_queue(peer, queue) -> None:
    publish(peer, queue, 1)
    peer.handle(spec.BasicGet(queue=queue, no_ack=True))
    assert peer.sink.methods(spec.BasicGetOk)
