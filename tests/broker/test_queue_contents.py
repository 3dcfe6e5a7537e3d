"""What queues report their messages take up (bytes, persistent messages, bodies in memory or paged
out, the oldest message's timestamp) is what they hold, through every way a message comes and goes:
routed to one queue or two, delivered, acknowledged, returned, rejected into a dead-letter queue,
expired, pushed out by a length limit, purged, its body paged out under memory pressure and read
back, and a restart that leaves every body on disk. A stateful property test checks the counts the
queues keep against a recount of what they hold after every step."""

from __future__ import annotations

import random

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from amqpbroker import core
from amqpbroker.core.contents import Contents
from amqpbroker.core.message import QueueEntry
from amqpbroker.protocol import BasicProperties, spec
from amqpbroker.store import MemoryStore

from .conftest import Clock, Peer

CHANNELS = (1, 2)
QUEUES = ("q", "dlq", "t", "qq")
# Small enough that bodies of persistent messages leave memory once committed.
MEMORY_LIMIT = 1200


def declare_topology(peer: Peer) -> None:
    """`q` (durable, a length limit with drop-head, dead-letters to `dlq`), `dlq` (durable), `t`
    (transient) and `qq` (quorum, which stores every message); the durable fanout `both` routes to
    `q` and `t`, and `all` to `q`, `t` and `qq`."""
    peer.declare("dlq", durable=True)
    peer.declare("q", durable=True, arguments={
        "x-max-length": 5, "x-overflow": "drop-head",
        "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq",
    })
    peer.declare("t")
    peer.exchange("both", "fanout", durable=True)
    peer.declare("qq", durable=True, arguments={"x-queue-type": "quorum"})
    peer.exchange("all", "fanout", durable=True)
    for queue in ("q", "t"):
        peer.bind(queue, "both")
    for queue in ("q", "t", "qq"):
        peer.bind(queue, "all")


class ContentsModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.store = MemoryStore()
        self.broker = self._start()
        self.peer = self._connect()
        declare_topology(self.peer)
        self.consuming: set[int] = set()
        self.outstanding: dict[int, set[int]] = {ch: set() for ch in CHANNELS}
        """The delivery tags of each channel's deliveries that await an ack."""
        self.numbers = 0

    def _start(self) -> core.Broker:
        return core.Broker(store=self.store, memory_limit=MEMORY_LIMIT, clock=self.clock, wall_clock=self.clock.wall)

    def _connect(self) -> Peer:
        peer = Peer(self.broker)
        for ch in CHANNELS:
            peer.channel(ch)
        return peer

    def _settle(self, no_ack: bool = False) -> None:
        """Reads back every body something waits for, as the server's reader does, and notes the
        deliveries made meanwhile."""
        self.broker.read_bodies()
        for frame in self.peer.sink.take():
            if isinstance(frame.method, spec.BasicDeliver) or (isinstance(frame.method, spec.BasicGetOk) and not no_ack):
                self.outstanding[frame.channel].add(frame.method.delivery_tag)

    @rule(
        to=st.sampled_from(("q", "t", "qq", "both", "all")),
        persistent=st.booleans(),
        size=st.integers(0, 300),
        timestamp=st.none() | st.integers(1, 2**31),
        expiration=st.none() | st.sampled_from(("0", "500", "5000")),
    )
    def publish(self, to: str, persistent: bool, size: int, timestamp: int | None, expiration: str | None) -> None:
        exchange, routing_key = (to, "") if to in ("both", "all") else ("", to)
        self.numbers += 1
        self.peer.publish(exchange, routing_key, b"%d" % self.numbers + b"." * size,
                          delivery_mode=2 if persistent else None, timestamp=timestamp, expiration=expiration)
        self._settle()

    @rule()
    def commit(self) -> None:
        self.broker.commit()
        self._settle()

    @rule(ch=st.sampled_from(CHANNELS), queue=st.sampled_from(QUEUES), no_ack=st.booleans())
    def get(self, ch: int, queue: str, no_ack: bool) -> None:
        self.peer.handle(spec.BasicGet(queue=queue, no_ack=no_ack), ch)
        self._settle(no_ack)

    @precondition(lambda self: len(self.consuming) < len(CHANNELS))
    @rule(data=st.data(), queue=st.sampled_from(QUEUES), prefetch=st.integers(1, 3))
    def consume(self, data: st.DataObject, queue: str, prefetch: int) -> None:
        ch = data.draw(st.sampled_from([c for c in CHANNELS if c not in self.consuming]))
        self.peer.qos(prefetch, ch=ch)
        self.peer.consume(queue, f"c{ch}", ch=ch)
        self.consuming.add(ch)
        self._settle()

    @rule(ch=st.sampled_from(CHANNELS), outcome=st.sampled_from(("ack", "requeue", "reject")), seed=st.integers())
    def settle(self, ch: int, outcome: str, seed: int) -> None:
        if not self.outstanding[ch]:
            return
        tag = random.Random(seed).choice(sorted(self.outstanding[ch]))
        self.outstanding[ch].discard(tag)
        if outcome == "ack":
            self.peer.ack(tag, ch=ch)
        else:
            self.peer.handle(spec.BasicNack(delivery_tag=tag, requeue=outcome == "requeue"), ch)
        self._settle()

    @rule(seconds=st.sampled_from((0.3, 1.0, 6.0)))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)
        while self.broker.expire():
            pass
        self._settle()

    @rule(queue=st.sampled_from(QUEUES))
    def purge(self, queue: str) -> None:
        self.peer.handle(spec.QueuePurge(queue=queue))
        self._settle()

    @rule(ch=st.sampled_from(CHANNELS))
    def close_channel(self, ch: int) -> None:
        self.peer.client.close_channel(ch)
        self.consuming.discard(ch)
        self.outstanding[ch].clear()
        self.peer.channel(ch)
        self._settle()

    @rule()
    def restart(self) -> None:
        """A clean stop and a start over the same store: every body stays on disk until needed."""
        self.peer.client.close()
        self.broker.commit()
        self.store.close()
        self.broker = self._start()
        self.peer = self._connect()
        self.peer.declare("t")
        self.peer.bind("t", "both")
        self.peer.bind("t", "all")
        self.consuming.clear()
        for tags in self.outstanding.values():
            tags.clear()
        self._settle()

    @invariant()
    def counts_are_what_the_queues_hold(self) -> None:
        unacked: dict[core.Queue, list[QueueEntry]] = {}
        for connection in self.broker.connections:
            for session in connection.sessions.values():
                for queue, entry in session.delivery.unacked():
                    unacked.setdefault(queue, []).append(entry)
        contents = Contents(self.broker)
        held = set()
        for queue in self.broker.vhosts["/"].queues.values():
            ready, delivered = queue.peek(), unacked.get(queue, [])
            entries = ready + delivered
            held.update(entry.message for entry in entries)
            assert queue.ready_bytes == sum(entry.message.size for entry in ready)
            persistent = [entry for entry in entries
                          if queue.durable and (queue.stores_all or entry.message.persistent)]
            assert queue.persistent_count == len(persistent)
            assert queue.persistent_bytes == sum(entry.message.size for entry in persistent)
            found = contents.of(queue)
            assert found.message_bytes_unacknowledged == sum(entry.message.size for entry in delivered)
            ready_paged = [entry for entry in ready if entry.message.body is None]
            delivered_paged = [entry for entry in delivered if entry.message.body is None]
            assert found.messages_ready_ram == len(ready) - len(ready_paged)
            assert found.messages_unacknowledged_ram == len(delivered) - len(delivered_paged)
            assert found.messages_paged_out == len(ready_paged) + len(delivered_paged)
            assert found.messages_ram + found.messages_paged_out == len(entries)
            assert found.message_bytes_paged_out == sum(entry.message.size for entry in ready_paged + delivered_paged)
            assert found.message_bytes_ram + found.message_bytes_paged_out == (
                queue.ready_bytes + found.message_bytes_unacknowledged)
            heads = [ready[0]] if ready else []
            if delivered:
                heads.append(min(delivered, key=lambda entry: entry.seq))
            stamps = [BasicProperties.decode(entry.message.properties).timestamp for entry in heads]
            assert found.head_message_timestamp == min((stamp for stamp in stamps if stamp is not None), default=None)
        assert self.broker.memory.paged_out == sum(message.body is None for message in held)


ContentsModel.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_queue_contents = ContentsModel.TestCase


