"""Deduplication as the rabbitmq-message-deduplication plugin defines it: queue level
(`x-message-deduplication`) and exchange level (type `x-message-deduplication`), on a clock the
test drives."""

from __future__ import annotations

import re

import pytest

from amqpbroker.core import ChannelException
from amqpbroker.core.queue import Queue
from amqpbroker.protocol import spec

DEDUP = "x-deduplication-header"


def confirm(peer) -> None:
    peer.handle(spec.ConfirmSelect())


def acks(peer) -> list[tuple[int, bool]]:
    return [(m.delivery_tag, m.multiple) for m in peer.sink.methods(spec.BasicAck)]


def dedup_queue(peer, name: str = "q", **arguments: object) -> None:
    peer.declare(name, arguments={"x-message-deduplication": True, **arguments})


# Queue level


def test_a_queue_drops_a_message_whose_value_it_holds_and_confirms_it(peer) -> None:
    dedup_queue(peer)
    confirm(peer)
    for body, value in [(b"a", "1"), (b"dup", "1"), (b"b", "2"), (b"none", None)]:
        peer.publish("", "q", body, headers={DEDUP: value} if value else None)
    peer.client.flush_confirms()
    assert acks(peer) == [(4, True)]
    assert [peer.get("q") for _ in range(4)] == [b"a", b"b", b"none", None]


def test_without_the_argument_a_queue_keeps_duplicates(peer) -> None:
    peer.declare("q", arguments={"x-message-deduplication": "true"})  # only the boolean enables it
    peer.publish("", "q", b"a", headers={DEDUP: "1"})
    peer.publish("", "q", b"b", headers={DEDUP: "1"})
    assert [peer.get("q"), peer.get("q")] == [b"a", b"b"]


def test_a_value_is_free_again_once_its_message_is_acknowledged_not_before(peer) -> None:
    dedup_queue(peer)
    peer.publish("", "q", b"a", headers={DEDUP: "k"})
    assert peer.get("q", no_ack=False) == b"a"
    peer.publish("", "q", b"while-unacked", headers={DEDUP: "k"})
    peer.ack(1)
    peer.publish("", "q", b"after-ack", headers={DEDUP: "k"})
    assert [peer.get("q"), peer.get("q")] == [b"after-ack", None]


def test_a_requeued_message_keeps_its_value(peer) -> None:
    dedup_queue(peer)
    peer.publish("", "q", b"a", headers={DEDUP: "k"})
    peer.get("q", no_ack=False)
    peer.handle(spec.BasicReject(delivery_tag=1, requeue=True))
    peer.publish("", "q", b"dup", headers={DEDUP: "k"})
    assert [peer.get("q"), peer.get("q")] == [b"a", None]


@pytest.mark.parametrize("leave", ["no-ack get", "expiry", "purge", "reject", "max-length"])
def test_a_value_is_free_again_once_its_message_leaves_the_queue(peer, broker, clock, leave: str) -> None:
    dedup_queue(peer, **({"x-message-ttl": 100} if leave == "expiry" else {}),
                **({"x-max-length": 1} if leave == "max-length" else {}))
    peer.publish("", "q", b"first", headers={DEDUP: "k"})
    if leave == "no-ack get":
        assert peer.get("q") == b"first"
    elif leave == "expiry":
        clock.advance(0.1)
        broker.expire()
    elif leave == "purge":
        peer.handle(spec.QueuePurge(queue="q"))
    elif leave == "reject":
        peer.get("q", no_ack=False)
        peer.handle(spec.BasicReject(delivery_tag=1, requeue=False))
    else:
        peer.publish("", "q", b"pushes-it-out", headers={DEDUP: "other"})
    peer.publish("", "q", b"again", headers={DEDUP: "k"})
    bodies = [body for body in iter(lambda: peer.get("q"), None)]
    assert bodies[-1] == b"again"


def test_values_are_compared_with_their_type(peer) -> None:
    dedup_queue(peer)
    for value in ["1", 1, b"1", 1.0, True]:
        peer.publish("", "q", repr(value).encode(), headers={DEDUP: value})
    # A string and the same bytes are one value; 1, 1.0 and True are neither "1" nor each other.
    assert [body for body in iter(lambda: peer.get("q"), None)] == [b"'1'", b"1", b"1.0", b"True"]


def test_a_duplicate_refused_by_one_queue_reaches_the_others(peer) -> None:
    dedup_queue(peer, "dedup")
    peer.declare("plain")
    for queue in ("dedup", "plain"):
        peer.bind(queue, "amq.fanout")
    for _ in range(2):
        peer.publish("amq.fanout", "", b"m", headers={DEDUP: "k"})
    assert peer.client.vhost.queues["dedup"].message_count == 1
    assert peer.client.vhost.queues["plain"].message_count == 2


