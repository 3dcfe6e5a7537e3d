"""When the store cannot write: publishers waiting for confirms get basic.nack, and the broker
keeps routing and delivering. The broker core and the persister task run without any sockets."""

from __future__ import annotations

import pytest
import trio

from amqpbroker import core
from amqpbroker.protocol import spec
from amqpbroker.server.persister import Persister
from amqpbroker.store import StoreError

from .core_support import Client, FailingStore, confirmed_tags, wait_for


@pytest.mark.parametrize("error", [StoreError("disk full (simulated)"), RuntimeError("a bug in the store")])
async def test_a_failed_commit_nacks_its_publishes_and_delivery_goes_on(error: Exception) -> None:
    store = FailingStore()
    store.error = error
    broker = core.Broker(store=store)
    publisher, consumer = Client(broker), Client(broker)
    publisher.send(spec.QueueDeclare(queue="q", durable=True))
    publisher.send(spec.ConfirmSelect())
    consumer.send(spec.BasicConsume(queue="q", consumer_tag="c"))

    def deliveries() -> list[bytes]:
        return [body for method, body in consumer.sink.contents(spec.BasicDeliver)]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(Persister(broker).run)

        for i in range(3):
            publisher.publish("", "q", b"ok %d" % i)
        await wait_for(lambda: len(confirmed_tags(publisher)) == 3, "the first confirms")
        assert set(confirmed_tags(publisher).values()) == {"ack"}

        store.failing = True
        for i in range(5):
            publisher.publish("", "q", b"lost %d" % i)
        publisher.publish("", "q", b"transient", persistent=False)
        await wait_for(lambda: len(confirmed_tags(publisher)) == 9, "confirms while the store fails")
        outcome = confirmed_tags(publisher)
        assert [outcome[seq] for seq in range(4, 10)] == ["nack"] * 5 + ["ack"]
        assert all(not nack.requeue for nack in publisher.sink.methods(spec.BasicNack))

        # The consumer got every message, and acknowledging them does not upset anything.
        await wait_for(lambda: len(deliveries()) == 9, "deliveries")
        assert deliveries() == [b"ok 0", b"ok 1", b"ok 2", *(b"lost %d" % i for i in range(5)), b"transient"]
        consumer.send(spec.BasicAck(delivery_tag=1))
        consumer.send(spec.BasicAck(delivery_tag=4))

        store.failing = False
        publisher.publish("", "q", b"ok again")
        await wait_for(lambda: len(confirmed_tags(publisher)) == 10, "the confirm after the store recovered")
        assert confirmed_tags(publisher)[10] == "ack"
        await wait_for(lambda: len(deliveries()) == 10, "the last delivery")
        nursery.cancel_scope.cancel()

    # What the store did take is what a restart finds: not the lost batch, not the acked message.
    consumer.close()
    broker.commit()
    after = Client(core.Broker(store=store))
    assert [body for body, _ in after.drain("q")] == [b"ok 1", b"ok 2", b"ok again"]

