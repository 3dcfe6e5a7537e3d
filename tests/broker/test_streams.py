"""Streams over AMQP 0-9-1, without sockets: offsets, credit, retention, and what RabbitMQ 3.10 refuses."""

from __future__ import annotations

import datetime

import pytest

from amqpbroker import core
from amqpbroker.protocol import BasicProperties, spec
from amqpbroker.store import MemoryStore

from .conftest import Clock, Peer

STREAM = {"x-queue-type": "stream"}
Q = "queue 's' in vhost '/'"


def declare(peer: Peer, **arguments: object) -> None:
    peer.declare("s", durable=True, arguments={**STREAM, **arguments})


def publish(peer: Peer, *bodies: bytes) -> None:
    """Publishes to stream "s", and commits as the server's persister would (readers wait for that)."""
    for body in bodies:
        peer.publish("", "s", body)
    peer.client.broker.commit()


def consume(peer: Peer, offset: object = None, prefetch: int = 100, ch: int = 1) -> str:
    peer.qos(prefetch, ch=ch)
    arguments = {} if offset is None else {"x-stream-offset": offset}
    return peer.consume("s", ch=ch, arguments=arguments)


def delivered(peer: Peer, ch: int | None = None) -> list[tuple[bytes, int]]:
    """(body, x-stream-offset header) of every delivery so far."""
    return [
        (frame.body, BasicProperties.decode(frame.properties).headers["x-stream-offset"])
        for frame in peer.sink.deliveries(ch)
    ]


def refused(code: int, text: str) -> pytest.RaisesContext:
    kind = core.ChannelException if code < 500 else core.ConnectionException
    return pytest.raises(kind, match="^" + text.replace("(", r"\(").replace(")", r"\)").replace("{", r"\{") + "$")


def test_declare_ok_counts_neither_messages_nor_consumers(peer: Peer) -> None:
    declare(peer)
    publish(peer, b"a", b"b")
    consume(peer, "first")
    peer.declare("s", durable=True, arguments=STREAM)
    ok = peer.sink.methods(spec.QueueDeclareOk)[-1]
    assert (ok.message_count, ok.consumer_count) == (0, 0)


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        ("first", [0, 1, 2, 3]),
        ("last", [3]),
        ("next", []),
        (None, []),
        (2, [2, 3]),
        (-1, [0, 1, 2, 3]),
        (4, []),
        (100, []),
        ("1h", [0, 1, 2, 3]),
        (b"first", [0, 1, 2, 3]),
    ],
)
def test_a_consumer_starts_where_its_offset_says(peer: Peer, offset: object, expected: list[int]) -> None:
    declare(peer)
    publish(peer, b"m0", b"m1", b"m2", b"m3")
    consume(peer, offset)
    assert delivered(peer) == [(b"m%d" % i, i) for i in expected]


def test_timestamp_and_interval_offsets_count_from_when_messages_were_appended(peer: Peer, clock: Clock) -> None:
    declare(peer)
    publish(peer, b"old")
    clock.advance(3600)
    start = datetime.datetime.fromtimestamp(clock.wall(), datetime.timezone.utc)
    publish(peer, b"new")
    clock.advance(10)
    consume(peer, start, ch=1)
    consume(peer, "30s", ch=2)
    consume(peer, datetime.datetime(2100, 1, 1), ch=3)
    assert [body for body, _ in delivered(peer, 1)] == [b"new"]
    assert [body for body, _ in delivered(peer, 2)] == [b"new"]
    assert delivered(peer, 3) == []


def test_a_consumer_at_the_end_gets_what_is_published_next(peer: Peer) -> None:
    declare(peer)
    publish(peer, b"before")
    consume(peer, "next")
    publish(peer, b"after")
    assert delivered(peer) == [(b"after", 1)]


def test_a_reader_gets_an_entry_once_the_store_has_it(peer: Peer) -> None:
    # Read before, its offset could go to another message after a crash.
    declare(peer)
    consume(peer, "next")
    peer.publish("", "s", b"unwritten")
    assert delivered(peer) == []
    peer.client.broker.commit()
    assert delivered(peer) == [(b"unwritten", 0)]


def test_every_consumer_reads_everything_and_acks_only_give_credit(peer: Peer) -> None:
    declare(peer)
    publish(peer, b"a", b"b", b"c")
    consume(peer, "first", prefetch=2, ch=1)
    consume(peer, "first", prefetch=2, ch=2)
    assert [body for body, _ in delivered(peer, 1)] == [b"a", b"b"]
    peer.ack(2, multiple=True, ch=1)
    assert [body for body, _ in delivered(peer, 1)] == [b"a", b"b", b"c"]
    assert [body for body, _ in delivered(peer, 2)] == [b"a", b"b"]
    # Consumed and acknowledged, and still there for the next reader.
    consume(peer, "first", ch=3)
    assert [body for body, _ in delivered(peer, 3)] == [b"a", b"b", b"c"]


