"""Publisher confirms of persistent messages that every durable queue let go of before their commit.

As in RabbitMQ, a persistent message is confirmed once the store has it, or once each queue it went
to has delivered it and had it acknowledged, whichever comes first. No batch is committed in these
tests unless they say so: the persister's writes are the test's own steps.
"""

from __future__ import annotations

import pytest

from amqpbroker import core
from amqpbroker.protocol import BasicProperties, spec
from amqpbroker.store.base import Enqueue, PutMessage, PutRecord

from .conftest import Clock, Peer
from .test_journal import PERSISTENT, RecordingStore


def setup(*queues: str) -> tuple[core.Broker, RecordingStore, Peer, Peer]:
    """A broker over a recording store, a publisher in confirm mode and a consumer, with a durable
    queue of each name declared and committed."""
    store = RecordingStore()
    broker = core.Broker(store=store)
    publisher, consumer = Peer(broker), Peer(broker)
    for name in queues:
        publisher.declare(name, durable=True)
    publisher.handle(spec.ConfirmSelect())
    store.applied.clear()
    return broker, store, publisher, consumer


def publish(peer: Peer, routing_key: str, exchange: str = "") -> None:
    peer.channel().publish(spec.BasicPublish(exchange=exchange, routing_key=routing_key), PERSISTENT, b"m")
    peer.client.flush_confirms()


def consume(peer: Peer, queue: str, ch: int = 1) -> None:
    peer.channel(ch).handle(spec.BasicConsume(queue=queue, consumer_tag=queue))


def ack(peer: Peer, delivery_tag: int, ch: int = 1) -> None:
    """The consumer acks, and the server flushes what its frames settled, without a commit."""
    peer.channel(ch).handle(spec.BasicAck(delivery_tag=delivery_tag))
    peer.client.flush_confirms()


def confirms(peer: Peer) -> list[tuple[str, int, bool]]:
    return [
        (type(method).__name__, method.delivery_tag, method.multiple)
        for method in peer.sink.methods()
        if type(method) in (spec.BasicAck, spec.BasicNack)
    ]


def written(store: RecordingStore) -> list[type]:
    return [type(op) for op in store.applied if type(op) in (PutMessage, Enqueue)]


def test_a_message_acked_before_its_batch_is_written_is_confirmed_at_once_and_never_written() -> None:
    broker, store, publisher, consumer = setup("q")
    consume(consumer, "q")
    publish(publisher, "q")
    assert confirms(publisher) == []
    ack(consumer, 1)
    assert confirms(publisher) == [("BasicAck", 1, False)]
    broker.commit()
    assert written(store) == []
    assert confirms(publisher) == [("BasicAck", 1, False)]


def test_a_message_not_acked_is_confirmed_only_after_the_write() -> None:
    broker, store, publisher, consumer = setup("q")
    consume(consumer, "q")
    publish(publisher, "q")
    consumer.client.flush_confirms()
    assert confirms(publisher) == []
    batch = broker.take_batch()
    assert confirms(publisher) == []
    store.apply(batch.ops)
    broker.batch_done(batch, ok=True)
    assert written(store) == [PutMessage, Enqueue]
    assert confirms(publisher) == [("BasicAck", 1, False)]


def test_a_message_acked_while_its_batch_is_being_written_is_confirmed_at_the_ack_and_only_once() -> None:
    broker, store, publisher, consumer = setup("q")
    consume(consumer, "q")
    publish(publisher, "q")
    batch = broker.take_batch()
    ack(consumer, 1)
    assert confirms(publisher) == [("BasicAck", 1, False)]
    store.apply(batch.ops)
    broker.batch_done(batch, ok=True)
    broker.commit()
    assert confirms(publisher) == [("BasicAck", 1, False)]
    assert list(store.queue_entries("/", "q")) == []


def test_an_acked_message_waits_for_the_confirms_of_earlier_publishes() -> None:
    # A multiple ack must never cover a publish that is not safe yet.
    broker, store, publisher, consumer = setup("slow", "fast")
    consume(consumer, "fast")
    publish(publisher, "slow")
    publish(publisher, "fast")
    ack(consumer, 1)
    assert confirms(publisher) == []
    broker.commit()
    assert confirms(publisher) == [("BasicAck", 2, True)]
    assert written(store) == [PutMessage, Enqueue]


