"""Message TTL (`x-message-ttl`, the `expiration` property) and `x-expires`, on a clock the test drives."""

from __future__ import annotations

import pytest

from amqpbroker import core
from amqpbroker.core.queue import Queue
from amqpbroker.protocol import spec


@pytest.fixture
def dropped(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bytes, str]]:
    """Every `Queue.drop` as (queue, body, reason): where dead-lettering will hook in."""
    calls: list[tuple[str, bytes, str]] = []
    drop = Queue.drop

    def recording(queue: Queue, entry, reason: str) -> None:
        calls.append((queue.name, entry.message.body, reason))
        drop(queue, entry, reason)

    monkeypatch.setattr(Queue, "drop", recording)
    return calls


def queue(broker: core.Broker, name: str) -> Queue:
    return broker.vhosts["/"].queues[name]


def test_queue_ttl_expires_messages_on_the_timer(peer, broker, clock, dropped) -> None:
    peer.declare("q", arguments={"x-message-ttl": 1000})
    peer.publish("", "q", b"a")
    clock.advance(0.5)
    peer.publish("", "q", b"b")
    assert broker.next_deadline() == clock.now + 0.5
    clock.advance(0.5)
    assert broker.expire() is False
    assert queue(broker, "q").message_count == 1
    assert dropped == [("q", b"a", "expired")]
    clock.advance(0.5)
    broker.expire()
    assert queue(broker, "q").message_count == 0
    assert broker.next_deadline() is None


def test_nothing_is_due_before_the_deadline(peer, broker, clock) -> None:
    peer.declare("q", arguments={"x-message-ttl": 1000})
    peer.publish("", "q", b"a")
    clock.advance(0.999)
    broker.expire()
    assert queue(broker, "q").message_count == 1


def test_an_expired_message_is_not_got_even_before_the_timer_ran(peer, clock) -> None:
    peer.declare("q", arguments={"x-message-ttl": 1000})
    peer.publish("", "q", b"a")
    peer.publish("", "q", b"b", expiration="5000")
    clock.advance(1)
    assert peer.get("q") is None


def test_expiration_property_expires_a_message(peer, broker, clock, dropped) -> None:
    peer.declare("q")
    peer.publish("", "q", b"short", expiration="100")
    assert broker.next_deadline() == pytest.approx(clock.now + 0.1)
    clock.advance(0.1)
    broker.expire()
    assert dropped == [("q", b"short", "expired")]


@pytest.mark.parametrize(("ttl", "expiration", "lives"), [(1000, "200", 0.2), (200, "1000", 0.2), (None, "300", 0.3)])
def test_the_shorter_of_queue_ttl_and_expiration_wins(peer, broker, clock, ttl, expiration, lives) -> None:
    peer.declare("q", arguments={} if ttl is None else {"x-message-ttl": ttl})
    peer.publish("", "q", b"m", expiration=expiration)
    clock.advance(lives - 0.01)
    broker.expire()
    assert queue(broker, "q").message_count == 1
    clock.advance(0.01)
    broker.expire()
    assert queue(broker, "q").message_count == 0


def test_an_expired_message_behind_a_live_one_is_never_delivered(peer, broker, clock, dropped) -> None:
    peer.declare("q")
    peer.publish("", "q", b"long", expiration="10000")
    peer.publish("", "q", b"short", expiration="100")
    clock.advance(1)
    broker.expire()
    # As in RabbitMQ's classic queues, expiry goes from the head: the message waits behind "long"...
    assert queue(broker, "q").message_count == 2
    assert peer.get("q") == b"long"
    # ... and is dropped, not delivered, when it comes to the head.
    assert peer.get("q") is None
    assert dropped == [("q", b"short", "expired")]


def test_an_expired_message_behind_a_live_one_is_dropped_when_it_reaches_the_head(peer, broker, clock) -> None:
    peer.declare("q")
    peer.publish("", "q", b"long", expiration="10000")
    peer.publish("", "q", b"short", expiration="100")
    assert peer.get("q") == b"long"
    clock.advance(0.1)
    broker.expire()
    assert queue(broker, "q").message_count == 0


def test_a_consumer_is_not_sent_expired_messages(peer, broker, clock) -> None:
    peer.declare("q")
    peer.publish("", "q", b"a", expiration="100")
    peer.publish("", "q", b"b")
    clock.advance(0.2)
    peer.consume("q")
    assert peer.sink.bodies() == [b"b"]


def test_a_requeued_message_keeps_its_expiry(peer, connect, broker, clock) -> None:
    peer.declare("q", arguments={"x-message-ttl": 1000})
    peer.publish("", "q", b"m")
    consumer = connect()
    consumer.consume("q")
    assert consumer.sink.bodies() == [b"m"]
    clock.advance(0.6)
    consumer.client.close()
    assert queue(broker, "q").message_count == 1
    clock.advance(0.4)
    broker.expire()
    assert queue(broker, "q").message_count == 0


