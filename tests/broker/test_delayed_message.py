"""The delayed-message exchange (type `x-delayed-message`) as its RabbitMQ plugin defines it, on a
clock the test drives."""

from __future__ import annotations

import re

import pytest

from amqpbroker import core
from amqpbroker.protocol import BasicProperties, spec


def delayed(peer, name: str = "x", delayed_type: str = "direct", **flags: object) -> None:
    peer.exchange(name, "x-delayed-message", arguments={"x-delayed-type": delayed_type}, **flags)


def ready(peer, queue: str = "q") -> list[bytes]:
    return [body for body in iter(lambda: peer.get(queue), None)]


def test_a_message_is_held_until_its_delay_has_passed(peer, broker, clock) -> None:
    delayed(peer)
    peer.declare("q")
    peer.bind("q", "x", "k")
    peer.publish("x", "k", b"later", headers={"x-delay": 1500})
    peer.publish("x", "k", b"sooner", headers={"x-delay": 500})
    assert broker.next_deadline() == clock.now + 0.5
    clock.advance(0.499)
    broker.expire()
    assert ready(peer) == []
    clock.advance(0.001)
    broker.expire()
    assert ready(peer) == [b"sooner"]
    assert broker.next_deadline() == clock.now + 1
    clock.advance(1)
    broker.expire()
    assert ready(peer) == [b"later"]
    assert broker.next_deadline() is None


@pytest.mark.parametrize("delay", [None, 0, -100, "soon", True, 2**32])
def test_no_delay_a_negative_one_or_one_out_of_range_routes_at_once(peer, delay: object) -> None:
    delayed(peer)
    peer.declare("q")
    peer.bind("q", "x", "k")
    peer.publish("x", "k", b"now", headers=None if delay is None else {"x-delay": delay})
    assert ready(peer) == [b"now"]


@pytest.mark.parametrize("delay", ["250", 250.9])
def test_a_delay_as_a_string_or_a_float_counts(peer, broker, clock, delay: object) -> None:
    delayed(peer)
    peer.declare("q")
    peer.bind("q", "x", "k")
    peer.publish("x", "k", b"m", headers={"x-delay": delay})
    assert ready(peer) == []
    clock.advance(0.25)
    broker.expire()
    assert ready(peer) == [b"m"]


def test_a_routed_message_carries_minus_its_delay_and_its_other_properties(peer, broker, clock) -> None:
    delayed(peer)
    peer.declare("q")
    peer.bind("q", "x", "k")
    peer.publish("x", "k", b"m", headers={"x-delay": 100, "kept": "yes"}, content_type="text/plain")
    clock.advance(0.1)
    broker.expire()
    peer.consume("q", no_ack=True)
    [delivery] = peer.sink.deliveries()
    properties = BasicProperties.decode(delivery.properties)
    assert properties.headers == {"kept": "yes", "x-delay": -100}
    assert properties.content_type == "text/plain"
    assert (delivery.method.exchange, delivery.method.routing_key) == ("x", "k")


@pytest.mark.parametrize(
    "delayed_type, key, arguments, headers",
    [
        ("direct", "a", {}, {}),
        ("fanout", "ignored", {}, {}),
        ("topic", "a.b.c", {}, {}),
        ("headers", "", {"x-match": "all", "kind": "a"}, {"kind": "a"}),
    ],
)
def test_it_routes_as_its_delayed_type_when_due(
    peer, broker, clock, delayed_type: str, key: str, arguments: dict, headers: dict
) -> None:
    delayed(peer, delayed_type=delayed_type)
    peer.declare("hit")
    peer.declare("miss")
    binding = {"direct": "a", "fanout": "", "topic": "a.#", "headers": ""}[delayed_type]
    peer.bind("hit", "x", binding, arguments)
    peer.bind("miss", "x", "other", {"x-match": "all", "kind": "b"} if delayed_type == "headers" else {})
    peer.publish("x", key, b"now", headers=headers)
    peer.publish("x", key, b"later", headers={**headers, "x-delay": 10})
    clock.advance(0.01)
    broker.expire()
    assert ready(peer, "hit") == [b"now", b"later"]
    assert ready(peer, "miss") == ([b"now", b"later"] if delayed_type == "fanout" else [])


