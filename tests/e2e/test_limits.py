"""Limits a client meets on our broker configured below RabbitMQ's defaults: the largest message,
and the time to complete the handshake. These start a broker of their own (RabbitMQ's settings
cannot be changed from a test), so they run against ours even when AMQP_TEST_URL is set."""

from __future__ import annotations

import struct
import time

import pika
import pytest

from amqpbroker.protocol import MAX_MESSAGE_SIZE_CEILING
from amqpbroker.testing import Broker

from .rawamqp import (
    BASIC_PUBLISH,
    CHANNEL_CLOSE,
    CONNECTION_START,
    FRAME_HEADER,
    PROTOCOL_HEADER,
    Close,
    RawConnection,
    frame,
    shortstr,
)


def test_message_over_the_max_size_closes_the_channel_and_the_connection_goes_on() -> None:
    with Broker(port=0, max_message_size=1000) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        channel.queue_declare("limited")
        channel.basic_publish("", "limited", b"x" * 1000)
        channel.basic_publish("", "limited", b"x" * 1001)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
            channel.queue_declare("limited", passive=True)
        assert closed.value.reply_code == 406
        assert closed.value.reply_text == (
            "PRECONDITION_FAILED - message size 1001 is larger than configured max size 1000"
        )
        assert connection.is_open
        again = connection.channel()
        assert again.queue_declare("limited", passive=True).method.message_count == 1
        connection.close()


def test_oversized_message_is_refused_from_its_header_before_the_body_arrives() -> None:
    with Broker(port=0, max_message_size=MAX_MESSAGE_SIZE_CEILING) as broker, RawConnection(broker.url) as raw:
        raw.handshake()
        raw.open_channel(1)
        raw.send_method(1, BASIC_PUBLISH, b"\x00\x00" + shortstr("") + shortstr("nowhere") + b"\x00")
        raw.send(frame(FRAME_HEADER, 1, struct.pack(">HHQ", 60, 0, MAX_MESSAGE_SIZE_CEILING + 1) + b"\x00\x00"))
        close = Close.decode(raw.expect(CHANNEL_CLOSE).arguments)
        # At RabbitMQ's ceiling of 512 MiB its text says "max size", not "configured max size".
        assert (close.reply_code, close.reply_text, close.class_id, close.method_id) == (
            406,
            f"PRECONDITION_FAILED - message size {MAX_MESSAGE_SIZE_CEILING + 1} is larger than max size "
            f"{MAX_MESSAGE_SIZE_CEILING}",
            60,
            40,
        )


@pytest.mark.parametrize("stall_after", ["half a protocol header", "start-ok", "tune-ok"])
def test_client_that_stalls_before_the_connection_is_open_is_dropped(stall_after: str) -> None:
    with Broker(port=0, handshake_timeout=0.5) as broker, RawConnection(broker.url) as raw:
        if stall_after == "half a protocol header":
            raw.send(PROTOCOL_HEADER[:4])
        elif stall_after == "start-ok":
            raw.start()
        else:
            raw.negotiate()
        # Whatever the broker still had to say (connection.start, tune), then it closes the socket.
        raw.read_until_closed(timeout=10)


@pytest.mark.slow
def test_open_connection_outlives_the_handshake_timeout() -> None:
    with Broker(port=0, handshake_timeout=0.5) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        time.sleep(1.5)
        channel.queue_declare("still-open", exclusive=True)
        connection.close()
