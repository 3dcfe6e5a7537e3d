"""The persister task, without sockets: one batch per store transaction, and nothing it has taken
from the journal is dropped when the server cancels it at shutdown."""

from __future__ import annotations

from collections.abc import Sequence

import trio

from amqpbroker import core
from amqpbroker.protocol import spec
from amqpbroker.server.persister import GATHER, Persister
from amqpbroker.store import MemoryStore
from amqpbroker.store.base import Op, PutMessage

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


class RecordingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.batches = 0
        self.written: list[bytes] = []

    def apply(self, ops: Sequence[Op]) -> None:
        self.written += [op.body for op in ops if type(op) is PutMessage]
        super().apply(ops)
        self.batches += 1  # counted once written


async def _a_message_acked_half_a_gather_after_its_publish(*, acks_outran: bool) -> RecordingStore:
    """What the store wrote when a consumer acks a persistent message `GATHER / 2` after its
    publish; `acks_outran`: the batch before had most of its messages acked before it was taken."""
    store = RecordingStore()
    broker = core.Broker(store=store)
    publisher, consumer = Client(broker), Client(broker)
    publisher.send(spec.QueueDeclare(queue="q", durable=True))
    publisher.send(spec.ConfirmSelect())
    consumer.send(spec.BasicConsume(queue="q", consumer_tag="c"))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(Persister(broker).run)
        # Written, so that the batch before is the next one: were the start-up batch still in its
        # thread, it would be taken for the batch before, and gathering would follow its count.
        await wait_for(lambda: store.batches == 1, "the start-up batch")
        # The batch before: acked before the persister could take it, or not.
        for i in range(4):
            publisher.publish("", "q", b"before-%d" % i)
        if acks_outran:
            consumer.send(spec.BasicAck(delivery_tag=4, multiple=True))
        await wait_for(lambda: store.batches == 2, "the batch before")
        if not acks_outran:
            # Written, not only taken: a write still running in its thread would leave "quick" to
            # gather behind it, and the ack below could then cancel it.
            await wait_for(lambda: len(confirmed_tags(publisher)) == 4, "the batch before, confirmed")
            consumer.send(spec.BasicAck(delivery_tag=4, multiple=True))
        publisher.publish("", "q", b"quick")
        await trio.sleep(GATHER / 2)
        consumer.send(spec.BasicAck(delivery_tag=5))
        await wait_for(lambda: len(confirmed_tags(publisher)) == 5, "the confirm")
        await trio.sleep(GATHER * 2)
        nursery.cancel_scope.cancel()
    return store


async def test_while_acks_outrun_writes_a_batch_gathers_and_a_message_acked_meanwhile_is_never_written(
    autojump_clock,
) -> None:
    store = await _a_message_acked_half_a_gather_after_its_publish(acks_outran=True)
    assert b"quick" not in store.written


async def test_while_writes_keep_up_a_batch_is_taken_at_once(autojump_clock) -> None:
    store = await _a_message_acked_half_a_gather_after_its_publish(acks_outran=False)
    assert b"quick" in store.written
