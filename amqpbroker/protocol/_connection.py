"""ServerConnection: the server side of one AMQP 0-9-1 connection, without I/O.

It owns the protocol header, the start/tune/open handshake, the channel table, content assembly
(method, header, body frames per channel), heartbeat bookkeeping against times the caller passes in,
and both close handshakes. It is fed bytes and returns events; what it must send is queued and drained
with data_to_send(). It never reads a clock, never blocks and knows nothing of the broker.
"""

from __future__ import annotations

import functools
import struct
import sys
from collections.abc import Callable
from importlib import metadata
from typing import Any

from . import _spec as spec
from ._codec import decode_table_items
from ._frames import HEARTBEAT_FRAME, FrameReader, content_frame_parts, content_frames, method_frame
from ._spec import FRAME_BODY, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD, METHODS, PROTOCOL_HEADER, ReplyCode
from .events import (
    ChannelClosed,
    ChannelClosing,
    ChannelOpened,
    ConnectionClosed,
    ConnectionClosing,
    Event,
    ContentReceived,
    Handshaken,
    MethodReceived,
)

# RabbitMQ's defaults: max_message_size 128 MiB; the frame size accepted before tune-ok (4.1+, room for JWTs).
MAX_MESSAGE_SIZE = 128 * 1024 * 1024
# The largest max_message_size RabbitMQ accepts; at exactly this limit its reply text drops "configured".
MAX_MESSAGE_SIZE_CEILING = 512 * 1024 * 1024
INITIAL_FRAME_MAX = 8192
# How long to wait for connection.close-ok after sending connection.close before giving up.
CLOSE_TIMEOUT = 30.0
# How long the socket stays open at most after close-ok answers the client's connection.close, as
# RabbitMQ keeps it (the negotiated heartbeat, if shorter).
CLIENT_CLOSE_LINGER = 30.0

_HH = struct.Struct(">HH")
_PUBLISH_IDS = _HH.pack(spec.BasicPublish.CLASS_ID, spec.BasicPublish.METHOD_ID)
_PUBLISH_CACHE_SIZE = 256
_DELIVER_IDS = _HH.pack(spec.BasicDeliver.CLASS_ID, spec.BasicDeliver.METHOD_ID)
_DELIVERY_TAG_AND_BITS = struct.Struct(">QB")
_DELIVER_CACHE_SIZE = 256
# Bodies from this size on are sent as slices of themselves (see buffers_to_send), not copied into
# the joined frames; below it, one copy costs less than another buffer for the system call.
SCATTER_MIN = 64 * 1024
# Bodies from this size on are assembled in one buffer of their size, allocated at their header,
# into which their frames' payloads are copied or received straight (see receive_buffers): never
# joined from parts. Below it, the parts are joined (or the single payload copied) as bytes.
BODY_BUFFER_MIN = 64 * 1024
# Room after a diverted body payload in a scatter-gather read: its frame-end octet and the next
# frame's header, which says where the read after goes.
_TAIL_SIZE = 8
# Body frames after the one partly received that one scatter-gather read may go on into, each
# guessed to follow (see receive_buffers).
_GUESSED_FRAMES_MAX = 64
_CONTENT_HEADER = struct.Struct(">HHQ")
_CHANNEL_OPEN_IDS = (20, 10)
_CHANNEL_CLOSE_IDS = (20, 40)
_CHANNEL_CLOSE_OK_IDS = (20, 41)
_MECHANISMS = b"PLAIN AMQPLAIN"
# Older clients announce 0-9 with this legacy layout; RabbitMQ serves it as 0-9-1, which only clarified 0-9.
_AMQP_0_9_HEADER = b"AMQP\x01\x01\x00\x09"
_ACCEPTED_HEADERS = (PROTOCOL_HEADER, _AMQP_0_9_HEADER)

# Everything a malformed payload can make a decoder raise (truncation, bad UTF-8, absurd timestamps,
# tables nested deeper than the interpreter allows).
DECODE_ERRORS = (ValueError, IndexError, struct.error, OverflowError, RecursionError)

# Connection states.
_HEADER, _START_OK, _TUNE_OK, _OPEN_VHOST, _OPEN, _CLOSING, _CLOSED = range(7)
_STATE_NAMES = {_START_OK: "starting", _TUNE_OK: "tuning", _OPEN_VHOST: "opening", _OPEN: "running"}


@functools.cache
def _package_version() -> str:
    # Read once: looking the distribution up takes about half a millisecond, on every connection.
    try:
        return metadata.version("amqpbroker")
    except metadata.PackageNotFoundError:
        return "unknown"


def default_server_properties() -> dict[str, Any]:
    """What connection.start advertises; capabilities list only what the broker really implements."""
    return {
        "product": "amqpbroker",
        "version": _package_version(),
        "platform": f"Python {sys.version_info.major}.{sys.version_info.minor}",
        "capabilities": {
            "publisher_confirms": True,
            "basic.nack": True,
            "consumer_cancel_notify": True,
            "authentication_failure_close": True,
            "per_consumer_qos": True,
            "exchange_exchange_bindings": True,
            "direct_reply_to": True,
            "connection.blocked": True,
            "consumer_priorities": True,
        },
    }