def test_a_closed_channel_gives_nothing_back_and_nothing_is_redelivered(peer: Peer) -> None:
    declare(peer)
    publish(peer, b"a")
    consume(peer, "first", ch=1)
    peer.client.close_channel(1)
    consume(peer, "first", ch=2)
    deliveries = peer.sink.deliveries()
    assert [(f.channel, f.body, f.method.redelivered) for f in deliveries] == [(1, b"a", False), (2, b"a", False)]


def test_transient_messages_are_stored_but_not_for_a_durable_classic_queue_beside_the_stream(
    broker: core.Broker, peer: Peer
) -> None:
    declare(peer)
    peer.declare("classic", durable=True)
    peer.exchange("fan", "fanout")
    peer.bind("s", "fan")
    peer.bind("classic", "fan")
    peer.publish("fan", "", b"m")
    vhost = broker.vhosts["/"]
    [stream_entry] = vhost.queues["s"].peek()
    [classic_entry] = vhost.queues["classic"].peek()
    assert stream_entry.message is classic_entry.message
    ops = broker.journal.ops
    assert [op.queue for op in ops if type(op).__name__ == "Enqueue"] == ["s"]


def test_a_transient_message_taken_from_the_classic_queue_beside_the_stream_stays_in_the_stream(clock: Clock) -> None:
    store = MemoryStore()
    broker = core.Broker(store=store, clock=clock, wall_clock=clock.wall)
    peer = Peer(broker)
    declare(peer)
    peer.declare("classic", durable=True)
    peer.exchange("fan", "fanout", durable=True)
    peer.bind("s", "fan")
    peer.bind("classic", "fan")
    peer.publish("fan", "", b"m")
    broker.commit()
    assert peer.get("classic", no_ack=False) == b"m"
    peer.ack(1)
    broker.commit()
    peer.client.close()
    broker.commit()
    store.close()
    restarted = core.Broker(store=store, clock=clock, wall_clock=clock.wall)
    again = Peer(restarted)
    consume(again, "first")
    restarted.read_bodies()
    assert delivered(again) == [(b"m", 0)]


@pytest.mark.parametrize(
    ("method", "code", "text"),
    [
        (spec.BasicGet(queue="s"), 540, f"NOT_IMPLEMENTED - basic.get not supported by stream queues {Q}"),
        (spec.QueuePurge(queue="s"), 540, f"NOT_IMPLEMENTED - queue.purge not supported by stream queues {Q}"),
    ],
)
def test_get_and_purge_are_not_implemented(peer: Peer, method: object, code: int, text: str) -> None:
    declare(peer)
    with refused(code, text):
        peer.handle(method)


@pytest.mark.parametrize(
    ("qos", "flags", "code", "text"),
    [
        (None, {}, 406, f"PRECONDITION_FAILED - consumer prefetch count is not set for '{Q}'"),
        ((0, False), {}, 406, f"PRECONDITION_FAILED - consumer prefetch count is not set for '{Q}'"),
        ((5, True), {}, 406, f"PRECONDITION_FAILED - consumer prefetch count is not set for '{Q}'"),
        ((5, False), {"no_ack": True}, 540, f"NOT_IMPLEMENTED - automatic acknowledgement not supported by stream queues {Q}"),
        (None, {"no_ack": True}, 406, f"PRECONDITION_FAILED - consumer prefetch count is not set for '{Q}'"),
        (
            (5, False),
            {"arguments": {"x-priority": 1}},
            406,
            f"PRECONDITION_FAILED - invalid arg 'x-priority' for {Q} of queue type rabbit_stream_queue",
        ),
        (
            None,
            {"no_ack": True, "arguments": {"x-stream-offset": "1x"}},
            406,
            f"PRECONDITION_FAILED - invalid arg 'x-stream-offset' for {Q}: "
            '{invalid_stream_offset_arg,{longstr,<<"1x">>}}',
        ),
        ((5, False), {"arguments": {"x-stream-offset": "0s"}}, 406, None),
        ((5, False), {"arguments": {"x-stream-offset": "foo"}}, 541, "INTERNAL_ERROR"),
        ((5, False), {"arguments": {"x-stream-offset": True}}, 541, "INTERNAL_ERROR"),
    ],
)
def test_consume_is_refused_as_rabbitmq_refuses_it(peer: Peer, qos, flags: dict, code: int, text: str | None) -> None:
    declare(peer)
    if qos is not None:
        peer.qos(*qos)
    if text is None:
        text = f"PRECONDITION_FAILED - invalid arg 'x-stream-offset' for {Q}: " + (
            '{invalid_stream_offset_arg,{longstr,<<"0s">>}}'
        )
    with refused(code, text):
        peer.consume("s", **flags)


