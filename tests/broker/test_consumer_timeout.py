"""The delivery acknowledgement timeout (RabbitMQ's `consumer_timeout`): a channel holding a delivery
unacknowledged for longer is closed with 406 when the server's timer checks, and what it held is
requeued."""

from __future__ import annotations

import pytest

from amqpbroker import core
from amqpbroker.protocol import spec

from .conftest import Peer

TIMEOUT_TEXT = (
    "PRECONDITION_FAILED - delivery acknowledgement on channel {} timed out. Timeout value used: {} ms. "
    "This timeout value can be configured, see consumers doc guide to learn more"
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def broker(clock: Clock) -> core.Broker:
    return core.Broker(consumer_timeout=5000, clock=clock)


def test_the_default_is_rabbitmqs_thirty_minutes() -> None:
    assert core.Broker().consumer_timeout == 30 * 60 * 1000


def test_a_channel_with_an_overdue_delivery_is_closed_and_its_messages_requeued(peer, connect, clock, broker) -> None:
    queue = peer.declare("q")
    peer.publish("", queue, b"m1")
    peer.publish("", queue, b"m2")
    peer.consume(queue, "slow", ch=2)
    clock.now += 5.001
    broker.expire_deliveries()
    assert peer.sink.closed_channels == [(2, 406, TIMEOUT_TEXT.format(2, 5000))]
    assert 2 not in peer.client.sessions
    other = connect()
    other.consume(queue, "next")
    assert [(f.body, f.method.redelivered) for f in other.sink.deliveries()] == [(b"m1", True), (b"m2", True)]


def test_a_delivery_exactly_as_old_as_the_timeout_is_not_yet_overdue(peer, clock, broker) -> None:
    queue = peer.declare("q")
    peer.publish("", queue, b"m")
    peer.consume(queue, "c")
    clock.now += 5.0
    broker.expire_deliveries()
    assert peer.sink.closed_channels == []


def test_only_the_channel_with_the_overdue_delivery_is_closed(peer, clock, broker) -> None:
    queue = peer.declare("q")
    peer.qos(1, ch=1)
    peer.qos(1, ch=2)
    peer.consume(queue, "old", ch=1)
    peer.publish("", queue, b"m1")
    clock.now += 3
    peer.consume(queue, "new", ch=2)
    peer.publish("", queue, b"m2")
    clock.now += 3
    broker.expire_deliveries()
    assert [channel for channel, _, _ in peer.sink.closed_channels] == [1]
    assert 2 in peer.client.sessions


def test_acknowledged_and_no_ack_deliveries_never_time_out(peer, clock, broker) -> None:
    queue = peer.declare("q")
    peer.publish("", queue, b"m1")
    peer.publish("", queue, b"m2")
    peer.consume(queue, "acking", ch=1)
    peer.ack(2, multiple=True, ch=1)
    peer.handle(spec.BasicCancel(consumer_tag="acking"), ch=1)
    peer.consume(queue, "auto", ch=2, no_ack=True)
    peer.publish("", queue, b"m3")
    clock.now += 60
    broker.expire_deliveries()
    assert peer.sink.closed_channels == []


def test_the_oldest_unacknowledged_delivery_counts(peer, clock, broker) -> None:
    queue = peer.declare("q")
    peer.consume(queue, "c")
    peer.publish("", queue, b"m1")
    clock.now += 4
    peer.publish("", queue, b"m2")
    peer.ack(2)
    clock.now += 4
    broker.expire_deliveries()
    assert peer.sink.closed_channels == [(1, 406, TIMEOUT_TEXT.format(1, 5000))]


def test_basic_get_deliveries_time_out_too(peer, clock, broker) -> None:
    queue = peer.declare("q")
    peer.publish("", queue, b"m")
    peer.handle(spec.BasicGet(queue=queue))
    clock.now += 6
    broker.expire_deliveries()
    assert peer.sink.closed_channels == [(1, 406, TIMEOUT_TEXT.format(1, 5000))]
    assert broker.vhosts["/"].queues[queue].message_count == 1


def test_no_timeout_never_closes(clock) -> None:
    broker = core.Broker(consumer_timeout=None, clock=clock)
    peer = Peer(broker)
    queue = peer.declare("q")
    peer.publish("", queue, b"m")
    peer.consume(queue, "c")
    clock.now += 10**9
    broker.expire_deliveries()
    assert peer.sink.closed_channels == []


def test_closed_connections_are_forgotten(peer, broker) -> None:
    peer.client.close()
    assert peer.client not in broker.connections
