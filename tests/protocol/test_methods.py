"""Generated method classes and BasicProperties: byte vectors and round-trips for every class."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amqpbroker.protocol import BasicProperties, DecodeError, spec

from .test_codec import tables

VECTORS = [
    (spec.BasicPublish(exchange="ex", routing_key="rk", mandatory=True),
     b"\x00\x3c\x00\x28" b"\x00\x00" b"\x02ex" b"\x02rk" b"\x01"),
    (spec.BasicPublish(exchange="", routing_key="", immediate=True),
     b"\x00\x3c\x00\x28\x00\x00\x00\x00\x02"),
    (spec.BasicDeliver(consumer_tag="c", delivery_tag=2**40, redelivered=True, exchange="e", routing_key="r"),
     b"\x00\x3c\x00\x3c" b"\x01c" b"\x00\x00\x01\x00\x00\x00\x00\x00" b"\x01" b"\x01e" b"\x01r"),
    (spec.BasicNack(delivery_tag=5, multiple=False, requeue=True),
     b"\x00\x3c\x00\x78" b"\x00\x00\x00\x00\x00\x00\x00\x05" b"\x02"),
    (spec.BasicAck(delivery_tag=1, multiple=True),
     b"\x00\x3c\x00\x50\x00\x00\x00\x00\x00\x00\x00\x01\x01"),
    (spec.BasicQos(prefetch_size=0, prefetch_count=10, global_=True),
     b"\x00\x3c\x00\x0a\x00\x00\x00\x00\x00\x0a\x01"),
    # Five consecutive bits share one octet: passive, durable, exclusive, auto-delete, no-wait.
    (spec.QueueDeclare(queue="q", durable=True, auto_delete=True, no_wait=True, arguments={"x-max-length": 5}),
     b"\x00\x32\x00\x0a" b"\x00\x00" b"\x01q" b"\x1a"
     b"\x00\x00\x00\x12" b"\x0cx-max-length" b"I\x00\x00\x00\x05"),
    (spec.QueueDeclareOk(queue="q", message_count=3, consumer_count=1),
     b"\x00\x32\x00\x0b\x01q\x00\x00\x00\x03\x00\x00\x00\x01"),
    (spec.ExchangeDeclare(exchange="x", type="topic", internal=True),
     b"\x00\x28\x00\x0a\x00\x00\x01x\x05topic\x08\x00\x00\x00\x00"),
    (spec.ConnectionTune(channel_max=2047, frame_max=131072, heartbeat=60),
     b"\x00\x0a\x00\x1e\x07\xff\x00\x02\x00\x00\x00\x3c"),
    # Reserved fields are written as empty/zero: capabilities shortstr, insist bit.
    (spec.ConnectionOpen(virtual_host="/"), b"\x00\x0a\x00\x28\x01/\x00\x00"),
    (spec.ConnectionOpenOk(), b"\x00\x0a\x00\x29\x00"),
    (spec.ChannelOpen(), b"\x00\x14\x00\x0a\x00"),
    (spec.ChannelOpenOk(), b"\x00\x14\x00\x0b\x00\x00\x00\x00"),
    (spec.ChannelClose(reply_code=406, reply_text="no", class_id=60, method_id=40),
     b"\x00\x14\x00\x28\x01\x96\x02no\x00\x3c\x00\x28"),
    (spec.ConnectionBlocked(reason="low on memory"), b"\x00\x0a\x00\x3c\x0dlow on memory"),
    (spec.ConnectionUnblocked(), b"\x00\x0a\x00\x3d"),
    (spec.ConnectionUpdateSecret(new_secret=b"tok", reason="r"), b"\x00\x0a\x00\x46\x00\x00\x00\x03tok\x01r"),
    (spec.ConfirmSelect(nowait=True), b"\x00\x55\x00\x0a\x01"),
    (spec.TxCommit(), b"\x00\x5a\x00\x14"),
    (spec.BasicGetEmpty(), b"\x00\x3c\x00\x48\x00"),
]


@pytest.mark.parametrize("method, data", VECTORS, ids=[type(m).__name__ for m, _ in VECTORS])
def test_method_vectors(method, data):
    assert method.encode() == data
    assert type(method).decode(data) == method
    assert type(method).decode(memoryview(data)) == method


@pytest.mark.parametrize("cls", [spec.ConnectionClose, spec.ChannelClose, spec.BasicReturn])
def test_reply_text_longer_than_a_short_string_is_cut(cls):
    text = "NOT_FOUND - no queue '" + "q" * 255 + "' in vhost '/'"
    encoded = cls(reply_code=404, reply_text=text).encode()
    assert encoded[6] == 255
    assert cls.decode(encoded).reply_text == text[:252] + "..."


def test_reserved_fields_are_skipped_whatever_their_value():
    # ticket = 7 (reserved short), capabilities "abc" and insist = 1 are ignored on decode.
    assert spec.BasicPublish.decode(b"\x00\x3c\x00\x28\x00\x07\x00\x01k\x00") == spec.BasicPublish(routing_key="k")
    assert spec.ConnectionOpen.decode(b"\x00\x0a\x00\x28\x01/\x03abc\x01") == spec.ConnectionOpen("/")


@pytest.mark.parametrize("data", [
    b"\x00\x3c\x00\x28\x00\x00\x00\x01k",          # bits octet missing
    b"\x00\x3c\x00\x28\x00\x00\x00\x01k\x00\x00",  # trailing byte
    b"\x00\x3c\x00\x28\x00\x00\x05ab",             # string past the end
    b"\x00\x3c\x00\x28\x00\x00\x02\xff\xfe\x00\x00",  # short string not UTF-8
])
def test_malformed_payloads_raise(data):
    with pytest.raises((DecodeError, IndexError, ValueError)):
        spec.BasicPublish.decode(data)


def test_repr_and_equality():
    assert repr(spec.BasicAck(delivery_tag=1)) == "BasicAck(delivery_tag=1, multiple=False)"
    assert spec.BasicAck(delivery_tag=1) != spec.BasicAck(delivery_tag=2)
    assert spec.BasicAck() != spec.BasicNack()


shortstr = st.text(max_size=40).filter(lambda s: len(s.encode()) < 256)
FIELD_STRATEGIES = {
    "bit": st.booleans(),
    "octet": st.integers(0, 2**8 - 1),
    "short": st.integers(0, 2**16 - 1),
    "long": st.integers(0, 2**32 - 1),
    "longlong": st.integers(0, 2**64 - 1),
    "timestamp": st.integers(0, 2**64 - 1),
    "shortstr": shortstr,
    "longstr": st.binary(max_size=100),
    "table": tables,
}


def method_strategy(cls):
    return st.builds(cls, **{name: FIELD_STRATEGIES[kind] for name, kind in cls.FIELDS})


ALL_METHODS = sorted(spec.METHODS.values(), key=lambda c: (c.CLASS_ID, c.METHOD_ID))


@pytest.mark.parametrize("cls", ALL_METHODS, ids=[c.__name__ for c in ALL_METHODS])
@settings(max_examples=30)
@given(data=st.data())
def test_every_method_round_trips(cls, data):
    method = data.draw(method_strategy(cls))
    encoded = method.encode()
    assert encoded[:4] == bytes((cls.CLASS_ID >> 8, cls.CLASS_ID & 255, cls.METHOD_ID >> 8, cls.METHOD_ID & 255))
    assert cls.decode(encoded) == method


properties = st.builds(
    BasicProperties,
    **{name: st.none() | FIELD_STRATEGIES[kind] for name, kind in BasicProperties.FIELDS},
)


def test_basic_properties_names_in_order():
    assert [name for name, _ in BasicProperties.FIELDS] == [
        "content_type", "content_encoding", "headers", "delivery_mode", "priority", "correlation_id",
        "reply_to", "expiration", "message_id", "timestamp", "type", "user_id", "app_id", "cluster_id",
    ]


def test_basic_properties_vectors():
    assert BasicProperties().encode() == b"\x00\x00"
    assert BasicProperties.decode(b"\x00\x00") == BasicProperties()
    props = BasicProperties(content_type="text/plain", delivery_mode=2, cluster_id="c")
    data = b"\x90\x04" b"\x0atext/plain" b"\x02" b"\x01c"
    assert props.encode() == data
    assert BasicProperties.decode(data) == props
    full = BasicProperties(
        content_type="a", content_encoding="b", headers={"h": 1}, delivery_mode=1, priority=9,
        correlation_id="c", reply_to="d", expiration="60000", message_id="e", timestamp=1600000000,
        type="f", user_id="g", app_id="h", cluster_id="i",
    )
    encoded = full.encode()
    assert encoded[:2] == b"\xff\xfc"
    assert BasicProperties.decode(encoded) == full


def test_basic_properties_skips_continuation_flags():
    # Bit 0 set: another flag word follows; no class defines more than 14 properties, so it is skipped.
    assert BasicProperties.decode(b"\x80\x01\x00\x00\x01x") == BasicProperties(content_type="x")


@given(properties)
def test_basic_properties_round_trip(props):
    assert BasicProperties.decode(props.encode()) == props