def test_a_held_message_is_confirmed_and_a_mandatory_one_returned_at_once_then_routed(peer, broker, clock) -> None:
    delayed(peer)
    peer.declare("q")
    peer.bind("q", "x", "k")
    peer.handle(spec.ConfirmSelect())
    peer.publish("x", "k", b"m", mandatory=True, headers={"x-delay": 100})
    peer.client.flush_confirms()
    returned = [f for f in peer.sink.frames if type(f.method) is spec.BasicReturn]
    assert [(f.method.reply_code, f.method.reply_text, f.body) for f in returned] == [(312, "NO_ROUTE", b"m")]
    assert [m.delivery_tag for m in peer.sink.methods(spec.BasicAck)] == [1]
    clock.advance(0.1)
    broker.expire()
    assert ready(peer) == [b"m"]


def test_a_durable_exchange_confirms_a_persistent_held_message_after_the_commit(peer, broker) -> None:
    delayed(peer, durable=True)
    peer.handle(spec.ConfirmSelect())
    peer.channel(1).publish(
        spec.BasicPublish(exchange="x", routing_key="k"),
        BasicProperties(delivery_mode=2, headers={"x-delay": 100}).encode(),
        b"m",
    )
    peer.client.flush_confirms()
    assert peer.sink.methods(spec.BasicAck) == []
    broker.commit()
    assert [m.delivery_tag for m in peer.sink.methods(spec.BasicAck)] == [1]


def test_a_message_due_with_no_queue_bound_is_dropped_and_one_for_the_alternate_exchange_goes_there(
    peer, broker, clock
) -> None:
    peer.declare("ae-q")
    peer.bind("ae-q", "amq.fanout")
    peer.exchange("x", "x-delayed-message", arguments={"x-delayed-type": "direct", "alternate-exchange": "amq.fanout"})
    delayed(peer, "y")
    peer.publish("x", "k", b"to-ae", headers={"x-delay": 10})
    peer.publish("y", "k", b"nowhere", headers={"x-delay": 10})
    clock.advance(0.01)
    broker.expire()
    assert ready(peer, "ae-q") == [b"to-ae"]
    assert broker.vhosts["/"].exchanges["y"].held_count() == 0


def test_deleting_the_exchange_drops_what_it_holds(peer, broker, clock) -> None:
    delayed(peer)
    peer.declare("q")
    peer.bind("q", "x", "k")
    peer.publish("x", "k", b"m", headers={"x-delay": 10})
    peer.handle(spec.ExchangeDelete(exchange="x"))
    delayed(peer)
    peer.bind("q", "x", "k")
    clock.advance(0.01)
    broker.expire()
    assert ready(peer) == []
    assert broker.next_deadline() is None


def test_a_turn_routes_a_bounded_slice_and_says_more_is_due(peer, broker, clock) -> None:
    delayed(peer)
    peer.declare("q")
    peer.bind("q", "x", "k")
    for n in range(5):
        peer.publish("x", "k", str(n).encode(), headers={"x-delay": 10})
    clock.advance(0.01)
    assert broker.expire(budget=3) is True
    assert broker.vhosts["/"].queues["q"].message_count == 3
    assert broker.expire(budget=3) is False
    assert ready(peer) == [b"0", b"1", b"2", b"3", b"4"]


def test_held_bodies_count_against_the_memory_limit_until_routed(peer, broker, clock) -> None:
    delayed(peer)
    peer.publish("x", "k", b"12345", headers={"x-delay": 10})
    assert broker.memory.used == 5
    clock.advance(0.01)
    broker.expire()
    assert broker.memory.used == 0


@pytest.mark.parametrize(
    "arguments, kind, code, text",
    [
        ({}, core.ChannelException, 406, "Invalid argument, 'x-delayed-type' must be an existing exchange type"),
        ({"x-delayed-type": 1}, core.ChannelException, 406,
         "Invalid argument, 'x-delayed-type' must be an existing exchange type"),
        ({"x-delayed-type": "x-delayed-message"}, core.ChannelException, 406,
         "Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'"),
        ({"x-delayed-type": "nope"}, core.ConnectionException, 503, "unknown exchange type 'nope'"),
    ],
)
def test_the_delayed_type_is_checked_as_the_plugin_does(peer, arguments: dict, kind: type, code: int, text: str) -> None:
    reply = {406: "PRECONDITION_FAILED", 503: "COMMAND_INVALID"}[code]
    with pytest.raises(kind, match=f"^{re.escape(reply + ' - ' + text)}$") as raised:
        peer.exchange("x", "x-delayed-message", arguments=arguments)
    assert raised.value.reply_code == code
