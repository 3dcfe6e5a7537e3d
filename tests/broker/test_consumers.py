"""Consumers: prefetch, round-robin, exclusivity, cancellation, auto-delete and flow control."""

from __future__ import annotations

import re

import pytest

from amqpbroker import core
from amqpbroker.protocol import spec


def fill(peer, queue: str, count: int, **flags) -> None:
    peer.declare(queue, **flags)
    for i in range(1, count + 1):
        peer.publish("", queue, b"m%d" % i)


def queue_exists(broker: core.Broker, name: str) -> bool:
    return name in broker.vhosts["/"].queues


def test_consume_ok_precedes_the_first_delivery(peer) -> None:
    fill(peer, "q", 2)
    peer.consume("q", "c")
    assert [type(f.method) for f in peer.sink.frames] == [
        spec.QueueDeclareOk,
        spec.BasicConsumeOk,
        spec.BasicDeliver,
        spec.BasicDeliver,
    ]
    assert peer.sink.methods(spec.BasicConsumeOk) == [spec.BasicConsumeOk(consumer_tag="c")]


def test_consume_no_wait_sends_no_consume_ok_but_delivers(peer) -> None:
    fill(peer, "q", 1)
    peer.handle(spec.BasicConsume(queue="q", consumer_tag="c", no_wait=True))
    assert peer.sink.methods(spec.BasicConsumeOk) == []
    assert peer.sink.bodies() == [b"m1"]


def test_consumer_without_tag_gets_a_server_generated_one(peer) -> None:
    peer.declare("q")
    tag = peer.consume("q")
    assert re.fullmatch(r"amq\.ctag-[A-Za-z0-9_-]{22}", tag)
    assert tag != peer.consume("q")


def test_consumer_tag_reuse_on_a_channel_is_530(peer) -> None:
    peer.declare("q")
    peer.declare("q2")
    peer.consume("q", "c")
    with pytest.raises(core.ConnectionException) as raised:
        peer.consume("q2", "c")
    assert (raised.value.reply_code, raised.value.reply_text) == (
        530,
        "NOT_ALLOWED - attempt to reuse consumer tag 'c'",
    )


def test_consumer_tag_may_repeat_on_another_channel_or_after_cancel(peer) -> None:
    peer.declare("q")
    peer.consume("q", "c", ch=1)
    peer.consume("q", "c", ch=2)
    peer.handle(spec.BasicCancel(consumer_tag="c"), ch=1)
    peer.consume("q", "c", ch=1)


def test_exclusive_consume_on_a_queue_with_consumers_is_403(peer, connect) -> None:
    peer.declare("q")
    peer.consume("q", "c")
    with pytest.raises(core.ChannelException) as raised:
        connect().consume("q", "x", exclusive=True)
    assert (raised.value.reply_code, raised.value.reply_text) == (
        403,
        "ACCESS_REFUSED - queue 'q' in vhost '/' in exclusive use",
    )


def test_consume_on_a_queue_with_an_exclusive_consumer_is_403(peer, connect) -> None:
    peer.declare("q")
    peer.consume("q", "x", exclusive=True)
    for consumer, channel in ((connect(), 1), (peer, 2)):
        with pytest.raises(core.ChannelException, match="^ACCESS_REFUSED - queue 'q' in vhost '/' in exclusive use$"):
            consumer.consume("q", "c", ch=channel)


def test_exclusive_consumer_gone_lets_others_consume(peer, connect) -> None:
    peer.declare("q")
    peer.consume("q", "x", exclusive=True)
    peer.handle(spec.BasicCancel(consumer_tag="x"))
    connect().consume("q", "c")


def test_consumers_of_a_queue_are_served_round_robin(peer, connect) -> None:
    peer.declare("q")
    peer.consume("q", "a", ch=1)
    peer.consume("q", "b", ch=2)
    other = connect()
    other.consume("q", "c")
    for i in range(6):
        peer.publish("", "q", b"%d" % i)
    assert peer.sink.bodies(channel=1) == [b"0", b"3"]
    assert peer.sink.bodies(channel=2) == [b"1", b"4"]
    assert other.sink.bodies() == [b"2", b"5"]


def test_round_robin_skips_a_consumer_without_credit(peer) -> None:
    peer.declare("q")
    peer.qos(1, ch=1)
    peer.consume("q", "slow", ch=1)
    peer.consume("q", "fast", ch=2)
    for i in range(4):
        peer.publish("", "q", b"%d" % i)
    assert peer.sink.bodies(channel=1) == [b"0"]
    assert peer.sink.bodies(channel=2) == [b"1", b"2", b"3"]


