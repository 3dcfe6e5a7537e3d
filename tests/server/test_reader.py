"""The reader of one connection pauses while the client's output backs up, and always resumes."""

from __future__ import annotations

import trio
import trio.testing

from amqpbroker import core
from amqpbroker.protocol import spec
from amqpbroker.protocol._frames import method_frame
from amqpbroker.server.amqp import HIGH_WATERMARK, AMQPConnection
from amqpbroker.server.flow import PublishGate

from .raw import handshake


def deliver(connection: AMQPConnection, size: int) -> None:
    # As a direct reply-to delivery or a released held frame does: no credit check first.
    connection.send_content(1, spec.BasicDeliver("ctag", 1), b"\x00\x00", b"x" * size)


async def read_everything_sent(connection: AMQPConnection, stream: trio.abc.ReceiveStream) -> None:
    while connection.pending_bytes:
        assert await stream.receive_some(), "the broker closed the connection"
        await trio.testing.wait_all_tasks_blocked()


async def test_reader_resumes_after_sends_above_the_watermark_while_it_waits(autojump_clock) -> None:
    broker = core.Broker()
    server_stream, client_stream = trio.testing.lockstep_stream_pair()
    connection = AMQPConnection(server_stream, broker, "test", PublishGate(broker.memory))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(connection.run)
        await client_stream.send_all(handshake() + method_frame(1, spec.ChannelOpen().encode()))
        await trio.testing.wait_all_tasks_blocked()
        await read_everything_sent(connection, client_stream)
        deliver(connection, HIGH_WATERMARK)
        await trio.testing.wait_all_tasks_blocked()  # the writer is in send_all, the reader paused
        deliver(connection, 100)  # still above the watermark while the first is in flight
        await read_everything_sent(connection, client_stream)

        await client_stream.send_all(method_frame(2, spec.ChannelOpen().encode()))
        frame_type = await client_stream.receive_some(1)
        assert frame_type == b"\x01", "no channel.open-ok: the reader never resumed"
        nursery.cancel_scope.cancel()


async def test_reader_resumes_after_output_whose_estimate_stayed_under_the_watermark(autojump_clock) -> None:
    # Queued, a delivery counts by an estimate of its frames; taken for the socket, by their bytes:
    # for bodies of a few bytes, more than the estimate. Past the watermark by that count alone, the
    # reader paused and nothing woke it once the output was sent.
    broker = core.Broker()
    server_stream, client_stream = trio.testing.lockstep_stream_pair()
    connection = AMQPConnection(server_stream, broker, "test", PublishGate(broker.memory))
    # A server-named consumer tag and queue, as a client naming neither gets them.
    small = spec.BasicDeliver("amq.ctag-" + "c" * 22, 1, False, "", "amq.gen-" + "q" * 22)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(connection.run)
        await client_stream.send_all(handshake() + method_frame(1, spec.ChannelOpen().encode()))
        await trio.testing.wait_all_tasks_blocked()
        await read_everything_sent(connection, client_stream)
        for _ in range(50_000):
            connection.send_content(1, small, b"\x00\x00", b"aaaaa")
        await trio.testing.wait_all_tasks_blocked()  # the writer took it all: past the watermark
        assert not connection.writable
        await client_stream.send_all(method_frame(2, spec.ChannelOpen().encode()))  # read, then the reader pauses
        await trio.testing.wait_all_tasks_blocked()
        await read_everything_sent(connection, client_stream)

        frame_type = None
        with trio.move_on_after(30):
            await client_stream.send_all(method_frame(3, spec.ChannelOpen().encode()))
            frame_type = await client_stream.receive_some(1)
        assert frame_type == b"\x01", "no channel.open-ok: the reader never resumed"
        nursery.cancel_scope.cancel()
