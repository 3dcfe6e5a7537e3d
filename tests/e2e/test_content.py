"""Message content: bodies of every size, and properties and header tables that
travel through the broker unchanged."""

from __future__ import annotations

import datetime
import decimal
import os
import struct

import pika
import pytest

from . import rawamqp
from .rawamqp import RawConnection
from .support import unique, wait_until

MB = 1024 * 1024


@pytest.mark.parametrize(
    "size",
    [
        pytest.param(0, id="empty"),
        pytest.param(1, id="1-byte"),
        pytest.param(131072 - 8, id="exactly-one-frame"),
        pytest.param(131072 - 7, id="one-byte-over-one-frame"),
        pytest.param(MB, id="1MB"),
        pytest.param(5 * MB, id="5MB"),
    ],
)
def test_body_round_trips_intact_through_get(channel, size):
    queue = channel.queue_declare("", exclusive=True).method.queue
    body = os.urandom(size)

    channel.basic_publish("", queue, body)
    method, _, received = channel.basic_get(queue, auto_ack=True)

    assert method is not None
    assert len(received) == size
    assert received == body


def test_large_bodies_round_trip_intact_through_a_consumer(connection, channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    bodies = [os.urandom(size) for size in (MB, 0, 3 * MB + 17, 1)]
    received = []
    channel.basic_consume(queue, lambda ch, method, properties, body: received.append(body), auto_ack=True)

    for body in bodies:
        channel.basic_publish("", queue, body)
    wait_until(connection, lambda: len(received) == len(bodies), what="all bodies")

    assert received == bodies


def test_all_fourteen_basic_properties_round_trip(amqp_params, channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    headers = {
        "int": 42,
        "negative": -7,
        "int64": 2**40,
        "str": "héllo wörld",
        "empty-str": "",
        "true": True,
        "false": False,
        "list": [1, "two", [3], {"four": 4}, True],
        "empty-list": [],
        "nested": {"a": {"b": {"c": "deep", "n": 1}}},
        "empty-table": {},
        "bytes": b"\x00\x01\xfe\xff",
        "decimal": decimal.Decimal("3.14"),
        "timestamp": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
        "void": None,
    }
    sent = pika.BasicProperties(
        content_type="application/json",
        content_encoding="gzip",
        headers=headers,
        delivery_mode=2,
        priority=5,
        correlation_id="correlation-1",
        reply_to="reply-queue",
        expiration="60000",
        message_id="message-1",
        timestamp=1700000000,
        type="order.created",
        user_id=amqp_params.credentials.username,
        app_id="e2e-tests",
        cluster_id="cluster-1",
    )

    channel.basic_publish("", queue, b"{}", sent)
    _, received, body = channel.basic_get(queue, auto_ack=True)

    assert body == b"{}"
    for name in (
        "content_type",
        "content_encoding",
        "delivery_mode",
        "priority",
        "correlation_id",
        "reply_to",
        "expiration",
        "message_id",
        "timestamp",
        "type",
        "user_id",
        "app_id",
        "cluster_id",
    ):
        assert getattr(received, name) == getattr(sent, name), name
    assert received.headers == headers
    for name, value in headers.items():
        assert isinstance(received.headers[name], type(value)), name


def test_message_without_properties_arrives_without_properties(channel):
    queue = channel.queue_declare("", exclusive=True).method.queue

    channel.basic_publish("", queue, b"bare")
    _, properties, _ = channel.basic_get(queue, auto_ack=True)

    assert vars(properties) == vars(pika.BasicProperties())


def _field(name: str, type_letter: bytes, value: bytes) -> bytes:
    return rawamqp.shortstr(name) + type_letter + value


def _table(*fields: bytes) -> bytes:
    content = b"".join(fields)
    return struct.pack(">I", len(content)) + content


# One header of each field type RabbitMQ knows (the RabbitMQ/Qpid letters, see
# the AMQP 0-9-1 errata). Sent raw because pika cannot encode floats (and decodes
# 'f' and 'd' truncated to integers) nor choose b, B, s, u, i or l itself.
EVERY_FIELD_TYPE = _table(
    _field("t", b"t", b"\x01"),
    _field("b", b"b", b"\xfe"),
    _field("B", b"B", b"\xfe"),
    _field("s", b"s", b"\xff\xfe"),
    _field("u", b"u", b"\xff\xfe"),
    _field("I", b"I", b"\xff\xff\xff\xfe"),
    _field("i", b"i", b"\xff\xff\xff\xfe"),
    _field("l", b"l", b"\xff" * 7 + b"\xfe"),
    _field("f", b"f", struct.pack(">f", 1.5)),
    _field("d", b"d", struct.pack(">d", -2.25)),
    _field("D", b"D", b"\x02\x00\x00\x01\x3a"),
    _field("S", b"S", b"\x00\x00\x00\x03abc"),
    _field("x", b"x", b"\x00\x00\x00\x02\x00\x01"),
    _field("T", b"T", struct.pack(">Q", 1700000000)),
    _field("V", b"V", b""),
    _field("A", b"A", b"\x00\x00\x00\x04t\x01b\x02"),
    _field("F", b"F", _table(_field("inner", b"F", _table(_field("n", b"I", b"\x00\x00\x00\x07"))))),
)

HEADERS_FLAG = 0x2000


def test_header_table_with_every_field_type_passes_through_byte_for_byte(amqp_url):
    queue = unique("field-types")
    properties = struct.pack(">H", HEADERS_FLAG) + EVERY_FIELD_TYPE
    with RawConnection(amqp_url) as raw:
        raw.handshake()
        raw.open_channel(1)
        raw.declare_queue(1, queue)

        raw.publish(1, "", queue, b"typed", properties=properties)
        header, body, _ = raw.get(1, queue)
        raw.close()

    assert body == b"typed"
    assert header[12:] == properties

