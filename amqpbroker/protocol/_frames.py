"""The frame envelope: incremental parsing of received bytes and the writers of outgoing frames.

A frame is type (octet), channel (short), payload size (long), payload, frame-end octet 0xCE.
FrameReader splits a byte stream however it was chunked into whole frames, checking the declared
size against frame_max before buffering the payload. Payloads are memoryviews into the received
bytes, so a body is copied only when the connection assembles it; or the payload of a frame partly
received is diverted into a buffer of the caller's, which the rest of it is then received into.
"""

from __future__ import annotations

from struct import Struct

from ._spec import FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD

_FRAME_HEADER = Struct(">BHI")
_CONTENT_HEADER = Struct(">HHQ")
_FRAME_END_BYTE = bytes((FRAME_END,))
_END_AND_CONTENT_HEADER = Struct(">BBHIHHQ")
"""The method frame's frame-end, then the header frame's header, class id, weight and body size."""
_END_AND_FRAME_HEADER = Struct(">BBHI")
"""A frame's frame-end, then the next frame's header."""
_FRAME_TYPES = frozenset((FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT))

FRAME_OVERHEAD = 8  # 7-byte frame header + frame-end octet
# RabbitMQ tolerates frames up to 8 bytes longer than frame_max (FRAME_SIZE_FUDGE), because some
# clients computed the limit on the payload rather than the whole frame.
FRAME_SIZE_FUDGE = 8

# FrameReader.frame_size before any frame arrived: a small publish's frames average about this.
_SMALL_FRAME = 64
# How much each read's frames move FrameReader.frame_size towards their own average.
_FRAME_SIZE_WEIGHT = 0.25

HEARTBEAT_FRAME = _FRAME_HEADER.pack(FRAME_HEARTBEAT, 0, 0) + _FRAME_END_BYTE

Frame = tuple[int, int, memoryview]


class FrameError(Exception):
    """The stream is not a valid frame sequence; the connection must close with 501 FRAME_ERROR."""


class FrameReader:
    """Accumulates received bytes and cuts them into frames.

    Bytes are kept as a list of chunks and joined only once a whole frame is present, so a large
    frame arriving in many small reads is copied once, not once per read.
    """

    __slots__ = ("frame_max", "frame_size", "_chunks", "_size", "_need", "_diverted", "_diverted_frame", "_filled")

    def __init__(self, frame_max: int) -> None:
        self.frame_max = frame_max
        self.frame_size = float(_SMALL_FRAME)
        """The average size of the frames received lately, envelope included."""
        self._chunks: list[bytes] = []
        self._size = 0
        self._need = 7  # bytes needed before parsing can make progress
        self._diverted: memoryview | None = None
        """Where the payload of the frame partly received goes (see divert); its header is read."""
        self._diverted_frame = (0, 0)
        self._filled = 0
        """Bytes of the diverted payload received so far."""

    @property
    def missing(self) -> int:
        """Bytes still to come of a frame partly received; 0 if none is, or after an error."""
        if self._diverted is not None:
            return max(0, len(self._diverted) - self._filled + 1 - self._size)
        if not self._size or self._need == 0xFFFFFFFF:
            return 0
        return max(0, self._need - self._size)

    def feed(self, data: bytes) -> None:
        """Bytes received; while a payload is diverted, only those after it (see diverted_rest)."""
        self._chunks.append(data)
        self._size += len(data)

    def partial_frame(self) -> tuple[int, int, int] | None:
        """Type, channel and payload size of the frame partly received, once its header has been
        read (and checked) by read_frames; None if there is none, or it is diverted already."""
        if self._diverted is not None or self._need == 0xFFFFFFFF or self._size < 7:
            return None
        head = self._chunks[0]
        frame_type, channel, size = _FRAME_HEADER.unpack_from(head if len(head) >= 7 else b"".join(self._chunks))
        if self._need != size + 8:
            return None  # read_frames has not looked at this header yet
        return frame_type, channel, size

    def divert(self, target: memoryview) -> None:
        """The payload of the frame partly received (see partial_frame) goes to `target`, exactly
        as long, rather than to the reader's own buffer: what of it was buffered is moved there,
        and the caller writes the rest (see diverted_rest). read_frames then returns the frame
        with `target` as its payload, once its frame-end octet has been fed."""
        buf = b"".join(self._chunks)
        have = min(len(buf) - 7, len(target))
        target[:have] = memoryview(buf)[7:7 + have]
        self._diverted = target
        self._diverted_frame = _FRAME_HEADER.unpack_from(buf)[:2]
        self._filled = have
        self._chunks = []  # the frame is incomplete: nothing of the next one was buffered
        self._size = 0

    def diverted_rest(self) -> memoryview | None:
        """The part of the diverted payload not received yet, to be written by the caller (then
        reported with `filled`); None if no payload is diverted or all of it is in."""
        diverted = self._diverted
        if diverted is None or self._filled == len(diverted):
            return None
        return diverted[self._filled:]

    def filled(self, count: int) -> None:
        """The caller wrote `count` bytes at the start of diverted_rest()."""
        self._filled += count

    def read_frames(self, max_frames: int = 0) -> tuple[list[Frame], FrameError | None]:
        """Every complete frame buffered so far (at most max_frames, if not 0), and the error that
        stopped parsing, if any.

        Frames before a bad one are returned so they are processed in order before the error.
        """
        frames: list[Frame] = []
        diverted = 0  # 1 if the first frame returned is a diverted one
        if self._diverted is not None:
            if self._filled < len(self._diverted) or not self._size:
                return frames, None
            error = self._end_diverted(frames)
            if error is not None:
                return frames, error
            diverted = 1
        if self._size < self._need:
            return frames, None
        chunks = self._chunks
        buf = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        view = memoryview(buf)
        end = len(buf)
        limit = self.frame_max + FRAME_SIZE_FUDGE - FRAME_OVERHEAD if self.frame_max else 0xFFFFFFFF
        pos = 0
        error = None
        need = 7
        unpack = _FRAME_HEADER.unpack_from
        while end - pos >= 7:
            if max_frames and len(frames) == max_frames:
                break
            frame_type, channel, size = unpack(buf, pos)
            if size > limit:
                error = FrameError(f"frame of {size + FRAME_OVERHEAD} bytes exceeds frame_max {self.frame_max}")
                break
            stop = pos + 7 + size
            if stop >= end:
                need = stop + 1 - pos
                break
            if buf[stop] != FRAME_END:
                error = FrameError(f"frame end octet {buf[stop]:#04x}, expected 0xce")
                break
            if frame_type not in _FRAME_TYPES:
                error = FrameError(f"unknown frame type {frame_type}")
                break
            frames.append((frame_type, channel, view[pos + 7:stop]))
            pos = stop + 1
        if len(frames) > diverted:
            self.frame_size += (pos / (len(frames) - diverted) - self.frame_size) * _FRAME_SIZE_WEIGHT
        if error is not None:
            self._stop()
        else:
            rest = buf[pos:] if pos else buf
            self._chunks = [rest] if rest else []
            self._size = len(rest)
            self._need = need
        return frames, error

    def _end_diverted(self, frames: list[Frame]) -> FrameError | None:
        """Checks the frame-end octet after a diverted payload, all in, and returns that frame."""
        buf = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        diverted, self._diverted = self._diverted, None
        if buf[0] != FRAME_END:
            self._stop()
            return FrameError(f"frame end octet {buf[0]:#04x}, expected 0xce")
        frames.append((*self._diverted_frame, diverted))
        rest = memoryview(buf)[1:]
        self._chunks = [rest] if rest else []
        self._size = len(rest)
        self._need = 7
        return None

    def _stop(self) -> None:
        """After a framing error nothing more is parsed."""
        self._chunks = []
        self._size = 0
        self._need = 0xFFFFFFFF


