"""What waits for a commit is released exactly when its batch is written, or told when it is not.

Each test here failed before the commit tracker owned that bookkeeping. The broker core and the
persister task run without sockets.
"""

from __future__ import annotations

import trio

from amqpbroker import core
from amqpbroker.protocol import spec
from amqpbroker.server import persister
from amqpbroker.store import MemoryStore

from .core_support import Client, FailingStore, wait_for


async def test_a_publish_purged_before_its_batch_is_written_is_still_confirmed_on_an_idle_broker() -> None:
    broker = core.Broker()
    client = Client(broker)
    client.send(spec.QueueDeclare(queue="q", durable=True))
    client.send(spec.ConfirmSelect())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(persister.Persister(broker).run)
        client.publish("", "q", b"purged at once")
        # Purged in the same batch: the message is never written, and the batch is left empty.
        client.connection.sessions[1].handle(spec.QueuePurge(queue="q"))
        await wait_for(lambda: client.sink.methods(spec.BasicAck), "the confirm")
        nursery.cancel_scope.cancel()
    assert [ack.delivery_tag for ack in client.sink.methods(spec.BasicAck)] == [1]
    assert client.sink.methods(spec.QueuePurgeOk)[0].message_count == 1


async def test_a_durable_declaration_whose_commit_fails_is_a_connection_error_and_is_written_later(
    monkeypatch,
) -> None:
    monkeypatch.setattr(persister, "RETRY_DELAY", 0.01)
    store = FailingStore()
    broker = core.Broker(store=store)
    client, bystander = Client(broker), Client(broker)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(persister.Persister(broker).run)
        await wait_for(lambda: not broker.journal.ops, "the start-up batch")
        store.failing = True
        client.connection.sessions.get(1, None) or client.connection.open_channel(1)
        client.connection.sessions[1].handle(spec.QueueDeclare(queue="q", durable=True))
        await wait_for(lambda: client.sink.closed is not None, "the connection error")
        assert client.sink.closed[0] == 541
        assert client.sink.methods(spec.QueueDeclareOk) == []
        assert bystander.sink.closed is None
        store.failing = False
        # The queue exists in memory; once the store works again, it is on disk too.
        await wait_for(lambda: [q.name for q in store.recover().queues] == ["q"], "the retried declaration")
        nursery.cancel_scope.cancel()


async def test_a_queue_deleted_while_the_store_fails_does_not_come_back_after_a_restart(monkeypatch) -> None:
    monkeypatch.setattr(persister, "RETRY_DELAY", 0.01)
    store = FailingStore()
    broker = core.Broker(store=store)
    client = Client(broker)
    client.send(spec.QueueDeclare(queue="q", durable=True))
    client.publish("", "q", b"m")
    broker.commit()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(persister.Persister(broker).run)
        store.failing = True
        client.connection.sessions[1].handle(spec.QueueDelete(queue="q"))
        await wait_for(lambda: client.sink.closed is not None, "the connection error")
        assert client.sink.methods(spec.QueueDeleteOk) == []
        store.failing = False
        await wait_for(lambda: not store.recover().queues, "the retried deletion")
        nursery.cancel_scope.cancel()
    assert "q" not in core.Broker(store=store).vhosts["/"].queues


class UnreadableStore(MemoryStore):
    """A MemoryStore whose bodies cannot be read back while `unreadable` is set."""

    unreadable = False

    def load_body(self, message_id: int) -> bytes:
        if self.unreadable:
            raise OSError("read error (simulated)")
        return super().load_body(message_id)


def test_a_body_that_cannot_be_read_stays_queued_and_costs_no_connection() -> None:
    store = UnreadableStore()
    broker = core.Broker(store=store, memory_limit=10)  # a body of 5 bytes is past half of it
    publisher, consumer = Client(broker), Client(broker)
    publisher.send(spec.QueueDeclare(queue="q", durable=True))
    publisher.publish("", "q", b"first")
    broker.commit()  # the body now lives only in the store
    queue = broker.vhosts["/"].queues["q"]

    store.unreadable = True
    consumer.send(spec.BasicConsume(queue="q", consumer_tag="c"))
    publisher.publish("", "q", b"second")
    assert consumer.sink.contents(spec.BasicDeliver) == []
    assert queue.message_count == 2 and queue.unacked_count == 0
    assert publisher.sink.closed is None and consumer.sink.closed is None

    store.unreadable = False
    consumer.send(spec.BasicQos(prefetch_count=10))
    deliveries = consumer.sink.contents(spec.BasicDeliver)
    assert [body for _, body in deliveries] == [b"first", b"second"]
    assert [method.delivery_tag for method, _ in deliveries] == [1, 2]
    assert not any(method.redelivered for method, _ in deliveries)


def test_a_basic_get_whose_body_cannot_be_read_is_answered_empty_and_leaves_it_queued() -> None:
    store = UnreadableStore()
    broker = core.Broker(store=store, memory_limit=10)
    client = Client(broker)
    client.send(spec.QueueDeclare(queue="q", durable=True))
    client.publish("", "q", b"first")
    broker.commit()  # the body now lives only in the store
    queue = broker.vhosts["/"].queues["q"]

    store.unreadable = True
    assert client.get("q") is None
    assert queue.message_count == 1 and queue.unacked_count == 0
    assert client.sink.closed is None and client.sink.held == set()

    store.unreadable = False
    method, body = client.get("q")
    assert body == b"first" and method.delivery_tag == 1 and not method.redelivered


def test_a_dead_message_whose_body_cannot_be_read_is_dropped_and_those_behind_it_go_on() -> None:
    store = UnreadableStore()
    broker = core.Broker(store=store, memory_limit=10)
    client = Client(broker)
    client.send(spec.QueueDeclare(queue="dlq", durable=True))
    client.send(spec.QueueDeclare(queue="q", durable=True, arguments={
        "x-max-length": 1, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq",
    }))
    client.publish("", "q", b"first")
    broker.commit()  # the body now lives only in the store

    store.unreadable = True
    client.publish("", "q", b"second")  # pushes "first" out
    client.publish("", "q", b"third")  # pushes "second" out, behind "first"
    broker.read_bodies()
    store.unreadable = False
    assert [body for body, _ in client.drain("dlq")] == [b"second"]
    assert [body for body, _ in client.drain("q")] == [b"third"]
    assert client.sink.closed is None