@pytest.fixture
def durable(peer: Peer) -> core.Queue:
    peer.declare("d", durable=True)
    return peer.client.broker.vhosts["/"].queues["d"]


def test_a_durable_queue_counts_its_persistent_messages_and_their_bytes(peer: Peer, durable: core.Queue) -> None:
    peer.publish("", "d", b"x" * 100, delivery_mode=2)
    peer.publish("", "d", b"y" * 30)
    assert (durable.persistent_count, durable.persistent_bytes) == (1, 100)
    assert peer.get("d", no_ack=False) == b"x" * 100
    broker = peer.client.broker
    assert (durable.ready_bytes, Contents(broker).of(durable).message_bytes_unacknowledged) == (30, 100)
    assert (durable.persistent_count, durable.persistent_bytes) == (1, 100)
    peer.ack(1)
    assert (durable.ready_bytes, Contents(broker).of(durable).message_bytes_unacknowledged) == (30, 0)
    assert (durable.persistent_count, durable.persistent_bytes) == (0, 0)


def test_a_transient_queue_has_no_persistent_messages(peer: Peer) -> None:
    peer.declare("t")
    peer.publish("", "t", b"x" * 100, delivery_mode=2)
    queue = peer.client.broker.vhosts["/"].queues["t"]
    assert (queue.ready_bytes, queue.persistent_count, queue.persistent_bytes) == (100, 0, 0)


def test_the_head_timestamp_is_the_oldest_of_the_next_ready_and_the_oldest_unacknowledged(
    peer: Peer, durable: core.Queue
) -> None:
    broker = peer.client.broker
    assert Contents(broker).of(durable).head_message_timestamp is None
    peer.publish("", "d", b"a", timestamp=1_700_000_000)
    peer.publish("", "d", b"b")
    peer.publish("", "d", b"c", timestamp=1_600_000_000)
    assert Contents(broker).of(durable).head_message_timestamp == 1_700_000_000
    peer.get("d", no_ack=False)
    # "a" is delivered and not acknowledged yet: it still counts, as in RabbitMQ.
    assert Contents(broker).of(durable).head_message_timestamp == 1_700_000_000
    peer.ack(1)
    # "b", next, has none.
    assert Contents(broker).of(durable).head_message_timestamp is None
    peer.get("d")
    assert Contents(broker).of(durable).head_message_timestamp == 1_600_000_000


def test_bodies_paged_out_under_memory_pressure_are_counted_out_of_memory() -> None:
    broker = core.Broker(memory_limit=1000)
    peer = Peer(broker)
    peer.declare("d", durable=True)
    queue = broker.vhosts["/"].queues["d"]
    for body in (b"x" * 300, b"y" * 300):
        peer.publish("", "d", body, delivery_mode=2)
    peer.publish("", "d", b"z" * 50)
    found = Contents(broker).of(queue)
    assert (found.messages_ram, found.message_bytes_ram, found.messages_paged_out) == (3, 650, 0)
    broker.commit()
    # The first body to leave brings memory back under half the limit: the second stays.
    found = Contents(broker).of(queue)
    assert (found.messages_ram, found.message_bytes_ram) == (2, 350)
    assert (found.messages_paged_out, found.message_bytes_paged_out) == (1, 300)



def test_a_delivery_acknowledged_in_a_transaction_counts_as_unacknowledged_until_the_commit(
    peer: Peer, durable: core.Queue
) -> None:
    broker = peer.client.broker
    peer.handle(spec.TxSelect())
    peer.publish("", "d", b"x" * 100, timestamp=1_700_000_000)
    peer.handle(spec.TxCommit())
    peer.get("d", no_ack=False)
    peer.ack(1)
    found = Contents(broker).of(durable)
    assert (found.message_bytes_unacknowledged, found.message_bytes_ram, found.head_message_timestamp) == (
        100, 100, 1_700_000_000)
    peer.handle(spec.TxRollback())
    assert Contents(broker).of(durable).message_bytes_unacknowledged == 100
    peer.ack(1)
    peer.handle(spec.TxCommit())
    found = Contents(broker).of(durable)
    assert (found.message_bytes_unacknowledged, found.message_bytes_ram, found.head_message_timestamp) == (0, 0, None)
