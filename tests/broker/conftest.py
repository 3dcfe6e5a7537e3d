"""Drives the broker core the way the server glue does, with a sink that records what would be sent."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import pytest

from amqpbroker import core
from amqpbroker.protocol import BasicProperties, spec


class Frame(NamedTuple):
    """One thing sent to the client: a method, and for content-bearing methods the properties and body."""

    channel: int
    method: Any
    properties: bytes | None = None
    body: bytes | None = None


class FakeSink:
    """Records `send_method` and `send_content` calls in order; `writable` is set by the test.

    A channel the broker closes is recorded in `closed_channels` and closed, as the server does.
    """

    def __init__(self) -> None:
        self.writable = True
        self.closed: tuple[int, str] | None = None
        self.held: set[int] = set()
        """Channels whose input waits (for a basic.get's body), as the server would hold it."""
        self.closed_channels: list[tuple[int, int, str]] = []
        self.frames: list[Frame] = []
        self.client: core.ClientConnection | None = None

    def send_method(self, channel: int, method: Any) -> None:
        self.frames.append(Frame(channel, method))

    def send_content(self, channel: int, method: Any, properties: bytes, body: bytes) -> None:
        self.frames.append(Frame(channel, method, properties, body))

    def close(self, reply_code: int, reply_text: str) -> None:
        self.closed = (reply_code, reply_text)

    def hold_input(self, channel: int) -> None:
        self.held.add(channel)

    def release_input(self, channel: int) -> None:
        self.held.discard(channel)

    def close_channel(self, channel: int, reply_code: int, reply_text: str) -> None:
        self.closed_channels.append((channel, reply_code, reply_text))
        self.client.close_channel(channel)

    def take(self) -> list[Frame]:
        """The frames sent since the last take, forgetting them."""
        frames, self.frames = self.frames, []
        return frames

    def methods(self, kind: type | None = None) -> list[Any]:
        return [f.method for f in self.frames if kind is None or type(f.method) is kind]

    def deliveries(self, channel: int | None = None) -> list[Frame]:
        return [
            f
            for f in self.frames
            if type(f.method) is spec.BasicDeliver and (channel is None or f.channel == channel)
        ]

    def bodies(self, channel: int | None = None) -> list[bytes]:
        return [f.body for f in self.deliveries(channel)]


class Peer:
    """One client connection and its sink, with shorthands for the methods tests send most."""

    def __init__(self, broker: core.Broker, *, notify: bool = True, vhost: str = "/", user: str = "guest") -> None:
        self.sink = FakeSink()
        self.client = self.sink.client = broker.connect(vhost, user, self.sink, {"consumer_cancel_notify": notify})

    def channel(self, number: int = 1) -> core.Session:
        """The session of an open channel, opening it first if needed."""
        return self.client.sessions.get(number) or self.client.open_channel(number)

    def handle(self, method: Any, ch: int = 1) -> None:
        self.channel(ch).handle(method)
        # The server's persister would commit now: a durable declaration's reply waits for that.
        self.client.broker.commit()

    def declare(self, queue: str = "", ch: int = 1, **flags: Any) -> str:
        """Declares a queue and returns its name (the server's name for an empty one)."""
        self.handle(spec.QueueDeclare(queue=queue, **flags), ch)
        return self.sink.methods(spec.QueueDeclareOk)[-1].queue

    def bind(self, queue: str, exchange: str, routing_key: str = "", arguments: dict | None = None, ch: int = 1) -> None:
        self.handle(spec.QueueBind(queue=queue, exchange=exchange, routing_key=routing_key, arguments=arguments), ch)

    def exchange(self, name: str, type: str = "direct", ch: int = 1, **flags: Any) -> None:
        self.handle(spec.ExchangeDeclare(exchange=name, type=type, **flags), ch)

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes = b"",
        *,
        ch: int = 1,
        mandatory: bool = False,
        headers: dict | None = None,
        **properties_: Any,
    ) -> None:
        properties = BasicProperties(headers=headers, **properties_).encode()
        self.channel(ch).publish(
            spec.BasicPublish(exchange=exchange, routing_key=routing_key, mandatory=mandatory), properties, body
        )

    def consume(self, queue: str, tag: str = "", ch: int = 1, **flags: Any) -> str:
        self.handle(spec.BasicConsume(queue=queue, consumer_tag=tag, **flags), ch)
        return tag or self.sink.methods(spec.BasicConsumeOk)[-1].consumer_tag

    def ack(self, delivery_tag: int, multiple: bool = False, ch: int = 1) -> None:
        self.handle(spec.BasicAck(delivery_tag=delivery_tag, multiple=multiple), ch)

    def get(self, queue: str, ch: int = 1, no_ack: bool = True) -> bytes | None:
        """basic.get: the body, or None when the queue is empty."""
        before = len(self.sink.frames)
        self.handle(spec.BasicGet(queue=queue, no_ack=no_ack), ch)
        reply = self.sink.frames[before]
        return reply.body if type(reply.method) is spec.BasicGetOk else None

    def qos(self, prefetch_count: int, global_: bool = False, ch: int = 1) -> None:
        self.handle(spec.BasicQos(prefetch_count=prefetch_count, global_=global_), ch)


class Clock:
    """A broker clock that moves only when the test says: `clock.advance(seconds)`."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.wall_offset = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + self.wall_offset

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def broker(clock: Clock) -> core.Broker:
    return core.Broker(clock=clock, wall_clock=clock.wall)


@pytest.fixture
def connect(broker: core.Broker) -> Callable[..., Peer]:
    """Opens another client connection to the test's broker: `connect(notify=False)`."""

    def connect(**kwargs: Any) -> Peer:
        return Peer(broker, **kwargs)

    return connect


@pytest.fixture
def peer(connect: Callable[..., Peer]) -> Peer:
    """A client connection with channel 1 open."""
    peer = connect()
    peer.channel(1)
    return peer
