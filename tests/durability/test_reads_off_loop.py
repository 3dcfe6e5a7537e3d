"""What needs a body that is only in the store waits for it to be read back, off the event loop
(in tests, by `Broker.read_bodies`): a basic.get, with its channel held meanwhile, and a
dead-lettering, with the queue's later dead messages behind it."""

from __future__ import annotations

from pathlib import Path

from amqpbroker.protocol import spec

from .core_support import Client, Node


# "q" holds one message; one more pushes the oldest out to "dlq".
DEAD_LETTERING = {"x-max-length": 1, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq"}


def on_disk(tmp_path: Path, *bodies: bytes, arguments: dict | None = None) -> Node:
    """A node whose durable queue "q" holds `bodies`, left in the store by a restart; a durable
    queue "dlq" too."""
    node = Node("memory", tmp_path)
    client = node.client()
    client.send(spec.QueueDeclare(queue="dlq", durable=True))
    client.send(spec.QueueDeclare(queue="q", durable=True, arguments=arguments))
    for body in bodies:
        client.publish("", "q", body)
    node.restart()
    return node


def waiting_get(node: Node, no_ack: bool = False) -> Client:
    """A client whose basic.get on "q" waits for its body."""
    client = node.client()
    client.connection.open_channel(1).handle(spec.BasicGet(queue="q", no_ack=no_ack))
    return client


def test_a_basic_get_waits_for_its_body_with_its_channel_held(tmp_path: Path) -> None:
    node = on_disk(tmp_path, b"on disk", b"behind it")
    client = waiting_get(node)
    assert client.sink.sent == [] and client.sink.held == {1}
    node.broker.read_bodies()
    [(channel, get_ok, body)] = client.sink.sent
    assert (channel, type(get_ok), body) == (1, spec.BasicGetOk, b"on disk")
    assert (get_ok.delivery_tag, get_ok.redelivered, get_ok.message_count) == (1, False, 1)
    assert client.sink.held == set()
    client.send(spec.BasicAck(delivery_tag=1))
    assert node.broker.vhosts["/"].queues["q"].unacked_count == 0


def test_a_get_given_up_by_its_closed_channel_leaves_the_message_in_place(tmp_path: Path) -> None:
    node = on_disk(tmp_path, b"first", b"second")
    client = waiting_get(node, no_ack=True)
    client.connection.close_channel(1)
    assert client.sink.held == set()
    node.broker.read_bodies()
    assert client.sink.sent == []
    assert node.client().drain("q") == [(b"first", False), (b"second", False)]


def test_a_get_waiting_when_its_queue_is_deleted_is_answered_and_settles(tmp_path: Path) -> None:
    node = on_disk(tmp_path, b"taken")
    client = waiting_get(node)
    node.client().send(spec.QueueDelete(queue="q"))
    node.broker.read_bodies()
    [(_, get_ok, body)] = client.sink.sent
    assert type(get_ok) is spec.BasicGetOk and body == b"taken"
    client.send(spec.BasicAck(delivery_tag=get_ok.delivery_tag))
    node.broker.commit()
    assert [queue.name for queue in node.store.recover().queues] == ["dlq"]
    assert node.broker.memory.used == 0


def test_dead_letters_wait_for_a_body_on_disk_and_keep_their_order(tmp_path: Path) -> None:
    node = on_disk(tmp_path, b"first", arguments=DEAD_LETTERING)
    client = node.client()
    client.publish("", "q", b"second")  # pushes "first" out: its body must be read back
    client.publish("", "q", b"third")  # pushes "second" out, with its body, behind "first"
    assert node.broker.vhosts["/"].queues["dlq"].message_count == 0
    node.broker.read_bodies()
    assert node.client().drain("dlq") == [(b"first", False), (b"second", False)]
    assert [body for body, _ in node.client().drain("q")] == [b"third"]


def test_a_dead_message_waiting_for_its_body_is_still_in_its_queue_after_a_restart(tmp_path: Path) -> None:
    node = on_disk(tmp_path, b"first", arguments=DEAD_LETTERING)
    node.client().publish("", "q", b"second")
    node.restart()
    assert [body for body, _ in node.client().drain("q")] == [b"first", b"second"]
    assert node.client().drain("dlq") == []