def method_frame(channel: int, payload: bytes) -> bytes:
    return b"".join((_FRAME_HEADER.pack(FRAME_METHOD, channel, len(payload)), payload, _FRAME_END_BYTE))


def content_frames(
    channel: int, class_id: int, method_payload: bytes, properties: bytes, body: bytes, frame_max: int
) -> bytes:
    """A content-bearing method: method frame, header frame, body frames of at most frame_max bytes each.

    `properties` is the raw property list (flags and values), e.g. as received from the publisher.
    """
    body_size = len(body)
    if not body_size or (frame_max and body_size > frame_max - FRAME_OVERHEAD):
        return b"".join(content_frame_parts(channel, class_id, method_payload, properties, body, frame_max))
    # One body frame, as for every small message: three packs and one join.
    return b"".join((
        _FRAME_HEADER.pack(FRAME_METHOD, channel, len(method_payload)), method_payload,
        _END_AND_CONTENT_HEADER.pack(FRAME_END, FRAME_HEADER, channel, 12 + len(properties), class_id, 0, body_size),
        properties,
        _END_AND_FRAME_HEADER.pack(FRAME_END, FRAME_BODY, channel, body_size), body, _FRAME_END_BYTE,
    ))


def content_frame_parts(
    channel: int, class_id: int, method_payload: bytes, properties: bytes, body: bytes, frame_max: int
) -> list[bytes | memoryview]:
    """The buffers of `content_frames` in order, before they are joined: the body's pieces are
    slices of `body` itself, for a scatter-gather write that does not copy them."""
    pack = _FRAME_HEADER.pack
    header_payload_size = 12 + len(properties)
    parts: list[bytes | memoryview] = [
        pack(FRAME_METHOD, channel, len(method_payload)), method_payload, _FRAME_END_BYTE,
        pack(FRAME_HEADER, channel, header_payload_size),
        _CONTENT_HEADER.pack(class_id, 0, len(body)), properties, _FRAME_END_BYTE,
    ]
    body_size = len(body)
    chunk = frame_max - FRAME_OVERHEAD if frame_max else body_size
    if body_size <= chunk:
        if body_size:
            parts += (pack(FRAME_BODY, channel, body_size), body, _FRAME_END_BYTE)
    else:
        view = memoryview(body)
        for start in range(0, body_size, chunk):
            piece = view[start:start + chunk]
            parts += (pack(FRAME_BODY, channel, len(piece)), piece, _FRAME_END_BYTE)
    return parts
