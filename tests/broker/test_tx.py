"""Transactions: publishes and acknowledgements wait for tx.commit and vanish on tx.rollback."""

from __future__ import annotations

import pytest

from amqpbroker import core
from amqpbroker.protocol import spec


def ready(broker: core.Broker, name: str) -> list[bytes]:
    return [entry.message.body for entry in broker.vhosts["/"].queues[name].peek()]


def test_publishes_are_routed_only_at_commit(broker, peer) -> None:
    peer.declare("q")
    peer.handle(spec.TxSelect())
    peer.publish("", "q", b"one")
    peer.publish("", "q", b"two")
    assert ready(broker, "q") == []
    peer.handle(spec.TxCommit())
    assert ready(broker, "q") == [b"one", b"two"]
    assert isinstance(peer.sink.methods()[-1], spec.TxCommitOk)


def test_rollback_discards_publishes_and_acks(broker, peer) -> None:
    peer.declare("q")
    peer.publish("", "q", b"kept")
    peer.consume("q")
    [delivery] = peer.sink.deliveries()
    peer.handle(spec.TxSelect())
    peer.publish("", "q", b"dropped")
    peer.ack(delivery.method.delivery_tag)
    peer.handle(spec.TxRollback())
    peer.handle(spec.TxCommit())
    queue = broker.vhosts["/"].queues["q"]
    assert ready(broker, "q") == [] and queue.unacked_count == 1


def test_ack_in_transaction_takes_effect_at_commit(broker, peer) -> None:
    peer.declare("q")
    peer.publish("", "q", b"m")
    peer.consume("q")
    [delivery] = peer.sink.deliveries()
    peer.handle(spec.TxSelect())
    peer.ack(delivery.method.delivery_tag)
    queue = broker.vhosts["/"].queues["q"]
    assert queue.unacked_count == 1
    peer.handle(spec.TxCommit())
    assert queue.unacked_count == 0


@pytest.mark.parametrize("global_", [False, True], ids=["per-consumer", "per-channel"])
def test_an_ack_in_a_transaction_frees_prefetch_credit_only_at_commit(peer, global_: bool) -> None:
    peer.declare("q")
    peer.qos(1, global_=global_)
    peer.consume("q")
    peer.publish("", "q", b"m1", ch=2)
    peer.publish("", "q", b"m2", ch=2)
    peer.handle(spec.TxSelect())
    peer.ack(1)
    # Another publish has the queue deliver again: the channel's credit is still m1's.
    peer.publish("", "q", b"m3", ch=2)
    assert peer.sink.bodies() == [b"m1"]
    peer.handle(spec.TxCommit())
    assert peer.sink.bodies() == [b"m1", b"m2"]


def test_mandatory_return_comes_before_commit_ok(broker, peer) -> None:
    peer.handle(spec.TxSelect())
    peer.publish("", "nowhere", b"m", mandatory=True)
    peer.sink.take()
    peer.handle(spec.TxCommit())
    kinds = [type(frame.method) for frame in peer.sink.take()]
    assert kinds == [spec.BasicReturn, spec.TxCommitOk]


@pytest.mark.parametrize("method", [spec.TxCommit(), spec.TxRollback()])
def test_commit_or_rollback_without_select_is_406(peer, method) -> None:
    with pytest.raises(core.ChannelException) as raised:
        peer.handle(method)
    assert raised.value.reply_code == 406
    assert raised.value.reply_text == "PRECONDITION_FAILED - channel is not transactional"


def test_an_unknown_tag_in_a_transaction_is_406_at_the_ack_and_nothing_is_settled(broker, peer) -> None:
    peer.declare("q")
    peer.publish("", "q", b"m")
    peer.handle(spec.BasicGet(queue="q"))
    peer.handle(spec.TxSelect())
    peer.ack(1)
    with pytest.raises(core.ChannelException) as refused:
        peer.ack(1)
    assert refused.value.reply_code == 406
    peer.client.close_channel(1)  # as the server does after the 406
    assert ready(broker, "q") == [b"m"]


def test_rollback_gives_back_the_deliveries_an_ack_named(broker, peer) -> None:
    peer.declare("q")
    peer.publish("", "q", b"m")
    peer.handle(spec.BasicGet(queue="q"))
    peer.handle(spec.TxSelect())
    peer.ack(1)
    peer.handle(spec.TxRollback())
    peer.ack(1)  # known again
    peer.handle(spec.TxCommit())
    queue = broker.vhosts["/"].queues["q"]
    assert ready(broker, "q") == [] and queue.unacked_count == 0


def test_closing_a_channel_requeues_deliveries_acked_in_an_uncommitted_transaction(broker, peer) -> None:
    peer.declare("q")
    peer.publish("", "q", b"m")
    peer.handle(spec.BasicGet(queue="q"))
    peer.handle(spec.TxSelect())
    peer.ack(1)
    peer.client.close_channel(1)
    assert ready(broker, "q") == [b"m"]