def test_per_consumer_prefetch_limits_unacked_deliveries(broker, peer) -> None:
    fill(peer, "q", 5)
    peer.qos(2)
    assert peer.sink.methods()[-1] == spec.BasicQosOk()
    peer.consume("q", "c")
    assert peer.sink.bodies() == [b"m1", b"m2"]
    peer.ack(1)
    assert peer.sink.bodies() == [b"m1", b"m2", b"m3"]
    peer.ack(3, multiple=True)
    assert peer.sink.bodies() == [b"m1", b"m2", b"m3", b"m4", b"m5"]


def test_per_consumer_prefetch_applies_to_each_consumer_of_the_channel(peer) -> None:
    fill(peer, "q1", 3)
    fill(peer, "q2", 3)
    peer.qos(1)
    peer.consume("q1", "c1")
    peer.consume("q2", "c2")
    assert peer.sink.bodies() == [b"m1", b"m1"]


def test_per_consumer_prefetch_applies_to_consumers_created_after_qos(peer) -> None:
    fill(peer, "q", 4)
    peer.consume("q", "unlimited", ch=1)
    assert len(peer.sink.bodies(channel=1)) == 4
    fill(peer, "q2", 4)
    peer.qos(1, ch=1)
    peer.consume("q2", "limited", ch=1)
    assert len(peer.sink.bodies(channel=1)) == 5


def test_prefetch_zero_is_unlimited(peer) -> None:
    fill(peer, "q", 10)
    peer.qos(0)
    peer.consume("q", "c")
    assert len(peer.sink.deliveries()) == 10


def test_no_ack_consumer_ignores_prefetch(peer) -> None:
    fill(peer, "q", 5)
    peer.qos(1)
    peer.qos(1, global_=True)
    peer.consume("q", "c", no_ack=True)
    assert len(peer.sink.deliveries()) == 5


def test_global_prefetch_limits_unacked_deliveries_of_the_whole_channel(peer) -> None:
    fill(peer, "q1", 3)
    fill(peer, "q2", 3)
    peer.qos(3, global_=True)
    peer.consume("q1", "c1")
    peer.consume("q2", "c2")
    assert len(peer.sink.deliveries()) == 3
    peer.ack(1)
    assert len(peer.sink.deliveries()) == 4
    peer.ack(0, multiple=True)
    assert len(peer.sink.deliveries()) == 6


def test_global_prefetch_does_not_limit_other_channels(peer) -> None:
    fill(peer, "q", 4)
    peer.qos(1, global_=True, ch=1)
    peer.consume("q", "c1", ch=1)
    peer.consume("q", "c2", ch=2)
    assert len(peer.sink.bodies(channel=1)) == 1
    assert len(peer.sink.bodies(channel=2)) == 3


def test_per_consumer_and_global_prefetch_both_apply(peer) -> None:
    fill(peer, "q1", 5)
    fill(peer, "q2", 5)
    peer.qos(2)
    peer.qos(3, global_=True)
    peer.consume("q1", "c1")
    peer.consume("q2", "c2")
    # c1 takes its 2, c2 only 1 more before the channel's 3 are used up.
    assert [f.method.consumer_tag for f in peer.sink.deliveries()] == ["c1", "c1", "c2"]


def test_a_per_consumer_prefetch_lifts_the_global_one(peer) -> None:
    fill(peer, "q", 3)
    peer.qos(1, global_=True)
    peer.qos(0)
    peer.consume("q", "c")
    assert len(peer.sink.deliveries()) == 3


@pytest.mark.parametrize("no_ack", [False, True])
def test_consuming_a_quorum_queue_under_a_global_prefetch_is_540(peer, no_ack) -> None:
    peer.declare("qq", durable=True, arguments={"x-queue-type": "quorum"})
    peer.qos(5, global_=True)
    with pytest.raises(core.ConnectionException) as raised:
        peer.consume("qq", "c", no_ack=no_ack)
    assert (raised.value.reply_code, raised.value.reply_text) == (
        540,
        "NOT_IMPLEMENTED - queue 'qq' in vhost '/' does not support global qos",
    )


def test_a_quorum_queue_takes_consumers_once_a_per_consumer_prefetch_replaced_the_global_one(peer) -> None:
    fill(peer, "qq", 3, durable=True, arguments={"x-queue-type": "quorum"})
    peer.qos(5, global_=True)
    peer.qos(2)
    peer.consume("qq", "c")
    assert len(peer.sink.deliveries()) == 2


