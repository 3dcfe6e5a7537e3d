"""Drives the broker core without sockets, over a store that outlives a `restart()`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import trio

from amqpbroker import core
from amqpbroker.protocol import BasicProperties, spec
from amqpbroker.store import MemoryStore, Store, StoreError
from amqpbroker.store.base import Op
from amqpbroker.store.lmdb_store import LmdbStore

PERSISTENT = BasicProperties(delivery_mode=2).encode()
# Methods whose reply the broker sends only once a durable change they made is committed.
DURABLE_REPLIES = (
    spec.ExchangeDeclare, spec.ExchangeDelete, spec.ExchangeBind, spec.ExchangeUnbind, spec.QueueDeclare,
    spec.QueueBind, spec.QueueUnbind, spec.QueuePurge, spec.QueueDelete, spec.TxCommit,
)


class Sink:
    """Records what the core sends to one client connection."""

    def __init__(self) -> None:
        self.writable = True
        self.closed: tuple[int, str] | None = None
        self.held: set[int] = set()
        """Channels whose input waits (for a basic.get's body), as the server would hold it."""
        self.sent: list[tuple[int, Any, bytes | None]] = []
        self.properties: list[bytes] = []
        """The properties of each content-bearing method sent, in order."""

    def send_method(self, channel: int, method: Any) -> None:
        self.sent.append((channel, method, None))

    def send_content(self, channel: int, method: Any, properties: bytes, body: bytes) -> None:
        self.sent.append((channel, method, body))
        self.properties.append(properties)

    def close(self, reply_code: int, reply_text: str) -> None:
        self.closed = (reply_code, reply_text)

    def hold_input(self, channel: int) -> None:
        self.held.add(channel)

    def release_input(self, channel: int) -> None:
        self.held.discard(channel)

    def methods(self, kind: type, channel: int | None = None) -> list[Any]:
        return [m for ch, m, _ in self.sent if type(m) is kind and (channel is None or ch == channel)]

    def contents(self, kind: type) -> list[tuple[Any, bytes]]:
        return [(m, body) for _, m, body in self.sent if type(m) is kind]


class Client:
    """One client connection to the core, with shorthands for what the tests send."""

    def __init__(self, broker: core.Broker) -> None:
        self.sink = Sink()
        self.connection = broker.connect("/", "guest", self.sink, {"consumer_cancel_notify": True})

    def send(self, method: Any, channel: int = 1) -> None:
        session = self.connection.sessions.get(channel) or self.connection.open_channel(channel)
        session.handle(method)
        if type(method) in DURABLE_REPLIES:
            # The persister would commit now: the reply to a durable change waits for that.
            self.connection.broker.commit()
        # The server reads the bodies due to consumers from the store in a thread: here, at once.
        self.connection.broker.read_bodies()
        self.connection.flush_confirms()

    def publish(self, exchange: str, routing_key: str, body: bytes, *, persistent: bool = True,
                channel: int = 1, headers: dict | None = None) -> None:
        properties = BasicProperties(delivery_mode=2 if persistent else 1, headers=headers).encode()
        session = self.connection.sessions.get(channel) or self.connection.open_channel(channel)
        session.publish(spec.BasicPublish(exchange=exchange, routing_key=routing_key), properties, body)
        self.connection.flush_confirms()

    def get(self, queue: str, *, no_ack: bool = False, channel: int = 1) -> tuple[Any, bytes] | None:
        """basic.get: the get-ok method and the body, or None when the queue is empty."""
        before = len(self.sink.sent)
        self.send(spec.BasicGet(queue=queue, no_ack=no_ack), channel)
        channel_, method, body = self.sink.sent[before]
        return (method, body) if type(method) is spec.BasicGetOk else None

    def drain(self, queue: str) -> list[tuple[bytes, bool]]:
        """Every ready message of the queue as (body, redelivered), acknowledging each."""
        found = []
        while (got := self.get(queue)) is not None:
            method, body = got
            found.append((body, method.redelivered))
            self.send(spec.BasicAck(delivery_tag=method.delivery_tag))
        return found

    def close(self) -> None:
        self.connection.close()


class Node:
    """A broker core and its store; `restart()` builds a new core over the same durable state."""

    def __init__(self, kind: str, path: Path) -> None:
        self.kind = kind
        self.path = str(path)
        self.store = self._open()
        self.broker = core.Broker(store=self.store)
        self.broker.commit()

    def _open(self) -> Store:
        return MemoryStore() if self.kind == "memory" else LmdbStore(self.path)

    def client(self) -> Client:
        return Client(self.broker)

    def restart(self, *, clean: bool = True) -> core.Broker:
        """A clean restart writes what is pending first; otherwise it is lost, as in a crash."""
        if clean:
            self.broker.commit()
        self.store.close(clean=clean)
        if self.kind == "lmdb":
            self.store = self._open()
        self.broker = core.Broker(store=self.store)
        self.broker.commit()
        return self.broker

    def close(self) -> None:
        self.store.close()


async def wait_for(condition: Callable[[], bool], what: str, timeout: float = 5) -> None:
    with trio.move_on_after(timeout):
        while not condition():
            await trio.sleep(0.001)
        return
    pytest.fail(f"timed out waiting for {what}")


def confirms(client: Client) -> list[tuple[str, int, bool]]:
    return [
        (type(method).__name__, method.delivery_tag, method.multiple)
        for _, method, _ in client.sink.sent
        if type(method) in (spec.BasicAck, spec.BasicNack)
    ]


def confirmed_tags(client: Client) -> dict[int, str]:
    """Every publish sequence number confirmed so far, with 'ack' or 'nack'."""
    tags: dict[int, str] = {}
    upto = 0
    for kind, tag, multiple in confirms(client):
        outcome = "ack" if kind == "BasicAck" else "nack"
        for seq in range(upto + 1 if multiple else tag, tag + 1):
            tags.setdefault(seq, outcome)
        upto = max(upto, tag)
    return tags


class FailingStore(MemoryStore):
    """A MemoryStore whose writes fail with `error` while `failing` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = False
        self.error: Exception = StoreError("disk full (simulated)")

    def apply(self, ops: Sequence[Op]) -> None:
        if self.failing:
            raise self.error
        super().apply(ops)
