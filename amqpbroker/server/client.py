"""A small AMQP 0-9-1 client on trio, for the broker's own links to other brokers (shovels).

It is written over the protocol layer's frame codec and generated methods: one connection, a few
channels, synchronous calls (declare, bind, qos, consume, confirm.select), publishing with publisher
confirms and consuming with manual acks. Outgoing frames collect in a buffer that one writer task
flushes with one `send_all` per batch. Anything the peer closes, or a lost socket, ends the
connection with `LinkError`, which the caller treats as "reconnect later".
"""

from __future__ import annotations

import struct
import urllib.parse
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import AsyncIterator, Callable

import trio

from .. import __version__
from ..core.shovels import redact_uri
from ..protocol import spec
from ..protocol._frames import HEARTBEAT_FRAME, FrameReader, content_frames, method_frame
from ..protocol._spec import FRAME_BODY, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD, METHODS, PROTOCOL_HEADER

CONNECT_TIMEOUT = 30.0
CLOSE_TIMEOUT = 3.0
_CONTENT_HEADER = struct.Struct(">HHQ")
_IDS = struct.Struct(">HH")
_FRAME_MAX = 131072


class LinkError(Exception):
    """The link to the other broker is gone: socket lost, connection or channel closed by the peer."""


class BadURI(LinkError, ValueError):
    """A URI this client cannot connect to (another scheme, no host)."""


class ChannelClosed(LinkError):
    """The peer closed the channel in reply to a call (404 on a passive declare, 406, ...)."""

    def __init__(self, reply_code: int, reply_text: str) -> None:
        super().__init__(f"channel closed by the peer: {reply_code} {reply_text}")
        self.reply_code = reply_code


@dataclass(frozen=True)
class URI:
    """An `amqp://user:pass@host:port/vhost?heartbeat=N` URI, with RabbitMQ's defaults."""

    host: str = "localhost"
    port: int = 5672
    username: str = "guest"
    password: str = "guest"
    vhost: str = "/"
    heartbeat: int = 60

    @classmethod
    def parse(cls, uri: str) -> URI:
        parts = urllib.parse.urlsplit(uri)
        if parts.scheme != "amqp":
            raise BadURI(f"unsupported URI scheme {parts.scheme!r} in {redact_uri(uri)!r}")
        if not parts.hostname:
            raise BadURI(f"URI {redact_uri(uri)!r} names no host (amqpbroker has no direct local connections)")
        try:
            port = parts.port or 5672
        except ValueError as exc:
            raise BadURI(f"bad port in {redact_uri(uri)!r}") from exc
        query = urllib.parse.parse_qs(parts.query)
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        return cls(
            host=parts.hostname,
            port=port,
            username=urllib.parse.unquote(parts.username) if parts.username is not None else "guest",
            password=urllib.parse.unquote(parts.password) if parts.password is not None else "guest",
            vhost=urllib.parse.unquote(path) if parts.path else "/",
            heartbeat=int(query["heartbeat"][0]) if query.get("heartbeat", [""])[0].isdigit() else 60,
        )


@dataclass(frozen=True)
class Delivery:
    delivery_tag: int
    redelivered: bool
    exchange: str
    routing_key: str
    properties: bytes
    """The raw property list, as received: passed on unchanged unless a header is added."""
    body: bytes


