"""What a restart keeps of durable queues' features: expiry deadlines, priorities, length limits,
and x-expires; in the core over both stores, with clocks the test drives."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from amqpbroker import core
from amqpbroker.protocol import BasicProperties, spec
from amqpbroker.store import MemoryStore, Store
from amqpbroker.store.lmdb_store import LmdbStore

from .core_support import Client


class Host:
    """A broker over a store that outlives it, and the machine's clocks: the monotonic clock
    starts again at each restart, as it may in a new process; the wall clock goes on."""

    def __init__(self, kind: str, path: Path) -> None:
        self.kind = kind
        self.path = str(path)
        self.store: Store = MemoryStore() if kind == "memory" else LmdbStore(self.path)
        self.wall = 1_700_000_000.0
        self.monotonic = 50.0
        self.broker = self._start()

    def _start(self) -> core.Broker:
        broker = core.Broker(store=self.store, clock=lambda: self.monotonic, wall_clock=lambda: self.wall)
        broker.commit()
        return broker

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.monotonic += seconds

    def restart(self, down_for: float = 0.0) -> core.Broker:
        self.broker.commit()
        if self.kind == "lmdb":
            self.store.close()
            self.store = LmdbStore(self.path)
        self.wall += down_for
        self.monotonic = 7.0
        self.broker = self._start()
        return self.broker

    def client(self) -> Client:
        return Client(self.broker)

    def count(self, queue: str) -> int:
        return self.broker.vhosts["/"].queues[queue].message_count


@pytest.fixture(params=["memory", "lmdb"])
def host(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Host]:
    started = Host(request.param, tmp_path / "data")
    yield started
    started.store.close()


def publish(client: Client, queue: str, body: bytes, **properties: object) -> None:
    encoded = BasicProperties(delivery_mode=2, **properties).encode()
    session = client.connection.sessions.get(1) or client.connection.open_channel(1)
    session.publish(spec.BasicPublish(exchange="", routing_key=queue), encoded, body)


def declare(client: Client, queue: str, **arguments: object) -> None:
    client.send(spec.QueueDeclare(queue=queue, durable=True, arguments=arguments))


@pytest.mark.parametrize("how", ["queue-ttl", "expiration"])
def test_an_expiry_keeps_its_time_across_a_restart(host: Host, how: str) -> None:
    client = host.client()
    declare(client, "q", **({"x-message-ttl": 1000} if how == "queue-ttl" else {}))
    publish(client, "q", b"m", **({"expiration": "1000"} if how == "expiration" else {}))
    host.advance(0.4)
    host.restart(down_for=0.4)
    host.broker.expire()
    assert host.count("q") == 1
    host.advance(0.19)
    host.broker.expire()
    assert host.count("q") == 1
    host.advance(0.01)
    host.broker.expire()
    assert host.count("q") == 0
    host.restart()
    assert host.count("q") == 0


def test_a_message_that_expired_while_down_is_dropped_at_the_first_turn(host: Host) -> None:
    client = host.client()
    declare(client, "q", **{"x-message-ttl": 1000})
    publish(client, "q", b"expired")
    host.advance(0.5)
    publish(client, "q", b"lives")
    host.restart(down_for=0.6)
    assert host.broker.next_deadline() <= host.monotonic
    host.broker.expire()
    assert host.client().drain("q") == [(b"lives", False)]
    host.restart()
    assert host.count("q") == 0


def test_an_expired_message_is_not_delivered_before_the_first_turn(host: Host) -> None:
    client = host.client()
    declare(client, "q")
    publish(client, "q", b"expired", expiration="100")
    host.restart(down_for=1)
    assert host.client().get("q") is None


def test_priorities_come_back_in_their_order(host: Host) -> None:
    client = host.client()
    declare(client, "q", **{"x-max-priority": 3})
    for body, priority in [(b"p1", 1), (b"p3a", 3), (b"none", None), (b"p7", 7), (b"p3b", 3)]:
        publish(client, "q", body, priority=priority)
    host.restart()
    assert [body for body, _ in host.client().drain("q")] == [b"p3a", b"p7", b"p3b", b"p1", b"none"]


@pytest.mark.parametrize(
    ("limit", "before", "after", "left"),
    [
        ({"x-max-length": 2}, [b"1", b"2"], b"3", [b"2", b"3"]),
        # The bodies stay on disk after the restart; the byte count must include them.
        ({"x-max-length-bytes": 8}, [b"aaaa", b"bbbb"], b"c", [b"bbbb", b"c"]),
    ],
)
def test_a_length_limit_holds_after_a_restart(host: Host, limit, before, after, left) -> None:
    client = host.client()
    declare(client, "q", **limit)
    for body in before:
        publish(client, "q", body)
    host.restart()
    publish(host.client(), "q", after)
    host.restart()
    assert [body for body, _ in host.client().drain("q")] == left


def test_an_unused_queue_expires_counting_from_the_restart(host: Host) -> None:
    client = host.client()
    declare(client, "q", **{"x-expires": 1000})
    host.advance(0.9)
    host.restart(down_for=5)
    host.broker.expire()
    assert "q" in host.broker.vhosts["/"].queues
    host.advance(1)
    host.broker.expire()
    assert "q" not in host.broker.vhosts["/"].queues
    host.restart()
    assert "q" not in host.broker.vhosts["/"].queues