def test_an_exclusive_consumer_does_not_keep_others_away(peer: Peer) -> None:
    declare(peer)
    publish(peer, b"a")
    peer.qos(5)
    peer.consume("s", exclusive=True, arguments={"x-stream-offset": "first"})
    peer.consume("s", arguments={"x-stream-offset": "first"})
    peer.consume("s", exclusive=True, arguments={"x-stream-offset": "first"})
    assert [body for body, _ in delivered(peer)] == [b"a", b"a", b"a"]


def test_a_global_prefetch_on_top_of_a_consumer_prefetch_is_not_implemented(peer: Peer) -> None:
    declare(peer)
    peer.qos(5)
    peer.qos(5, global_=True)
    with refused(540, f"NOT_IMPLEMENTED - {Q} does not support global qos"):
        peer.consume("s")


@pytest.mark.parametrize("method", [spec.BasicNack(delivery_tag=1, requeue=True), spec.BasicReject(delivery_tag=1)])
def test_nack_and_reject_are_not_implemented(peer: Peer, method: object) -> None:
    declare(peer)
    publish(peer, b"a")
    consume(peer, "first")
    with refused(540, f"NOT_IMPLEMENTED - basic.nack and basic.reject not supported by stream queues {Q}"):
        peer.handle(method)


def test_recover_with_a_stream_delivery_unacknowledged_fails_as_rabbitmq_does(peer: Peer) -> None:
    declare(peer)
    publish(peer, b"a")
    consume(peer, "first")
    with refused(541, "INTERNAL_ERROR"):
        peer.handle(spec.BasicRecover(requeue=True))


def test_an_unknown_delivery_tag_is_still_406(peer: Peer) -> None:
    declare(peer)
    consume(peer, "first")
    with refused(406, "PRECONDITION_FAILED - unknown delivery tag 9"):
        peer.ack(9)


def test_an_invalid_max_age_without_digits_fails_as_rabbitmq_does(peer: Peer) -> None:
    with refused(541, "INTERNAL_ERROR"):
        declare(peer, **{"x-max-age": "foo"})


def body(size: int) -> bytes:
    """A body that makes a message of `size` bytes as a stream counts them: body and properties
    (empty properties are 2 bytes)."""
    return b"x" * (size - 2)


def test_nothing_is_dropped_before_the_first_segment_is_full(peer: Peer) -> None:
    declare(peer, **{"x-max-length-bytes": 100})  # and segments of 500 MB by default
    publish(peer, *[body(100)] * 20)
    consume(peer, "first")
    assert len(delivered(peer)) == 20


def test_retention_by_size_drops_whole_oldest_segments(peer: Peer) -> None:
    # Segments of 3 messages, at most 7 messages' worth.
    declare(peer, **{"x-max-length-bytes": 700, "x-stream-max-segment-size-bytes": 300})
    publish(peer, *[body(100)] * 20)
    consume(peer, "first")
    # The last roll, to the segment of 18-19, kept the two before it (12-17: 600 bytes).
    assert [offset for _, offset in delivered(peer)] == [12, 13, 14, 15, 16, 17, 18, 19]


def test_retention_by_age_drops_old_segments_when_one_fills(peer: Peer, clock: Clock) -> None:
    declare(peer, **{"x-max-age": "10s", "x-stream-max-segment-size-bytes": 200})
    publish(peer, body(100), body(100), body(100))  # two segments: 0-1, 2
    clock.advance(20)
    consume(peer, "first", ch=1)
    publish(peer, body(100), body(100))  # 3 joins 2's segment; 4 starts a new one, and 0-1 are old
    consume(peer, "first", ch=2)
    assert [offset for _, offset in delivered(peer, 1)] == [0, 1, 2, 3, 4]
    # 2-3 are kept: their segment's newest message is 3, which is new.
    assert [offset for _, offset in delivered(peer, 2)] == [2, 3, 4]


def test_a_consumer_behind_retention_goes_on_from_the_oldest_kept(peer: Peer) -> None:
    declare(peer, **{"x-max-length-bytes": 1, "x-stream-max-segment-size-bytes": 100})
    publish(peer, body(100))
    consume(peer, "first", prefetch=1)
    publish(peer, body(100), body(100))  # each rolls a segment: 0, then 1, are dropped
    peer.ack(1)
    assert [offset for _, offset in delivered(peer)] == [0, 2]


def test_deleting_a_stream_reports_no_messages(peer: Peer) -> None:
    declare(peer)
    publish(peer, b"a")
    peer.handle(spec.QueueDelete(queue="s"))
    assert peer.sink.methods(spec.QueueDeleteOk)[-1].message_count == 0
