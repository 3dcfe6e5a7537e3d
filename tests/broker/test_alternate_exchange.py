"""Alternate exchanges (the `alternate-exchange` exchange argument): what an exchange routes nowhere
goes there instead, through chains and never round a loop, as RabbitMQ routes it."""

from __future__ import annotations

import pytest

from amqpbroker import core
from amqpbroker.protocol import spec


def ae(name: str) -> dict:
    return {"arguments": {"alternate-exchange": name}}


def ready(peer, queue: str) -> int:
    return peer.client.vhost.queues[queue].message_count


@pytest.fixture
def spill(peer) -> str:
    """A fanout exchange `spill` with a queue `spilled` bound to it."""
    peer.exchange("spill", "fanout")
    peer.declare("spilled")
    peer.bind("spilled", "spill")
    return "spilled"


def test_an_unroutable_message_goes_to_the_alternate_exchange(peer, spill) -> None:
    peer.exchange("x", **ae("spill"))
    peer.declare("bound")
    peer.bind("bound", "x", "k")
    peer.publish("x", "other", b"lost")
    peer.publish("x", "k", b"routed")
    assert (ready(peer, spill), ready(peer, "bound")) == (1, 1)
    [entry] = peer.client.vhost.queues[spill].peek()
    assert (entry.message.body, entry.message.exchange, entry.message.routing_key) == (b"lost", "x", "other")


def test_a_mandatory_message_the_alternate_exchange_routes_is_not_returned_and_is_confirmed(peer, spill) -> None:
    peer.exchange("x", **ae("spill"))
    peer.handle(spec.ConfirmSelect())
    peer.sink.take()
    peer.publish("x", "k", b"m", mandatory=True)
    peer.client.flush_confirms()
    assert peer.sink.methods() == [spec.BasicAck(delivery_tag=1, multiple=False)]
    assert ready(peer, spill) == 1


@pytest.mark.parametrize("alternate", ["missing", "empty"])
def test_a_missing_or_unrouting_alternate_exchange_leaves_the_message_unroutable(peer, alternate) -> None:
    peer.exchange("empty", "direct")
    peer.exchange("x", **ae(alternate))
    peer.publish("x", "k", b"m", mandatory=True)
    [returned] = peer.sink.methods(spec.BasicReturn)
    assert returned == spec.BasicReturn(reply_code=312, reply_text="NO_ROUTE", exchange="x", routing_key="k")


def test_alternate_exchanges_chain(peer, spill) -> None:
    peer.exchange("second", **ae("spill"))
    peer.exchange("first", "topic", **ae("second"))
    peer.publish("first", "k", b"m", mandatory=True)
    assert ready(peer, spill) == 1
    assert peer.sink.methods(spec.BasicReturn) == []


def test_alternate_exchanges_in_a_loop_end_unroutable(peer) -> None:
    peer.exchange("one", **ae("two"))
    peer.exchange("two", **ae("one"))
    peer.publish("one", "k", b"m", mandatory=True)
    assert len(peer.sink.methods(spec.BasicReturn)) == 1


def test_an_exchange_that_routes_to_an_exchange_does_not_use_its_alternate(peer, spill) -> None:
    peer.exchange("dead-end", "direct")
    peer.exchange("x", **ae("spill"))
    peer.handle(spec.ExchangeBind(destination="dead-end", source="x", routing_key="k"))
    peer.publish("x", "k", b"m", mandatory=True)
    assert ready(peer, spill) == 0
    assert len(peer.sink.methods(spec.BasicReturn)) == 1


def test_an_exchange_reached_by_a_binding_uses_its_own_alternate(peer, spill) -> None:
    peer.exchange("inner", **ae("spill"))
    peer.exchange("outer", "direct")
    peer.handle(spec.ExchangeBind(destination="inner", source="outer", routing_key="k"))
    peer.publish("outer", "k", b"m", mandatory=True)
    assert ready(peer, spill) == 1


def test_the_alternate_exchange_may_be_internal_and_declared_later(peer) -> None:
    peer.exchange("x", **ae("later"))
    peer.exchange("later", "fanout", internal=True)
    peer.declare("q")
    peer.bind("q", "later")
    peer.publish("x", "k", b"m")
    assert ready(peer, "q") == 1


def test_a_headers_alternate_exchange_matches_the_messages_headers(peer) -> None:
    peer.exchange("by-headers", "headers")
    peer.declare("q")
    peer.bind("q", "by-headers", arguments={"h": "v"})
    peer.exchange("x", **ae("by-headers"))
    peer.publish("x", "k", b"no")
    peer.publish("x", "k", b"yes", headers={"h": "v"})
    assert [entry.message.body for entry in peer.client.vhost.queues["q"].peek()] == [b"yes"]


def test_a_non_string_alternate_exchange_is_refused_with_406(peer) -> None:
    with pytest.raises(core.ChannelException) as raised:
        peer.exchange("x", arguments={"alternate-exchange": 5})
    assert (raised.value.reply_code, raised.value.reply_text) == (
        406,
        "PRECONDITION_FAILED - invalid type 'signedint' for arg 'alternate-exchange' in exchange 'x' in vhost '/'",
    )


def test_the_alternate_exchange_survives_a_restart(tmp_path) -> None:
    from amqpbroker.store import open_store

    from .conftest import Peer

    store = open_store(str(tmp_path))
    try:
        peer = Peer(core.Broker(store=store))
        peer.exchange("spill", "fanout", durable=True)
        peer.declare("spilled", durable=True)
        peer.bind("spilled", "spill")
        peer.exchange("x", durable=True, **ae("spill"))
        peer.client.broker.commit()
        peer = Peer(core.Broker(store=store))
        peer.publish("x", "k", b"m")
        assert ready(peer, "spilled") == 1
    finally:
        store.close()


@pytest.mark.parametrize(("headers", "spilled"), [(None, 1), ({"CC": ["k2"]}, 0)])
def test_dead_letters_take_the_alternate_exchange_only_when_no_key_routes(peer, spill, headers, spilled) -> None:
    peer.exchange("dlx", **ae("spill"))
    peer.declare("dead")
    peer.bind("dead", "dlx", "k2")
    peer.declare("source", arguments={"x-dead-letter-exchange": "dlx"})
    peer.publish("", "source", b"m", headers=headers)
    peer.handle(spec.BasicGet(queue="source"))
    peer.handle(spec.BasicReject(delivery_tag=1, requeue=False))
    assert (ready(peer, spill), ready(peer, "dead")) == (spilled, 1 - spilled)
