"""The persister task, without sockets: one batch per store transaction, and nothing it has taken
from the journal is dropped when the server cancels it at shutdown."""

from __future__ import annotations

from collections.abc import Sequence

import trio

from amqpbroker import core
from amqpbroker.protocol import spec
from amqpbroker.server.persister import Persister
from amqpbroker.store import MemoryStore
from amqpbroker.store.base import Op

from .core_support import Client, confirmed_tags, confirms, wait_for


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    def apply(self, ops: Sequence[Op]) -> None:
        self.batches += 1
        super().apply(ops)


async def test_publishes_that_arrive_together_share_one_commit() -> None:
    store = CountingStore()
    broker = core.Broker(store=store)
    publisher = Client(broker)
    publisher.send(spec.QueueDeclare(queue="q", durable=True))
    publisher.send(spec.ConfirmSelect())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(Persister(broker).run)
        await wait_for(lambda: store.batches == 1, "the start-up batch")
        for i in range(500):  # what one read from a socket may hold: no checkpoint in between
            publisher.publish("", "q", b"%d" % i)
        await wait_for(lambda: len(confirmed_tags(publisher)) == 500, "the confirms")
        nursery.cancel_scope.cancel()
    assert store.batches == 2
    assert confirms(publisher) == [("BasicAck", 500, True)]


async def test_a_batch_taken_just_before_shutdown_is_still_written() -> None:
    store = CountingStore()
    broker = core.Broker(store=store)
    client = Client(broker)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(Persister(broker).run)
        await wait_for(lambda: store.batches == 1, "the start-up batch")
        # Wakes the persister; the shutdown's cancellation comes before it has run again.
        client.connection.open_channel(1).handle(spec.QueueDeclare(queue="declared-last", durable=True))
        nursery.cancel_scope.cancel()
    broker.commit()  # what the final flush at shutdown does after the tasks are done
    assert [queue.name for queue in store.recover().queues] == ["declared-last"]