class _ProtocolError(Exception):
    """A connection-level error found while handling input; turned into connection.close."""

    def __init__(self, code: ReplyCode, text: str, class_id: int = 0, method_id: int = 0) -> None:
        super().__init__(code, text)
        self.reply_code = int(code)
        # RabbitMQ prefixes every reply text with the code's name; clients show it as is.
        self.reply_text = f"{code.name} - {text}"
        self.class_id = class_id
        self.method_id = method_id


class _Channel:
    """Per-channel state: whether either side is closing it, and the content being assembled."""

    __slots__ = ("closing", "close_owed", "method", "properties", "remaining", "parts", "body")

    def __init__(self) -> None:
        self.closing = False
        """We sent channel.close and wait for the client's close-ok."""
        self.close_owed = False
        """The client sent channel.close: close-ok is owed once what it sent before is handled."""
        self.method: spec.Method | None = None  # content-bearing method awaiting its header and body
        self.properties: bytes | None = None  # None until the header frame arrived
        self.remaining = 0
        self.parts: list[memoryview] = []
        self.body: bytearray | None = None
        """The buffer a large body is assembled in (see BODY_BUFFER_MIN); `parts` stay empty."""

    def reset_content(self) -> None:
        self.method = None
        self.properties = None
        self.remaining = 0
        self.parts = []
        self.body = None


