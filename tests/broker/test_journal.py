"""Group commit: what a batch writes, and what it need not write."""

from __future__ import annotations

from amqpbroker import core
from amqpbroker.protocol import BasicProperties, spec
from amqpbroker.store import MemoryStore
from amqpbroker.store.base import Dequeue, Enqueue, PutMessage

from .conftest import Peer

PERSISTENT = BasicProperties(delivery_mode=2).encode()


class RecordingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.applied: list = []

    def apply(self, ops) -> None:
        self.applied.extend(ops)
        super().apply(ops)


def publish_persistent(peer: Peer, queue: str, body: bytes) -> None:
    peer.channel().publish(spec.BasicPublish(exchange="", routing_key=queue), PERSISTENT, body)


def test_message_acked_before_its_batch_is_taken_is_never_written_but_still_confirmed() -> None:
    store = RecordingStore()
    broker = core.Broker(store=store)
    peer = Peer(broker)
    peer.declare("q", durable=True)
    peer.handle(spec.ConfirmSelect())
    publish_persistent(peer, "q", b"quick")
    peer.handle(spec.BasicGet(queue="q", no_ack=True))  # consumed before any commit
    broker.commit()
    assert not [op for op in store.applied if type(op) in (PutMessage, Enqueue, Dequeue)]
    assert [ack.delivery_tag for ack in peer.sink.methods(spec.BasicAck)] == [1]


def test_message_acked_after_its_batch_is_written_and_then_removed() -> None:
    store = RecordingStore()
    broker = core.Broker(store=store)
    peer = Peer(broker)
    peer.declare("q", durable=True)
    publish_persistent(peer, "q", b"slow")
    broker.commit()
    peer.handle(spec.BasicGet(queue="q", no_ack=True))
    broker.commit()
    kinds = [type(op) for op in store.applied if type(op) in (PutMessage, Enqueue, Dequeue)]
    assert kinds == [PutMessage, Enqueue, Dequeue]
    assert list(store.queue_entries("/", "q")) == []


def test_fanout_message_acked_in_one_queue_is_still_written_for_the_other() -> None:
    store = RecordingStore()
    broker = core.Broker(store=store)
    peer = Peer(broker)
    peer.exchange("fan", "fanout", durable=True)
    for name in ("a", "b"):
        peer.declare(name, durable=True)
        peer.bind(name, "fan")
    peer.channel().publish(spec.BasicPublish(exchange="fan", routing_key=""), PERSISTENT, b"both")
    peer.handle(spec.BasicGet(queue="a", no_ack=True))
    broker.commit()
    assert [seq for seq, _, _ in store.queue_entries("/", "b")] == [0]
    assert list(store.queue_entries("/", "a")) == []
    assert store.load_body(next(iter(store.queue_entries("/", "b")))[1]) == b"both"


def test_delivery_mode_decides_what_is_stored_whatever_properties_precede_it() -> None:
    store = RecordingStore()
    broker = core.Broker(store=store)
    peer = Peer(broker)
    peer.declare("q", durable=True)
    publishes = [
        BasicProperties(delivery_mode=2),
        BasicProperties(content_type="text/plain", headers={"a": 1}, delivery_mode=2, priority=3),
        BasicProperties(delivery_mode=1),
        BasicProperties(content_type="text/plain", delivery_mode=1),
        BasicProperties(headers={"mode": 2}),
    ]
    for number, properties in enumerate(publishes):
        peer.channel().publish(spec.BasicPublish(exchange="", routing_key="q"), properties.encode(), b"%d" % number)
    broker.commit()
    assert [op.body for op in store.applied if type(op) is PutMessage] == [b"0", b"1"]
