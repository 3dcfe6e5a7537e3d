"""Channels: many per connection, closing, and which errors close a channel
(soft errors) versus the whole connection (hard errors)."""

from __future__ import annotations

import pytest
from pika.exceptions import ChannelClosedByBroker, ConnectionClosedByBroker

from . import rawamqp
from .rawamqp import RawConnection
from .support import reply, round_trip, unique

CLOSE_200 = b"\x00\xc8" + rawamqp.shortstr("bye") + b"\x00\x00\x00\x00"


def test_many_channels_on_one_connection_work_independently(connection):
    channels = [connection.channel() for _ in range(50)]
    queues = [channel.queue_declare("", exclusive=True).method.queue for channel in channels]

    for number, (channel, queue) in enumerate(zip(channels, queues)):
        channel.basic_publish("", queue, str(number).encode())
    bodies = [channel.basic_get(queue, auto_ack=True)[2] for channel, queue in zip(channels, queues)]

    assert bodies == [str(number).encode() for number in range(50)]
    assert len({channel.channel_number for channel in channels}) == 50


def test_channel_close_leaves_connection_and_other_channels_open(connection):
    closing = connection.channel()
    staying = connection.channel()

    closing.close()

    assert closing.is_closed
    assert staying.is_open
    assert connection.is_open
    round_trip(staying)


def test_closed_channel_number_can_be_opened_again(connection):
    connection.channel(channel_number=7).close()

    reopened = connection.channel(channel_number=7)

    round_trip(reopened)


def _access_refused(connect):
    name = "amq." + unique("reserved")
    return (
        lambda channel: channel.exchange_declare(name, "direct"),
        f"ACCESS_REFUSED - exchange name '{name}' contains reserved prefix 'amq.*'",
    )


def _not_found(connect):
    name = unique("missing")
    return (
        lambda channel: channel.queue_declare(name, passive=True),
        f"NOT_FOUND - no queue '{name}' in vhost '/'",
    )


def _resource_locked(connect):
    name = unique("exclusive")
    connect().channel().queue_declare(name, exclusive=True)
    return (
        lambda channel: channel.queue_declare(name, passive=True),
        f"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{name}' in vhost '/'. "
        "It could be originally declared on another connection or the exclusive property value "
        "does not match that of the original declaration.",
    )


def _precondition_failed(connect):
    def ack_unknown_tag(channel):
        channel.basic_ack(delivery_tag=99)
        round_trip(channel)

    return ack_unknown_tag, "PRECONDITION_FAILED - unknown delivery tag 99"


@pytest.mark.parametrize(
    ("cause", "reply_code"),
    [
        pytest.param(_access_refused, 403, id="403-access-refused"),
        pytest.param(_not_found, 404, id="404-not-found"),
        pytest.param(_resource_locked, 405, id="405-resource-locked"),
        pytest.param(_precondition_failed, 406, id="406-precondition-failed"),
    ],
)
def test_channel_error_closes_only_the_channel(connect, connection, cause, reply_code):
    failing = connection.channel()
    bystander = connection.channel()
    action, reply_text = cause(connect)

    with pytest.raises(ChannelClosedByBroker) as closed:
        action(failing)

    assert reply(closed) == (reply_code, reply_text)
    assert failing.is_closed
    assert bystander.is_open
    assert connection.is_open
    fresh = connection.channel()
    queue = fresh.queue_declare("", exclusive=True).method.queue
    fresh.basic_publish("", queue, b"after the error")
    assert fresh.basic_get(queue, auto_ack=True)[2] == b"after the error"
    round_trip(bystander)


def test_channel_close_names_the_failing_method_and_channel_can_be_reopened(amqp_url):
    name = unique("missing")
    with RawConnection(amqp_url) as raw:
        raw.handshake()
        raw.open_channel(1)
        raw.send_method(1, rawamqp.QUEUE_DECLARE, b"\0\0" + rawamqp.shortstr(name) + b"\x01" + rawamqp.EMPTY_TABLE)

        close = raw.expect(rawamqp.CHANNEL_CLOSE)
        raw.send_method(1, rawamqp.CHANNEL_CLOSE_OK)
        raw.open_channel(1)
        raw.declare_queue(1, unique("reopened"))
        raw.close()

    assert close.channel == 1
    assert rawamqp.Close.decode(close.arguments) == rawamqp.Close(
        404, f"NOT_FOUND - no queue '{name}' in vhost '/'", *rawamqp.QUEUE_DECLARE
    )


# pika refuses to send a consumer tag twice (it raises DuplicateConsumerTag itself),
# so this one goes through the raw client.
def test_reusing_a_consumer_tag_on_a_channel_is_connection_error_530(amqp_url):
    queue = unique("tags")
    with RawConnection(amqp_url) as raw:
        raw.handshake()
        raw.open_channel(1)
        raw.declare_queue(1, queue)
        raw.consume(1, queue, "same-tag")
        raw.expect(rawamqp.BASIC_CONSUME_OK)

        raw.consume(1, queue, "same-tag")
        close = raw.expect_connection_close()

    assert close == rawamqp.Close(530, "NOT_ALLOWED - attempt to reuse consumer tag 'same-tag'", *rawamqp.BASIC_CONSUME)


