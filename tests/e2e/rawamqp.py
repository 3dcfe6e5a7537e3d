"""A deliberately tiny AMQP 0-9-1 client that writes its frames by hand.

pika cannot send what a broken or hostile peer sends (a wrong protocol header, a
bad frame-end octet, a silent peer under heartbeats) nor a few methods it refuses
to express (a reused consumer tag, ``immediate=true``). Tests use this client for
those cases. It encodes only the methods they need, from literal bytes, so that a
bug in our own codec cannot hide a bug in the broker.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"

FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8
FRAME_END = b"\xce"

CONNECTION_START = (10, 10)
CONNECTION_START_OK = (10, 11)
CONNECTION_TUNE = (10, 30)
CONNECTION_TUNE_OK = (10, 31)
CONNECTION_OPEN = (10, 40)
CONNECTION_OPEN_OK = (10, 41)
CONNECTION_CLOSE = (10, 50)
CONNECTION_CLOSE_OK = (10, 51)
CONNECTION_UPDATE_SECRET = (10, 70)
CHANNEL_OPEN = (20, 10)
CHANNEL_OPEN_OK = (20, 11)
CHANNEL_FLOW = (20, 20)
CHANNEL_CLOSE = (20, 40)
CHANNEL_CLOSE_OK = (20, 41)
QUEUE_DECLARE = (50, 10)
QUEUE_DECLARE_OK = (50, 11)
BASIC_CONSUME = (60, 20)
BASIC_CONSUME_OK = (60, 21)
BASIC_PUBLISH = (60, 40)
BASIC_GET = (60, 70)
BASIC_GET_OK = (60, 71)


class PeerClosed(Exception):
    """The broker closed the TCP connection."""


def shortstr(text: str) -> bytes:
    raw = text.encode()
    return bytes([len(raw)]) + raw


def longstr(raw: bytes) -> bytes:
    return struct.pack(">I", len(raw)) + raw


EMPTY_TABLE = b"\x00\x00\x00\x00"


def frame(frame_type: int, channel: int, payload: bytes, end: bytes = FRAME_END) -> bytes:
    return struct.pack(">BHI", frame_type, channel, len(payload)) + payload + end


def method_frame(channel: int, method: tuple[int, int], arguments: bytes = b"") -> bytes:
    return frame(FRAME_METHOD, channel, struct.pack(">HH", *method) + arguments)


def heartbeat_frame() -> bytes:
    return frame(FRAME_HEARTBEAT, 0, b"")


@dataclass(frozen=True)
class Frame:
    type: int
    channel: int
    payload: bytes

    @property
    def method(self) -> tuple[int, int] | None:
        if self.type != FRAME_METHOD:
            return None
        return struct.unpack_from(">HH", self.payload)

    @property
    def arguments(self) -> bytes:
        return self.payload[4:]


@dataclass(frozen=True)
class Close:
    """The arguments of connection.close or channel.close."""

    reply_code: int
    reply_text: str
    class_id: int
    method_id: int

    @classmethod
    def decode(cls, arguments: bytes) -> Close:
        reply_code, text_length = struct.unpack_from(">HB", arguments)
        reply_text = arguments[3 : 3 + text_length].decode()
        class_id, method_id = struct.unpack_from(">HH", arguments, 3 + text_length)
        return cls(reply_code, reply_text, class_id, method_id)


def read_shortstr(data: bytes) -> str:
    """The short string at the start of ``data``."""
    return data[1 : 1 + data[0]].decode()


class RawConnection:
    """One TCP connection to the broker; every read has a deadline."""

    def __init__(self, url: str, timeout: float = 5.0, protocol_header: bytes = PROTOCOL_HEADER) -> None:
        parts = urlsplit(url)
        self.protocol_header = protocol_header
        self.user = unquote(parts.username or "guest")
        self.password = unquote(parts.password or "guest")
        self.vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
        self.timeout = timeout
        self.sock = socket.create_connection((parts.hostname, parts.port or 5672), timeout=timeout)
        self._buffer = b""
        self.tune: tuple[int, int, int] | None = None

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_method(self, channel: int, method: tuple[int, int], arguments: bytes = b"") -> None:
        self.send(method_frame(channel, method, arguments))

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from the broker before the deadline")
        self.sock.settimeout(remaining)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise PeerClosed()
        self._buffer += chunk

    def read_frame(self, timeout: float | None = None) -> Frame:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while len(self._buffer) < 7:
            self._fill(deadline)
        frame_type, channel, size = struct.unpack_from(">BHI", self._buffer)
        while len(self._buffer) < 7 + size + 1:
            self._fill(deadline)
        payload = self._buffer[7 : 7 + size]
        end = self._buffer[7 + size : 8 + size]
        self._buffer = self._buffer[8 + size :]
        assert end == FRAME_END, f"broker sent a bad frame-end octet {end!r}"
        return Frame(frame_type, channel, payload)

    def read_method(self, timeout: float | None = None) -> Frame:
        """The next method frame; heartbeats in between are skipped."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            received = self.read_frame(timeout=max(deadline - time.monotonic(), 0.001))
            if received.type != FRAME_HEARTBEAT:
                assert received.type == FRAME_METHOD, f"expected a method frame, got {received}"
                return received

    def expect(self, method: tuple[int, int], timeout: float | None = None) -> Frame:
        received = self.read_method(timeout)
        assert received.method == method, f"expected {method}, got {received.method}: {received.arguments!r}"
        return received

    def read_until_closed(self, timeout: float | None = None) -> bytes:
        """Everything the broker sends until it closes the socket."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            try:
                self._fill(deadline)
            except (PeerClosed, ConnectionResetError):
                data, self._buffer = self._buffer, b""
                return data

    def handshake(self, heartbeat: int = 0, frame_max: int = 131072, channel_max: int | None = None) -> None:
        """Protocol header, start/start-ok (PLAIN), tune/tune-ok, open/open-ok."""
        self.negotiate(heartbeat=heartbeat, frame_max=frame_max, channel_max=channel_max)
        self.send_open()
        self.expect(CONNECTION_OPEN_OK)

    def negotiate(self, heartbeat: int = 0, frame_max: int = 131072, channel_max: int | None = None) -> None:
        """Everything before connection.open: header, start/start-ok, tune/tune-ok.

        channel_max defaults to the broker's proposal."""
        self.start()
        self.tune = struct.unpack(">HIH", self.expect(CONNECTION_TUNE).arguments)
        if channel_max is None:
            channel_max = self.tune[0]
        self.send_method(0, CONNECTION_TUNE_OK, struct.pack(">HIH", channel_max, frame_max, heartbeat))

    def start(self, client_properties: bytes = EMPTY_TABLE) -> None:
        """Protocol header, connection.start, and start-ok with PLAIN credentials."""
        self.send(self.protocol_header)
        self.expect(CONNECTION_START)
        response = b"\x00" + self.user.encode() + b"\x00" + self.password.encode()
        self.send_method(
            0,
            CONNECTION_START_OK,
            client_properties + shortstr("PLAIN") + longstr(response) + shortstr("en_US"),
        )

    def send_open(self) -> None:
        self.send_method(0, CONNECTION_OPEN, shortstr(self.vhost) + shortstr("") + b"\x00")

    def open_channel(self, channel: int) -> None:
        self.send_method(channel, CHANNEL_OPEN, shortstr(""))
        self.expect(CHANNEL_OPEN_OK)

    def declare_queue(self, channel: int, name: str, *, exclusive: bool = True) -> None:
        flags = 0b00100 if exclusive else 0
        self.send_method(channel, QUEUE_DECLARE, b"\x00\x00" + shortstr(name) + bytes([flags]) + EMPTY_TABLE)
        self.expect(QUEUE_DECLARE_OK)

    def consume(self, channel: int, queue: str, consumer_tag: str) -> None:
        """basic.consume without waiting for consume-ok; an empty tag asks the broker for one."""
        self.send_method(
            channel,
            BASIC_CONSUME,
            b"\x00\x00" + shortstr(queue) + shortstr(consumer_tag) + b"\x00" + EMPTY_TABLE,
        )

    def publish(
        self,
        channel: int,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        flags: int = 0,
        properties: bytes = b"\x00\x00",
        body_frame_size: int | None = None,
    ) -> None:
        """basic.publish, a content header, then the body frames.

        ``flags`` is the bit octet (1 = mandatory, 2 = immediate); ``properties``
        is the encoded property flags and property list (none by default); the
        body goes in frames of ``body_frame_size`` bytes, or in one frame.
        """
        arguments = b"\x00\x00" + shortstr(exchange) + shortstr(routing_key) + bytes([flags])
        self.send_method(channel, BASIC_PUBLISH, arguments)
        self.send(frame(FRAME_HEADER, channel, struct.pack(">HHQ", 60, 0, len(body)) + properties))
        step = body_frame_size or len(body)
        for offset in range(0, len(body), step or 1):
            self.send(frame(FRAME_BODY, channel, body[offset : offset + step]))

    def get(self, channel: int, queue: str) -> tuple[bytes, bytes, list[bytes]]:
        """basic.get with no-ack; returns the content header payload, the body and
        the body as the broker split it into frames."""
        self.send_method(channel, BASIC_GET, b"\x00\x00" + shortstr(queue) + b"\x01")
        self.expect(BASIC_GET_OK)
        header = self.read_frame()
        assert header.type == FRAME_HEADER, f"expected a content header, got {header}"
        (body_size,) = struct.unpack_from(">Q", header.payload, 4)
        chunks: list[bytes] = []
        while sum(map(len, chunks)) < body_size:
            received = self.read_frame()
            assert received.type == FRAME_BODY, f"expected a body frame, got {received}"
            chunks.append(received.payload)
        return header.payload, b"".join(chunks), chunks

    def expect_connection_close(self, timeout: float | None = None, *, wait_for_eof: bool = True) -> Close:
        """Read connection.close, answer close-ok, and wait for the broker to close the socket.

        After a framing error RabbitMQ stops reading and closes the socket only
        after a delay of its own; pass ``wait_for_eof=False`` there.
        """
        close = Close.decode(self.expect(CONNECTION_CLOSE, timeout).arguments)
        self.send_method(0, CONNECTION_CLOSE_OK)
        if wait_for_eof:
            assert self.read_until_closed() == b""
        return close

    def close(self) -> None:
        """Client-initiated graceful close: send close, read close-ok, close the socket.

        RabbitMQ leaves closing the socket to the client after close-ok.
        """
        self.send_method(0, CONNECTION_CLOSE, struct.pack(">H", 200) + shortstr("bye") + struct.pack(">HH", 0, 0))
        self.expect(CONNECTION_CLOSE_OK)
        self.sock.close()
