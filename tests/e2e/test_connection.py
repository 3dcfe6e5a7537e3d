"""Connection level: authentication, vhosts, server properties, tuning, heartbeats,
protocol header negotiation, framing errors and the close handshake."""

from __future__ import annotations

import struct
import time
from urllib.parse import urlsplit, urlunsplit

import pika
import pytest

from . import rawamqp
from .rawamqp import RawConnection
from .support import round_trip, unique


def test_guest_can_connect_and_open_a_channel(connection):
    channel = connection.channel()

    assert connection.is_open
    assert channel.is_open
    connection.close()
    assert connection.is_closed


def test_wrong_password_is_refused_with_403_access_refused(amqp_params, make_params):
    params = make_params(credentials=pika.PlainCredentials(amqp_params.credentials.username, "not-the-password"))

    with pytest.raises(pika.exceptions.ProbableAuthenticationError) as refused:
        pika.BlockingConnection(params)

    assert "(403) 'ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN" in str(refused.value)


def test_unknown_user_is_refused_with_403_access_refused(make_params):
    params = make_params(credentials=pika.PlainCredentials(unique("nobody"), "guest"))

    with pytest.raises(pika.exceptions.ProbableAuthenticationError) as refused:
        pika.BlockingConnection(params)

    assert "(403) 'ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN" in str(refused.value)


def _start_ok_properties(**capabilities: bool) -> bytes:
    entries = b"".join(rawamqp.shortstr(name) + b"t" + bytes([value]) for name, value in capabilities.items())
    entry = rawamqp.shortstr("capabilities") + b"F" + struct.pack(">I", len(entries)) + entries
    return struct.pack(">I", len(entry)) + entry


def _with_wrong_password(url: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}:{unique('wrong')}@{parts.hostname}:{parts.port or 5672}"
    return urlunsplit(parts._replace(netloc=netloc))


def test_auth_failure_is_reported_with_connection_close_when_client_asks_for_it(amqp_url):
    with RawConnection(_with_wrong_password(amqp_url)) as raw:
        raw.start(_start_ok_properties(authentication_failure_close=True))

        close = rawamqp.Close.decode(raw.expect(rawamqp.CONNECTION_CLOSE).arguments)

    assert close == rawamqp.Close(
        403,
        "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.",
        0,
        0,
    )


@pytest.mark.slow
def test_auth_failure_just_closes_the_socket_when_client_did_not_ask_for_close(amqp_url):
    with RawConnection(_with_wrong_password(amqp_url)) as raw:
        raw.start()

        assert raw.read_until_closed() == b""


def test_missing_vhost_is_refused_with_530_not_allowed(make_params):
    vhost = unique("vhost")

    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as refused:
        pika.BlockingConnection(make_params(virtual_host=vhost))

    assert f"(530) 'NOT_ALLOWED - vhost {vhost} not found'" in str(refused.value)


def test_missing_vhost_close_names_connection_open(amqp_url):
    vhost = unique("vhost")
    with RawConnection(urlunsplit(urlsplit(amqp_url)._replace(path="/" + vhost))) as raw:
        raw.negotiate()
        raw.send_open()

        close = raw.expect_connection_close()

    assert close == rawamqp.Close(530, f"NOT_ALLOWED - vhost {vhost} not found", *rawamqp.CONNECTION_OPEN)


def test_close_quoting_a_255_byte_vhost_name_is_cut_to_fit(amqp_url):
    vhost = unique("vhost").ljust(255, "v")
    with RawConnection(urlunsplit(urlsplit(amqp_url)._replace(path="/" + vhost))) as raw:
        raw.negotiate()
        raw.send_open()

        close = raw.expect_connection_close()

    assert close == rawamqp.Close(530, f"NOT_ALLOWED - vhost {vhost}"[:252] + "...", *rawamqp.CONNECTION_OPEN)


def test_server_properties_advertise_capabilities_clients_gate_on(connection):
    properties = connection._impl.server_properties
    capabilities = connection._impl.server_capabilities

    for capability in (
        "publisher_confirms",
        "basic.nack",
        "consumer_cancel_notify",
        "authentication_failure_close",
        "per_consumer_qos",
        "exchange_exchange_bindings",
        "direct_reply_to",
        "connection.blocked",
        "consumer_priorities",
    ):
        assert capabilities.get(capability) is True, capability
    for text in ("product", "version", "cluster_name"):
        assert isinstance(properties[text], (str, bytes)), text
    assert connection.publisher_confirms_supported
    assert connection.basic_nack_supported
    assert connection.consumer_cancel_notify_supported


def test_tune_proposes_rabbitmq_limits(amqp_url):
    with RawConnection(amqp_url) as raw:
        raw.handshake()

        assert raw.tune == (2047, 131072, 60)


def test_client_frame_max_is_honoured_and_large_messages_still_pass(connect, make_params):
    connection = connect(make_params(frame_max=4096))
    channel = connection.channel()
    queue = channel.queue_declare("", exclusive=True).method.queue
    body = bytes(range(256)) * 4096

    channel.basic_publish("", queue, body)
    method, _, received = channel.basic_get(queue, auto_ack=True)

    assert connection._impl.params.frame_max == 4096
    assert method is not None
    assert received == body


def test_broker_splits_bodies_at_the_client_frame_max(amqp_url):
    queue = unique("frames")
    with RawConnection(amqp_url) as raw:
        raw.handshake(frame_max=4096)
        raw.open_channel(1)
        raw.declare_queue(1, queue)
        body = bytes(range(256)) * 40
        raw.publish(1, "", queue, body, body_frame_size=4088)

        _, received, chunks = raw.get(1, queue)

    assert received == body
    assert [len(chunk) for chunk in chunks] == [4088, 4088, 2064]


