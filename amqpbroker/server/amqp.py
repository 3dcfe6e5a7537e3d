"""One AMQP client connection: a reader task, a writer task and a timer, around a sans-IO protocol.

The reader feeds every received chunk to the protocol and hands the resulting events to the broker
core in one pass; the writer flushes everything queued for the socket in one `send_all`. A client
that does not read its deliveries is not sent more until it does, and a client whose replies back
up is not read from, so neither can make the broker buffer without bound.

While a resource alarm is on, the publishes a client sends are held, not its socket: acks and other
frames go on being read, so a client that consumes on its publishing connection can still ack what
it got (and so free the memory behind the alarm). Held publishes keep their channel's order: what
follows them on their channel, acks excepted, is held too. Once HELD_LIMIT bytes have been read
while anything is held, the socket is not read either until the alarms clear.

A basic.get whose body must be read back from the store holds its own channel the same way (see
`hold_input`): what the client sends on that channel after the get waits until the get-ok is out,
while its other channels, and other connections, go on. So does a channel.close behind replies that
wait for a commit. A client's close of a channel or of the connection is answered only after the
replies to what it sent before, as RabbitMQ answers it.

Credit flow slows one publisher instead, long before an alarm: a client that published into a
queue whose consumers are behind (see `core.credit`) is not read from until that queue has caught
up, or for FLOW_PAUSE_LIMIT at most.

Output is written through where it can be: bytes queued for a connection whose writer is idle are
sent at the end of the reader step that queued them (a publisher's, for a delivery), in one
non-blocking system call, instead of a scheduling batch later when the writer task runs; what the
socket does not take is left to the writer, ahead of anything queued after it.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import socket
import struct
import time
from typing import Any, Callable

import trio

from .. import core
from ..core.credit import FlowWait
from ..protocol import (
    ChannelClosed,
    ChannelClosing,
    ChannelOpened,
    ConnectionClosed,
    ConnectionClosing,
    ContentReceived,
    Handshaken,
    MethodReceived,
    ServerConnection,
    spec,
)
from .flow import PublishGate
from .limits import Limits
from .tls import transport_socket

log = logging.getLogger("amqpbroker.connection")

# Bytes queued for one client above which its consumers get no more deliveries and its socket
# is not read, until the writer has caught up.
HIGH_WATERMARK = 4 * 1024 * 1024
# A read's frames are handled in one event-loop step, whose length grows mostly with the number of
# frames: a read is sized to hold about _RECEIVE_FRAMES frames of the size the client sent lately,
# from _RECEIVE_SIZE to _RECEIVE_MAX bytes, or more if more of a frame partly received are missing
# (a large body's frames are read whole). 16 KiB of small publishes (256 frames) take about a
# millisecond, so other connections wait that long at most; with larger messages, fewer reads and
# event-loop steps carry the same bytes.
_RECEIVE_FRAMES = 256
_RECEIVE_SIZE = 16 * 1024
_RECEIVE_MAX = 256 * 1024
# Bytes of a large body read in one event-loop step at most, frame after frame straight into its
# buffer: a fraction of a millisecond of copying, no longer than a read of small frames takes.
_BODY_STEP = 1024 * 1024
# Bytes read from a client holding publishes before its socket is not read either. While an alarm is
# on or anything is held, a read takes at most what is left of it, or the rest of a frame if more
# (a read into a large body's buffer); so a client holds this much, plus a frame, plus what a read
# taken before the hold began held (when a get's body read begins it).
HELD_LIMIT = 64 * 1024
# Methods that may overtake a held publish on its channel: they settle deliveries already made,
# which nothing unrouted can change.
_ACKS = (spec.BasicAck, spec.BasicNack, spec.BasicReject)
# Buffers in one writev at most (the kernel's IOV_MAX).
_IOV_MAX = 1024
# This trio run's `WriteThrough`.
_write_through: trio.lowlevel.RunVar[WriteThrough] = trio.lowlevel.RunVar("amqp_write_through")
# How long a client gets to answer our connection.close before the socket is closed anyway.
CLOSE_TIMEOUT = 3.0
# Seconds a publisher waits at most for the pressing queues it published into: a queue that does
# not drain to FLOW_LOW in that time has slow consumers rather than busy ones (see core.credit).
FLOW_PAUSE_LIMIT = 1.0


async def _send_buffers(sock: trio.socket.SocketType, buffers: list) -> None:
    """Writes `buffers` in order with scatter-gather system calls, as `send_all` writes one; a
    partial write goes on at once, and only a full socket waits."""
    fd = sock.fileno()
    try:
        while buffers:
            try:
                sent = os.writev(fd, buffers[:_IOV_MAX])
            except BlockingIOError:
                await trio.lowlevel.wait_writable(sock)
                continue
            _drop_sent(buffers, sent)
    except OSError as exc:
        raise trio.BrokenResourceError(f"socket connection broken: {exc}") from exc


def _drop_sent(buffers: list, sent: int) -> None:
    """Removes the first `sent` bytes from `buffers`."""
    done = 0
    while done < len(buffers) and sent >= len(buffers[done]):
        sent -= len(buffers[done])
        done += 1
    del buffers[:done]
    if sent:
        buffers[0] = memoryview(buffers[0])[sent:]


class WriteThrough:
    """The connections with output queued during a handling of events (`with write_through():`):
    when the handling ends, each one's output goes to its socket in one non-blocking call, with no
    trip through the scheduler to wake its writer. Output queued at any other time wakes the
    writer. One per trio run; a handling may begin inside another."""

    def __init__(self) -> None:
        self.connections: list[AMQPConnection] = []
        self.handling = 0

    def __enter__(self) -> None:
        self.handling += 1

    def __exit__(self, *exc_info: object) -> None:
        self.handling -= 1
        listed, self.connections = self.connections, []
        for connection in listed:
            connection.write_through()


def write_through() -> WriteThrough:
    """This trio run's `WriteThrough`."""
    try:
        return _write_through.get()
    except LookupError:
        current = WriteThrough()
        _write_through.set(current)
        return current


