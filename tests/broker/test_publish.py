"""Publisher confirms, mandatory returns, and the paths RabbitMQ answers with 540 NOT_IMPLEMENTED."""

from __future__ import annotations

import pytest

from amqpbroker import core
from amqpbroker.protocol import BasicProperties, spec


def confirm(peer, ch: int = 1) -> None:
    peer.handle(spec.ConfirmSelect(), ch)
    assert peer.sink.take()[-1].method == spec.ConfirmSelectOk()


def test_confirm_select_replies_select_ok_unless_nowait(peer) -> None:
    peer.handle(spec.ConfirmSelect())
    peer.handle(spec.ConfirmSelect(nowait=True), ch=2)
    assert peer.sink.frames == [(1, spec.ConfirmSelectOk(), None, None)]


def test_confirms_wait_for_flush_and_come_as_one_multiple_ack(peer) -> None:
    peer.declare("q")
    confirm(peer)
    for i in range(3):
        peer.publish("", "q", b"%d" % i)
    assert peer.sink.frames == []
    peer.client.flush_confirms()
    assert peer.sink.take() == [(1, spec.BasicAck(delivery_tag=3, multiple=True), None, None)]
    peer.client.flush_confirms()
    assert peer.sink.frames == []


def test_a_single_confirm_is_not_multiple(peer) -> None:
    peer.declare("q")
    confirm(peer)
    peer.publish("", "q", b"m")
    peer.client.flush_confirms()
    assert peer.sink.methods() == [spec.BasicAck(delivery_tag=1, multiple=False)]


def test_confirm_sequence_continues_across_flushes(peer) -> None:
    peer.declare("q")
    confirm(peer)
    peer.publish("", "q", b"1")
    peer.client.flush_confirms()
    peer.publish("", "q", b"2")
    peer.publish("", "q", b"3")
    peer.client.flush_confirms()
    assert peer.sink.methods() == [
        spec.BasicAck(delivery_tag=1, multiple=False),
        spec.BasicAck(delivery_tag=3, multiple=True),
    ]


def test_confirms_are_per_channel(peer) -> None:
    peer.declare("q")
    confirm(peer, ch=1)
    confirm(peer, ch=2)
    peer.publish("", "q", b"a", ch=1)
    peer.publish("", "q", b"b", ch=2)
    peer.publish("", "q", b"c", ch=2)
    peer.publish("", "q", b"d", ch=3)
    peer.client.flush_confirms()
    acks = sorted((f.channel, f.method.delivery_tag, f.method.multiple) for f in peer.sink.frames)
    assert acks == [(1, 1, False), (2, 2, True)]


def test_no_confirms_without_confirm_select(peer) -> None:
    peer.declare("q")
    peer.publish("", "q", b"m")
    peer.client.flush_confirms()
    assert peer.sink.methods(spec.BasicAck) == []


def test_unroutable_publish_is_still_confirmed(peer) -> None:
    confirm(peer)
    peer.publish("amq.direct", "nowhere", b"m")
    peer.client.flush_confirms()
    assert peer.sink.methods() == [spec.BasicAck(delivery_tag=1, multiple=False)]


def test_closed_channel_gets_no_confirms(peer) -> None:
    peer.declare("q")
    confirm(peer, ch=2)
    peer.publish("", "q", b"m", ch=2)
    peer.client.close_channel(2)
    peer.client.flush_confirms()
    assert peer.sink.frames == []


def test_mandatory_unroutable_publish_is_returned_with_312(peer) -> None:
    peer.publish("amq.direct", "nowhere", b"body", mandatory=True, headers={"h": 1})
    assert peer.sink.frames == [
        (
            1,
            spec.BasicReturn(reply_code=312, reply_text="NO_ROUTE", exchange="amq.direct", routing_key="nowhere"),
            BasicProperties(headers={"h": 1}).encode(),
            b"body",
        )
    ]


def test_mandatory_publish_to_default_exchange_without_queue_is_returned(peer) -> None:
    peer.publish("", "no-such-queue", b"m", mandatory=True)
    assert peer.sink.methods() == [
        spec.BasicReturn(reply_code=312, reply_text="NO_ROUTE", exchange="", routing_key="no-such-queue")
    ]


def test_mandatory_routed_publish_is_not_returned(peer) -> None:
    peer.declare("q")
    peer.sink.take()
    peer.publish("", "q", b"m", mandatory=True)
    assert peer.sink.frames == []


def test_unroutable_publish_without_mandatory_is_dropped_silently(peer) -> None:
    peer.publish("amq.direct", "nowhere", b"m")
    assert peer.sink.frames == []


def test_return_is_sent_before_the_confirm(peer) -> None:
    peer.declare("q")
    confirm(peer)
    peer.publish("", "q", b"routed", mandatory=True)
    peer.publish("amq.topic", "nowhere", b"returned", mandatory=True)
    peer.client.flush_confirms()
    assert [type(f.method) for f in peer.sink.frames] == [spec.BasicReturn, spec.BasicAck]
    assert peer.sink.frames[1].method == spec.BasicAck(delivery_tag=2, multiple=True)


def test_tx_select_in_confirm_mode_is_406(peer) -> None:
    confirm(peer)
    with pytest.raises(core.ChannelException) as raised:
        peer.handle(spec.TxSelect())
    assert (raised.value.reply_code, raised.value.reply_text) == (
        406,
        "PRECONDITION_FAILED - cannot switch from confirm to tx mode",
    )


def test_channel_flow_active_true_is_acknowledged(peer) -> None:
    peer.handle(spec.ChannelFlow(active=True))
    assert peer.sink.methods() == [spec.ChannelFlowOk(active=True)]


@pytest.mark.parametrize(
    ("action", "text"),
    [
        (lambda p: p.handle(spec.BasicQos(prefetch_size=10, prefetch_count=1)), "prefetch_size!=0 (10)"),
        (
            lambda p: p.channel(1).publish(spec.BasicPublish(exchange="", routing_key="q", immediate=True), b"\0\0", b""),
            "immediate=true",
        ),
        (lambda p: p.handle(spec.BasicRecover(requeue=False)), "requeue=false"),
        (lambda p: p.handle(spec.BasicRecoverAsync(requeue=False)), "requeue=false"),
        (lambda p: p.handle(spec.ChannelFlow(active=False)), "active=false"),
    ],
    ids=["qos-prefetch-size", "publish-immediate", "recover-no-requeue", "recover-async-no-requeue", "flow-off"],
)
def test_unsupported_options_close_the_connection_with_540(peer, action, text: str) -> None:
    peer.declare("q")
    with pytest.raises(core.ConnectionException) as raised:
        action(peer)
    assert (raised.value.reply_code, raised.value.reply_text) == (540, f"NOT_IMPLEMENTED - {text}")