def test_qos_with_prefetch_size_is_connection_error_540(connection, channel):
    with pytest.raises(ConnectionClosedByBroker) as closed:
        channel.basic_qos(prefetch_size=10)

    assert reply(closed) == (540, "NOT_IMPLEMENTED - prefetch_size!=0 (10)")
    assert connection.is_closed


# pika's basic_publish has no `immediate` argument, so this one goes through the raw client.
def test_publish_with_immediate_is_connection_error_540(amqp_url):
    with RawConnection(amqp_url) as raw:
        raw.handshake()
        raw.open_channel(1)

        raw.publish(1, "", unique("anywhere"), b"now or never", flags=0b10)
        close = raw.expect_connection_close()

    assert close == rawamqp.Close(540, "NOT_IMPLEMENTED - immediate=true", *rawamqp.BASIC_PUBLISH)


def test_recover_without_requeue_is_connection_error_540(connection, channel):
    with pytest.raises(ConnectionClosedByBroker) as closed:
        channel.basic_recover(requeue=False)

    assert reply(closed) == (540, "NOT_IMPLEMENTED - requeue=false")
    assert connection.is_closed


def test_channel_flow_inactive_is_connection_error_540(connection, channel):
    with pytest.raises(ConnectionClosedByBroker) as closed:
        channel.flow(active=False)

    assert reply(closed) == (540, "NOT_IMPLEMENTED - active=false")
    assert connection.is_closed


def test_channel_flow_active_is_acknowledged(channel):
    assert channel.flow(active=True) is True


def test_connection_error_names_the_failing_method(amqp_url):
    with RawConnection(amqp_url) as raw:
        raw.handshake()
        raw.open_channel(1)

        raw.send_method(1, rawamqp.CHANNEL_FLOW, b"\x00")
        close = raw.expect_connection_close()

    assert close == rawamqp.Close(540, "NOT_IMPLEMENTED - active=false", *rawamqp.CHANNEL_FLOW)


@pytest.mark.parametrize("closed", [False, True], ids=["open", "closed-before-its-close-ok"])
def test_second_channel_open_on_same_channel_is_connection_error_504(amqp_url, closed):
    # Closed: the client has sent channel.close and not waited for close-ok.
    with RawConnection(amqp_url) as raw:
        raw.handshake()
        raw.open_channel(1)

        before = rawamqp.method_frame(1, rawamqp.CHANNEL_CLOSE, CLOSE_200) if closed else b""
        raw.send(before + rawamqp.method_frame(1, rawamqp.CHANNEL_OPEN, rawamqp.shortstr("")))
        close = raw.expect_connection_close()

    assert close == rawamqp.Close(504, "CHANNEL_ERROR - second 'channel.open' seen", *rawamqp.CHANNEL_OPEN)


def test_method_on_unopened_channel_is_connection_error_504(amqp_url):
    with RawConnection(amqp_url) as raw:
        raw.handshake()

        raw.send_method(2, rawamqp.QUEUE_DECLARE, b"\0\0" + rawamqp.shortstr("") + b"\x04" + rawamqp.EMPTY_TABLE)
        close = raw.expect_connection_close()

    assert close == rawamqp.Close(504, "CHANNEL_ERROR - expected 'channel.open'", *rawamqp.QUEUE_DECLARE)


def test_channel_numbers_above_channel_max_can_be_used(amqp_url):
    with RawConnection(amqp_url) as raw:
        raw.handshake(channel_max=2)

        raw.open_channel(65535)
        raw.open_channel(1000)
        raw.declare_queue(65535, unique("high-channel"))

        raw.close()


def test_opening_more_channels_than_channel_max_is_connection_error_530(amqp_url):
    with RawConnection(amqp_url) as raw:
        raw.handshake(channel_max=2)
        raw.open_channel(1)
        raw.open_channel(2)

        raw.send_method(3, rawamqp.CHANNEL_OPEN, rawamqp.shortstr(""))
        close = raw.expect_connection_close()

    text = "NOT_ALLOWED - number of channels opened (2) has reached the negotiated channel_max (2)"
    assert close == rawamqp.Close(530, text, 0, 0)


def test_a_closed_channel_no_longer_counts_against_channel_max(amqp_url):
    with RawConnection(amqp_url) as raw:
        raw.handshake(channel_max=1)
        raw.open_channel(1)
        raw.send_method(1, rawamqp.CHANNEL_CLOSE, CLOSE_200)
        raw.expect(rawamqp.CHANNEL_CLOSE_OK)

        raw.open_channel(2)
        raw.declare_queue(2, unique("freed"))

        raw.close()


def declare(channel: int, name: str, *, passive: bool = False, durable: bool = False) -> bytes:
    flags = 0b00001 if passive else 0b00010 if durable else 0b00100  # passive, durable, else exclusive
    return rawamqp.method_frame(
        channel, rawamqp.QUEUE_DECLARE, b"\0\0" + rawamqp.shortstr(name) + bytes([flags]) + rawamqp.EMPTY_TABLE
    )


