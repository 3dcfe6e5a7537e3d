"""Credit flow in the core: which queues press the connections publishing into them, and when
they let them go (the server's pausing of the socket is tested in tests/server/test_credit_flow.py)."""

from __future__ import annotations

from amqpbroker.core.credit import FLOW_HIGH, FLOW_HIGH_BYTES, FLOW_LOW, FlowWait
from amqpbroker.protocol import spec


def publish(peer, queue: str, count: int, ch: int = 1) -> None:
    for _ in range(count):
        peer.publish("", queue, b"m", ch=ch)


def slow_consumer(connect, queue: str):
    """A consumer that holds one unacked delivery and takes no more until it acks."""
    consumer = connect()
    consumer.qos(1)
    consumer.consume(queue)
    return consumer


def test_queue_with_a_consumer_behind_presses_its_publisher(broker, connect, peer) -> None:
    peer.declare("q")
    slow_consumer(connect, "q")
    publish(peer, "q", FLOW_HIGH + 1)
    assert broker.vhosts["/"].queues["q"].message_count == FLOW_HIGH
    assert peer.client.pressed_by == []
    publish(peer, "q", 1)
    assert peer.client.pressed_by == [broker.vhosts["/"].queues["q"]]


def test_queue_without_consumers_presses_nobody(broker, peer) -> None:
    peer.declare("q")
    publish(peer, "q", FLOW_HIGH * 2)
    assert peer.client.pressed_by == []
    assert broker.vhosts["/"].queues["q"].flow is None


def test_pressing_queue_lets_its_waiters_go_once_back_at_the_low_mark(broker, connect, peer) -> None:
    peer.declare("q")
    consumer = slow_consumer(connect, "q")
    publish(peer, "q", FLOW_HIGH + 2)
    queue = broker.vhosts["/"].queues["q"]
    woken = []
    wait = FlowWait(lambda: woken.append(True))
    wait.add(peer.client.pressed_by)
    assert not wait.done

    tag = 0
    while queue.message_count > FLOW_LOW + 1:
        tag += 1
        consumer.ack(tag)
    assert woken == [] and queue.pressing
    consumer.ack(tag + 1)
    assert woken == [True] and wait.done and queue.flow is None


def test_every_publisher_into_a_pressing_queue_waits_for_it(broker, connect, peer) -> None:
    peer.declare("q")
    slow_consumer(connect, "q")
    publish(peer, "q", FLOW_HIGH + 2)
    other = connect()
    other.publish("", "q", b"m")
    assert other.client.pressed_by == [broker.vhosts["/"].queues["q"]]


def test_connection_never_waits_for_a_queue_it_consumes_from(broker, peer) -> None:
    peer.declare("q")
    peer.qos(1, ch=2)
    peer.consume("q", ch=2)
    publish(peer, "q", FLOW_HIGH * 2)
    assert broker.vhosts["/"].queues["q"].pressing
    assert peer.client.pressed_by == []


def test_losing_its_last_consumer_ends_the_pressing(broker, connect, peer) -> None:
    peer.declare("q")
    consumer = slow_consumer(connect, "q")
    publish(peer, "q", FLOW_HIGH + 2)
    woken = []
    wait = FlowWait(lambda: woken.append(True))
    wait.add(peer.client.pressed_by)
    consumer.client.close()
    assert woken == [True]
    assert broker.vhosts["/"].queues["q"].flow is None


def test_purge_and_delete_end_the_pressing(broker, connect, peer) -> None:
    queues = broker.vhosts["/"].queues
    woken = []
    for name in ("purged", "deleted"):
        peer.declare(name)
        slow_consumer(connect, name)
        publish(peer, name, FLOW_HIGH + 2)
        FlowWait(lambda: woken.append(True)).add([queues[name]])
    peer.handle(spec.QueuePurge(queue="purged"))
    assert woken == [True]
    peer.handle(spec.QueueDelete(queue="deleted"))
    assert woken == [True, True]


def test_slack_queue_presses_nobody_until_back_at_the_low_mark(broker, connect, peer) -> None:
    peer.declare("q")
    consumer = slow_consumer(connect, "q")
    publish(peer, "q", FLOW_HIGH + 2)
    queue = broker.vhosts["/"].queues["q"]
    wait = FlowWait(lambda: None)
    wait.add(peer.client.pressed_by)
    peer.client.pressed_by.clear()
    wait.give_up()
    assert wait.done and not queue.pressing

    publish(peer, "q", 10)
    assert peer.client.pressed_by == []
    for tag in range(1, queue.message_count - FLOW_LOW + 1):
        consumer.ack(tag)
    assert queue.flow is None
    publish(peer, "q", FLOW_HIGH)
    assert queue.pressing and peer.client.pressed_by


def test_transactional_publishes_press_at_commit(broker, connect, peer) -> None:
    peer.declare("q")
    slow_consumer(connect, "q")
    peer.handle(spec.TxSelect())
    publish(peer, "q", FLOW_HIGH + 2)
    assert peer.client.pressed_by == []
    peer.handle(spec.TxCommit())
    assert peer.client.pressed_by


def test_large_messages_press_by_their_bytes_long_before_their_count(broker, connect, peer) -> None:
    peer.declare("q")
    consumer = slow_consumer(connect, "q")
    body = b"x" * (1024 * 1024)
    queue = broker.vhosts["/"].queues["q"]
    over = FLOW_HIGH_BYTES // len(body) + 1
    for _ in range(over):
        peer.publish("", "q", body)
    assert queue.message_count == over - 1  # one is out to the consumer
    assert peer.client.pressed_by == []
    peer.publish("", "q", body)
    assert peer.client.pressed_by == [queue]
    woken = []
    wait = FlowWait(lambda: woken.append(True))
    wait.add(peer.client.pressed_by)
    # Let go at half the length it pressed at, not at FLOW_LOW.
    tag = 0
    while queue.message_count > over // 2 + 1:
        tag += 1
        consumer.ack(tag)
    assert woken == [] and queue.pressing
    consumer.ack(tag + 1)
    assert woken == [True] and queue.flow is None
