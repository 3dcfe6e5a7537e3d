"""kill -9 at random moments while publishers with confirms and an acknowledging consumer are at
work, restarting the broker on the same data directory each time; then everything is drained.

The rules checked (per queue; each queue is fed by one publisher, so its order is the
publisher's sequence):

- a message whose publish was confirmed is there at the end exactly once, unless it was acked;
- a message that was definitely acked never comes back: neither in a later cycle nor at the end.
  An ack is *definitely* acked once the consumer has had a confirm for a persistent message it
  published to a durable queue on the same channel after sending the ack: the channel's methods
  are handled in order and store batches are committed in order, so that confirm means the
  batch holding the ack was committed. An ack without such a confirm (the broker died first) is
  *maybe* acked, and its message may or may not come back;
- an unconfirmed message may or may not be there, but nothing is there that was never published;
- a message delivered again (after a requeue, a closed connection or a kill) has redelivered=true;
- messages are drained in publish order, without duplicates.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import pika
import pytest

from .conftest import BrokerProcess

PERSISTENT = pika.BasicProperties(delivery_mode=2)
# What a client sees when the broker dies or goes away under it.
# How a client sees a broker being killed. pika raises ValueError ("Expected connected socket")
# when the broker dies between its TCP connect and its first read.
GONE = (pika.exceptions.AMQPError, OSError)
CONNECT_GONE = (*GONE, ValueError)


@dataclass
class Publisher:
    name: str
    exchange: str
    # routing key -> the queues a message published with it reaches
    routes: dict[str, tuple[str, ...]]
    attempted: dict[int, tuple[str, ...]] = field(default_factory=dict)
    confirmed: set[int] = field(default_factory=set)
    seq: int = 0


@dataclass
class Run:
    broker: BrokerProcess
    stop: threading.Event = field(default_factory=threading.Event)
    problems: list[str] = field(default_factory=list)
    definitely_acked: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    maybe_acked: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    delivered: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    deliveries: int = 0
    connections: int = 0

    def connect(self) -> pika.BlockingConnection | None:
        """A connection to the broker of the moment, or None once the run is over."""
        while not self.stop.is_set():
            try:
                connection = self.broker.connect_current(socket_timeout=2, stack_timeout=3, heartbeat=0)
            except CONNECT_GONE:
                connection = None
            if connection is None:
                time.sleep(0.02)
                continue
            self.connections += 1
            return connection
        return None


def publish_until_stopped(run: Run, publisher: Publisher) -> None:
    keys = list(publisher.routes)
    while (connection := run.connect()) is not None:
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            while not run.stop.is_set():
                publisher.seq += 1
                key = keys[publisher.seq % len(keys)]
                publisher.attempted[publisher.seq] = publisher.routes[key]
                body = f"{publisher.name}:{publisher.seq}".encode()
                try:
                    channel.basic_publish(publisher.exchange, key, body, PERSISTENT, mandatory=True)
                except pika.exceptions.UnroutableError:
                    run.problems.append(f"{body!r} was returned unroutable: a binding was lost")
                    return
                except pika.exceptions.NackError:
                    run.problems.append(f"{body!r} was nacked")
                    return
                publisher.confirmed.add(publisher.seq)
        except GONE:
            pass
        finally:
            close_quietly(connection)


def consume_until_stopped(run: Run, queues: list[str], rng: random.Random) -> None:
    """basic.get some messages, ack most, requeue or keep some; prove the acks with a confirm."""
    while (connection := run.connect()) is not None:
        pending: list[tuple[str, int]] = []
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            while not run.stop.is_set():
                queue = rng.choice(queues)
                for _ in range(rng.randint(1, 30)):
                    method, _, body = channel.basic_get(queue)
                    if method is None:
                        break
                    run.deliveries += 1
                    seq = int(body.split(b":")[1])
                    if seq in run.definitely_acked[queue]:
                        run.problems.append(f"{body!r} in {queue} came back after its ack was committed")
                    if seq in run.delivered[queue] and not method.redelivered:
                        run.problems.append(f"{body!r} in {queue} was delivered again without redelivered=true")
                    run.delivered[queue].add(seq)
                    choice = rng.random()
                    if choice < 0.7:
                        channel.basic_ack(method.delivery_tag)
                        pending.append((queue, seq))
                    elif choice < 0.85:
                        channel.basic_nack(method.delivery_tag, requeue=True)
                    # else: left unacknowledged until the connection ends
                channel.basic_publish("", "crash-marker", b"marker", PERSISTENT)
                for acked_queue, seq in pending:
                    run.definitely_acked[acked_queue].add(seq)
                pending.clear()
                time.sleep(rng.uniform(0, 0.02))
        except GONE:
            pass
        finally:
            for acked_queue, seq in pending:
                run.maybe_acked[acked_queue].add(seq)
            close_quietly(connection)


def close_quietly(connection: pika.BlockingConnection) -> None:
    try:
        if connection.is_open:
            connection.close()
    except GONE:
        pass


def drain(broker: BrokerProcess, queue: str) -> list[int]:
    connection = broker.connect()
    try:
        channel = connection.channel()
        count = channel.queue_declare(queue, passive=True).method.message_count
        channel.basic_qos(prefetch_count=1000)
        seqs = []
        for method, _, body in channel.consume(queue, inactivity_timeout=10):
            assert method is not None, f"{queue}: {len(seqs)} of {count} messages delivered"
            seqs.append(int(body.split(b":")[1]))
            if len(seqs) % 500 == 0 or len(seqs) == count:
                channel.basic_ack(method.delivery_tag, multiple=True)
            if len(seqs) == count:
                break
        channel.cancel()
        return seqs
    finally:
        close_quietly(connection)


def run_crash_cycles(broker: BrokerProcess, cycles: int, max_delay: float, seed: int,
                     ways: tuple[str, ...] = ("kill",)) -> None:
    rng = random.Random(seed)
    publishers = [
        Publisher("a", "", {"crash-a0": ("crash-a0",), "crash-a1": ("crash-a1",)}),
        Publisher("b", "crash-fanout", {"": ("crash-b0", "crash-b1")}),
        Publisher("c", "crash-direct", {"c": ("crash-c0",)}),
    ]
    queues = [queue for publisher in publishers for routed in publisher.routes.values() for queue in routed]
    queues = sorted(set(queues))
    connection = broker.connect()
    channel = connection.channel()
    channel.exchange_declare("crash-fanout", "fanout", durable=True)
    channel.exchange_declare("crash-direct", "direct", durable=True)
    for queue in [*queues, "crash-marker"]:
        channel.queue_declare(queue, durable=True)
    channel.queue_bind("crash-b0", "crash-fanout")
    channel.queue_bind("crash-b1", "crash-fanout")
    channel.queue_bind("crash-c0", "crash-direct", "c")
    channel.confirm_delivery()
    channel.basic_publish("", "crash-marker", b"topology committed", PERSISTENT)
    connection.close()

    run = Run(broker)
    threads = [threading.Thread(target=publish_until_stopped, args=(run, p), daemon=True) for p in publishers]
    threads.append(
        threading.Thread(target=consume_until_stopped, args=(run, queues, random.Random(seed + 1)), daemon=True)
    )
    for thread in threads:
        thread.start()
    try:
        for _ in range(cycles):
            time.sleep(rng.uniform(0.05, max_delay))
            broker.restart(rng.choice(ways))
            if run.problems:
                break
    finally:
        run.stop.set()
        for thread in threads:
            thread.join(timeout=20)
    assert not any(thread.is_alive() for thread in threads), "a client thread is stuck"
    broker.kill()  # the last one too: drain what a crash left
    broker.start()

    context = f"seed {seed}"
    assert run.problems == [], context
    for publisher in publishers:
        for queue in sorted({q for routed in publisher.routes.values() for q in routed}):
            found = drain(broker, queue)
            published = {seq for seq, routed in publisher.attempted.items() if queue in routed}
            confirmed = {seq for seq in publisher.confirmed if queue in publisher.attempted[seq]}
            definitely, maybe = run.definitely_acked[queue], run.maybe_acked[queue]
            assert found == sorted(set(found)), f"{context}: {queue} is out of order or has duplicates"
            assert set(found) <= published, f"{context}: {queue} has messages never published"
            assert not set(found) & definitely, f"{context}: acked messages came back in {queue}"
            missing = confirmed - set(found) - definitely - maybe
            assert not missing, f"{context}: confirmed messages lost from {queue}: {sorted(missing)[:20]}"
    total_confirmed = sum(len(p.confirmed) for p in publishers)
    total_acked = sum(len(acked) for acked in run.definitely_acked.values())
    print(
        f"\n{cycles} cycles ({'/'.join(ways)}), seed {seed}: {sum(len(p.attempted) for p in publishers)} published, "
        f"{total_confirmed} confirmed, {run.deliveries} deliveries, {total_acked} definitely acked, "
        f"{sum(len(m) for m in run.maybe_acked.values())} maybe acked, {run.connections} connections"
    )
    # The run must have done something worth checking.
    assert total_confirmed >= 100 and total_acked >= 10, context


@pytest.fixture(autouse=True)
def _quiet_pika() -> Iterator[None]:
    """pika logs every refused connection attempt at ERROR; here they are expected."""
    logger = logging.getLogger("pika")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


def test_kill_9_at_random_moments_loses_no_confirmed_message(broker_process: BrokerProcess) -> None:
    seed = int(os.environ.get("CRASH_SEED", random.randrange(2**32)))
    run_crash_cycles(broker_process, cycles=15, max_delay=1.0, seed=seed)


@pytest.mark.slow
def test_kill_9_and_sigterm_many_times(broker_process: BrokerProcess) -> None:
    seed = int(os.environ.get("CRASH_SEED", random.randrange(2**32)))
    run_crash_cycles(broker_process, cycles=60, max_delay=1.5, seed=seed, ways=("kill", "kill", "sigterm"))