class ServerConnection:
    """Sans-IO server side of an AMQP 0-9-1 connection; see the module docstring."""

    def __init__(
        self,
        authenticate: Callable[[str, str], bool],
        can_open_vhost: Callable[[str, str], bool],
        server_properties: dict[str, Any] | None = None,
        channel_max: int = 2047,
        frame_max: int = 131072,
        heartbeat: int = 60,
        now: float = 0.0,
        max_message_size: int = MAX_MESSAGE_SIZE,
        vhost_exists: Callable[[str], bool] | None = None,
        certificate_login: str | None = None,
        authenticate_external: Callable[[str], bool] | None = None,
        connection_refusal: Callable[[str, str], str | None] | None = None,
        channel_refusal: Callable[[str], str | None] | None = None,
    ) -> None:
        """With a `certificate_login` (the user a TLS client certificate names) and
        `authenticate_external`, the EXTERNAL mechanism is offered and logs that user in.
        `connection_refusal(user, vhost)` and `channel_refusal(user)` say why a user's connection.open
        or channel.open is refused beyond permissions and channel_max (a limit reached), or None:
        the connection is then closed with 530 and that text."""
        self._authenticate = authenticate
        self._certificate_login = certificate_login if authenticate_external is not None else None
        self._authenticate_external = authenticate_external
        self._can_open_vhost = can_open_vhost
        self._vhost_exists = vhost_exists
        self._connection_refusal = connection_refusal
        self._channel_refusal = channel_refusal
        self._server_properties = {**default_server_properties(), **(server_properties or {})}
        self._server_channel_max = channel_max
        self._server_frame_max = frame_max
        self._server_heartbeat = heartbeat
        self._max_message_size = max_message_size

        self.channel_max = channel_max
        self.frame_max = frame_max
        self.heartbeat = 0
        self.client_properties: dict[str, Any] = {}
        self.client_capabilities: dict[str, Any] = {}
        self.username = ""
        self.vhost = ""

        self._state = _HEADER
        self._header = b""
        self._reader = FrameReader(INITIAL_FRAME_MAX)
        self._tails = [memoryview(bytearray(_TAIL_SIZE)) for _ in range(_GUESSED_FRAMES_MAX + 1)]
        """Room for the envelope after each body payload one read may take (see receive_buffers)."""
        self._offered: list[memoryview] = []
        """What receive_buffers handed out last: a body payload's rest, then tail, payload, tail..."""
        self._diverted_place: tuple[bytearray, int, int] = (bytearray(), 0, 0)
        """The buffer, start and size of the body payload the reader diverts (see _body_place)."""
        self._channels: dict[int, _Channel] = {}
        self._publish_cache: dict[bytes, spec.Method] = {}
        self._deliver_cache: dict[tuple[str, str, str], tuple[bytes, bytes]] = {}
        self._out: list[bytes | memoryview] = []
        self._scattered = False
        """Whether `_out` holds body slices of SCATTER_MIN or more, which buffers_to_send keeps apart."""
        self._now = now
        self._last_recv = now
        self._last_send = now
        self._closing_since = now
        self._close_code = 0
        self._close_text = ""
        self._close_owed = False
        """The client sent connection.close: until `answer_close`, the replies to what it sent before
        may still be sent, and then close-ok."""
        self._error_owed: tuple[int, str, int, int] | None = None
        """The connection.close for an error found in what the client sent (ConnectionClosing): until
        `close_for_error`, the replies to what it sent before may still be sent, and then the close."""

    @property
    def is_closed(self) -> bool:
        return self._state == _CLOSED

    @property
    def close_owed(self) -> bool:
        """The client's connection.close is not answered yet (see `answer_close`)."""
        return self._close_owed

    @property
    def frame_bytes_missing(self) -> int:
        """Bytes still to come of a frame partly received (at most frame_max), which a caller may
        read in one go."""
        return self._reader.missing

    @property
    def frame_size(self) -> float:
        """The average size of the frames received lately, envelope included."""
        return self._reader.frame_size

    # -- output -----------------------------------------------------------------------------------

    @property
    def has_output(self) -> bool:
        """True while something is queued for the socket (`buffers_to_send` would not be empty)."""
        return bool(self._out)

    def data_to_send(self) -> bytes:
        """Everything queued for the socket since the last call (possibly b"")."""
        return b"".join(self.buffers_to_send())

    def buffers_to_send(self) -> list[bytes | memoryview]:
        """What `data_to_send` would return, as buffers for one scatter-gather write (`sendmsg`):
        the slices of large bodies as they are, what lies between them joined."""
        out = self._out
        if not out:
            return []
        self._out = []
        self._last_send = self._now
        if not self._scattered:
            return [b"".join(out)]
        self._scattered = False
        buffers: list[bytes | memoryview] = []
        start = 0
        for index, part in enumerate(out):
            if len(part) >= SCATTER_MIN:
                if start < index:
                    buffers.append(b"".join(out[start:index]))
                buffers.append(part)
                start = index + 1
        if start < len(out):
            buffers.append(b"".join(out[start:]))
        return buffers

    def send_method(self, channel: int, method: spec.Method) -> None:
        if self._state >= _CLOSING and not self._replies_owed():
            return  # after connection.close only close-ok may be sent
        if channel and channel not in self._channels:
            return  # after the channel's close-ok nothing more is sent on it (see `send_content`)
        self._out.append(method_frame(channel, method.encode()))

    def send_content(self, channel: int, method: spec.Method, properties: bytes, body: bytes) -> bool:
        """Queue a content-bearing method with raw property bytes; the body is split at frame_max.
        Nothing is sent on a channel once its close-ok has gone, either way, nor after a
        connection.close, but for the replies due before the client's close-ok (see `answer_close`)
        or before the close for an error (`close_for_error`). Whether it was queued."""
        if (self._state >= _CLOSING and not self._replies_owed()) or channel not in self._channels:
            return False
        payload = self._encode_deliver(method) if type(method) is spec.BasicDeliver else method.encode()
        if len(body) < SCATTER_MIN:
            self._out.append(content_frames(channel, method.CLASS_ID, payload, properties, body, self.frame_max))
        else:
            self._out += content_frame_parts(channel, method.CLASS_ID, payload, properties, body, self.frame_max)
            self._scattered = True
        return True

    def _replies_owed(self) -> bool:
        """The client's close, or ours for an error it made, is not sent yet: the replies to what
        came before it still are (`answer_close`, `close_for_error`)."""
        return self._close_owed or self._error_owed is not None

    def _encode_deliver(self, method: spec.BasicDeliver) -> bytes:
        """basic.deliver's payload, with the encoded consumer tag, exchange and routing key of
        earlier deliveries: a consumer receives from few exchange/routing-key pairs."""
        key = (method.consumer_tag, method.exchange, method.routing_key)
        encoded = self._deliver_cache.get(key)
        if encoded is None:
            tag, exchange, routing_key = (text.encode() for text in key)
            encoded = (
                _DELIVER_IDS + bytes((len(tag),)) + tag,
                bytes((len(exchange),)) + exchange + bytes((len(routing_key),)) + routing_key,
            )
            if len(self._deliver_cache) >= _DELIVER_CACHE_SIZE:
                self._deliver_cache.clear()
            self._deliver_cache[key] = encoded
        head, tail = encoded
        return head + _DELIVERY_TAG_AND_BITS.pack(method.delivery_tag, method.redelivered) + tail

    def close_channel(
        self, channel: int, reply_code: int, reply_text: str, class_id: int = 0, method_id: int = 0
    ) -> None:
        """Start a server-initiated channel.close; the channel's frames are discarded until close-ok."""
        chan = self._channels.get(channel)
        if chan is None or chan.closing or (self._state != _OPEN and not self._replies_owed()):
            return
        # On a channel the client has closed as well (what it sent before its close failed), RabbitMQ
        # sends its close too, and close-ok for the client's once it is answered (`answer_channel_close`).
        chan.closing = True
        chan.reset_content()
        self._out.append(method_frame(channel, spec.ChannelClose(reply_code, reply_text, class_id, method_id).encode()))

    def answer_channel_close(self, channel: int) -> None:
        """Answers the client's channel.close (ChannelClosed) once the caller has handled everything
        the client sent before it, so that their replies precede close-ok: close-ok, and the number
        is free again. After connection.close nothing is answered, as in RabbitMQ."""
        chan = self._channels.get(channel)
        if chan is None or not chan.close_owed or self._state != _OPEN:
            return
        del self._channels[channel]
        self._out.append(method_frame(channel, spec.ChannelCloseOk().encode()))

    def answer_close(self) -> None:
        """Answers the client's connection.close (ConnectionClosed with a linger) once the caller has
        handled everything the client sent before it: close-ok, and nothing is sent after it."""
        if not self._close_owed:
            return
        self._close_owed = False
        self._channels.clear()
        self._out.append(method_frame(0, spec.ConnectionCloseOk().encode()))

    def close(self, reply_code: int, reply_text: str, class_id: int = 0, method_id: int = 0) -> None:
        """Start a server-initiated connection.close; ConnectionClosed follows when close-ok arrives.
        If the client's own close is owed an answer (what it sent before failed), our close is sent
        instead of its close-ok, as RabbitMQ does, and the connection stays closed."""
        if self._close_owed:
            self._close_owed = False
            self._channels.clear()
            self._out.append(method_frame(0, spec.ConnectionClose(reply_code, reply_text, class_id, method_id).encode()))
            return
        if self._state >= _CLOSING and self._error_owed is None:
            return
        # What the client sent before the error it made may fail first: that error is the one sent.
        self._error_owed = None
        self._start_closing(reply_code, reply_text, class_id, method_id)

    def close_for_error(self) -> None:
        """Sends the connection.close for the error ConnectionClosing reported, once the caller has
        handled what the client sent before it, so that their replies precede it, as RabbitMQ's do."""
        if self._error_owed is not None:
            self.close(*self._error_owed)

    def _start_closing(self, reply_code: int, reply_text: str, class_id: int, method_id: int) -> None:
        self._closing(reply_code, reply_text)
        self._channels.clear()
        self._out.append(method_frame(0, spec.ConnectionClose(reply_code, reply_text, class_id, method_id).encode()))

    def _closing(self, reply_code: int, reply_text: str) -> None:
        """From now on nothing more is read, and CLOSE_TIMEOUT runs."""
        self._state = _CLOSING
        self._closing_since = self._now
        self._close_code = reply_code
        self._close_text = reply_text

    def _closed(self, events: list[Event], reply_code: int, reply_text: str) -> None:
        self._state = _CLOSED
        self._error_owed = None  # the connection ended before its close was sent
        self._channels.clear()
        events.append(ConnectionClosed(reply_code, reply_text))

    # -- time -------------------------------------------------------------------------------------

    def pause_receive_timeout(self, now: float) -> None:
        """The broker is not reading from the peer on purpose (flow control): its silence until now
        is not a missed heartbeat."""
        self._last_recv = now

    def tick(self, now: float) -> list[Event]:
        """Queue a heartbeat when one is due; report the end of the connection if the peer went silent."""
        self._now = now
        events: list[Event] = []
        if self._state == _CLOSED:
            if self._close_owed and self.heartbeat and now - self._last_send >= self.heartbeat / 2:
                # The client's close waits (behind an alarm, say): it is kept alive, as RabbitMQ does,
                # but owes no more heartbeats of its own.
                self._out.append(HEARTBEAT_FRAME)
                self._last_send = now
            return events
        if self._state == _CLOSING and now - self._closing_since >= CLOSE_TIMEOUT:
            self._closed(events, self._close_code, self._close_text)
            return events
        heartbeat = self.heartbeat
        if heartbeat:
            if now - self._last_recv > 2 * heartbeat:
                self._closed(events, 0, f"missed heartbeats from client, timeout: {heartbeat}s")
                return events
            if now - self._last_send >= heartbeat / 2:
                self._out.append(HEARTBEAT_FRAME)
                self._last_send = now
        return events

    # -- input ------------------------------------------------------------------------------------

    def receive_buffers(self, limit: int = 0) -> list[memoryview]:
        """Where the next bytes received may go without an intermediate copy, for one scatter-gather
        read (`readv`) reported with received_into: the rest of the payload of a large body's
        frame partly received, in the body's own buffer, then room for that frame's end and the next
        frame's header. [] when the next bytes are for receive_data.

        While the whole offer stays within `limit` bytes, the body's next frames follow, each as its
        payload's place in the body and room for its envelope: guessed the size of the frame partly
        received (the rest of the body for the last). A guess the headers read do not bear out costs
        a copy of what was read after it, as a read into a buffer of its own would have."""
        reader = self._reader
        rest = reader.diverted_rest()
        if rest is None and self._state == _OPEN:
            place = self._body_place()
            if place is not None:
                body, start, size = place
                reader.divert(memoryview(body)[start:start + size])
                self._diverted_place = place
                rest = reader.diverted_rest()
        if rest is None or self._state == _CLOSED:
            self._offered = []
            return []
        tails = self._tails
        offered = [rest, tails[0]]
        body, start, size = self._diverted_place
        end = start + size
        left = limit - len(rest) - _TAIL_SIZE
        guessed = 1
        while end < len(body) and guessed <= _GUESSED_FRAMES_MAX:
            step = min(size, len(body) - end)
            left -= step + _TAIL_SIZE
            if left < 0:
                break
            offered += (memoryview(body)[end:end + step], tails[guessed])
            end += step
            guessed += 1
        self._offered = offered
        return offered

    def _body_place(self) -> tuple[bytearray, int, int] | None:
        """Where in its body's buffer the payload of the body frame partly received belongs (the
        buffer, the start and the size), if it is one for a large body its channel expects."""
        partial = self._reader.partial_frame()
        if partial is None:
            return None
        frame_type, channel, size = partial
        chan = self._channels.get(channel)
        if frame_type != FRAME_BODY or chan is None or chan.closing or chan.body is None:
            return None
        if not 0 < size <= chan.remaining:
            return None  # an error the frame itself reports once read
        return chan.body, len(chan.body) - chan.remaining, size

    def received_into(self, count: int, now: float) -> list[Event]:
        """Report `count` bytes received into the buffers of receive_buffers(), filled in order
        (0 at EOF), and get back what happened, as receive_data does."""
        if not count or self._state == _CLOSED:
            return self.receive_data(b"", now)
        reader = self._reader
        offered = self._offered
        into_body = min(count, len(offered[0]))
        reader.filled(into_body)
        count -= into_body
        events: list[Event] = []
        index = 1
        while count:
            into_tail = min(count, _TAIL_SIZE)
            count -= into_tail
            events += self._received(bytes(offered[index][:into_tail]), now)
            if not count:
                break
            guess = offered[index + 1]
            body, start, size = self._diverted_place
            place = self._body_place() if self._state == _OPEN else None
            if place is None or place[0] is not body or place[1] != start + size or place[2] != len(guess):
                # Not the frame guessed: what was read after the envelope goes through the reader.
                events += self._received(b"".join(self._filled_parts(index + 1, count)), now)
                break
            reader.divert(guess)
            self._diverted_place = place
            into_body = min(count, len(guess))
            reader.filled(into_body)
            count -= into_body
            index += 2
        return events

    def _filled_parts(self, index: int, count: int) -> list[memoryview]:
        """What the first `count` bytes received into the buffers offered from `index` on filled."""
        parts = []
        for part in self._offered[index:]:
            if not count:
                break
            parts.append(part[:count])
            count -= len(parts[-1])
        return parts

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Feed bytes from the socket (b"" at EOF) and get back what happened, in order."""
        if data and self._state != _CLOSED:
            return self._received(data, now)
        self._now = now
        events: list[Event] = []
        if self._state != _CLOSED:
            self._closed(events, 0, "client unexpectedly closed TCP connection")
        return events

    def _received(self, data: bytes, now: float) -> list[Event]:
        """What bytes received (`data`, after any that went straight to a body) make happen."""
        self._now = now
        events: list[Event] = []
        self._last_recv = now
        if self._state == _HEADER:
            data = self._receive_header(data, events)
            if not data:
                return events
        reader = self._reader
        if data:
            reader.feed(data)
        while True:
            # Until the connection is open, one frame at a time: tune-ok changes frame_max, and the
            # frames after it must be held to the new limit even when they arrived in the same read.
            one = self._state < _OPEN
            frames, error = reader.read_frames(1 if one else 0)
            for frame_type, channel, payload in frames:
                try:
                    if self._state == _OPEN and channel:
                        self._channel_frame(frame_type, channel, payload, events)
                    else:
                        self._other_frame(frame_type, channel, payload, events)
                except _ProtocolError as exc:
                    self._fail(exc, events)
                if self._state == _CLOSED:
                    return events
            if error is not None and self._state < _CLOSING:
                self._fail(_ProtocolError(ReplyCode.FRAME_ERROR, str(error)), events)
            if error is not None or not one or not frames:
                return events

    def _fail(self, exc: _ProtocolError, events: list[Event]) -> None:
        """Nothing more is read; connection.close follows at `close_for_error`."""
        if self._state >= _CLOSING:
            return
        self._closing(exc.reply_code, exc.reply_text)
        self._error_owed = (exc.reply_code, exc.reply_text, exc.class_id, exc.method_id)
        events.append(ConnectionClosing(exc.reply_code, exc.reply_text))

    def _receive_header(self, data: bytes, events: list[Event]) -> bytes:
        """Consume the 8-byte protocol header (0-9-1, or 0-9 served as 0-9-1); return the bytes after it."""
        header = self._header + data
        got = header[:8]
        if not any(accepted.startswith(got) for accepted in _ACCEPTED_HEADERS):
            # Anything else (AMQP 1.0, 0-8, HTTP, ...) gets our header, as the spec asks, and a close.
            self._out.append(PROTOCOL_HEADER)
            self._closed(events, 0, f"bad protocol header {bytes(got)!r}")
            return b""
        if len(got) < 8:
            self._header = header
            return b""
        self._header = b""
        self._state = _START_OK
        self._out.append(method_frame(0, spec.ConnectionStart(
            version_major=0,
            version_minor=9,
            server_properties=self._server_properties,
            mechanisms=_MECHANISMS if self._certificate_login is None else _MECHANISMS + b" EXTERNAL",
            locales=b"en_US",
        ).encode()))
        return header[8:]

    def _decode_method(self, payload: memoryview) -> spec.Method:
        if payload[:4] == _PUBLISH_IDS:
            # Publishers reuse a few exchange/routing-key pairs: decode each distinct payload once.
            key = bytes(payload)
            method = self._publish_cache.get(key)
            if method is None:
                method = self._decode_any(payload)
                if len(self._publish_cache) >= _PUBLISH_CACHE_SIZE:
                    self._publish_cache.clear()
                self._publish_cache[key] = method
            return method
        return self._decode_any(payload)

    def _decode_any(self, payload: memoryview) -> spec.Method:
        try:
            ids = _HH.unpack_from(payload)
        except struct.error:
            raise _ProtocolError(ReplyCode.FRAME_ERROR, f"method frame payload of {len(payload)} bytes") from None
        cls = METHODS.get(ids)
        if cls is None:
            raise _ProtocolError(ReplyCode.NOT_IMPLEMENTED, "unknown method class {} id {}".format(*ids), *ids)
        try:
            return cls.decode(payload)
        except DECODE_ERRORS as exc:
            raise _ProtocolError(ReplyCode.FRAME_ERROR, f"cannot decode {cls.NAME}: {exc}", *ids) from None

    # -- channels (connection open, channel != 0): the hot path --------------------------------------

    def _channel_frame(self, frame_type: int, channel: int, payload: memoryview, events: list[Event]) -> None:
        chan = self._channels.get(channel)
        if chan is None:
            self._unopened_channel_frame(frame_type, channel, payload, events)
        elif chan.closing or chan.close_owed:
            self._closing_channel_frame(chan, frame_type, channel, payload)
        elif frame_type == FRAME_METHOD:
            method = self._decode_method(payload)
            if chan.method is not None:
                what = "content header" if chan.properties is None else "content body"
                raise _ProtocolError(
                    ReplyCode.UNEXPECTED_FRAME,
                    f"expected {what} for {chan.method.NAME}, got {method.NAME} instead",
                    method.CLASS_ID,
                    method.METHOD_ID,
                )
            cls = type(method)
            if cls.HAS_CONTENT:
                chan.method = method
            elif cls.CLASS_ID == 20:
                self._channel_method(channel, method, events)
            elif cls.CLASS_ID == 10:
                # RabbitMQ's words for a connection-class method on a channel other than 0.
                raise _ProtocolError(ReplyCode.COMMAND_INVALID, "unimplemented method", method.CLASS_ID, method.METHOD_ID)
            else:
                events.append(MethodReceived(channel, method))
        elif frame_type == FRAME_BODY:
            if chan.properties is None:
                raise _ProtocolError(
                    ReplyCode.UNEXPECTED_FRAME, f"content body frame on channel {channel}, no content expected"
                )
            remaining = chan.remaining - len(payload)
            if remaining < 0:
                raise _ProtocolError(
                    ReplyCode.UNEXPECTED_FRAME, f"content body on channel {channel} is longer than its declared size"
                )
            body = chan.body
            if body is not None:
                if payload.obj is not body:  # else the payload was received in place (receive_buffers)
                    start = len(body) - chan.remaining
                    body[start:start + len(payload)] = payload
                if remaining:
                    chan.remaining = remaining
                    return
            elif remaining:
                chan.parts.append(payload)
                chan.remaining = remaining
                return
            elif chan.parts:
                chan.parts.append(payload)
                body = b"".join(chan.parts)
            else:
                body = bytes(payload)  # the common case: the whole body in one frame
            events.append(ContentReceived(channel, chan.method, chan.properties, body))
            chan.reset_content()
        elif frame_type == FRAME_HEADER:
            self._content_header(chan, channel, payload, events)
        else:
            raise _ProtocolError(ReplyCode.UNEXPECTED_FRAME, f"heartbeat frame on channel {channel}")

    def _content_header(self, chan: _Channel, channel: int, payload: memoryview, events: list[Event]) -> None:
        method = chan.method
        if method is None or chan.properties is not None:
            raise _ProtocolError(
                ReplyCode.UNEXPECTED_FRAME, f"content header frame on channel {channel}, none expected"
            )
        if len(payload) < 14:
            raise _ProtocolError(ReplyCode.FRAME_ERROR, f"content header of {len(payload)} bytes")
        class_id, _weight, body_size = _CONTENT_HEADER.unpack_from(payload)
        if class_id != method.CLASS_ID:
            raise _ProtocolError(
                ReplyCode.UNEXPECTED_FRAME,
                f"expected content header for class {method.CLASS_ID}, got one for class {class_id} instead",
            )
        if body_size > self._max_message_size:
            # Refused from the declared size, before any of the body is buffered; the channel then
            # drops the body frames until the client's close-ok.
            limit = "max size" if self._max_message_size == MAX_MESSAGE_SIZE_CEILING else "configured max size"
            text = f"PRECONDITION_FAILED - message size {body_size} is larger than {limit} {self._max_message_size}"
            self.close_channel(channel, ReplyCode.PRECONDITION_FAILED, text, method.CLASS_ID, method.METHOD_ID)
            events.append(ChannelClosing(channel, ReplyCode.PRECONDITION_FAILED, text))
            return
        properties = bytes(payload[12:])
        if body_size == 0:
            events.append(ContentReceived(channel, method, properties, b""))
            chan.reset_content()
            return
        chan.properties = properties
        chan.remaining = body_size
        if body_size >= BODY_BUFFER_MIN:
            chan.body = bytearray(body_size)

    def _channel_method(self, channel: int, method: spec.Method, events: list[Event]) -> None:
        cls = type(method)
        if cls is spec.ChannelClose:
            self._channels[channel].close_owed = True
            events.append(ChannelClosed(channel))
        elif cls is spec.ChannelOpen:
            raise _ProtocolError(ReplyCode.CHANNEL_ERROR, "second 'channel.open' seen", 20, 10)
        elif cls is spec.ChannelCloseOk:
            return  # nothing of ours to confirm: a stray close-ok is harmless
        else:
            events.append(MethodReceived(channel, method))

    def _unopened_channel_frame(self, frame_type: int, channel: int, payload: memoryview, events: list[Event]) -> None:
        if frame_type == FRAME_HEARTBEAT:
            raise _ProtocolError(ReplyCode.UNEXPECTED_FRAME, f"heartbeat frame on channel {channel}")
        if frame_type != FRAME_METHOD:
            raise _ProtocolError(ReplyCode.CHANNEL_ERROR, f"expected 'channel.open' on channel {channel}")
        method = self._decode_method(payload)
        cls = type(method)
        if cls is spec.ChannelOpen:
            # channel_max bounds how many channels are open (or closing), not their numbers, as in RabbitMQ;
            # its close names no method.
            opened = len(self._channels)
            if opened >= self.channel_max:
                raise _ProtocolError(
                    ReplyCode.NOT_ALLOWED,
                    f"number of channels opened ({opened}) has reached the negotiated channel_max ({self.channel_max})",
                )
            refusal = self._channel_refusal(self.username) if self._channel_refusal is not None else None
            if refusal is not None:
                raise _ProtocolError(ReplyCode.NOT_ALLOWED, refusal)
            self._channels[channel] = _Channel()
            self._out.append(method_frame(channel, spec.ChannelOpenOk().encode()))
            events.append(ChannelOpened(channel))
        elif cls is not spec.ChannelCloseOk:
            # A close-ok may arrive late for a channel both sides closed at once; anything else is an error.
            raise _ProtocolError(
                ReplyCode.CHANNEL_ERROR, "expected 'channel.open'", method.CLASS_ID, method.METHOD_ID
            )

    def _closing_channel_frame(self, chan: _Channel, frame_type: int, channel: int, payload: memoryview) -> None:
        """After our channel.close everything is dropped until the client's close-ok (or its own
        close); after the client's close, until we answer it, but a channel.open on its number."""
        if frame_type == FRAME_HEARTBEAT:
            raise _ProtocolError(ReplyCode.UNEXPECTED_FRAME, f"heartbeat frame on channel {channel}")
        if frame_type != FRAME_METHOD or len(payload) < 4:
            return
        ids = _HH.unpack_from(payload)
        if chan.close_owed:
            if ids == _CHANNEL_OPEN_IDS:
                raise _ProtocolError(ReplyCode.CHANNEL_ERROR, "second 'channel.open' seen", *ids)
            if ids == _CHANNEL_CLOSE_OK_IDS:
                chan.closing = False
            return
        if ids == _CHANNEL_CLOSE_OK_IDS:
            del self._channels[channel]
        elif ids == _CHANNEL_CLOSE_IDS:
            # Both sides closed at once: answer theirs; their close-ok for ours may still follow and is ignored.
            del self._channels[channel]
            self._out.append(method_frame(channel, spec.ChannelCloseOk().encode()))

    # -- channel 0, the handshake, and the closing connection ---------------------------------------

    def _other_frame(self, frame_type: int, channel: int, payload: memoryview, events: list[Event]) -> None:
        state = self._state
        if frame_type == FRAME_HEARTBEAT:
            if channel:
                raise _ProtocolError(ReplyCode.UNEXPECTED_FRAME, f"heartbeat frame on channel {channel}")
            return
        if state == _CLOSING:
            self._closing_frame(frame_type, channel, payload, events)
            return
        if frame_type != FRAME_METHOD:
            raise _ProtocolError(ReplyCode.UNEXPECTED_FRAME, f"expected method frame on channel {channel}")
        method = self._decode_method(payload)
        cls = type(method)
        if cls is spec.ConnectionClose and channel == 0:
            # The channels stay for the replies to what came before; RabbitMQ answers a channel.close
            # that came before with nothing.
            self._state = _CLOSED
            self._close_owed = True
            linger = min(self.heartbeat or CLIENT_CLOSE_LINGER, CLIENT_CLOSE_LINGER)
            events.append(ConnectionClosed(method.reply_code, method.reply_text, linger))
        elif channel == 0 and state == _START_OK and cls is spec.ConnectionStartOk:
            self._start_ok(method, events)
        elif channel == 0 and state == _TUNE_OK and cls is spec.ConnectionTuneOk:
            self._tune_ok(method)
        elif channel == 0 and state == _OPEN_VHOST and cls is spec.ConnectionOpen:
            self._open(method, events)
        elif channel == 0 and state == _OPEN and cls is spec.ConnectionUpdateSecret:
            # Passwords do not expire, so like RabbitMQ's internal backend we take any new secret as is.
            self._out.append(method_frame(0, spec.ConnectionUpdateSecretOk().encode()))
        else:
            raise _ProtocolError(
                ReplyCode.CHANNEL_ERROR,
                f"unexpected method in connection state {_STATE_NAMES[state]}",
                cls.CLASS_ID,
                cls.METHOD_ID,
            )

    def _closing_frame(self, frame_type: int, channel: int, payload: memoryview, events: list[Event]) -> None:
        """After our connection.close only the client's close or close-ok matters; until it is
        sent (`close_for_error`), nothing."""
        if channel or frame_type != FRAME_METHOD or len(payload) < 4 or self._error_owed is not None:
            return
        ids = _HH.unpack_from(payload)
        if ids == (spec.ConnectionCloseOk.CLASS_ID, spec.ConnectionCloseOk.METHOD_ID):
            self._closed(events, self._close_code, self._close_text)
        elif ids == (spec.ConnectionClose.CLASS_ID, spec.ConnectionClose.METHOD_ID):
            self._out.append(method_frame(0, spec.ConnectionCloseOk().encode()))
            self._closed(events, self._close_code, self._close_text)

    def _start_ok(self, method: spec.ConnectionStartOk, events: list[Event]) -> None:
        self.client_properties = method.client_properties
        capabilities = method.client_properties.get("capabilities")
        self.client_capabilities = capabilities if isinstance(capabilities, dict) else {}
        mechanism = method.mechanism
        if mechanism == "EXTERNAL" and self._certificate_login is not None:
            # The response is ignored, as RabbitMQ's rabbitmq_auth_mechanism_ssl ignores it.
            username: str | None = self._certificate_login
            accepted = self._authenticate_external(username)
        else:
            credentials = _credentials(mechanism, method.response)
            username = credentials[0] if credentials is not None else None
            accepted = credentials is not None and self._authenticate(*credentials)
        if accepted:
            self.username = username
            self._state = _TUNE_OK
            self._out.append(method_frame(0, spec.ConnectionTune(
                channel_max=self._server_channel_max,
                frame_max=self._server_frame_max,
                heartbeat=self._server_heartbeat,
            ).encode()))
            return
        text = f"Login was refused using authentication mechanism {mechanism}. For details see the broker logfile."
        if self.client_capabilities.get("authentication_failure_close"):
            # RabbitMQ names no method in this close (class and method id 0).
            raise _ProtocolError(ReplyCode.ACCESS_REFUSED, text)
        # AMQP's rule for clients that cannot take a close during the handshake: drop the socket.
        self._closed(events, ReplyCode.ACCESS_REFUSED, f"ACCESS_REFUSED - {text}")

    def _tune_ok(self, method: spec.ConnectionTuneOk) -> None:
        _check_negotiated("channel_max", method.channel_max, 1, self._server_channel_max)
        _check_negotiated("frame_max", method.frame_max, spec.FRAME_MIN_SIZE, self._server_frame_max)
        self.channel_max = method.channel_max
        self.frame_max = method.frame_max
        self._reader.frame_max = method.frame_max
        self.heartbeat = method.heartbeat
        self._last_recv = self._last_send = self._now
        self._state = _OPEN_VHOST

    def _open(self, method: spec.ConnectionOpen, events: list[Event]) -> None:
        vhost = method.virtual_host
        # RabbitMQ tells a missing vhost apart from a refused one; both are 530.
        if self._vhost_exists is not None and not self._vhost_exists(vhost):
            raise _ProtocolError(ReplyCode.NOT_ALLOWED, f"vhost {vhost} not found", 10, 40)
        # As RabbitMQ, a limit is checked before the user's permission in the vhost.
        refusal = self._connection_refusal(self.username, vhost) if self._connection_refusal is not None else None
        if refusal is not None:
            raise _ProtocolError(ReplyCode.NOT_ALLOWED, refusal, 10, 40)
        if not self._can_open_vhost(self.username, vhost):
            raise _ProtocolError(
                ReplyCode.NOT_ALLOWED, f"access to vhost '{vhost}' refused for user '{self.username}'", 10, 40
            )
        self.vhost = vhost
        self._state = _OPEN
        self._out.append(method_frame(0, spec.ConnectionOpenOk().encode()))
        events.append(Handshaken(vhost, self.username, self.client_properties))