def test_a_requeued_message_expires_in_its_place(peer, connect, broker, clock) -> None:
    peer.declare("q", arguments={"x-message-ttl": 1000})
    peer.publish("", "q", b"first")
    clock.advance(0.5)
    peer.publish("", "q", b"second")
    taker = connect()
    taker.channel(1)
    taker.handle(spec.BasicGet(queue="q"))
    taker.client.close()
    clock.advance(0.5)
    broker.expire()
    assert peer.get("q") == b"second"


def test_ttl_zero_goes_to_a_waiting_consumer(peer, broker) -> None:
    peer.declare("q", arguments={"x-message-ttl": 0})
    peer.consume("q", no_ack=True)
    peer.publish("", "q", b"now")
    assert peer.sink.bodies() == [b"now"]


def test_ttl_zero_without_a_consumer_expires_at_once(peer, broker, dropped) -> None:
    peer.declare("q", arguments={"x-message-ttl": 0})
    peer.publish("", "q", b"never")
    assert queue(broker, "q").message_count == 0
    assert dropped == [("q", b"never", "expired")]


def test_expiration_zero_without_credit_expires_at_once(peer, broker) -> None:
    peer.declare("q")
    peer.qos(1)
    peer.consume("q")
    peer.publish("", "q", b"1")
    peer.publish("", "q", b"2", expiration="0")
    assert peer.sink.bodies() == [b"1"]
    assert queue(broker, "q").message_count == 0


@pytest.mark.parametrize(
    ("expiration", "error"),
    [("abc", "no_integer"), ("-1", "{value_negative,-1}"), ("1.5", '{leftover_string,".5"}'), ("", "no_integer")],
)
def test_an_invalid_expiration_is_refused_at_publish(peer, expiration, error) -> None:
    with pytest.raises(core.ChannelException) as refused:
        peer.publish("amq.direct", "unroutable", b"m", expiration=expiration)
    assert refused.value.reply_code == 406
    assert refused.value.reply_text == f"PRECONDITION_FAILED - invalid expiration '{expiration}': {error}"


def test_expiry_goes_in_slices(peer, broker, clock) -> None:
    peer.declare("q", arguments={"x-message-ttl": 10})
    for _ in range(5000):
        peer.publish("", "q", b"m")
    clock.advance(1)
    assert broker.expire(budget=2000) is True
    assert queue(broker, "q").message_count == 3000
    assert broker.expire(budget=2000) is True
    assert broker.expire(budget=2000) is False
    assert queue(broker, "q").message_count == 0


def test_queues_expire_in_deadline_order(peer, broker, clock) -> None:
    peer.declare("late", arguments={"x-message-ttl": 2000})
    peer.declare("early", arguments={"x-message-ttl": 1000})
    peer.publish("", "late", b"m")
    peer.publish("", "early", b"m")
    clock.advance(1)
    broker.expire()
    assert (queue(broker, "early").message_count, queue(broker, "late").message_count) == (0, 1)
    assert broker.next_deadline() == clock.now + 1


# x-expires


def exists_after(broker: core.Broker, clock, seconds: float) -> bool:
    """Whether queue "q" is still there once the clock moved on by `seconds` and the timer ran."""
    clock.advance(seconds)
    broker.expire()
    return "q" in broker.vhosts["/"].queues


def test_an_unused_queue_is_deleted_after_x_expires(peer, broker, clock) -> None:
    peer.declare("q", arguments={"x-expires": 1000})
    assert exists_after(broker, clock, 0.999)
    assert not exists_after(broker, clock, 0.001)


@pytest.mark.parametrize("use", ["declare", "passive", "get"])
def test_a_declare_or_get_uses_the_queue(peer, broker, clock, use) -> None:
    peer.declare("q", arguments={"x-expires": 1000})
    clock.advance(0.8)
    if use == "get":
        peer.get("q")
    else:
        peer.declare("q", arguments={"x-expires": 1000}, passive=use == "passive")
    assert exists_after(broker, clock, 0.8)
    assert not exists_after(broker, clock, 0.2)


def test_a_queue_with_a_consumer_does_not_expire(peer, broker, clock) -> None:
    peer.declare("q", arguments={"x-expires": 1000})
    tag = peer.consume("q")
    assert exists_after(broker, clock, 5)
    peer.handle(spec.BasicCancel(consumer_tag=tag))
    assert exists_after(broker, clock, 0.9)
    assert not exists_after(broker, clock, 0.1)


def test_an_expired_exclusive_queue_leaves_its_connection(peer, broker, clock) -> None:
    peer.declare("q", exclusive=True, arguments={"x-expires": 1000})
    assert not exists_after(broker, clock, 1)
    assert peer.client.exclusive_queues == set()
