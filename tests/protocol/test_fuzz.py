"""Arbitrary input after a valid handshake never makes receive_data raise."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from amqpbroker.protocol import ChannelOpened, ConnectionClosed, ConnectionClosing, Handshaken, spec

from .helpers import (
    HEADER,
    body,
    frame,
    header,
    method,
    new_connection,
    open_channel,
    open_connection,
    publish,
    sent_methods,
    start_ok,
)

# Pieces that reach deep into the state machine, mixed with raw garbage.
pieces = st.one_of(
    st.binary(max_size=64),
    st.builds(frame, st.sampled_from([1, 2, 3, 8, 9]), st.integers(0, 3), st.binary(max_size=40)),
    st.builds(lambda ch, payload: frame(1, ch, payload), st.integers(0, 3),
              st.sampled_from([b"\x00\x3c\x00\x28", b"\x00\x14\x00\x0a", b"\x00\x0a\x00\x32"]).flatmap(
                  lambda ids: st.binary(max_size=30).map(lambda rest: ids + rest))),
    st.builds(method, st.integers(0, 3), st.sampled_from([
        spec.ChannelOpen(), spec.ChannelClose(200, "", 0, 0), spec.ChannelCloseOk(), spec.BasicPublish(),
        spec.BasicAck(), spec.ConnectionClose(200, "", 0, 0), spec.ConnectionCloseOk(),
        spec.QueueDeclare(arguments={"x": [1, {"y": None}]}),
    ])),
    st.builds(header, st.integers(0, 3), st.integers(0, 20)),
    st.builds(body, st.integers(0, 3), st.binary(max_size=20)),
)


@settings(max_examples=400)
@given(st.lists(pieces, max_size=20), st.integers(1, 50))
def test_arbitrary_input_never_raises(chunks, read_size):
    conn = open_connection(frame_max=4096)
    open_channel(conn, 1)
    data = b"".join(chunks)
    closed = False
    for start in range(0, len(data), read_size):
        events = conn.receive_data(data[start:start + read_size], 1.0)
        conn.data_to_send()
        assert not closed or events == []
        closed = closed or any(isinstance(e, ConnectionClosed) for e in events)
        for e in events:
            if isinstance(e, ConnectionClosing):
                assert spec.ReplyCode(e.reply_code).is_hard
    conn.tick(10_000.0)
    conn.receive_data(b"", 10_000.0)
    assert conn.is_closed


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_before_the_handshake_never_raise(data):
    conn = new_connection()
    conn.receive_data(b"AMQP\x00\x00\x09\x01" + data, 0.0)
    conn.data_to_send()


def test_a_frame_read_with_tune_ok_is_held_to_the_negotiated_frame_max():
    # Found by the socket fuzzer: a client that pipelines its handshake had the frames after tune-ok
    # checked against the pre-tune limit (8192) instead of the frame_max it had just agreed to.
    conn = new_connection()
    conn.receive_data(HEADER, 0.0)
    conn.receive_data(start_ok(), 0.0)
    conn.data_to_send()
    events = conn.receive_data(
        method(0, spec.ConnectionTuneOk(channel_max=16, frame_max=4096, heartbeat=0))
        + method(0, spec.ConnectionOpen(virtual_host="/"))
        + method(1, spec.ChannelOpen())
        + publish(1, bytes(4500)), 0.0)
    assert [type(e) for e in events] == [Handshaken, ChannelOpened, ConnectionClosing]
    assert events[-1].reply_code == spec.ReplyCode.FRAME_ERROR
    conn.close_for_error()
    [*_, (_, close)] = sent_methods(conn.data_to_send())
    assert close == spec.ConnectionClose(501, "FRAME_ERROR - frame of 4508 bytes exceeds frame_max 4096", 0, 0)