def _check_negotiated(name: str, value: int, minimum: int, maximum: int) -> None:
    # 0 means "no limit" on the wire, which the server never agrees to.
    if value < minimum:
        raise _ProtocolError(
            ReplyCode.NOT_ALLOWED, f"negotiated {name} = {value} is lower than the minimum allowed value ({minimum})",
            10, 31,
        )
    if maximum and value > maximum:
        raise _ProtocolError(
            ReplyCode.NOT_ALLOWED, f"negotiated {name} = {value} is higher than the maximum allowed value ({maximum})",
            10, 31,
        )


def _credentials(mechanism: str, response: bytes) -> tuple[str, str] | None:
    """(username, password) from a start-ok response, None if it is malformed."""
    if mechanism == "PLAIN":
        # authzid NUL authcid NUL password; the authorisation identity is ignored, as RabbitMQ does.
        parts = response.split(b"\x00")
        if len(parts) != 3:
            return None
        raw_user, raw_password = parts[1], parts[2]
    elif mechanism == "AMQPLAIN":
        # A field table without its length prefix.
        try:
            table = decode_table_items(response, 0, len(response))
        except DECODE_ERRORS:
            return None
        raw_user, raw_password = table.get("LOGIN"), table.get("PASSWORD")
    else:
        raise _ProtocolError(ReplyCode.COMMAND_INVALID, f"unknown authentication mechanism '{mechanism}'", 10, 11)
    try:
        user = raw_user.decode() if isinstance(raw_user, bytes) else raw_user
        password = raw_password.decode() if isinstance(raw_password, bytes) else raw_password
    except UnicodeDecodeError:
        return None
    if not isinstance(user, str) or not isinstance(password, str):
        return None
    return user, password