class AMQPConnection:
    """Implements the core's `Sink` for one socket and moves bytes between the two."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        broker: core.Broker,
        peer: str,
        gate: PublishGate,
        *,
        heartbeat: int = 60,
        limits: Limits = Limits(),
        address: str | None = None,
        addresses: tuple[str, int, str, int] = ("?", 0, "?", 0),
        heartbeat_clock: Callable[[], float] = trio.current_time,
        certificate_login: str | None = None,
        server_properties: dict[str, Any] | None = None,
    ) -> None:
        """`address` is the client's IP address, which decides whether a loopback-only user may log in;
        `certificate_login` the user a verified TLS client certificate names, whom EXTERNAL logs in.
        Heartbeats are sent and expected by `heartbeat_clock` (a test may move it on).
        `server_properties` are advertised in connection.start over the protocol's own."""
        self._stream = stream
        self._heartbeat_clock = heartbeat_clock
        # Several buffers go out in one scatter-gather call where the stream is a socket.
        self._socket = stream.socket if isinstance(stream, trio.SocketStream) else None
        self._emptied = False
        """The last read from the plain socket came back short: nothing was left in it then."""
        self._broker = broker
        self._gate = gate
        self.peer = peer
        self._addresses = addresses
        """Peer host and port, then our own: what the management API shows."""
        self._connected_at = int(time.time() * 1000)
        self.protocol = ServerConnection(
            authenticate=functools.partial(broker.authenticate, address=address),
            can_open_vhost=broker.can_open_vhost,
            vhost_exists=broker.vhosts.__contains__,
            heartbeat=heartbeat,
            now=heartbeat_clock(),
            max_message_size=limits.max_message_size,
            certificate_login=certificate_login,
            server_properties=server_properties,
            authenticate_external=functools.partial(broker.authenticate_external, address=address),
            connection_refusal=broker.limits.connection_refusal,
            channel_refusal=broker.limits.channel_refusal,
        )
        self.client: core.ClientConnection | None = None
        self._queued = 0
        self._in_flight = 0
        """Bytes taken for the socket and not yet sent: by the writer, or left to it (`_unsent`)."""
        self._unsent: list = []
        self._to_write = False
        self._data_ready = trio.Event()
        # Set by whatever may let a paused reader go on; only the reader replaces it (see _read_loop).
        self._resume = trio.Event()
        self._throttled = False
        self._finished = False
        self._closing = False
        self._awaited = "close-ok"
        """What the connection waits for while closing (see `_start_closing`)."""
        self._held: list[Any] = []
        self._held_channels: set[int] = set()
        self._held_bytes = 0
        self._waiting: dict[int, list[Any]] = {}
        """Per channel whose basic.get waits for its body (or whose close waits for replies behind a
        commit): what the client sent on it since, in order."""
        self._client_close: float | None = None
        """The linger of the client's connection.close while what it sent before still waits
        (`_close_after_replies`)."""
        self._error_close = False
        """The protocol found an error in what the client sent; its connection.close waits as the
        client's own close does (`_close_after_replies`)."""
        self._reading_paused = False
        self._flow = FlowWait(self._flow_released)
        self._flow_deadline = math.inf
        self._close_deadline = trio.current_time() + limits.handshake_timeout

    # Sink

    @property
    def pending_bytes(self) -> int:
        """Bytes queued for this client or being written to its socket."""
        return self._queued + self._in_flight

    @property
    def held_bytes(self) -> int:
        """Bytes read from the client since its publishes began to be held by an alarm."""
        return self._held_bytes

    @property
    def in_flow(self) -> bool:
        """True while credit flow keeps the client waiting for a queue it published into (what
        RabbitMQ shows as the connection state `flow`)."""
        return not self._flow.done

    @property
    def writable(self) -> bool:
        # pending_bytes, spelled out: this is read for every delivery.
        return self._queued + self._in_flight < HIGH_WATERMARK

    def send_method(self, channel: int, method: Any) -> None:
        self.protocol.send_method(channel, method)
        self._output_queued()

    def send_content(self, channel: int, method: Any, properties: bytes, body: bytes) -> None:
        if not self.protocol.send_content(channel, method, properties, body):
            return
        self._queued += len(body) + len(properties) + 64
        if not self.writable:
            self._throttled = True
        self._output_queued()

    def _output_queued(self) -> None:
        """Lists the connection for the write-through that ends the event handling under way, or
        wakes its writer if there is none (or the stream is not a plain socket)."""
        if self._to_write:
            return
        current = write_through()
        if current.handling and self._socket is not None:
            self._to_write = True
            current.connections.append(self)
        else:
            self._data_ready.set()

    def close_channel(
        self, channel: int, reply_code: int, reply_text: str, class_id: int = 0, method_id: int = 0
    ) -> None:
        """Closes one channel from the broker's side; what it had not acknowledged is requeued."""
        log.debug("channel %d of %s closed: %s", channel, self.peer, reply_text)
        self.protocol.close_channel(channel, reply_code, reply_text, class_id, method_id)
        self._drop_input(channel)
        self.client.close_channel(channel)
        # A close the client sent meanwhile (held, or yet to come in this read) is answered now,
        # after ours, as RabbitMQ answers it.
        self.protocol.answer_channel_close(channel)
        self._output_queued()

    def hold_input(self, channel: int) -> None:
        self._waiting.setdefault(channel, [])

    def release_input(self, channel: int) -> None:
        events = self._waiting.pop(channel, None)
        if events is None:
            return
        self._input_let_go()
        self._handle(events)

    def _drop_input(self, channel: int) -> None:
        """Drops what waited on a channel closed for an error (behind a basic.get) or what an alarm
        held of it, as the protocol drops what follows the close; RabbitMQ's channel drops what it
        had not handled when it closes."""
        dropped = self._waiting.pop(channel, None) is not None
        if channel in self._held_channels:
            self._held_channels.discard(channel)
            self._held = [event for event in self._held if getattr(event, "channel", 0) != channel]
            dropped = True
        if dropped:
            self._input_let_go()

    def _input_let_go(self) -> None:
        """Once nothing waits and nothing is held, the count of what was read meanwhile starts again
        and the reader goes on (it may have stopped at HELD_LIMIT)."""
        if not self._waiting and not self._held:
            self._held_bytes = 0
            self._resume.set()

    # Tasks

    async def run(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write_loop, nursery.cancel_scope)
                nursery.start_soon(self._timer_loop)
                await self._read_loop()
        except* (trio.BrokenResourceError, trio.ClosedResourceError) as lost:
            log.debug("connection %s lost: %s", self.peer, lost.exceptions[0])
        finally:
            self._teardown()
            with trio.move_on_after(1) as cleanup:
                cleanup.shield = True
                await self._stream.aclose()

    async def _read_loop(self) -> None:
        while not self._finished:
            while True:
                # Replaced before the check, so a wake-up between the check and the wait is not lost.
                self._resume = trio.Event()
                if self._may_read():
                    break
                # Not reading on purpose: the peer's silence meanwhile is no missed heartbeat.
                self._reading_paused = True
                with trio.move_on_at(self._flow_deadline):
                    await self._resume.wait()
                if not self._flow.done and trio.current_time() >= self._flow_deadline:
                    self._flow.give_up()
            self._reading_paused = False
            count, events = await self._receive()
            if not count and self._held:
                await self._routed_held()
            self._handle(events)
            if self._held or self._waiting:
                self._held_bytes += count
            if not count:
                self._finish()
                return

    async def _routed_held(self) -> None:
        """The client closed its socket while an alarm held its publishes: they are routed once the
        alarms clear (`release_held`), as RabbitMQ, which reads nothing of a blocked publisher until
        then, routes what it finds in the socket."""
        while self._held:
            self._resume = trio.Event()
            await self._resume.wait()

    async def _receive(self) -> tuple[int, list]:
        """Reads from the client once, and feeds the protocol: the bytes read (0 at EOF) and its
        events. Where the protocol offers a large body's own buffer and the stream is a plain
        socket, the read goes straight into it (the frames reach the buffer uncopied)."""
        protocol = self.protocol
        buffers = protocol.receive_buffers(self._body_limit(0)) if self._socket is not None else []
        try:
            if buffers:
                return await self._receive_body(buffers)
            if self._socket is not None:
                data = await self._read_socket(self._receive_size())
            else:
                data = await self._stream.receive_some(self._receive_size())
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        return len(data), protocol.receive_data(data, self._heartbeat_clock())

    async def _read_socket(self, size: int) -> bytes:
        """One read of at most `size` bytes from the plain socket. After a read that came back short
        (it emptied the socket) it waits until the socket is readable, rather than trying a read
        bound to fail first; after a full one it lets other tasks run, then reads."""
        sock = self._socket
        if self._emptied:
            await trio.lowlevel.wait_readable(sock)
        else:
            await trio.lowlevel.checkpoint()
        while True:
            try:
                data = os.read(sock.fileno(), size)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(sock)
                continue
            except OSError as exc:
                raise trio.BrokenResourceError(f"socket connection broken: {exc}") from exc
            self._emptied = len(data) < size
            return data

    async def _receive_body(self, buffers: list[memoryview]) -> tuple[int, list]:
        """Reads a large body's frames straight into its buffer, for as long as the socket has them
        (up to _BODY_STEP bytes, less while publishes are held; several frames per readv where the
        protocol offers them), with no trip through the scheduler between one frame and the next:
        the bytes read (0 at EOF) and the protocol's events. An end or error met after some bytes
        is left for the next call, which meets it again."""
        protocol = self.protocol
        sock = self._socket
        fd = sock.fileno()
        now = self._heartbeat_clock()
        events: list = []
        count = 0
        waited = False
        while True:
            try:
                got = os.readv(fd, buffers)
            except BlockingIOError:
                if count:
                    break
                await trio.lowlevel.wait_readable(sock)
                waited = True
                continue
            except OSError as exc:
                if count:
                    break
                raise trio.BrokenResourceError(f"socket connection broken: {exc}") from exc
            if not got and count:
                break
            count += got
            events += protocol.received_into(got, now)
            limit = self._body_limit(count)
            if not got or limit <= 0:
                break
            buffers = protocol.receive_buffers(limit)
            if not buffers:
                break
        if not waited:
            await trio.lowlevel.checkpoint()
        return count, events

    def _body_limit(self, read: int) -> int:
        """Bytes the next read into a body's buffer may take, after `read` bytes in this step; the
        rest of the frame partly received is offered whatever this says."""
        limit = _BODY_STEP - read
        if self._held or self._waiting or self._gate.closed:
            limit = min(limit, HELD_LIMIT - self._held_bytes - read)
        return limit

    def _receive_size(self) -> int:
        protocol = self.protocol
        budget = min(_RECEIVE_MAX, max(_RECEIVE_SIZE, int(protocol.frame_size * _RECEIVE_FRAMES)))
        if self._held or self._waiting or self._gate.closed:
            budget = min(budget, HELD_LIMIT - self._held_bytes)
        return max(budget, protocol.frame_bytes_missing)

    def _may_read(self) -> bool:
        """False while the client's output is backed up, while it has sent too much since its
        publishes began to be held, or while a queue it published into presses it."""
        return self.writable and self._held_bytes < HELD_LIMIT and not self._pressed()

    def _pressed(self) -> bool:
        """Takes the pressing queues the client published into since the last look: True while
        any of them has not let it go."""
        client = self.client
        flow = self._flow
        if client is not None and client.pressed_by:
            waiting = not flow.done
            flow.add(client.pressed_by)
            client.pressed_by.clear()
            if not waiting and not flow.done:
                self._flow_deadline = trio.current_time() + FLOW_PAUSE_LIMIT
        return not flow.done

    def _flow_released(self) -> None:
        self._flow_deadline = math.inf
        self._resume.set()

    def release_held(self) -> None:
        """Every alarm has cleared: routes what was held, in order (or holds it again if an alarm
        is back on already), and lets the reader go on."""
        events, self._held = self._held, []
        self._held_channels = set()
        self._held_bytes = 0
        self.unblocked()
        self._handle(events)
        self._resume.set()

    async def _write_loop(self, cancel_scope: trio.CancelScope) -> None:
        stream = self._stream
        while True:
            await self._data_ready.wait()
            self._data_ready = trio.Event()
            buffers = self._take_output()
            if self._socket is not None:
                await _send_buffers(self._socket, buffers)
            elif buffers:
                await stream.send_all(b"".join(buffers))
            self._sent()
            if self._finished and not self._data_ready.is_set():
                cancel_scope.cancel()
                return

    def write_through(self) -> None:
        """Sends what is queued now, in one non-blocking system call, unless the writer is sending
        (or has bytes to send first); what the socket does not take is left to the writer."""
        self._to_write = False
        if self._in_flight or self._finished:
            # The writer sends it after what it is sending (or before it stops).
            self._data_ready.set()
            return
        buffers = self._take_output()
        if not buffers:
            return
        try:
            sent = os.writev(self._socket.fileno(), buffers[:_IOV_MAX])
        except OSError:
            # Full (the writer waits for room), or broken (the writer's send raises it).
            sent = 0
        _drop_sent(buffers, sent)
        if buffers:
            self._unsent = buffers
            self._count_in_flight(buffers)
            self._data_ready.set()
        else:
            self._sent()

    def _take_output(self) -> list:
        """Everything to send, in order: what a write-through left, then what is queued since."""
        buffers, self._unsent = self._unsent, []
        buffers += self.protocol.buffers_to_send()
        self._queued = 0
        self._count_in_flight(buffers)
        return buffers

    def _count_in_flight(self, buffers: list) -> None:
        """Counts the output taken for the socket by its bytes, which can be more than `send_content`
        estimated: past the watermark by them, what waits for `writable` (the reader, deliveries)
        is resumed once it is sent (`_sent`), as when the estimate crossed it."""
        self._in_flight = sum(map(len, buffers))
        if self._in_flight >= HIGH_WATERMARK:
            self._throttled = True

    def _sent(self) -> None:
        self._in_flight = 0
        if self._throttled and self.writable:
            self._throttled = False
            self._resume.set()
            if self.client is not None:
                self.client.resume()

    async def _timer_loop(self) -> None:
        protocol = self.protocol
        while True:
            waiting = self.client is None or self._closing
            interval = protocol.heartbeat / 2 if not waiting and protocol.heartbeat else 0.5
            await trio.sleep(interval)
            # Asked again: the handshake may have completed during the sleep.
            waiting = self.client is None or self._closing
            if waiting and trio.current_time() > self._close_deadline:
                log.info("connection %s: no %s in time", self.peer, self._awaited if self._closing else "handshake")
                self._finish()
                return
            self.check_heartbeats()

    def check_heartbeats(self) -> None:
        """Sends a heartbeat if one is due, and ends the connection if the client's are overdue."""
        now = self._heartbeat_clock()
        if self._reading_paused:
            self.protocol.pause_receive_timeout(now)
        self._handle(self.protocol.tick(now))

    # Events

    def _handle(self, events: list) -> None:
        with write_through():
            self._handle_events(events)
            if self._client_close is not None or self._error_close:
                self._close_after_replies()

    def _handle_events(self, events: list) -> None:
        client = self.client
        for event in events:
            if self._waiting and self._wait(event):
                continue
            if (self._held_channels or self._gate.closed) and self._hold(event):
                continue
            kind = type(event)
            if kind is ContentReceived:
                # A channel closed for an error earlier in this same chunk has no session any more.
                session = client.sessions.get(event.channel)
                if session is not None:
                    self._call(event.channel, event.method, session.publish, event.method, event.properties,
                               event.body)
            elif kind is MethodReceived:
                session = client.sessions.get(event.channel)
                if session is not None:
                    self._call(event.channel, event.method, session.handle, event.method)
            elif kind is ChannelOpened:
                client.open_channel(event.channel)
            elif kind is ChannelClosed:
                self._channel_closed_by_client(event)
            elif kind is ChannelClosing:
                client.close_channel(event.channel)
            elif kind is Handshaken:
                capabilities = event.client_properties.get("capabilities") or {}
                client = self.client = self._broker.connect(
                    event.vhost, event.username, self, capabilities, self._info(event.client_properties)
                )
                log.debug("connection %s: user %r opened vhost %r", self.peer, event.username, event.vhost)
            elif kind is ConnectionClosing:
                log.info("connection %s closing: %s", self.peer, event.reply_text)
                self._error_close = True  # sent once `_handle` is done
            elif kind is ConnectionClosed:
                if event.linger:
                    self._client_close = event.linger  # answered once `_handle` is done
                else:
                    self._finish()
        if client is not None:
            client.flush_confirms()
        if self.protocol.has_output:
            # What the protocol queued: its own answers (channel.open-ok, heartbeats) and close-oks.
            self._output_queued()

    def _channel_closed_by_client(self, event: ChannelClosed) -> None:
        """The client's channel.close, handled after what it sent before: answered at once, or once
        the replies that wait for a commit are sent (the close waits with the channel's input)."""
        channel = event.channel
        if self.client.hold_input_for_replies(channel):
            self._waiting[channel].append(event)
            return
        self.client.close_channel(channel)
        self.protocol.answer_channel_close(channel)

    def _close_after_replies(self) -> None:
        """Answers the client's connection.close, or sends the close for an error the protocol found
        in what the client sent, once nothing it sent before waits: behind a basic.get's body read,
        or as replies behind a commit. A close waits for the publishes an alarm holds too (RabbitMQ
        reads nothing from a blocked publisher, its close included, until the alarm clears, and then
        routes what it sent); an error does not, and they go with the connection."""
        client = self.client
        if client is not None:
            for channel in list(client.sessions):
                client.hold_input_for_replies(channel)
        if self._waiting or (self._held and not self._error_close):
            return
        if self._error_close:
            self._error_close = False
            self.protocol.close_for_error()
            self._start_closing()
            self._output_queued()
            return
        linger, self._client_close = self._client_close, None
        self.protocol.answer_close()
        self._output_queued()
        self._start_closing(linger, "close of the socket by the client")

    def _info(self, client_properties: dict) -> core.ConnectionInfo:
        peer_host, peer_port, host, port = self._addresses
        protocol = self.protocol
        return core.ConnectionInfo(
            peer_host, peer_port, host, port, client_properties, self._connected_at,
            protocol.channel_max, protocol.frame_max, protocol.heartbeat,
        )

    def _wait(self, event: Any) -> bool:
        """Holds what the client sends on a channel whose basic.get waits for its body."""
        channel = getattr(event, "channel", 0)
        held = self._waiting.get(channel)
        if held is None:
            return False
        if type(event) is ChannelClosing:
            # The protocol closes the channel for an error: what waited goes with it.
            self._drop_input(channel)
            return False
        held.append(event)
        return True

    def _hold(self, event: Any) -> bool:
        """Holds a publish while an alarm is on, and what follows a held one on its channel."""
        kind = type(event)
        channel = getattr(event, "channel", 0)
        if kind is ChannelClosing:
            # The protocol closes the channel for an error: what was held of it goes with it.
            self._drop_input(channel)
            return False
        if kind is ContentReceived:
            if not self._gate.closed and channel not in self._held_channels:
                return False
            self._gate.hold(self)
        elif channel not in self._held_channels or (kind is MethodReceived and isinstance(event.method, _ACKS)):
            return False
        self._held.append(event)
        self._held_channels.add(channel)
        return True

    def _call(self, channel: int, method: Any, handler: Any, *args: Any) -> None:
        try:
            handler(*args)
        except core.ChannelException as exc:
            self.close_channel(channel, exc.reply_code, exc.reply_text, method.CLASS_ID, method.METHOD_ID)
        except core.ConnectionException as exc:
            self.close(exc.reply_code, exc.reply_text, method.CLASS_ID, method.METHOD_ID)
        except Exception:
            # A bug must cost one connection, not the broker.
            log.exception("connection %s: error handling %s", self.peer, method.NAME)
            self.close(541, "INTERNAL_ERROR - internal error", method.CLASS_ID, method.METHOD_ID)

    def blocked(self, reason: str) -> None:
        """Tells the client it is not read from until further notice, if it asked to be told."""
        if self.protocol.client_capabilities.get("connection.blocked"):
            self.send_method(0, spec.ConnectionBlocked(reason=reason))

    def unblocked(self) -> None:
        if self.protocol.client_capabilities.get("connection.blocked"):
            self.send_method(0, spec.ConnectionUnblocked())

    def close(self, reply_code: int, reply_text: str, class_id: int = 0, method_id: int = 0) -> None:
        """Closes the connection from the broker's side; the client has CLOSE_TIMEOUT to answer.
        One the client has closed and been answered already (its socket lingering) is dropped at
        once; one whose close is not answered yet gets this close instead, as in RabbitMQ."""
        if self._finished:
            return
        self._error_close = False  # this close comes first, and is sent instead
        if self.protocol.is_closed and not self.protocol.close_owed:
            self._finish()
            return
        log.info("connection %s closing: %s", self.peer, reply_text)
        self.protocol.close(reply_code, reply_text, class_id, method_id)
        self._start_closing()
        self._output_queued()

    @property
    def stream(self) -> trio.abc.Stream:
        return self._stream

    def abort(self) -> None:
        """Drops the connection with a TCP reset and no connection.close, as a crash or a cut cable would."""
        # Closing wakes the reader with ClosedResourceError; the connection then finishes as on EOF.
        reset_socket(transport_socket(self._stream))

    def _start_closing(self, timeout: float = CLOSE_TIMEOUT, awaited: str = "close-ok") -> None:
        """Releases what the client had, and gives it `timeout` seconds for what ends the
        connection (`awaited`, a close-ok or its end of the socket); what it sends meanwhile is
        read, and dropped once the protocol is closed."""
        self._closing = True
        self._awaited = awaited
        self._teardown()
        self._close_deadline = trio.current_time() + timeout

    def _finish(self) -> None:
        self._finished = True
        self._client_close = None  # nothing is answered any more
        self._error_close = False
        self._teardown()
        self._data_ready.set()

    def _teardown(self) -> None:
        self._gate.forget(self)
        self._flow.cancel()
        if self._held:
            # The connection is torn down while blocked (an error, the broker closing it, a failed write).
            log.info("connection %s: %d held frames dropped", self.peer, len(self._held))
            self._held = []
            self._held_channels = set()
        self._waiting.clear()
        # Nothing is held any more: the reader goes on, for the client's close-ok or its end of the socket.
        self._held_bytes = 0
        self._resume.set()
        if self.client is not None:
            self.client.close()


def reset_socket(sock: trio.socket.SocketType) -> None:
    """Closes `sock` with a TCP reset (RST) instead of an orderly FIN; nothing if it is closed already."""
    if sock.fileno() == -1:
        return
    # A zero linger time makes close() send RST instead of FIN.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
