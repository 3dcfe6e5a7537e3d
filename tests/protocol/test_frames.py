"""FrameReader over any chunking of a stream, its size and frame-end checks, and the frame writers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amqpbroker.protocol._frames import HEARTBEAT_FRAME, FrameReader, content_frames, method_frame

from .helpers import frame, split_frames

STREAM = (
    frame(1, 0, b"\x00\x0a\x00\x33")
    + frame(2, 1, b"\x00\x3c\x00\x00" + b"\x00" * 8 + b"\x00\x00")
    + frame(3, 1, b"body" * 10)
    + frame(8, 0, b"")
    + frame(3, 65535, b"")
)
EXPECTED = [(1, 0, b"\x00\x0a\x00\x33"), (2, 1, b"\x00\x3c" + b"\x00" * 12), (3, 1, b"body" * 10),
            (8, 0, b""), (3, 65535, b"")]


def read_in_chunks(chunks, frame_max=131072):
    reader = FrameReader(frame_max)
    out = []
    for chunk in chunks:
        reader.feed(chunk)
        frames, error = reader.read_frames()
        assert error is None
        out += [(t, c, bytes(p)) for t, c, p in frames]
    return out


def test_many_frames_in_one_chunk():
    assert read_in_chunks([STREAM]) == EXPECTED


def test_byte_by_byte():
    assert read_in_chunks([STREAM[i:i + 1] for i in range(len(STREAM))]) == EXPECTED


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_every_two_way_split(cut):
    assert read_in_chunks([STREAM[:cut], STREAM[cut:]]) == EXPECTED


@given(st.lists(st.integers(0, len(STREAM)), max_size=12))
def test_random_chunkings(cuts):
    cuts = sorted(cuts)
    bounds = [0, *cuts, len(STREAM)]
    assert read_in_chunks([STREAM[a:b] for a, b in zip(bounds, bounds[1:])]) == EXPECTED


def test_frames_before_an_error_are_returned_then_reading_stops():
    reader = FrameReader(4096)
    reader.feed(frame(8, 0, b"") + b"\x08\x00\x00\x00\x00\x00\x00\x00" + frame(8, 0, b""))
    frames, error = reader.read_frames()
    assert len(frames) == 1 and "frame end" in str(error)
    reader.feed(frame(8, 0, b""))
    assert reader.read_frames() == ([], None)


def test_missing_is_what_remains_of_a_partly_received_frame():
    body = frame(3, 1, b"x" * 100_000)
    reader = FrameReader(131072)
    assert reader.missing == 0
    reader.feed(STREAM + body[:3])
    assert len(reader.read_frames()[0]) == len(EXPECTED)
    assert reader.missing == 4, "the rest of the frame header"
    reader.feed(body[3:1000])
    assert reader.read_frames() == ([], None)
    assert reader.missing == len(body) - 1000
    reader.feed(body[1000:])
    assert len(reader.read_frames()[0]) == 1 and reader.missing == 0


def test_frame_size_follows_the_frames_received_lately():
    reader = FrameReader(131072)
    small = reader.frame_size
    for _ in range(20):
        reader.feed(frame(3, 1, b"x" * 10_000) * 4)
        reader.read_frames()
    assert 9_000 < reader.frame_size <= 10_008
    for _ in range(40):
        reader.feed(STREAM)
        reader.read_frames()
    assert reader.frame_size < 2 * small, "back down once the large frames stop"


def test_frame_size_ignores_a_read_that_completes_no_frame():
    reader = FrameReader(131072)
    before = reader.frame_size
    reader.feed(frame(3, 1, b"x" * 100_000)[:50_000])
    reader.read_frames()
    assert reader.frame_size == before


def test_missing_is_nothing_after_an_error():
    reader = FrameReader(4096)
    reader.feed(frame(3, 1, b"x" * 5000)[:100])
    assert reader.read_frames()[1] is not None
    assert reader.missing == 0


def test_oversize_frame_rejected_from_its_header_alone():
    reader = FrameReader(4096)
    # payload 4097 > frame_max: the whole frame is 4105 = frame_max + 9, one byte over the fudge.
    reader.feed(b"\x03\x00\x01\x00\x00\x10\x01")
    frames, error = reader.read_frames()
    assert frames == [] and "exceeds frame_max" in str(error)


def test_frame_within_the_fudge_is_accepted():
    reader = FrameReader(4096)
    reader.feed(frame(3, 1, b"x" * 4096))  # 4104 bytes in all: frame_max + 8
    frames, error = reader.read_frames()
    assert error is None and len(frames) == 1


def test_unknown_frame_type():
    reader = FrameReader(4096)
    reader.feed(frame(4, 0, b""))
    frames, error = reader.read_frames()
    assert frames == [] and "unknown frame type 4" in str(error)


def test_writers():
    assert HEARTBEAT_FRAME == b"\x08\x00\x00\x00\x00\x00\x00\xce"
    assert method_frame(3, b"\x00\x14\x00\x29") == b"\x01\x00\x03\x00\x00\x00\x04\x00\x14\x00\x29\xce"


def test_content_frames_split_body_at_frame_max():
    data = content_frames(2, 60, b"M", b"\x00\x00", bytes(range(250)) * 100, frame_max=4096)
    frames = split_frames(data)
    assert frames[0] == (1, 2, b"M")
    assert frames[1] == (2, 2, b"\x00\x3c\x00\x00" + (25000).to_bytes(8, "big") + b"\x00\x00")
    bodies = frames[2:]
    assert [len(p) for _, _, p in bodies] == [4088] * 6 + [25000 - 6 * 4088]
    assert b"".join(p for _, _, p in bodies) == bytes(range(250)) * 100
    assert all(len(p) + 8 <= 4096 for _, _, p in bodies)


def test_content_frames_empty_body_has_no_body_frame():
    frames = split_frames(content_frames(1, 60, b"M", b"\x00\x00", b"", frame_max=4096))
    assert [t for t, _, _ in frames] == [1, 2]


def test_content_frames_body_exactly_one_frame():
    frames = split_frames(content_frames(1, 60, b"M", b"\x00\x00", b"x" * 4088, frame_max=4096))
    assert [t for t, _, _ in frames] == [1, 2, 3]