class Channel:
    """One open channel. Calls are made one at a time; deliveries and confirms arrive through the
    connection's reader task."""

    def __init__(self, connection: Connection, number: int) -> None:
        self._connection = connection
        self.number = number
        self._replies_in, self._replies = trio.open_memory_channel[spec.Method](16)
        self._deliveries_in, self.deliveries = trio.open_memory_channel[Delivery](float("inf"))
        self.on_confirm: Callable[[int, bool, bool], None] = _ignore_confirm
        """Called with (delivery tag, multiple, acked) for each basic.ack or basic.nack of a publish."""
        self._content: tuple[spec.BasicDeliver, bytes, int, list[bytes]] | None = None
        self._calling = False

    async def call(self, method: spec.Method) -> spec.Method:
        """Sends a synchronous method and returns its reply; ChannelClosed if the peer refused it
        (the channel is then closed: open another)."""
        self._connection.send(method_frame(self.number, method.encode()))
        self._calling = True
        try:
            reply = await self._replies.receive()
        finally:
            self._calling = False
        if isinstance(reply, spec.ChannelClose):
            raise ChannelClosed(reply.reply_code, reply.reply_text)
        return reply

    async def next_deliveries(self) -> list[Delivery]:
        """The deliveries received so far, at least one: handled together, what they cause is
        written in one batch."""
        batch = [await self.deliveries.receive()]
        while True:
            try:
                batch.append(self.deliveries.receive_nowait())
            except trio.WouldBlock:
                return batch

    def publish(self, exchange: str, routing_key: str, properties: bytes, body: bytes) -> None:
        method = spec.BasicPublish(exchange=exchange, routing_key=routing_key)
        self._connection.send(
            content_frames(self.number, method.CLASS_ID, method.encode(), properties, body, self._connection.frame_max)
        )

    def ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self._connection.send(method_frame(self.number, spec.BasicAck(delivery_tag, multiple).encode()))

    def reject(self, delivery_tag: int) -> None:
        self._connection.send(method_frame(self.number, spec.BasicReject(delivery_tag, requeue=False).encode()))

    def _method(self, method: spec.Method) -> None:
        if isinstance(method, spec.BasicDeliver):
            self._content = (method, b"", -1, [])
        elif isinstance(method, (spec.BasicAck, spec.BasicNack)):
            self.on_confirm(method.delivery_tag, method.multiple, isinstance(method, spec.BasicAck))
        elif isinstance(method, spec.ChannelClose):
            self._connection.send(method_frame(self.number, spec.ChannelCloseOk().encode()))
            if not self._calling:
                raise ChannelClosed(method.reply_code, method.reply_text)
            self._replies_in.send_nowait(method)
        elif isinstance(method, spec.BasicCancel):
            raise LinkError("the peer cancelled the consumer (its queue was deleted?)")
        elif not isinstance(method, spec.ChannelFlow):
            self._replies_in.send_nowait(method)

    def _header(self, payload: memoryview) -> None:
        if self._content is None:
            raise LinkError("content header without a delivery")
        _, _, size = _CONTENT_HEADER.unpack_from(payload)
        self._content = (self._content[0], bytes(payload[12:]), size, [])
        if size == 0:
            self._deliver()

    def _body(self, payload: memoryview) -> None:
        if self._content is None or self._content[2] < 0:
            raise LinkError("content body without a header")
        self._content[3].append(bytes(payload))
        if sum(map(len, self._content[3])) >= self._content[2]:
            self._deliver()

    def _deliver(self) -> None:
        assert self._content is not None
        method, properties, _, body = self._content
        self._content = None
        self._deliveries_in.send_nowait(Delivery(
            method.delivery_tag, method.redelivered, method.exchange, method.routing_key, properties, b"".join(body)
        ))


def _ignore_confirm(delivery_tag: int, multiple: bool, acked: bool) -> None:
    pass


