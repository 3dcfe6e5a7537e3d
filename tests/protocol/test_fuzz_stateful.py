"""Stateful fuzzing of ServerConnection: sequences of frames, valid or not, split at any byte.

A model of the client's view (open channels, content being assembled, whether the server is
closing) predicts for each step either the events and replies of a valid frame, or the exact
connection.close an invalid one must get (RabbitMQ's reply code, the offending class and method).
Raw garbage makes the outcome unpredictable; from then on only the invariants are checked: nothing
raises, the output is always whole frames, a connection.close carries a hard error code and
nothing but close-ok follows it, and no event is reported after ConnectionClosed.

The broker answers the client's closes, and sends the close for an error the protocol found, once
it has handled what came before them: at once, or after a while (a commit, a get's body) in which
the client may send more and the broker may still reply.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from amqpbroker.protocol import (
    ChannelClosed,
    ChannelClosing,
    ChannelOpened,
    ConnectionClosed,
    ConnectionClosing,
    ContentReceived,
    MethodReceived,
    ReplyCode,
    spec,
)

from .helpers import HEARTBEAT, body, frame, header, method, open_connection, sent_methods, split_frames

FRAME_MAX = 4096
CHANNEL_MAX = 8
HEARTBEAT_SECONDS = 10
MAX_MESSAGE_SIZE = 2 * FRAME_MAX
MAX_BODY = 3 * FRAME_MAX

channels = st.integers(1, CHANNEL_MAX + 2)
# How the client's bytes are cut into reads: byte by byte up to everything at once.
splits = st.one_of(st.integers(1, 40), st.just(1 << 20))
# Methods without content that reach the broker as MethodReceived on an open channel.
plain_methods = st.sampled_from([
    spec.QueueDeclare(queue="q", arguments={"x-max-length": 10, "nested": [1, {"a": None}]}),
    spec.QueueBind(queue="q", exchange="amq.direct", routing_key="k"),
    spec.ExchangeDeclare(exchange="x", type="topic"),
    spec.BasicQos(prefetch_count=10),
    spec.BasicConsume(queue="q", consumer_tag="c"),
    spec.BasicAck(delivery_tag=3, multiple=True),
    spec.BasicNack(delivery_tag=1, requeue=True),
    spec.BasicGet(queue="q"),
    spec.ConfirmSelect(),
    spec.TxSelect(),
    spec.ChannelFlow(active=True),
])
# Methods of class connection, which are valid only on channel 0.
connection_methods = st.sampled_from([
    spec.ConnectionStartOk(client_properties={}, mechanism="PLAIN", response=b"", locale="en_US"),
    spec.ConnectionTuneOk(channel_max=1, frame_max=4096, heartbeat=0),
    spec.ConnectionOpen(virtual_host="/"),
    spec.ConnectionBlocked(reason="x"),
])
# Frames that are method frames but not a valid method: unknown ids, or a payload cut short.
unknown_ids = st.sampled_from([(10, 99), (60, 99), (99, 10), (0, 0), (65535, 65535)])


class ServerConnectionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.conn = open_connection(
            heartbeat=HEARTBEAT_SECONDS, frame_max=FRAME_MAX, channel_max=CHANNEL_MAX, max_message_size=MAX_MESSAGE_SIZE
        )
        self.now = 0.0
        self.last_recv = 0.0
        self.open: set[int] = set()
        self.closing_channels: set[int] = set()
        # channel -> None while awaiting the content header, else the body bytes still due
        self.content: dict[int, int | None] = {}
        self.bodies: dict[int, bytes] = {}
        self.closing_since: float | None = None  # when the server sent connection.close
        self.closed = False
        self.unpredictable = False  # after raw garbage
        # After a framing error the byte stream has no frame boundaries any more: nothing is read,
        # not even a close-ok, and the connection ends by the close timeout.
        self.deaf = False
        # While the broker waits (`broker_waits`), what the protocol asks it to answer is owed
        # until `broker_answers`: channels the client closes, its connection.close, an error's close.
        self.defer = False
        self.owed: list = []
        self.client_closing: set[int] = set()
        self.close_owed = False
        self.error_owed: tuple[int, int, int] | None = None  # the close's code, class and method
        self.failed_at: float | None = None  # when the protocol found the error, its close unsent

    # -- feeding and checking -----------------------------------------------------------------------

    def feed(self, data: bytes, split: int) -> tuple[list, list]:
        """Feed data in reads of `split` bytes; returns the events and the methods sent back."""
        events: list = []
        out = b""
        for start in range(0, len(data), split):
            got = self.conn.receive_data(data[start:start + split], self.now)
            assert not (self.closed and got), f"events after ConnectionClosed: {got}"
            events += got
            for event in got:
                if isinstance(event, ConnectionClosing):
                    self.failed_at = self.now
                if isinstance(event, (ChannelClosed, ConnectionClosing)) or (
                        isinstance(event, ConnectionClosed) and event.linger):
                    if self.defer:
                        self.owed.append(event)
                    else:
                        self.answer(event)
            out += self.conn.data_to_send()
            self.closed = self.closed or any(isinstance(e, ConnectionClosed) for e in got)
        if data:
            self.last_recv = self.now
        return events, self.check_output(out)

    def answer(self, event) -> None:
        """What the broker calls once it has handled what the client sent before `event`."""
        if isinstance(event, ChannelClosed):
            self.conn.answer_channel_close(event.channel)
        elif isinstance(event, ConnectionClosed):
            self.conn.answer_close()
        else:
            self.conn.close_for_error()

    def check_output(self, out: bytes) -> list:
        frames = split_frames(out)
        assert all(frame_type in (1, 8) and channel <= CHANNEL_MAX + 2 for frame_type, channel, _ in frames)
        methods = sent_methods(out)
        for n, (channel, m) in enumerate(methods):
            if isinstance(m, spec.ConnectionClose):
                assert channel == 0
                assert ReplyCode(m.reply_code).is_hard, m
                assert m.reply_text.startswith(ReplyCode(m.reply_code).name + " - "), m
                assert all(isinstance(later, spec.ConnectionCloseOk) for _, later in methods[n + 1:]), methods
                assert self.closing_since is None, "a second connection.close"
                self.closing_since = self.now
                self.open.clear()
                self.closing_channels.clear()
                self.client_closing.clear()
                self.content.clear()
        return methods

    def expect_close(self, events: list, methods: list, code: ReplyCode, class_id: int = 0, method_id: int = 0) -> None:
        """The last step must have closed the connection with `code` (and its offending method); while
        the broker waits, the close is owed, and checked when it is sent (`broker_answers`)."""
        if self.defer:
            assert methods == [] and events[-1].reply_code == code, (code, events, methods)
            self.error_owed = (code, class_id, method_id)
            return
        closes = [m for _, m in methods if isinstance(m, spec.ConnectionClose)]
        assert len(closes) == 1, (code, methods)
        close = closes[0]
        assert (close.reply_code, close.class_id, close.method_id) == (code, class_id, method_id), close
        assert events[-1] == ConnectionClosing(close.reply_code, close.reply_text), events

    def refused(self, state: str | None, events: list, methods: list, class_id: int = 0, method_id: int = 0) -> None:
        """The verdict on a frame for a channel that cannot take it: never opened (504), in the middle
        of a content (505), or being closed by the server or by the client (dropped). None: no
        prediction."""
        if state == "unopened":
            self.expect_close(events, methods, ReplyCode.CHANNEL_ERROR, class_id, method_id)
        elif state in ("header", "body"):
            self.expect_close(events, methods, ReplyCode.UNEXPECTED_FRAME, class_id, method_id)
        elif state in ("closing", "client_closing"):
            assert (events, methods) == ([], [])

    @property
    def predictable(self) -> bool:
        return not self.unpredictable and self.closing_since is None and not self.closed and self.error_owed is None

    def state_of(self, channel: int) -> str:
        if channel in self.client_closing:
            return "client_closing"
        if channel in self.closing_channels:
            return "closing"
        if channel not in self.open:
            return "unopened"
        if channel not in self.content:
            return "idle"
        return "header" if self.content[channel] is None else "body"

    # -- valid and invalid steps -------------------------------------------------------------------

    @precondition(lambda self: not self.closed)
    @rule(channel=channels, split=splits)
    def channel_open(self, channel: int, split: int) -> None:
        state = self.state_of(channel) if self.predictable else None
        events, methods = self.feed(method(channel, spec.ChannelOpen()), split)
        # channel_max counts the channels open or closing, whatever their numbers.
        room = len(self.open | self.closing_channels) < CHANNEL_MAX
        if state == "unopened" and room:
            assert events == [ChannelOpened(channel)]
            assert methods == [(channel, spec.ChannelOpenOk())]
            self.open.add(channel)
        elif state == "unopened":
            self.expect_close(events, methods, ReplyCode.NOT_ALLOWED)
        elif state in ("idle", "client_closing"):
            self.expect_close(events, methods, ReplyCode.CHANNEL_ERROR, 20, 10)
        else:
            self.refused(state, events, methods, 20, 10)

    @precondition(lambda self: not self.closed)
    @rule(channel=channels, split=splits)
    def channel_close(self, channel: int, split: int) -> None:
        state = self.state_of(channel) if self.predictable else None
        events, methods = self.feed(method(channel, spec.ChannelClose(200, "bye", 0, 0)), split)
        if state == "idle" and self.defer:
            assert (events, methods) == ([ChannelClosed(channel)], [])
            self.client_closing.add(channel)
            self.content.pop(channel, None)
        elif state == "idle":
            assert events == [ChannelClosed(channel)]
            assert methods == [(channel, spec.ChannelCloseOk())]
            self.open.discard(channel)
        elif state == "closing":
            # Both sides closed at once: the client's close is answered, no event (the broker already knows).
            assert (events, methods) == ([], [(channel, spec.ChannelCloseOk())])
            self.closing_channels.discard(channel)
            self.open.discard(channel)
        else:
            self.refused(state, events, methods, 20, 40)

    @precondition(lambda self: not self.closed)
    @rule(channel=channels, split=splits)
    def channel_close_ok(self, channel: int, split: int) -> None:
        state = self.state_of(channel) if self.predictable else None
        events, methods = self.feed(method(channel, spec.ChannelCloseOk()), split)
        if state in ("unopened", "idle", "closing", "client_closing"):
            assert (events, methods) == ([], [])
            if state == "closing":
                self.closing_channels.discard(channel)
                self.open.discard(channel)
            elif state == "client_closing":
                self.closing_channels.discard(channel)  # a close-ok for ours, if we closed it too
        elif state in ("header", "body"):
            self.expect_close(events, methods, ReplyCode.UNEXPECTED_FRAME, 20, 41)

    @precondition(lambda self: not self.closed)
    @rule(channel=channels)
    def server_closes_channel(self, channel: int) -> None:
        """The broker closes a channel (a 404, say): its frames are dropped until the client's close-ok."""
        state = self.state_of(channel) if self.predictable else None
        self.conn.close_channel(channel, ReplyCode.NOT_FOUND, "NOT_FOUND - no queue 'q'", 50, 10)
        methods = self.check_output(self.conn.data_to_send())
        if state in ("idle", "header", "body") or (state == "client_closing" and channel not in self.closing_channels):
            # A channel the client is closing gets ours too (what it sent before failed), as in RabbitMQ.
            assert methods == [(channel, spec.ChannelClose(404, "NOT_FOUND - no queue 'q'", 50, 10))]
            self.closing_channels.add(channel)
            self.content.pop(channel, None)
        elif state is not None:
            assert methods == []

    @precondition(lambda self: not self.closed)
    @rule(channel=channels, m=plain_methods, split=splits)
    def plain_method(self, channel: int, m: spec.Method, split: int) -> None:
        state = self.state_of(channel) if self.predictable else None
        events, methods = self.feed(method(channel, m), split)
        if state == "idle":
            assert events == [MethodReceived(channel, m)] and methods == []
        else:
            self.refused(state, events, methods, m.CLASS_ID, m.METHOD_ID)

    @precondition(lambda self: not self.closed)
    @rule(channel=channels, m=connection_methods, split=splits)
    def connection_method_on_a_channel(self, channel: int, m: spec.Method, split: int) -> None:
        state = self.state_of(channel) if self.predictable else None
        events, methods = self.feed(method(channel, m), split)
        if state == "idle":
            self.expect_close(events, methods, ReplyCode.COMMAND_INVALID, m.CLASS_ID, m.METHOD_ID)
        else:
            self.refused(state, events, methods, m.CLASS_ID, m.METHOD_ID)

    @precondition(lambda self: not self.closed)
    @rule(m=st.one_of(plain_methods, connection_methods), split=splits)
    def wrong_method_on_channel_zero(self, m: spec.Method, split: int) -> None:
        predictable = self.predictable
        events, methods = self.feed(method(0, m), split)
        if predictable:
            self.expect_close(events, methods, ReplyCode.CHANNEL_ERROR, m.CLASS_ID, m.METHOD_ID)

    @precondition(lambda self: not self.closed)
    @rule(channel=channels, routing_key=st.text(max_size=20), split=splits)
    def publish(self, channel: int, routing_key: str, split: int) -> None:
        state = self.state_of(channel) if self.predictable else None
        events, methods = self.feed(method(channel, spec.BasicPublish(routing_key=routing_key)), split)
        if state == "idle":
            assert (events, methods) == ([], [])
            self.content[channel] = None
            self.bodies[channel] = routing_key.encode()
        else:
            self.refused(state, events, methods, 60, 40)

    @precondition(lambda self: not self.closed)
    @rule(channel=channels, size=st.integers(0, MAX_BODY), class_id=st.sampled_from([60, 60, 60, 50]),
          split=splits)
    def content_header(self, channel: int, size: int, class_id: int, split: int) -> None:
        state = self.state_of(channel) if self.predictable else None
        events, methods = self.feed(header(channel, size, class_id=class_id), split)
        if state == "header" and class_id == 60 and size > MAX_MESSAGE_SIZE:
            # Too large: a channel error (406), the connection goes on.
            [event] = events
            assert isinstance(event, ChannelClosing) and event.reply_code == ReplyCode.PRECONDITION_FAILED, event
            [(closed_channel, close)] = methods
            assert closed_channel == channel and (close.reply_code, close.class_id, close.method_id) == (406, 60, 40)
            del self.content[channel]
            self.closing_channels.add(channel)
        elif state == "header" and class_id == 60:
            if size:
                assert (events, methods) == ([], [])
                self.content[channel] = size
            else:
                assert [type(e) for e in events] == [ContentReceived] and events[0].body == b"", events
                del self.content[channel]
        elif state == "idle":
            self.expect_close(events, methods, ReplyCode.UNEXPECTED_FRAME)
        else:
            self.refused(state, events, methods)

    @precondition(lambda self: not self.closed)
    @rule(channel=channels, data=st.data(), split=splits)
    def content_body(self, channel: int, data: st.DataObject, split: int) -> None:
        state = self.state_of(channel) if self.predictable else None
        due = self.content.get(channel) or 0
        # Mostly a piece that fits; sometimes one byte too many.
        size = data.draw(st.one_of(st.integers(0, min(due, FRAME_MAX - 8)), st.just(due + 1)), label="size")
        piece = data.draw(st.binary(min_size=size, max_size=size), label="piece")
        events, methods = self.feed(body(channel, piece), split)
        if state == "body" and size <= due:
            self.bodies[channel] += piece
            if size == due:
                [event] = events
                assert isinstance(event, ContentReceived) and event.channel == channel
                # The routing key was the body's prefix in our bookkeeping: check both arrived intact.
                assert event.method.routing_key.encode() + event.body == self.bodies.pop(channel)
                del self.content[channel]
            else:
                assert (events, methods) == ([], [])
                self.content[channel] = due - size
        elif state == "idle":
            self.expect_close(events, methods, ReplyCode.UNEXPECTED_FRAME)
        else:
            self.refused(state, events, methods)

    @precondition(lambda self: not self.closed)
    @rule(channel=st.integers(0, CHANNEL_MAX + 2), split=splits)
    def heartbeat(self, channel: int, split: int) -> None:
        predictable = self.predictable
        events, methods = self.feed(HEARTBEAT if channel == 0 else frame(8, channel, b""), split)
        if predictable and channel == 0:
            assert (events, methods) == ([], [])
        elif predictable:
            self.expect_close(events, methods, ReplyCode.UNEXPECTED_FRAME)

    @precondition(lambda self: not self.closed)
    @rule(channel=st.integers(0, CHANNEL_MAX + 2), ids=unknown_ids, split=splits)
    def unknown_method(self, channel: int, ids: tuple[int, int], split: int) -> None:
        state = self.state_of(channel) if self.predictable and channel else None
        predictable = self.predictable
        events, methods = self.feed(frame(1, channel, struct.pack(">HH", *ids)), split)
        if state == "closing":
            assert (events, methods) == ([], [])
        elif predictable:
            self.expect_close(events, methods, ReplyCode.NOT_IMPLEMENTED, *ids)

    @precondition(lambda self: not self.closed)
    @rule(channel=st.integers(0, CHANNEL_MAX + 2), m=plain_methods, data=st.data(), split=splits)
    def truncated_method(self, channel: int, m: spec.Method, data: st.DataObject, split: int) -> None:
        payload = m.encode()
        cut = data.draw(st.integers(0, len(payload) - 1), label="cut")
        state = self.state_of(channel) if self.predictable and channel else None
        predictable = self.predictable
        events, methods = self.feed(frame(1, channel, payload[:cut]), split)
        if state == "closing":
            assert (events, methods) == ([], [])
        elif predictable:
            ids = (m.CLASS_ID, m.METHOD_ID) if cut >= 4 else (0, 0)
            self.expect_close(events, methods, ReplyCode.FRAME_ERROR, *ids)

    @precondition(lambda self: not self.closed)
    @rule(channel=st.integers(0, CHANNEL_MAX + 2),
          frame_type=st.integers(0, 255).filter(lambda t: t not in (1, 2, 3, 8)), split=splits)
    def bad_frame_type(self, channel: int, frame_type: int, split: int) -> None:
        predictable = self.predictable
        events, methods = self.feed(frame(frame_type, channel, b"\x00\x3c\x00\x28"), split)
        if predictable:
            self.expect_close(events, methods, ReplyCode.FRAME_ERROR)
        self.deaf = self.deaf or not self.unpredictable

    @precondition(lambda self: not self.closed)
    @rule(channel=st.integers(0, CHANNEL_MAX + 2), end=st.integers(0, 255).filter(lambda b: b != 0xCE),
          split=splits)
    def bad_frame_end(self, channel: int, end: int, split: int) -> None:
        predictable = self.predictable
        events, methods = self.feed(method(channel, spec.BasicAck())[:-1] + bytes([end]), split)
        if predictable:
            self.expect_close(events, methods, ReplyCode.FRAME_ERROR)
        self.deaf = self.deaf or not self.unpredictable

    @precondition(lambda self: not self.closed)
    @rule(channel=st.integers(0, CHANNEL_MAX + 2), frame_type=st.sampled_from([1, 2, 3]),
          size=st.integers(FRAME_MAX + 1, 2**32 - 1), split=splits)
    def oversize_frame(self, channel: int, frame_type: int, size: int, split: int) -> None:
        predictable = self.predictable
        events, methods = self.feed(struct.pack(">BHI", frame_type, channel, size), split)
        if predictable:
            self.expect_close(events, methods, ReplyCode.FRAME_ERROR)
        self.deaf = self.deaf or not self.unpredictable

    @rule(garbage=st.binary(min_size=1, max_size=64), split=splits)
    def garbage(self, garbage: bytes, split: int) -> None:
        closed = self.closed
        events, methods = self.feed(garbage, split)
        assert not closed or (events, methods) == ([], [])
        self.unpredictable = True

    @precondition(lambda self: not self.closed)
    @rule(split=splits)
    def client_close(self, split: int) -> None:
        predictable = not self.unpredictable
        opened = self.closing_since is None
        events, methods = self.feed(method(0, spec.ConnectionClose(200, "bye", 0, 0)), split)
        if self.deaf or self.error_owed is not None:
            assert (events, methods) == ([], [])
        elif predictable and self.defer and opened:
            assert methods == [] and len(events) == 1 and isinstance(events[0], ConnectionClosed)
            self.close_owed = True
        elif predictable:
            assert methods == [(0, spec.ConnectionCloseOk())]
            assert len(events) == 1 and isinstance(events[0], ConnectionClosed)
            assert self.closed

    @precondition(lambda self: not self.closed and self.closing_since is not None and not self.unpredictable)
    @rule(split=splits)
    def client_close_ok(self, split: int) -> None:
        events, methods = self.feed(method(0, spec.ConnectionCloseOk()), split)
        if self.deaf:
            assert (events, methods) == ([], [])
        else:
            assert methods == [] and len(events) == 1 and isinstance(events[0], ConnectionClosed)

    @precondition(lambda self: not self.closed or self.close_owed)
    @rule(seconds=st.floats(0, 3 * HEARTBEAT_SECONDS))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds
        events = self.conn.tick(self.now)
        methods = self.check_output(self.conn.data_to_send())
        if self.closed:
            # The client's close waits: our heartbeats go on, and the client owes none.
            assert (events, methods) == ([], [])
            return
        silent = self.now - self.last_recv > 2 * HEARTBEAT_SECONDS
        since = self.closing_since if self.closing_since is not None else self.failed_at
        gave_up = since is not None and self.now - since >= 30
        if silent or gave_up:
            assert len(events) == 1 and isinstance(events[0], ConnectionClosed), events
            self.closed = True
        else:
            assert events == []

    @precondition(lambda self: not self.defer and (not self.closed or self.close_owed) and not self.error_owed)
    @rule()
    def broker_waits(self) -> None:
        """The broker handles something that takes a while (a commit, a get's body): what the
        client sends meanwhile is read, and its closes are answered later."""
        self.defer = True

    @precondition(lambda self: self.defer)
    @rule()
    def broker_answers(self) -> None:
        """What kept the broker waiting is done: it answers what is owed, in order."""
        owed, self.owed, self.defer = self.owed, [], False
        for event in owed:
            self.answer(event)
        methods = self.check_output(self.conn.data_to_send())
        if self.closed and not self.close_owed:
            # The connection ended meanwhile (the client went silent): nothing more is sent.
            assert methods == [], methods
            self.error_owed = None
            return
        if self.unpredictable:
            return
        ends = [event for event in owed if not isinstance(event, ChannelClosed)]
        if ends:
            # The connection's end comes last; a channel close owed before it gets no close-ok.
            [end] = ends
            if isinstance(end, ConnectionClosed):
                assert methods == [(0, spec.ConnectionCloseOk())], methods
                self.close_owed = False
            else:
                [(channel, close)] = methods
                assert (channel, type(close)) == (0, spec.ConnectionClose), close
                assert (close.reply_code, close.class_id, close.method_id) == self.error_owed, close
                self.error_owed = None
            return
        assert methods == [(event.channel, spec.ChannelCloseOk()) for event in owed], methods
        for event in owed:
            self.client_closing.discard(event.channel)
            self.closing_channels.discard(event.channel)
            self.open.discard(event.channel)

    @precondition(lambda self: not self.closed or self.close_owed)
    @rule(data=st.data())
    def broker_replies(self, data: st.DataObject) -> None:
        """A reply goes out on an open channel, one the client is closing included, until the
        connection's close (or its close-ok) is sent."""
        opened = st.sampled_from(sorted(self.open)) if self.open else channels
        channel = data.draw(st.one_of(opened, channels), label="channel")
        self.conn.send_method(channel, spec.BasicQosOk())
        methods = self.check_output(self.conn.data_to_send())
        if not self.unpredictable and self.closing_since is None:
            assert methods == ([(channel, spec.BasicQosOk())] if channel in self.open else []), methods

    @invariant()
    def no_events_for_channels_after_close(self) -> None:
        assert not self.closed or self.conn.is_closed

    def teardown(self) -> None:
        # However it ended, EOF (or the close timeout) leaves the connection closed.
        self.conn.tick(self.now + 100)
        self.conn.receive_data(b"", self.now + 100)
        assert self.conn.is_closed


@pytest.mark.slow
def test_any_frame_sequence_ends_in_a_well_formed_close_or_goes_on(long_run: bool) -> None:
    run_state_machine_as_test(ServerConnectionMachine, settings=settings(
        max_examples=5000 if long_run else 150,
        stateful_step_count=100 if long_run else 40,
        deadline=None,
    ))