def test_an_acked_message_is_confirmed_alone_before_a_later_publish_that_waits() -> None:
    broker, store, publisher, consumer = setup("fast", "slow")
    consume(consumer, "fast")
    publish(publisher, "fast")
    publish(publisher, "slow")
    ack(consumer, 1)
    assert confirms(publisher) == [("BasicAck", 1, False)]
    broker.commit()
    assert confirms(publisher) == [("BasicAck", 1, False), ("BasicAck", 2, False)]


def test_a_fanout_message_is_confirmed_once_every_durable_queue_acked_it() -> None:
    broker, store, publisher, consumer = setup("a", "b")
    publisher.exchange("fan", "fanout", durable=True)
    publisher.bind("a", "fan")
    publisher.bind("b", "fan")
    store.applied.clear()
    consume(consumer, "a", ch=1)
    consume(consumer, "b", ch=2)
    publish(publisher, "", exchange="fan")
    ack(consumer, 1, ch=1)
    assert confirms(publisher) == []
    ack(consumer, 1, ch=2)
    assert confirms(publisher) == [("BasicAck", 1, False)]
    broker.commit()
    assert written(store) == []


def test_an_acked_message_of_a_failed_batch_stays_acked_and_the_others_are_nacked() -> None:
    broker, store, publisher, consumer = setup("fast", "slow")
    consume(consumer, "fast")
    publish(publisher, "slow")
    publish(publisher, "fast")
    batch = broker.take_batch()
    ack(consumer, 1)
    broker.batch_done(batch, ok=False)
    assert confirms(publisher) == [("BasicNack", 1, False), ("BasicAck", 2, False)]


def test_a_channel_counts_as_unconfirmed_what_it_has_neither_acked_nor_nacked_yet() -> None:
    broker, store, publisher, consumer = setup("fast", "slow")
    consume(consumer, "fast")
    publish(publisher, "slow")
    publish(publisher, "fast")
    ack(consumer, 1)
    # The second is safe, but its ack waits for the first's.
    assert publisher.client.sessions[1].confirms.unconfirmed == 2
    broker.batch_done(broker.take_batch(), ok=False)
    assert confirms(publisher) == [("BasicNack", 1, False), ("BasicAck", 2, False)]
    assert publisher.client.sessions[1].confirms.unconfirmed == 0


def test_a_closed_publisher_channel_gets_nothing_when_its_message_is_acked() -> None:
    broker, store, publisher, consumer = setup("q")
    consume(consumer, "q")
    publish(publisher, "q")
    publisher.client.close_channel(1)
    ack(consumer, 1)
    broker.commit()
    assert confirms(publisher) == []


def test_a_message_that_expires_before_its_batch_is_confirmed_at_the_timers_turn() -> None:
    clock = Clock()
    store = RecordingStore()
    broker = core.Broker(store=store, clock=clock, wall_clock=clock.wall)
    publisher = Peer(broker)
    publisher.declare("q", durable=True, arguments={"x-message-ttl": 1000})
    publisher.handle(spec.ConfirmSelect())
    store.applied.clear()
    publish(publisher, "q")
    assert confirms(publisher) == []
    clock.advance(1.5)
    broker.expire()
    # No frame from any client follows, and no batch: the timer's turn sends the confirm itself.
    assert confirms(publisher) == [("BasicAck", 1, False)]
    broker.commit()
    assert written(store) == []


def _dead_lettering(**arguments: object) -> tuple[core.Broker, RecordingStore, Peer, Peer]:
    """`setup` with queue "q" dead-lettering into the durable queue "dead"."""
    broker, store, publisher, consumer = setup("dead")
    publisher.declare("q", durable=True, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead",
                                                    **arguments})
    broker.commit()
    store.applied.clear()
    return broker, store, publisher, consumer


