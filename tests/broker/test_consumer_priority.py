"""Consumer priorities (`x-priority` on basic.consume): higher first, round-robin among equals,
and a consumer without credit lets the next priority receive. Also `x-cancel-on-ha-failover`."""

from __future__ import annotations

import pytest

from amqpbroker import core
from amqpbroker.protocol import spec


def tags(peer) -> list[str]:
    return [frame.method.consumer_tag for frame in peer.sink.deliveries()]


def publish(peer, queue: str, count: int) -> None:
    for i in range(count):
        peer.publish("", queue, b"m%d" % i)


def consume(peer, queue: str, tag: str, ch: int, priority: int | None = None, prefetch: int = 0) -> None:
    if prefetch:
        peer.qos(prefetch, ch=ch)
    arguments = {} if priority is None else {"x-priority": priority}
    peer.consume(queue, tag, ch=ch, arguments=arguments)


def test_the_highest_priority_consumer_with_credit_receives(peer) -> None:
    queue = peer.declare("q")
    consume(peer, queue, "low", 1, priority=0)
    consume(peer, queue, "high", 2, priority=10)
    consume(peer, queue, "middle", 3, priority=5)
    publish(peer, queue, 3)
    assert tags(peer) == ["high"] * 3


def test_equal_priorities_share_round_robin_and_lower_ones_get_the_overflow(peer) -> None:
    queue = peer.declare("q")
    consume(peer, queue, "lo", 1, priority=0, prefetch=100)
    consume(peer, queue, "hi", 2, priority=10, prefetch=2)
    consume(peer, queue, "hi2", 3, priority=10, prefetch=2)
    publish(peer, queue, 7)
    assert tags(peer) == ["hi", "hi2", "hi", "hi2", "lo", "lo", "lo"]


def test_a_higher_priority_consumer_gets_messages_again_once_it_has_credit(peer) -> None:
    queue = peer.declare("q")
    consume(peer, queue, "hi", 1, priority=1, prefetch=1)
    consume(peer, queue, "lo", 2, priority=0, prefetch=1)
    publish(peer, queue, 3)
    assert tags(peer) == ["hi", "lo"]
    peer.ack(1, ch=1)
    assert tags(peer) == ["hi", "lo", "hi"]


def test_no_priority_is_priority_zero_and_negative_priorities_come_last(peer) -> None:
    queue = peer.declare("q")
    consume(peer, queue, "negative", 1, priority=-5)
    consume(peer, queue, "default", 2)
    consume(peer, queue, "zero", 3, priority=0)
    publish(peer, queue, 4)
    assert tags(peer) == ["default", "zero", "default", "zero"]


def test_a_cancelled_priority_consumer_leaves_the_rest_in_order(peer) -> None:
    queue = peer.declare("q")
    consume(peer, queue, "hi", 1, priority=10)
    consume(peer, queue, "lo", 2, priority=1)
    consume(peer, queue, "lo2", 3, priority=1)
    peer.handle(spec.BasicCancel(consumer_tag="hi"), ch=1)
    publish(peer, queue, 3)
    assert tags(peer) == ["lo", "lo2", "lo"]


def test_a_non_integer_priority_is_refused_with_406(peer) -> None:
    queue = peer.declare("q")
    with pytest.raises(core.ChannelException) as raised:
        peer.consume(queue, "c", arguments={"x-priority": "5"})
    assert (raised.value.reply_code, raised.value.reply_text) == (
        406,
        "PRECONDITION_FAILED - invalid arg 'x-priority' for queue 'q' in vhost '/': \"expected integer, got longstr\"",
    )


def test_cancel_on_ha_failover_is_accepted_and_changes_nothing_on_one_node(peer) -> None:
    queue = peer.declare("q")
    peer.consume(queue, "c", arguments={"x-cancel-on-ha-failover": True})
    publish(peer, queue, 1)
    assert tags(peer) == ["c"]