def test_body_frame_above_frame_max_is_connection_error_501(amqp_url):
    queue = unique("frames")
    with RawConnection(amqp_url) as raw:
        raw.handshake(frame_max=4096)
        raw.open_channel(1)
        raw.declare_queue(1, queue)
        raw.publish(1, "", queue, b"x" * 10000)

        close = raw.expect_connection_close(wait_for_eof=False)

    assert close.reply_code == 501
    assert close.reply_text.startswith("FRAME_ERROR - ")


def test_heartbeat_requested_by_client_is_used(connect, make_params):
    connection = connect(make_params(heartbeat=7))

    assert connection._impl.params.heartbeat == 7


@pytest.mark.slow
def test_broker_sends_heartbeats_and_drops_a_silent_peer(amqp_url):
    with RawConnection(amqp_url) as raw:
        raw.handshake(heartbeat=1)
        silent_since = time.monotonic()
        received = []
        with pytest.raises((rawamqp.PeerClosed, ConnectionResetError)):
            while True:
                received.append(raw.read_frame(timeout=6).type)
        silent_for = time.monotonic() - silent_since

    assert received, "the broker sent no heartbeat"
    assert set(received) == {rawamqp.FRAME_HEARTBEAT}
    assert 1.5 < silent_for < 5


@pytest.mark.slow
def test_peer_that_sends_heartbeats_stays_connected(amqp_url):
    with RawConnection(amqp_url) as raw:
        raw.handshake(heartbeat=1)
        raw.open_channel(1)
        until = time.monotonic() + 3.5
        while time.monotonic() < until:
            raw.send(rawamqp.heartbeat_frame())
            time.sleep(0.4)

        raw.declare_queue(1, unique("alive"))
        raw.close()


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(b"AMQP\x00\x01\x00\x00", id="amqp-1.0"),
        pytest.param(b"AMQP\x00\x00\x08\x00", id="amqp-0-8"),
        pytest.param(b"AMQP\x01\x01\x00\x0a", id="amqp-0-10-legacy"),
        pytest.param(b"AMQP\x00\x00\x09\x00", id="amqp-0-9-0"),
        pytest.param(b"HELLO WORLD\r\n\r\n", id="not-amqp"),
    ],
)
def test_unsupported_protocol_header_gets_our_header_and_socket_closed(amqp_url, header):
    with RawConnection(amqp_url) as raw:
        raw.send(header)

        assert raw.read_until_closed() == b"AMQP\x00\x00\x09\x01"


def test_amqp_0_9_header_is_served_as_0_9_1(amqp_url):
    with RawConnection(amqp_url, protocol_header=b"AMQP\x01\x01\x00\x09") as raw:
        raw.handshake()
        raw.open_channel(1)
        raw.declare_queue(1, unique("amqp-0-9"))

        raw.close()


def test_update_secret_is_accepted_and_the_connection_goes_on(connection, channel):
    connection.update_secret("a-refreshed-token", "token refresh")

    round_trip(channel)
    assert connection.is_open


def test_update_secret_on_a_channel_is_connection_error_503(amqp_url):
    with RawConnection(amqp_url) as raw:
        raw.handshake()
        raw.open_channel(1)

        raw.send_method(1, rawamqp.CONNECTION_UPDATE_SECRET, rawamqp.longstr(b"token") + rawamqp.shortstr("refresh"))
        close = raw.expect_connection_close()

    assert close == rawamqp.Close(503, "COMMAND_INVALID - unimplemented method", *rawamqp.CONNECTION_UPDATE_SECRET)


def test_bad_frame_end_octet_is_connection_error_501_and_others_keep_working(amqp_url, channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    get = struct.pack(">HH", *rawamqp.BASIC_GET) + b"\0\0" + rawamqp.shortstr("x") + b"\0"

    with RawConnection(amqp_url) as raw:
        raw.handshake()
        raw.open_channel(1)
        raw.send(rawamqp.frame(rawamqp.FRAME_METHOD, 1, get, end=b"\x00"))

        close = raw.expect_connection_close(wait_for_eof=False)

    assert (close.reply_code, close.class_id, close.method_id) == (501, 0, 0)
    assert close.reply_text.startswith("FRAME_ERROR - ")
    channel.basic_publish("", queue, b"still here")
    assert channel.basic_get(queue, auto_ack=True)[2] == b"still here"


def test_unknown_frame_type_is_connection_error_501(amqp_url):
    with RawConnection(amqp_url) as raw:
        raw.handshake()
        raw.open_channel(1)
        raw.send(rawamqp.frame(9, 1, b""))

        close = raw.expect_connection_close(wait_for_eof=False)

    assert close.reply_code == 501
    assert close.reply_text.startswith("FRAME_ERROR - ")


def test_client_initiated_close_is_answered_with_close_ok(amqp_url):
    with RawConnection(amqp_url) as raw:
        raw.handshake()
        raw.open_channel(1)

        raw.close()


def test_server_initiated_close_ends_after_client_close_ok(amqp_url):
    with RawConnection(amqp_url) as raw:
        raw.handshake()
        raw.open_channel(1)
        raw.send_method(1, rawamqp.CHANNEL_FLOW, b"\x00")

        close = rawamqp.Close.decode(raw.expect(rawamqp.CONNECTION_CLOSE).arguments)
        raw.send_method(0, rawamqp.CONNECTION_CLOSE_OK)

        assert raw.read_until_closed() == b""
    assert close.reply_code == 540


def test_pika_close_completes_and_connection_reports_closed(connect):
    connection = connect()
    channel = connection.channel()
    channel.queue_declare("", exclusive=True)

    connection.close()

    assert connection.is_closed
    assert channel.is_closed