class Connection:
    """An open client connection; made by `connect`, which also runs its reader and writer."""

    def __init__(
        self, stream: trio.SocketStream, reader: FrameReader, start: spec.ConnectionStart, frame_max: int, heartbeat: int
    ) -> None:
        self._stream = stream
        self.server_properties = start.server_properties
        self.frame_max = frame_max
        self.heartbeat = heartbeat
        self._reader = reader
        self._out: list[bytes] = []
        self._wake = trio.Event()
        self._channels: dict[int, Channel] = {}
        self._last_recv = trio.current_time()
        self._closing = False
        self._closed = trio.Event()

    def send(self, data: bytes) -> None:
        self._out.append(data)
        self._wake.set()

    async def channel(self) -> Channel:
        channel = Channel(self, len(self._channels) + 1)
        self._channels[channel.number] = channel
        await channel.call(spec.ChannelOpen())
        return channel

    async def _write(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            data = b"".join(self._out)
            self._out.clear()
            try:
                await self._stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                raise LinkError(f"connection lost: {exc}") from exc

    async def _read(self) -> None:
        # The handshake may have read frames beyond connection.open-ok: they come first.
        self._reader.frame_max = self.frame_max
        while True:
            frames, error = self._reader.read_frames()
            for frame_type, number, payload in frames:
                self._frame(frame_type, number, payload)
            if error is not None:
                raise LinkError(f"bad frame from the peer: {error}")
            try:
                data = await self._stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                raise LinkError(f"connection lost: {exc}") from exc
            if not data:
                if self._closing:
                    return
                raise LinkError("the peer closed the TCP connection")
            self._last_recv = trio.current_time()
            self._reader.feed(data)

    def _frame(self, frame_type: int, number: int, payload: memoryview) -> None:
        if frame_type == FRAME_HEARTBEAT:
            return
        if number == 0:
            if frame_type == FRAME_METHOD:
                method = _decode(payload)
                if isinstance(method, spec.ConnectionClose):
                    self.send(method_frame(0, spec.ConnectionCloseOk().encode()))
                    raise LinkError(f"connection closed by the peer: {method.reply_code} {method.reply_text}")
                if isinstance(method, spec.ConnectionCloseOk):
                    self._closed.set()
            return
        channel = self._channels.get(number)
        if channel is None:
            return
        if frame_type == FRAME_METHOD:
            channel._method(_decode(payload))
        elif frame_type == FRAME_HEADER:
            channel._header(payload)
        elif frame_type == FRAME_BODY:
            channel._body(payload)

    async def _heartbeats(self) -> None:
        while True:
            await trio.sleep(self.heartbeat / 2)
            if trio.current_time() - self._last_recv > 2 * self.heartbeat:
                raise LinkError(f"missed heartbeats from the peer, timeout: {self.heartbeat}s")
            self.send(HEARTBEAT_FRAME)

    async def _close(self) -> None:
        self._closing = True
        self.send(method_frame(0, spec.ConnectionClose(200, "Goodbye").encode()))
        with trio.move_on_after(CLOSE_TIMEOUT):
            await self._closed.wait()


def _decode(payload: memoryview) -> spec.Method:
    cls = METHODS.get(_IDS.unpack_from(payload))
    if cls is None:
        raise LinkError("unknown method class {} id {} from the peer".format(*_IDS.unpack_from(payload)))
    return cls.decode(payload)


@asynccontextmanager
async def connect(uri: URI, name: str) -> AsyncIterator[Connection]:
    """An open connection to `uri` for as long as the block runs; `name` is shown as its
    connection_name. LinkError when it cannot be opened or is lost."""
    try:
        with trio.fail_after(CONNECT_TIMEOUT):
            stream = await trio.open_tcp_stream(uri.host, uri.port)
    except (OSError, trio.TooSlowError) as exc:
        raise LinkError(f"cannot connect to {uri.host}:{uri.port}: {exc}") from exc
    async with stream:
        try:
            reader = FrameReader(_FRAME_MAX)
            with trio.fail_after(CONNECT_TIMEOUT):
                start, frame_max, heartbeat = await _handshake(stream, reader, uri, name)
        except trio.TooSlowError as exc:
            raise LinkError(f"no handshake from {uri.host}:{uri.port}") from exc
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise LinkError(f"connection lost during the handshake: {exc}") from exc
        connection = Connection(stream, reader, start, frame_max, heartbeat)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(connection._read)
            nursery.start_soon(connection._write)
            if heartbeat:
                nursery.start_soon(connection._heartbeats)
            yield connection
            await connection._close()
            nursery.cancel_scope.cancel()


async def _handshake(
    stream: trio.SocketStream, reader: FrameReader, uri: URI, name: str
) -> tuple[spec.ConnectionStart, int, int]:

    async def next_method() -> spec.Method:
        while True:
            frames, error = reader.read_frames(1)
            if error is not None:
                raise LinkError(f"bad frame from the peer: {error}")
            if frames:
                frame_type, _, payload = frames[0]
                if frame_type != FRAME_METHOD:
                    continue
                method = _decode(payload)
                if isinstance(method, spec.ConnectionClose):
                    raise LinkError(f"connection refused by the peer: {method.reply_code} {method.reply_text}")
                return method
            data = await stream.receive_some(65536)
            if not data:
                raise LinkError(f"{uri.host}:{uri.port} closed the connection during the handshake")
            reader.feed(data)

    await stream.send_all(PROTOCOL_HEADER)
    start = await next_method()
    if not isinstance(start, spec.ConnectionStart):
        raise LinkError(f"expected connection.start, got {start.NAME}")
    properties = {
        "product": "amqpbroker",
        "version": __version__,
        "connection_name": name,
        "capabilities": {
            "publisher_confirms": True,
            "consumer_cancel_notify": True,
            "basic.nack": True,
            "authentication_failure_close": True,
        },
    }
    response = b"\x00" + uri.username.encode() + b"\x00" + uri.password.encode()
    await stream.send_all(method_frame(0, spec.ConnectionStartOk(properties, "PLAIN", response, "en_US").encode()))
    tune = await next_method()
    if not isinstance(tune, spec.ConnectionTune):
        raise LinkError(f"expected connection.tune, got {tune.NAME}")
    frame_max = min(tune.frame_max or _FRAME_MAX, _FRAME_MAX)
    heartbeat = min(tune.heartbeat, uri.heartbeat) if tune.heartbeat and uri.heartbeat else 0
    channel_max = min(tune.channel_max or 2047, 2047)
    await stream.send_all(method_frame(0, spec.ConnectionTuneOk(channel_max, frame_max, heartbeat).encode()))
    await stream.send_all(method_frame(0, spec.ConnectionOpen(uri.vhost).encode()))
    opened = await next_method()
    if not isinstance(opened, spec.ConnectionOpenOk):
        raise LinkError(f"expected connection.open-ok, got {opened.NAME}")
    return start, frame_max, heartbeat