def test_raising_prefetch_releases_waiting_messages(peer) -> None:
    fill(peer, "q", 4)
    peer.qos(1, global_=True)
    peer.consume("q", "c")
    assert len(peer.sink.deliveries()) == 1
    peer.qos(3, global_=True)
    assert len(peer.sink.deliveries()) == 3


def test_cancel_replies_and_stops_deliveries(broker, peer) -> None:
    peer.declare("q")
    peer.consume("q", "c")
    peer.handle(spec.BasicCancel(consumer_tag="c"))
    assert peer.sink.methods()[-1] == spec.BasicCancelOk(consumer_tag="c")
    peer.publish("", "q", b"m")
    assert peer.sink.deliveries() == []
    assert broker.vhosts["/"].queues["q"].message_count == 1


def test_cancel_of_unknown_consumer_still_replies(peer) -> None:
    peer.handle(spec.BasicCancel(consumer_tag="nobody"))
    assert peer.sink.methods() == [spec.BasicCancelOk(consumer_tag="nobody")]


def test_cancel_no_wait_sends_nothing(peer) -> None:
    peer.declare("q")
    peer.consume("q", "c")
    peer.sink.take()
    peer.handle(spec.BasicCancel(consumer_tag="c", no_wait=True))
    assert peer.sink.frames == []


def test_unacked_deliveries_of_a_cancelled_consumer_can_still_be_acked(broker, peer) -> None:
    fill(peer, "q", 2)
    peer.consume("q", "c")
    peer.handle(spec.BasicCancel(consumer_tag="c"))
    peer.ack(2, multiple=True)
    assert broker.vhosts["/"].queues["q"].unacked_count == 0


# Auto-delete and exclusive queues


def test_auto_delete_queue_survives_until_it_has_had_a_consumer(broker, peer) -> None:
    fill(peer, "q", 1, auto_delete=True)
    peer.handle(spec.BasicGet(queue="q", no_ack=True))
    peer.client.close_channel(1)
    assert queue_exists(broker, "q")


def test_auto_delete_queue_is_deleted_when_its_last_consumer_cancels(broker, peer) -> None:
    peer.declare("q", auto_delete=True)
    peer.consume("q", "a")
    peer.consume("q", "b")
    peer.handle(spec.BasicCancel(consumer_tag="a"))
    assert queue_exists(broker, "q")
    peer.handle(spec.BasicCancel(consumer_tag="b"))
    assert peer.sink.methods()[-1] == spec.BasicCancelOk(consumer_tag="b")
    assert not queue_exists(broker, "q")
    with pytest.raises(core.ChannelException, match="NOT_FOUND - no queue 'q' in vhost '/'"):
        peer.handle(spec.QueueDeclare(queue="q", passive=True))


def test_auto_delete_queue_is_deleted_when_its_consumers_channel_closes(broker, peer) -> None:
    peer.declare("q", auto_delete=True)
    peer.consume("q", "c", ch=2)
    peer.client.close_channel(2)
    assert not queue_exists(broker, "q")


def test_auto_delete_queue_is_deleted_when_its_consumers_connection_closes(broker, peer, connect) -> None:
    peer.declare("q", auto_delete=True)
    consumer = connect()
    consumer.consume("q", "c")
    consumer.client.close()
    assert not queue_exists(broker, "q")


def test_auto_delete_queue_deletion_drops_its_bindings(broker, peer) -> None:
    peer.declare("q", auto_delete=True)
    peer.bind("q", "amq.fanout")
    peer.consume("q", "c")
    peer.handle(spec.BasicCancel(consumer_tag="c"))
    peer.declare("q")
    peer.publish("amq.fanout", "", b"m")
    assert broker.vhosts["/"].queues["q"].message_count == 0


def test_exclusive_queues_are_deleted_with_their_connection(broker, peer, connect) -> None:
    owner = connect()
    owner.declare("excl", exclusive=True)
    server_named = owner.declare("", exclusive=True)
    owner.declare("shared")
    owner.consume("excl", "c")
    owner.client.close()
    assert not queue_exists(broker, "excl")
    assert not queue_exists(broker, server_named)
    assert queue_exists(broker, "shared")
    peer.declare("excl", exclusive=True)