def test_a_plain_queue_never_decodes_properties(peer, monkeypatch: pytest.MonkeyPatch) -> None:
    peer.declare("q")

    def refuse(*args: object) -> None:
        raise AssertionError("properties decoded for a queue without deduplication")

    monkeypatch.setattr(Queue, "_deduplicate", refuse)
    peer.publish("", "q", b"m", headers={DEDUP: "k"})
    assert peer.get("q") == b"m"


# Exchange level


def dedup_exchange(peer, name: str = "x", **arguments: object) -> None:
    peer.exchange(name, "x-message-deduplication", arguments={"x-cache-size": 10, **arguments})


def test_an_exchange_routes_as_a_fanout_and_drops_what_it_has_seen(peer) -> None:
    dedup_exchange(peer)
    for queue in ("q1", "q2"):
        peer.declare(queue)
        peer.bind(queue, "x", routing_key=queue)
    confirm(peer)
    for body, value in [(b"a", "1"), (b"dup", "1"), (b"no-header", None)]:
        peer.publish("x", "any-key", body, headers={DEDUP: value} if value else None)
    peer.client.flush_confirms()
    assert acks(peer) == [(3, True)]
    for queue in ("q1", "q2"):
        assert [peer.get(queue) for _ in range(3)] == [b"a", b"no-header", None]


def test_an_exchange_returns_a_mandatory_duplicate(peer) -> None:
    dedup_exchange(peer)
    peer.declare("q")
    peer.bind("q", "x")
    peer.publish("x", "", b"a", mandatory=True, headers={DEDUP: "1"})
    peer.publish("x", "", b"dup", mandatory=True, headers={DEDUP: "1"})
    assert [f.body for f in peer.sink.frames if type(f.method) is spec.BasicReturn] == [b"dup"]


def test_the_cache_keeps_a_value_for_its_ttl_or_the_messages(peer, clock) -> None:
    dedup_exchange(peer, **{"x-cache-ttl": 1000})
    peer.declare("q")
    peer.bind("q", "x")
    peer.publish("x", "", b"a", headers={DEDUP: "a"})
    peer.publish("x", "", b"b", headers={DEDUP: "b", "x-cache-ttl": 5000})
    clock.advance(0.999)
    peer.publish("x", "", b"a-dup", headers={DEDUP: "a"})
    clock.advance(0.001)
    peer.publish("x", "", b"a-again", headers={DEDUP: "a"})
    peer.publish("x", "", b"b-dup", headers={DEDUP: "b"})
    clock.advance(4)
    peer.publish("x", "", b"b-again", headers={DEDUP: "b"})
    assert [body for body in iter(lambda: peer.get("q"), None)] == [b"a", b"b", b"a-again", b"b-again"]


def test_a_full_cache_forgets_its_oldest_value(peer) -> None:
    dedup_exchange(peer, **{"x-cache-size": 2})
    peer.declare("q")
    peer.bind("q", "x")
    for value in ["1", "2", "3", "1", "3"]:
        peer.publish("x", "", value.encode(), headers={DEDUP: value})
    assert [body for body in iter(lambda: peer.get("q"), None)] == [b"1", b"2", b"3", b"1"]


@pytest.mark.parametrize(
    "arguments, text",
    [
        ({}, "Missing or invalid argument, 'x-cache-size' must be an integer greater than 0"),
        ({"x-cache-size": 0}, "Missing or invalid argument, 'x-cache-size' must be an integer greater than 0"),
        ({"x-cache-size": "ten"}, "Missing or invalid argument, 'x-cache-size' must be an integer greater than 0"),
        ({"x-cache-size": True}, "Missing or invalid argument, 'x-cache-size' must be an integer greater than 0"),
        ({"x-cache-size": 5, "x-cache-ttl": 0}, "Invalid argument, 'x-cache-ttl' must be an integer greater than 0"),
        ({"x-cache-size": 5, "x-cache-ttl": "x"}, "Invalid argument, 'x-cache-ttl' must be an integer greater than 0"),
        (
            {"x-cache-size": 5, "x-cache-persistence": "tape"},
            "Invalid argument, 'x-cache-persistence' must be either 'disk' or 'memory'",
        ),
    ],
)
def test_invalid_cache_arguments_are_refused_with_the_plugins_texts(peer, arguments: dict, text: str) -> None:
    with pytest.raises(ChannelException, match=f"^{re.escape('PRECONDITION_FAILED - ' + text)}$") as raised:
        peer.exchange("x", "x-message-deduplication", arguments=arguments)
    assert raised.value.reply_code == 406


def test_cache_arguments_may_be_strings_of_integers(peer) -> None:
    dedup_exchange(peer, **{"x-cache-size": "5", "x-cache-ttl": "100", "x-cache-persistence": "disk"})
    assert peer.sink.methods(spec.ExchangeDeclareOk)