def test_a_message_dead_lettered_before_its_batch_is_written_is_confirmed_with_its_dead_letter() -> None:
    # Confirmed at the reject, it would be lost with its dead letter by a crash before the commit.
    broker, store, publisher, consumer = _dead_lettering()
    consume(consumer, "q")
    publish(publisher, "q")
    consumer.channel().handle(spec.BasicReject(delivery_tag=1, requeue=False))
    consumer.client.flush_confirms()
    assert confirms(publisher) == []
    broker.commit()
    assert confirms(publisher) == [("BasicAck", 1, False)]
    assert len(list(store.queue_entries("/", "dead"))) == 1
    assert list(store.queue_entries("/", "q")) == []


def test_a_message_pushed_out_into_a_dead_letter_queue_is_confirmed_with_its_dead_letter() -> None:
    broker, store, publisher, _ = _dead_lettering(**{"x-max-length": 1})
    publish(publisher, "q")
    publish(publisher, "q")
    assert confirms(publisher) == []
    broker.commit()
    assert confirms(publisher) == [("BasicAck", 2, True)]
    assert len(list(store.queue_entries("/", "dead"))) == 1
    assert len(list(store.queue_entries("/", "q"))) == 1


def test_a_message_rejected_with_nowhere_to_go_is_confirmed_at_the_reject() -> None:
    broker, store, publisher, consumer = setup("q")
    consume(consumer, "q")
    publish(publisher, "q")
    consumer.channel().handle(spec.BasicReject(delivery_tag=1, requeue=False))
    consumer.client.flush_confirms()
    assert confirms(publisher) == [("BasicAck", 1, False)]
    broker.commit()
    assert written(store) == []


@pytest.mark.parametrize("limit", [{"x-message-ttl": 0}, {"x-max-length": 0}])
def test_a_message_dead_lettered_as_it_arrives_is_confirmed_with_its_dead_letter(limit: dict) -> None:
    broker, store, publisher, _ = _dead_lettering(**limit)
    publish(publisher, "q")
    assert confirms(publisher) == []
    broker.commit()
    assert confirms(publisher) == [("BasicAck", 1, False)]
    assert len(list(store.queue_entries("/", "dead"))) == 1


def publish_deduplicated(peer: Peer, exchange: str, routing_key: str, value: str) -> None:
    properties = BasicProperties(delivery_mode=2, headers={"x-deduplication-header": value}).encode()
    peer.channel().publish(spec.BasicPublish(exchange=exchange, routing_key=routing_key), properties, b"m")
    peer.client.flush_confirms()


def test_a_duplicate_a_durable_queue_drops_is_confirmed_with_the_message_it_holds() -> None:
    # Confirmed at once, it would be confirmed for nothing if a crash lost the first one.
    broker, store, publisher, retrier = setup()
    publisher.declare("q", durable=True, arguments={"x-message-deduplication": True})
    retrier.handle(spec.ConfirmSelect())
    broker.commit()
    publish_deduplicated(publisher, "", "q", "order-1")
    publish_deduplicated(retrier, "", "q", "order-1")
    assert confirms(retrier) == []
    broker.commit()
    assert confirms(publisher) == confirms(retrier) == [("BasicAck", 1, False)]
    assert len(list(store.queue_entries("/", "q"))) == 1


def test_a_deduplication_exchange_with_its_cache_on_disk_confirms_after_the_cache_is_written() -> None:
    # Acknowledged before the commit, the message itself need not be written, but its cache entry
    # must be before the confirm; a duplicate waits for the first one's entry too.
    broker, store, publisher, consumer = setup("q")
    retrier = Peer(broker)
    retrier.handle(spec.ConfirmSelect())
    publisher.exchange("dedup", "x-message-deduplication", durable=True,
                       arguments={"x-cache-size": 10, "x-cache-persistence": "disk"})
    publisher.bind("q", "dedup")
    broker.commit()
    consume(consumer, "q")
    publish_deduplicated(publisher, "dedup", "", "order-7")
    ack(consumer, 1)
    publish_deduplicated(retrier, "dedup", "", "order-7")
    assert confirms(publisher) == confirms(retrier) == []
    broker.commit()
    assert confirms(publisher) == confirms(retrier) == [("BasicAck", 1, False)]
    assert len([op for op in store.applied if type(op) is PutRecord and op.kind == "dedup"]) == 1