def declared(durable: bool, cleanup) -> bytes:
    """A queue.declare: of a durable queue, whose declare-ok waits for the store's commit, or of an
    exclusive one."""
    return declare(1, cleanup.queue(unique("durable")), durable=True) if durable else declare(1, "")


@pytest.mark.parametrize("durable", [False, True], ids=["exclusive", "durable"])
def test_what_a_client_sends_before_channel_close_is_answered_before_close_ok(amqp_url, cleanup, durable):
    # In one write, as a client that does not wait for the declare-ok before closing sends them.
    with RawConnection(amqp_url) as raw:
        raw.handshake()
        raw.open_channel(1)

        raw.send(declared(durable, cleanup) + rawamqp.method_frame(1, rawamqp.CHANNEL_CLOSE, CLOSE_200))
        raw.expect(rawamqp.QUEUE_DECLARE_OK)
        raw.expect(rawamqp.CHANNEL_CLOSE_OK)

        raw.open_channel(1)
        raw.close()


def test_an_error_before_channel_close_closes_the_channel_and_the_close_is_still_answered(amqp_url):
    missing = unique("missing")
    with RawConnection(amqp_url) as raw:
        raw.handshake()
        raw.open_channel(1)

        raw.send(declare(1, missing, passive=True) + rawamqp.method_frame(1, rawamqp.CHANNEL_CLOSE, CLOSE_200))
        close = rawamqp.Close.decode(raw.expect(rawamqp.CHANNEL_CLOSE).arguments)
        raw.send_method(1, rawamqp.CHANNEL_CLOSE_OK)
        raw.expect(rawamqp.CHANNEL_CLOSE_OK)

        raw.open_channel(1)
        raw.close()

    assert close == rawamqp.Close(404, f"NOT_FOUND - no queue '{missing}' in vhost '/'", *rawamqp.QUEUE_DECLARE)


@pytest.mark.parametrize("durable", [False, True], ids=["exclusive", "durable"])
def test_what_a_client_sends_before_connection_close_is_answered_before_close_ok(amqp_url, cleanup, durable):
    # A channel.close among it gets no close-ok: connection.close-ok answers for every channel.
    with RawConnection(amqp_url) as raw:
        raw.handshake()
        raw.open_channel(1)
        raw.open_channel(2)

        raw.send(declared(durable, cleanup) + rawamqp.method_frame(2, rawamqp.CHANNEL_CLOSE, CLOSE_200)
                 + rawamqp.method_frame(0, rawamqp.CONNECTION_CLOSE, CLOSE_200))
        raw.expect(rawamqp.QUEUE_DECLARE_OK)
        raw.expect(rawamqp.CONNECTION_CLOSE_OK)


def test_an_error_before_connection_close_closes_its_channel_and_the_close_is_still_answered(amqp_url):
    missing = unique("missing")
    with RawConnection(amqp_url) as raw:
        raw.handshake()
        raw.open_channel(1)

        raw.send(declare(1, missing, passive=True) + rawamqp.method_frame(0, rawamqp.CONNECTION_CLOSE, CLOSE_200))
        close = rawamqp.Close.decode(raw.expect(rawamqp.CHANNEL_CLOSE).arguments)
        raw.expect(rawamqp.CONNECTION_CLOSE_OK)

    assert close == rawamqp.Close(404, f"NOT_FOUND - no queue '{missing}' in vhost '/'", *rawamqp.QUEUE_DECLARE)


def test_a_connection_error_before_connection_close_is_sent_instead_of_close_ok(amqp_url):
    with RawConnection(amqp_url) as raw:
        raw.handshake()
        raw.open_channel(1)

        raw.send(rawamqp.method_frame(1, rawamqp.CHANNEL_FLOW, b"\x00")
                 + rawamqp.method_frame(0, rawamqp.CONNECTION_CLOSE, CLOSE_200))
        close = rawamqp.Close.decode(raw.expect(rawamqp.CONNECTION_CLOSE).arguments)

    assert close == rawamqp.Close(540, "NOT_IMPLEMENTED - active=false", *rawamqp.CHANNEL_FLOW)


@pytest.mark.parametrize("durable", [False, True], ids=["exclusive", "durable"])
@pytest.mark.parametrize("error", ["second-channel-open", "heartbeat-on-a-channel"])
def test_what_a_client_sends_before_a_frame_that_breaks_the_protocol_is_answered_before_the_close(
    amqp_url, cleanup, durable, error
):
    with RawConnection(amqp_url) as raw:
        raw.handshake()
        raw.open_channel(1)

        bad = (rawamqp.method_frame(1, rawamqp.CHANNEL_OPEN, rawamqp.shortstr("")) if error == "second-channel-open"
               else rawamqp.frame(rawamqp.FRAME_HEARTBEAT, 1, b""))
        raw.send(declared(durable, cleanup) + bad)
        raw.expect(rawamqp.QUEUE_DECLARE_OK)
        close = raw.expect_connection_close(wait_for_eof=False)

    assert close.reply_code == (504 if error == "second-channel-open" else 505)