def test_exclusive_queue_survives_its_channel(broker, peer) -> None:
    peer.declare("q", exclusive=True, ch=2)
    peer.client.close_channel(2)
    assert queue_exists(broker, "q")


def test_deleting_a_queue_cancels_its_consumers_telling_only_clients_that_asked(broker, peer, connect) -> None:
    peer.declare("q")
    notified = connect(notify=True)
    silent = connect(notify=False)
    notified.consume("q", "n")
    silent.consume("q", "s")
    notified.sink.take()
    silent.sink.take()
    peer.handle(spec.QueueDelete(queue="q"))
    assert notified.sink.frames == [(1, spec.BasicCancel(consumer_tag="n", no_wait=True), None, None)]
    assert silent.sink.frames == []
    assert notified.channel(1).delivery.consumers == {} and silent.channel(1).delivery.consumers == {}
    # The cancelled tags are free again.
    peer.declare("q")
    notified.consume("q", "n")
    silent.consume("q", "s")


def test_deleting_a_queue_consumed_on_the_same_channel_cancels_the_consumer(peer) -> None:
    peer.declare("q")
    peer.consume("q", "c")
    peer.handle(spec.QueueDelete(queue="q"))
    assert spec.BasicCancel(consumer_tag="c", no_wait=True) in peer.sink.methods()
    assert peer.sink.methods(spec.QueueDeleteOk) == [spec.QueueDeleteOk(message_count=0)]
    assert peer.channel(1).delivery.consumers == {}


def test_deleting_an_auto_delete_queue_cancels_its_consumers(broker, peer, connect) -> None:
    peer.declare("q", auto_delete=True)
    consumer = connect()
    consumer.consume("q", "c")
    peer.handle(spec.QueueDelete(queue="q"))
    assert consumer.sink.methods()[-1] == spec.BasicCancel(consumer_tag="c", no_wait=True)
    assert not queue_exists(broker, "q")


# Flow control towards a slow client


def test_unwritable_sink_gets_no_deliveries_until_resumed(broker, peer) -> None:
    peer.declare("q")
    peer.consume("q", "c")
    peer.sink.writable = False
    peer.publish("", "q", b"1")
    peer.publish("", "q", b"2")
    assert peer.sink.deliveries() == []
    assert broker.vhosts["/"].queues["q"].message_count == 2
    peer.sink.writable = True
    assert peer.sink.deliveries() == []
    peer.client.resume()
    assert peer.sink.bodies() == [b"1", b"2"]


def test_unwritable_sink_lets_other_consumers_take_the_messages(peer, connect) -> None:
    peer.declare("q")
    peer.consume("q", "slow")
    fast = connect()
    fast.consume("q", "fast")
    peer.sink.writable = False
    for i in range(3):
        peer.publish("", "q", b"%d" % i)
    assert fast.sink.bodies() == [b"0", b"1", b"2"]
    assert peer.sink.deliveries() == []


def test_resume_delivers_to_every_channel_of_the_connection(peer) -> None:
    peer.declare("q1")
    peer.declare("q2")
    peer.consume("q1", "c1", ch=1)
    peer.consume("q2", "c2", ch=2)
    peer.sink.writable = False
    peer.publish("", "q1", b"a")
    peer.publish("", "q2", b"b")
    peer.sink.writable = True
    peer.client.resume()
    assert (peer.sink.bodies(channel=1), peer.sink.bodies(channel=2)) == ([b"a"], [b"b"])


def test_closing_connection_gets_no_redeliveries_of_its_own_messages(broker, peer, connect) -> None:
    fill(peer, "q", 4)
    closing = connect()
    closing.consume("q", "c1", ch=1)
    closing.consume("q", "c2", ch=2)
    closing.sink.take()
    closing.client.close()
    assert closing.sink.frames == []
    assert [(e.message.body, e.redelivered) for e in broker.vhosts["/"].queues["q"].peek()] == [
        (b"m1", True),
        (b"m2", True),
        (b"m3", True),
        (b"m4", True),
    ]


def test_second_channel_open_on_one_channel_is_504(peer) -> None:
    with pytest.raises(core.ConnectionException) as raised:
        peer.client.open_channel(1)
    assert (raised.value.reply_code, raised.value.reply_text) == (504, "CHANNEL_ERROR - second 'channel.open' seen")


def test_channel_number_is_reusable_after_close(peer) -> None:
    peer.declare("q")
    peer.consume("q", "c")
    peer.client.close_channel(1)
    peer.client.open_channel(1)
    peer.consume("q", "c")
