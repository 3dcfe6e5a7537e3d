"""Large bodies are assembled in one buffer of their size, never joined from their frames; where
the caller reads with receive_buffers (a plain socket), body payloads are received into that buffer
in place, and the frame reader sees only envelopes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amqpbroker.protocol import ConnectionClosed, ConnectionClosing, ContentReceived, spec
from amqpbroker.protocol._connection import BODY_BUFFER_MIN

from .helpers import body, header, method, open_channel, open_connection, publish

FRAME_MAX = 16384
LARGE = bytes(range(256)) * (BODY_BUFFER_MIN // 256 * 3)  # 13 body frames at FRAME_MAX, the last short


def large_publish(channel: int, data: bytes) -> bytes:
    """basic.publish with `data` cut into body frames of FRAME_MAX."""
    chunk = FRAME_MAX - 8
    return (method(channel, spec.BasicPublish(routing_key="q")) + header(channel, len(data))
            + b"".join(body(channel, data[start:start + chunk]) for start in range(0, len(data), chunk)))


def connection(*channels: int):
    conn = open_connection(frame_max=FRAME_MAX)
    for channel in channels or (1,):
        open_channel(conn, channel)
    return conn


def read_as_a_socket(conn, stream: bytes, sizes: list[int], limit: int = 0) -> tuple[list, int]:
    """Feeds `stream` as the server's reader does on a plain socket: each read of at most the next
    size (the last one repeated) goes into receive_buffers(limit) where offered, as readv fills
    them, else to receive_data. The events, and how many bytes went in place."""
    events = []
    in_place = 0
    pos = 0
    for step in range(len(stream)):
        if pos == len(stream):
            break
        size = sizes[min(step, len(sizes) - 1)]
        buffers = conn.receive_buffers(limit)
        if not buffers:
            events += conn.receive_data(stream[pos:pos + size], 0.0)
            pos += len(stream[pos:pos + size])
            continue
        count = 0
        for buffer in buffers:
            piece = stream[pos + count:pos + min(size, count + len(buffer))]
            buffer[:len(piece)] = piece
            count += len(piece)
            if len(buffer.obj) >= BODY_BUFFER_MIN:  # a body's buffer, not room for an envelope
                in_place += len(piece)
        events += conn.received_into(count, 0.0)
        pos += count
    return events, in_place


def contents(events: list) -> list[tuple[int, bytes]]:
    assert all(isinstance(event, ContentReceived) for event in events), events
    return [(event.channel, bytes(event.body)) for event in events]


def test_a_large_body_is_received_in_place_into_the_buffer_it_is_handed_out_as() -> None:
    conn = connection()
    stream = large_publish(1, LARGE)
    first = stream.index(body(1, LARGE[:FRAME_MAX - 8])) + 100  # header and 93 bytes of the first payload
    assert conn.receive_data(stream[:first], 0.0) == []
    view, tail = conn.receive_buffers()
    assert len(view) == FRAME_MAX - 8 - 93 and len(tail) == 8
    events, in_place = read_as_a_socket(conn, stream[first:], [len(stream)])
    assert contents(events) == [(1, LARGE)]
    assert type(events[0].body) is bytearray and events[0].body is view.obj, "the body is the buffer read into"
    assert in_place == len(LARGE) - 93, "every payload byte but those read before went in place"


def test_the_body_frames_after_the_one_partly_received_are_offered_in_place_for_one_read() -> None:
    conn = connection()
    stream = large_publish(1, LARGE)
    first = stream.index(body(1, LARGE[:FRAME_MAX - 8])) + 100
    conn.receive_data(stream[:first], 0.0)
    buffers = conn.receive_buffers(len(stream))
    payloads = buffers[::2]
    frames = -(-len(LARGE) // (FRAME_MAX - 8))
    assert len(payloads) == frames, "the rest of the first payload, then every payload after it"
    assert all(payload.obj is payloads[0].obj for payload in payloads)
    assert len(payloads[-1]) == len(LARGE) % (FRAME_MAX - 8), "the last guessed as the body's rest"
    assert [len(envelope) for envelope in buffers[1::2]] == [8] * frames, "a frame end, the next header"
    count = 0
    for buffer in buffers:
        piece = stream[first + count:first + count + len(buffer)]
        buffer[:len(piece)] = piece
        count += len(piece)
    assert count == len(stream) - first
    events = conn.received_into(count, 0.0)
    assert contents(events) == [(1, LARGE)] and events[0].body is payloads[0].obj


@pytest.mark.parametrize("limit", [0, FRAME_MAX, 5 * FRAME_MAX + 100])
def test_a_read_into_a_body_goes_beyond_the_frame_partly_received_only_within_its_limit(limit) -> None:
    conn = connection()
    stream = large_publish(1, LARGE)
    conn.receive_data(stream[:stream.index(body(1, LARGE[:FRAME_MAX - 8])) + 100], 0.0)
    buffers = conn.receive_buffers(limit)
    first = len(buffers[0]) + len(buffers[1])
    assert sum(map(len, buffers)) <= max(limit, first)
    assert len(buffers) == 2 + 2 * max(0, (limit - first) // FRAME_MAX), "as many whole frames as fit"


def test_a_body_frame_other_than_guessed_goes_through_the_reader_and_the_body_arrives_intact() -> None:
    conn = connection()
    chunk = FRAME_MAX - 8
    cuts = [0, chunk, chunk + 100, *range(2 * chunk + 100, len(LARGE), chunk), len(LARGE)]
    stream = (method(1, spec.BasicPublish(routing_key="q")) + header(1, len(LARGE))
              + b"".join(body(1, LARGE[a:b]) for a, b in zip(cuts, cuts[1:])))
    first = stream.index(body(1, LARGE[:chunk])) + 100
    # The second frame is 100 bytes where a whole frame is guessed; the reads after it guess again.
    events, in_place = read_as_a_socket(conn, stream, [first, 2 * FRAME_MAX, len(stream)], len(stream))
    assert contents(events) == [(1, LARGE)]
    assert in_place > len(LARGE) // 2


def test_a_bad_frame_end_after_a_guessed_payload_is_a_frame_error() -> None:
    conn = connection()
    stream = bytearray(large_publish(1, LARGE))
    first = stream.index(body(1, LARGE[:FRAME_MAX - 8]))
    stream[first + 2 * FRAME_MAX - 1] = 0  # the second body frame's end
    conn.receive_data(bytes(stream[:first + 100]), 0.0)
    events, _in_place = read_as_a_socket(conn, bytes(stream[first + 100:]), [len(stream)], len(stream))
    assert len(events) == 1 and isinstance(events[0], ConnectionClosing), events
    assert events[0].reply_code == 501 and "frame end octet 0x00" in events[0].reply_text


def test_a_small_body_is_bytes_and_no_buffer_is_offered_for_it() -> None:
    conn = connection()
    small = b"x" * (BODY_BUFFER_MIN - 1)
    stream = large_publish(1, small)
    assert conn.receive_data(stream[:100], 0.0) == []
    assert conn.receive_buffers() == []
    events = conn.receive_data(stream[100:], 0.0)
    assert contents(events) == [(1, small)] and type(events[0].body) is bytes


def test_a_large_body_read_without_buffers_is_copied_into_its_buffer() -> None:
    conn = connection()
    events = conn.receive_data(large_publish(1, LARGE), 0.0)
    assert contents(events) == [(1, LARGE)] and type(events[0].body) is bytearray


# How much a read into a body may take beyond the frame partly received: 0 offers no frame after it.
LIMITS = st.one_of(st.just(0), st.integers(1, 16 * FRAME_MAX))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 3 * FRAME_MAX), min_size=1, max_size=40),
    st.integers(BODY_BUFFER_MIN, 3 * BODY_BUFFER_MIN),
    st.booleans(),
    LIMITS,
)
def test_large_bodies_arrive_intact_however_the_reads_fall(sizes, size, interleaved, limit) -> None:
    conn = connection(1, 2)
    first = bytes(range(256)) * (size // 256) + b"!" * (size % 256)
    second = first[::-1]
    if interleaved:
        # Content of two channels may interleave frame by frame.
        frames_1, frames_2 = _frames(large_publish(1, first)), _frames(large_publish(2, second))
        stream = b"".join(a + b for a, b in zip(frames_1, frames_2))
        stream += b"".join(frames_1[len(frames_2):] + frames_2[len(frames_1):])
    else:
        stream = large_publish(1, first) + publish(1, b"small") + large_publish(2, second)
    events, _in_place = read_as_a_socket(conn, stream, sizes, limit)
    expected = [(1, first), (2, second)] if interleaved else [(1, first), (1, b"small"), (2, second)]
    assert sorted(contents(events)) == sorted(expected)


def _frames(stream: bytes) -> list[bytes]:
    out = []
    pos = 0
    while pos < len(stream):
        size = int.from_bytes(stream[pos + 3:pos + 7], "big")
        out.append(stream[pos:pos + size + 8])
        pos += size + 8
    return out


def test_a_bad_frame_end_after_a_payload_received_in_place_is_a_frame_error() -> None:
    conn = connection()
    stream = bytearray(large_publish(1, LARGE))
    first_end = stream.index(body(1, LARGE[:FRAME_MAX - 8])) + FRAME_MAX - 1
    stream[first_end] = 0
    conn.receive_data(bytes(stream[:first_end - 1000]), 0.0)
    assert conn.receive_buffers()
    events, in_place = read_as_a_socket(conn, bytes(stream[first_end - 1000:]), [len(stream)])
    assert in_place == 1000
    assert len(events) == 1 and isinstance(events[0], ConnectionClosing), events
    assert events[0].reply_code == 501 and "frame end octet 0x00" in events[0].reply_text


def test_a_body_frame_longer_than_the_rest_of_the_body_is_not_received_in_place() -> None:
    conn = connection()
    whole_frames = (FRAME_MAX - 8) * (BODY_BUFFER_MIN // (FRAME_MAX - 8))
    stream = large_publish(1, LARGE[:whole_frames]).replace(
        header(1, whole_frames), header(1, whole_frames + 10)
    ) + body(1, b"y" * 100)
    conn.receive_data(stream[:-50], 0.0)
    assert conn.receive_buffers() == []
    events = conn.receive_data(stream[-50:], 0.0)
    assert len(events) == 1 and events[0].reply_code == 505, events


def test_the_end_of_the_stream_while_receiving_in_place_closes_the_connection() -> None:
    conn = connection()
    stream = large_publish(1, LARGE)
    conn.receive_data(stream[:1000], 0.0)
    assert conn.receive_buffers()
    events = conn.received_into(0, 0.0)
    assert len(events) == 1 and isinstance(events[0], ConnectionClosed)


def test_frames_received_in_place_leave_the_read_size_to_the_frames_that_are_not() -> None:
    conn = connection()
    small = conn.frame_size
    stream = large_publish(1, LARGE) * 4
    events, in_place = read_as_a_socket(conn, stream, [100])
    assert len(contents(events)) == 4 and in_place > 3 * len(LARGE)
    # Only envelopes went through the reader: reads sized by the payloads would copy them there.
    assert conn.frame_size < 2 * small
    conn.receive_data(large_publish(1, LARGE), 0.0)
    assert conn.frame_size > 10 * small, "frames that went through the reader count"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(512, FRAME_MAX - 8), min_size=1, max_size=30),
    st.lists(st.integers(7, 3 * FRAME_MAX), min_size=1, max_size=20),
    st.booleans(),
    LIMITS,
)
def test_a_body_cut_unevenly_arrives_intact(cuts, sizes, heartbeats, limit) -> None:
    conn = connection()
    data = LARGE[:BODY_BUFFER_MIN + 1000]
    frames, at = [], 0
    while at < len(data):
        chunk = cuts[len(frames) % len(cuts)]
        frames.append(body(1, data[at:at + chunk]))
        at += chunk
    # A heartbeat between body frames, as a client may send one at any frame boundary.
    between = b"\x08\x00\x00\x00\x00\x00\x00\xce" if heartbeats else b""
    stream = method(1, spec.BasicPublish(routing_key="q")) + header(1, len(data)) + between.join(frames)
    events, _in_place = read_as_a_socket(conn, stream, sizes, limit)
    assert contents(events) == [(1, data)]
