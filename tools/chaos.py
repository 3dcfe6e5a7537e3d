#!/usr/bin/env python3
"""Chaos soak: mixed load against a broker subprocess that is killed with SIGKILL and restarted.

Each cycle starts the broker (`python -m amqpbroker`, a free port, the same data directory every
time), runs publishers with confirms (persistent messages to durable queues), consumers with manual
acks, prefetch and some requeues (basic.nack), and raw clients that die in the middle of a frame,
then kills the broker at a random moment, starts it again (killing it once more early in a third
of the cycles, while it recovers and redelivers) and lets the consumers drain the queues.
After each cycle it checks:

- lost: a confirmed message that was never acked (the queues are empty after the drain);
- acked then delivered again: a message whose ack was proven committed came back. An ack is
  proven once the consumer's channel has a confirm for a persistent message it published to a
  durable queue after the ack: a channel's methods are handled in order and store batches are
  committed in order, so that confirm means the ack's batch is on disk too;
- duplicates without redelivered: a message delivered again without the redelivered flag;
- order: among the first deliveries (redelivered=false) of one publisher's messages on one queue,
  a sequence number lower than one already seen;
- foreign: a delivery of something never published.

Every queue is a `QueueSpec`; the accounting is by message id, not by queue. Besides the plain
queues, a quorum queue and a priority queue take the same load (each publisher publishes to the
priority queue at a priority of its own, so the queue reorders across publishers and order holds
per publisher); one queue's consumer rejects some messages and one queue has a message TTL and no
consumer; both dead-letter into a dead-letter queue, whose deliveries are a message's second life:
a rejected or expired message must arrive there, is acked there, and is checked there as above
(except for order, which expiry and rejection interleave). A dead letter is delivered before its
move is committed, like any delivery; when a kill loses the move, the message dies again in its
source and arrives once more, unflagged: counted as "dead lettered again", allowed only across a
kill. Prints per-cycle and total figures; exits 1 on a violation, 2 when the broker cannot start.

    python tools/chaos.py --cycles 100 --seconds 3 --seed 1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pika

PERSISTENT = pika.BasicProperties(delivery_mode=2)
SYNC_QUEUE = "chaos-sync"
START_SECONDS = 20
DRAIN_SECONDS = 60
PREFETCH = 20
PRIORITIES = 3
"""The priority queue's x-max-priority; each publisher publishes to it at one of 0..PRIORITIES."""
REQUEUE_RATE = 0.05
REJECT_RATE = 0.1
TTL_MS = 300
DEAD_LETTERS = "chaos-dlq"
RECOVERY_KILL_RATE = 0.3
WORK_SECONDS = 0.03
SYNC_EVERY = 20  # acks between two proofs (a confirmed persistent publish on the consumer's channel)
# What a client sees when the broker dies under it; pika raises ValueError when the broker dies
# between its TCP connect and its first read.
GONE = (pika.exceptions.AMQPError, OSError, ValueError)
# "duplicates" counts every delivery of a message seen before: the requeued ones, and those a kill
# left unacked.
FIGURES = ("confirmed", "nacked", "delivered", "requeued", "rejected", "dead_lettered", "dead_lettered_again",
           "duplicates")
VIOLATIONS = ("lost", "acked_redelivered", "duplicates_without_redelivered", "order", "foreign")


@dataclass(frozen=True)
class QueueSpec:
    """A durable queue under test and the arguments it is declared with."""

    name: str
    arguments: dict = field(default_factory=dict)
    published_to: bool = True
    consumed: bool = True
    reject_rate: float = 0.0
    """How often its consumer rejects a message (requeue=false) while load runs."""
    dead: bool = False
    """Its messages were dead-lettered: their deliveries here are a second life."""
    priorities: bool = False
    """Published to with each publisher's own priority, so that the queue reorders across
    publishers while each one's messages stay in order."""


def queue_specs(queues: int) -> list[QueueSpec]:
    to_dead_letters = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": DEAD_LETTERS}
    return [
        *(QueueSpec(f"chaos-q{n}") for n in range(queues)),
        QueueSpec("chaos-rejecting", to_dead_letters, reject_rate=REJECT_RATE),
        QueueSpec("chaos-ttl", {**to_dead_letters, "x-message-ttl": TTL_MS}, consumed=False),
        QueueSpec("chaos-quorum", {"x-queue-type": "quorum"}),
        QueueSpec("chaos-priority", {"x-max-priority": PRIORITIES}, priorities=True),
        QueueSpec(DEAD_LETTERS, published_to=False, dead=True),
    ]


class BrokerProcess:
    """The broker under test: started on a free port, killed with SIGKILL, started again."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = 0
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "amqpbroker", "--no-http", "--no-metrics", "--host", "127.0.0.1", "--port", "0",
                 "--data-dir", str(self.data_dir), "--log-level", "info"],
                stdout=subprocess.DEVNULL, stderr=log,
            )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline and self._process.poll() is None:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                found = re.search(rb"listening on 127\.0\.0\.1:(\d+)", log.read())
            if found:
                self.port = int(found.group(1))
                return
            time.sleep(0.01)
        self.kill()
        raise RuntimeError(f"the broker did not start; see {self.log_path}")

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def connect(self) -> pika.BlockingConnection:
        return pika.BlockingConnection(pika.ConnectionParameters(
            host="127.0.0.1", port=self.port, socket_timeout=2, stack_timeout=5, heartbeat=0,
            connection_attempts=1, blocked_connection_timeout=30,
        ))


@dataclass
class Ledger:
    """Everything the clients did and saw, by message id ("publisher:seq"); thread-safe."""

    published: set[str] = field(default_factory=set)
    confirmed: set[str] = field(default_factory=set)
    seen: dict[tuple[str, bool], int] = field(default_factory=dict)
    """(message id, dead-lettered) of every life of a message delivered so far, with the broker
    life (epoch, counted in kills) it was first delivered in."""
    epoch: int = 0
    """How many times the broker has been killed."""
    ack_sent: set[str] = field(default_factory=set)
    ack_proven: set[str] = field(default_factory=set)
    last_first: dict[tuple[str, str], int] = field(default_factory=dict)
    figures: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publishing(self, message_id: str) -> None:
        with self.lock:
            self.published.add(message_id)

    def nacked(self) -> None:
        with self.lock:
            self.figures["nacked"] += 1

    def requeued(self) -> None:
        with self.lock:
            self.figures["requeued"] += 1

    def killed(self) -> None:
        with self.lock:
            self.epoch += 1

    def rejected(self) -> None:
        with self.lock:
            self.figures["rejected"] += 1

    def snapshot(self) -> Counter:
        with self.lock:
            return Counter(self.figures)

    def confirm(self, message_id: str) -> None:
        with self.lock:
            self.confirmed.add(message_id)
            self.figures["confirmed"] += 1

    def deliver(self, queue: str, message_id: str, redelivered: bool, dead: bool = False) -> None:
        with self.lock:
            self.figures["delivered"] += 1
            if message_id not in self.published:
                self._violation("foreign", f"{message_id} in {queue} was never published")
                return
            life = (message_id, dead)
            if life in self.seen:
                self.figures["duplicates"] += 1
                if not redelivered and dead and self.seen[life] < self.epoch:
                    # Its first dead-lettering was delivered before it was committed, and a kill lost
                    # it: the message went back to its source and died again, a new dead letter.
                    self.figures["dead_lettered_again"] += 1
                elif not redelivered:
                    self._violation("duplicates_without_redelivered", f"{message_id} in {queue} again, not redelivered")
                if message_id in self.ack_proven:
                    self._violation("acked_redelivered", f"{message_id} in {queue} again after its ack was committed")
                return
            self.seen[life] = self.epoch
            if dead:
                self.figures["dead_lettered"] += 1
                return
            if redelivered:
                return
            publisher, seq = message_id.rsplit(":", 1)
            key = (queue, publisher)
            if self.last_first.get(key, -1) > int(seq):
                self._violation("order", f"{message_id} in {queue} after {publisher}:{self.last_first[key]}")
            else:
                self.last_first[key] = int(seq)

    def acks_sent(self, message_ids: list[str]) -> None:
        with self.lock:
            self.ack_sent.update(message_ids)

    def acks_proven(self, message_ids: list[str]) -> None:
        with self.lock:
            self.ack_proven.update(message_ids)

    def missing(self) -> set[str]:
        """Confirmed messages never acked: lost, once the queues are drained."""
        with self.lock:
            return self.confirmed - self.ack_sent

    def _violation(self, name: str, example: str) -> None:
        self.figures[name] += 1
        if len(self.examples) < 20:
            self.examples.append(example)


@dataclass
class Run:
    broker: BrokerProcess
    ledger: Ledger
    queues: list[QueueSpec]
    stop: threading.Event = field(default_factory=threading.Event)
    publishing: threading.Event = field(default_factory=threading.Event)
    draining: threading.Event = field(default_factory=threading.Event)
    raw_sessions: int = 0
    """Raw client sessions under way: one dying as consumer holds deliveries the drain cannot see."""
    raw_lock: threading.Lock = field(default_factory=threading.Lock)

    def raw_session(self, delta: int) -> None:
        with self.raw_lock:
            self.raw_sessions += delta

    @property
    def targets(self) -> list[QueueSpec]:
        return [queue for queue in self.queues if queue.published_to]

    def connect(self) -> pika.BlockingConnection | None:
        """A connection to the broker of the moment, or None once the run is over."""
        while not self.stop.is_set():
            try:
                return self.broker.connect()
            except GONE:
                time.sleep(0.05)
        return None


def close_quietly(connection: pika.BlockingConnection) -> None:
    try:
        if connection.is_open:
            connection.close()
    except GONE:
        pass


def publisher(run: Run, name: str, rng: random.Random) -> None:
    seq = 0
    with_priority = pika.BasicProperties(delivery_mode=2, priority=rng.randrange(PRIORITIES + 1))
    while (connection := run.connect()) is not None:
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            while not run.stop.is_set():
                if not run.publishing.is_set():
                    connection.sleep(0.05)
                    continue
                seq += 1
                message_id = f"{name}:{seq}"
                run.ledger.publishing(message_id)
                try:
                    target = rng.choice(run.targets)
                    properties = with_priority if target.priorities else PERSISTENT
                    channel.basic_publish("", target.name, message_id.encode(), properties)
                except pika.exceptions.NackError:
                    run.ledger.nacked()
                    continue
                run.ledger.confirm(message_id)
        except GONE:
            pass
        finally:
            close_quietly(connection)


class Consumer:
    """Consumes one queue with manual acks and prefetch; requeues a few messages while load runs."""

    def __init__(self, run: Run, queue: QueueSpec, rng: random.Random) -> None:
        self.run = run
        self.queue = queue
        self.rng = rng
        self.idle = False  # no unproven ack and nothing received since the last look

    def __call__(self) -> None:
        while (connection := self.run.connect()) is not None:
            self.idle = False
            unproven: list[str] = []
            try:
                self._consume(connection, unproven)
            except GONE:
                pass
            finally:
                close_quietly(connection)

    def _consume(self, connection: pika.BlockingConnection, unproven: list[str]) -> None:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_qos(prefetch_count=PREFETCH)
        received: list[tuple[int, bool, str]] = []
        channel.basic_consume(
            self.queue.name, lambda ch, method, props, body: received.append(
                (method.delivery_tag, method.redelivered, body.decode())))
        ledger = self.run.ledger
        while not self.run.stop.is_set():
            connection.process_data_events(time_limit=0.02)
            batch, received[:] = list(received), []
            if batch:
                # Some work per batch, so that a kill finds messages delivered but not yet acked.
                connection.sleep(self.rng.uniform(0, WORK_SECONDS))
            for tag, redelivered, message_id in batch:
                ledger.deliver(self.queue.name, message_id, redelivered, self.queue.dead)
                loaded = not self.run.draining.is_set()
                if loaded and self.rng.random() < REQUEUE_RATE:
                    channel.basic_nack(tag, requeue=True)
                    ledger.requeued()
                elif loaded and self.rng.random() < self.queue.reject_rate:
                    # Dead-lettered: acked in the dead-letter queue, where it must turn up.
                    channel.basic_reject(tag, requeue=False)
                    ledger.rejected()
                else:
                    channel.basic_ack(tag)
                    unproven.append(message_id)
            ledger.acks_sent(unproven)
            if unproven and (len(unproven) >= SYNC_EVERY or not batch):
                channel.basic_publish("", SYNC_QUEUE, b"proof", PERSISTENT)
                ledger.acks_proven(unproven)
                unproven.clear()
            self.idle = not batch and not unproven


def raw_killer(run: Run, name: str, rng: random.Random) -> None:
    """Opens raw connections that publish or consume a little, then die in the middle of a frame."""
    session = 0
    while not run.stop.is_set():
        # Not while draining: a raw consumer holding messages would hide them from the drain.
        if not run.publishing.wait(0.1):
            continue
        session += 1
        run.raw_session(+1)
        try:
            with socket.create_connection(("127.0.0.1", run.broker.port), timeout=2) as sock:
                sock.sendall(HANDSHAKE)
                if rng.random() < 0.5:
                    _die_publishing(run, sock, f"{name}.{session}", rng)
                else:
                    _die_consuming(run, sock, rng)
        except OSError:
            pass
        finally:
            run.raw_session(-1)
        time.sleep(rng.uniform(0.01, 0.1))


def _die_publishing(run: Run, sock: socket.socket, publisher_name: str, rng: random.Random) -> None:
    frames = b""
    for seq in range(1, rng.randrange(1, 5)):
        message_id = f"{publisher_name}:{seq}"
        run.ledger.publishing(message_id)
        frames += _publish(rng.choice(run.targets).name, message_id.encode())
    last = _publish(rng.choice(run.targets).name, b"never whole")
    sock.sendall(frames + last[:rng.randrange(1, len(last))])


def _die_consuming(run: Run, sock: socket.socket, rng: random.Random) -> None:
    """Takes deliveries and dies without acking them: they must come back marked redelivered."""
    sock.settimeout(0.5)
    sock.sendall(_method(1, 60, 10, struct.pack(">IHB", 0, rng.randrange(1, 5), 0))
                 + _method(1, 60, 20, b"\x00\x00" + _shortstr(rng.choice(run.targets).name)
                           + _shortstr("") + b"\x00" + b"\x00\x00\x00\x00"))
    wanted, got = rng.randrange(600, 3000), 0
    while got < wanted:
        data = sock.recv(65536)
        if not data:
            return
        got += len(data)
    ack = _method(1, 60, 80, struct.pack(">QB", 1, 0))
    sock.sendall(ack[:rng.randrange(1, len(ack))])


def _shortstr(text: str) -> bytes:
    raw = text.encode()
    return bytes([len(raw)]) + raw


def _frame(frame_type: int, channel: int, payload: bytes) -> bytes:
    return struct.pack(">BHI", frame_type, channel, len(payload)) + payload + b"\xce"


def _method(channel: int, class_id: int, method_id: int, arguments: bytes = b"") -> bytes:
    return _frame(1, channel, struct.pack(">HH", class_id, method_id) + arguments)


def _publish(queue: str, body: bytes) -> bytes:
    """basic.publish to the default exchange, persistent, on channel 1."""
    return (_method(1, 60, 40, b"\x00\x00" + _shortstr("") + _shortstr(queue) + b"\x00")
            + _frame(2, 1, struct.pack(">HHQH", 60, 0, len(body), 0x1000) + b"\x02")
            + _frame(3, 1, body))


# Written by hand, like everything the raw clients send, so the codec under test cannot hide a bug.
HANDSHAKE = (
    b"AMQP\x00\x00\x09\x01"
    + _method(0, 10, 11, b"\x00\x00\x00\x00" + _shortstr("PLAIN") + struct.pack(">I", 12) + b"\x00guest\x00guest"
              + _shortstr("en_US"))
    + _method(0, 10, 31, struct.pack(">HIH", 16, 131072, 0))
    + _method(0, 10, 40, _shortstr("/") + b"\x00\x00")
    + _method(1, 20, 10, b"\x00")
)


def declare(broker: BrokerProcess, queues: list[QueueSpec]) -> None:
    connection = broker.connect()
    try:
        channel = connection.channel()
        for queue in queues:
            channel.queue_declare(queue.name, durable=True, arguments=queue.arguments)
        channel.queue_declare(SYNC_QUEUE, durable=True)
        channel.queue_purge(SYNC_QUEUE)
    finally:
        close_quietly(connection)


def ready_counts(broker: BrokerProcess, queues: list[QueueSpec]) -> list[int]:
    connection = broker.connect()
    try:
        channel = connection.channel()
        return [channel.queue_declare(q.name, passive=True).method.message_count for q in queues]
    finally:
        close_quietly(connection)


def drain(run: Run, consumers: list[Consumer]) -> None:
    """Waits until the queues are empty, no raw client is dying and every consumer's acks are proven,
    twice in a row."""
    run.draining.set()
    deadline = time.monotonic() + DRAIN_SECONDS
    calm = 0
    while calm < 2:
        if time.monotonic() > deadline:
            raise RuntimeError("the queues did not drain")
        time.sleep(0.2)
        try:
            empty = not any(ready_counts(run.broker, run.queues))
        except GONE:
            empty = False
        # A raw consumer still dying holds deliveries that are neither ready nor acked: wait for it.
        settled = empty and run.raw_sessions == 0 and all(c.idle for c in consumers)
        calm = calm + 1 if settled else 0
    run.draining.clear()


def soak(cycles: int, seconds: float, seed: int, data_dir: Path, log_path: Path, publishers: int,
         queues: int, killers: int, out=sys.stdout) -> dict:
    rng = random.Random(seed)
    specs = queue_specs(queues)
    broker = BrokerProcess(data_dir, log_path)
    run = Run(broker, Ledger(), specs)
    broker.start()
    declare(broker, specs)
    consumers = [Consumer(run, spec, random.Random(rng.random())) for spec in specs if spec.consumed]
    threads = [threading.Thread(target=c, daemon=True) for c in consumers]
    threads += [threading.Thread(target=publisher, args=(run, f"p{n}", random.Random(rng.random())), daemon=True)
                for n in range(publishers)]
    threads += [threading.Thread(target=raw_killer, args=(run, f"raw{n}", random.Random(rng.random())), daemon=True)
                for n in range(killers)]
    for thread in threads:
        thread.start()
    totals: Counter = Counter()
    started = time.monotonic()
    try:
        for cycle in range(1, cycles + 1):
            before = run.ledger.snapshot()
            run.publishing.set()
            time.sleep(rng.uniform(0.2, 1.0) * seconds)
            broker.kill()
            run.ledger.killed()
            run.publishing.clear()
            broker.start()
            if rng.random() < RECOVERY_KILL_RATE:
                # Killed again while recovering and redelivering what the first kill left.
                time.sleep(rng.uniform(0, 0.5))
                broker.kill()
                run.ledger.killed()
                broker.start()
            drain(run, consumers)
            declare(broker, specs)  # and empty the queue of proofs, which would only slow recovery down
            figures = run.ledger.snapshot()
            figures.subtract(before)
            missing = run.ledger.missing()
            figures["lost"] += len(missing) - totals["lost"]
            run.ledger.examples += [f"{message_id} confirmed, never acked" for message_id in sorted(missing)[:5]]
            totals.update(figures)
            totals["cycles"] = cycle
            print(f"cycle {cycle:4d}: " + _line(figures), file=out, flush=True)
            if any(figures[name] for name in VIOLATIONS):
                break
    finally:
        run.stop.set()
        broker.kill()
        for thread in threads:
            thread.join(5)
    totals["seconds"] = round(time.monotonic() - started)
    result = {name: totals[name] for name in ("cycles", "seconds", *FIGURES, *VIOLATIONS)}
    result["examples"] = run.ledger.examples
    print(f"total ({result['cycles']} cycles, {result['seconds']} s): " + _line(totals), file=out)
    for example in run.ledger.examples:
        print(f"  {example}", file=out)
    return result


def _line(figures: Counter) -> str:
    return ", ".join(f"{name.replace('_', ' ')} {figures[name]}"
                     for name in (*FIGURES, *VIOLATIONS))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=10, help="kill and restart cycles (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="longest load phase of a cycle; the kill comes at 20-100%% of it (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    parser.add_argument("--publishers", type=int, default=2, help="(default: %(default)s)")
    parser.add_argument("--queues", type=int, default=3,
                        help="plain durable queues, one consumer each, besides the dead-lettering ones "
                             "(default: %(default)s)")
    parser.add_argument("--killers", type=int, default=1,
                        help="threads of raw clients dying mid-frame (default: %(default)s)")
    parser.add_argument("--data-dir", type=Path, help="(default: a new temporary directory)")
    parser.add_argument("--json", action="store_true", help="also print the totals as one JSON object")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    with tempfile.TemporaryDirectory(prefix="chaos-") as scratch:
        data_dir = args.data_dir or Path(scratch) / "data"
        log_path = Path(scratch) / "broker.log"
        print(f"chaos: seed {seed}, data {data_dir}, broker log {log_path}", flush=True)
        try:
            result = soak(args.cycles, args.seconds, seed, data_dir, log_path, args.publishers, args.queues,
                          args.killers)
        except RuntimeError as exc:
            print(f"chaos: {exc}\n{log_path.read_text(errors='replace')[-4000:]}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps(result))
    return 1 if any(result[name] for name in VIOLATIONS) else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
