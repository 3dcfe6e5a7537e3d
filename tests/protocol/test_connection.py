"""ServerConnection driven with byte strings: handshake, channels, content, heartbeats, closing."""

from __future__ import annotations

import pytest

from amqpbroker.protocol import (
    BasicProperties,
    ChannelClosed,
    ChannelClosing,
    ChannelOpened,
    ConnectionClosed,
    ConnectionClosing,
    ContentReceived,
    Handshaken,
    MethodReceived,
    spec,
)

from .helpers import (
    HEADER,
    HEARTBEAT,
    amqplain,
    body,
    frame,
    header,
    method,
    new_connection,
    open_channel,
    open_connection,
    publish,
    sent_methods,
    split_frames,
    start_ok,
)


def closed_with(conn, code: int) -> spec.ConnectionClose:
    """Assert that connection.close with this code is the last thing queued, once what an error
    the protocol found owes is sent, as the broker sends it after handling what came before, and
    return it."""
    conn.close_for_error()
    channel, close = sent_methods(conn.data_to_send())[-1]
    assert channel == 0 and isinstance(close, spec.ConnectionClose), close
    assert close.reply_code == code, close
    return close


# -- protocol header -------------------------------------------------------------------------------

def test_good_header_split_across_reads_gets_connection_start():
    conn = new_connection()
    assert conn.receive_data(b"AM", 0) == []
    assert conn.data_to_send() == b""
    assert conn.receive_data(b"QP\x00\x00\x09", 0) == []
    assert conn.receive_data(b"\x01", 0) == []
    [(channel, start)] = sent_methods(conn.data_to_send())
    assert channel == 0 and isinstance(start, spec.ConnectionStart)
    assert (start.version_major, start.version_minor) == (0, 9)
    assert start.mechanisms == b"PLAIN AMQPLAIN"
    assert start.locales == b"en_US"
    props = start.server_properties
    assert props["product"] == "amqpbroker" and props["platform"].startswith("Python 3.")
    assert props["capabilities"] == {
        "publisher_confirms": True, "basic.nack": True, "consumer_cancel_notify": True,
        "authentication_failure_close": True, "per_consumer_qos": True, "exchange_exchange_bindings": True,
        "direct_reply_to": True, "connection.blocked": True, "consumer_priorities": True,
    }


def test_server_properties_are_merged_over_defaults():
    conn = new_connection(server_properties={"cluster_name": "c1", "product": "x"})
    conn.receive_data(HEADER, 0)
    [(_, start)] = sent_methods(conn.data_to_send())
    assert start.server_properties["cluster_name"] == "c1"
    assert start.server_properties["product"] == "x"
    assert "capabilities" in start.server_properties


def test_header_and_start_ok_in_one_read():
    conn = new_connection()
    conn.receive_data(HEADER + start_ok(), 0)
    assert [type(m) for _, m in sent_methods(conn.data_to_send())] == [
        spec.ConnectionStart, spec.ConnectionTune]


def test_amqp_0_9_header_is_served_as_0_9_1():
    conn = new_connection()
    assert conn.receive_data(b"AMQP\x01\x01", 0) == []
    conn.receive_data(b"\x00\x09" + start_ok(), 0)
    assert [type(m) for _, m in sent_methods(conn.data_to_send())] == [spec.ConnectionStart, spec.ConnectionTune]


@pytest.mark.parametrize("data", [
    b"AMQP\x00\x01\x00\x00",     # AMQP 1.0
    b"AMQP\x03\x01\x00\x00",     # AMQP 1.0 SASL
    b"AMQP\x01\x01\x08\x00",     # 0-8
    b"AMQP\x01\x01\x09\x01",     # 0-8, as its published text writes it
    b"AMQP\x01\x01\x00\x0a",     # 0-10, old style
    b"AMQP\x00\x00\x09\x00",     # 0-9-0 in the new layout
    b"GET / HTTP/1.1\r\n\r\n",
    b"G",                        # detected at the first wrong byte
    b"AMQP\x01\x00",             # neither header continues this way
])
def test_wrong_protocol_header_gets_ours_and_closes(data):
    conn = new_connection()
    events = conn.receive_data(data, 0)
    assert len(events) == 1 and isinstance(events[0], ConnectionClosed)
    assert conn.data_to_send() == b"AMQP\x00\x00\x09\x01"
    assert conn.is_closed
    assert conn.receive_data(b"more", 0) == []


# -- authentication ----------------------------------------------------------------------------------

def started(**kwargs):
    conn = new_connection(**kwargs)
    conn.receive_data(HEADER, 0)
    conn.data_to_send()
    return conn


def test_plain_login():
    seen = []
    conn = started(authenticate=lambda u, p: seen.append((u, p)) or True)
    assert conn.receive_data(start_ok(response=b"\x00alice\x00s3cret"), 0) == []
    assert seen == [("alice", "s3cret")]
    [(_, tune)] = sent_methods(conn.data_to_send())
    assert tune == spec.ConnectionTune(channel_max=2047, frame_max=131072, heartbeat=60)
    assert conn.username == "alice"
    assert conn.client_properties["product"] == "test"
    assert conn.client_capabilities == {"authentication_failure_close": True}


def test_amqplain_login():
    seen = []
    conn = started(authenticate=lambda u, p: seen.append((u, p)) or True)
    conn.receive_data(start_ok(mechanism="AMQPLAIN", response=amqplain("bob", "pw")), 0)
    assert seen == [("bob", "pw")]
    assert isinstance(sent_methods(conn.data_to_send())[0][1], spec.ConnectionTune)


def test_amqplain_with_byte_string_values():
    seen = []
    conn = started(authenticate=lambda u, p: seen.append((u, p)) or True)
    conn.receive_data(start_ok(mechanism="AMQPLAIN", response=amqplain(b"bob", b"pw")), 0)
    assert seen == [("bob", "pw")]


def test_bad_password_with_authentication_failure_close():
    conn = started()
    events = conn.receive_data(start_ok(response=b"\x00guest\x00wrong"), 0)
    text = ("ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
            "For details see the broker logfile.")
    assert events == [ConnectionClosing(403, text)]
    close = closed_with(conn, 403)
    assert (close.reply_text, close.class_id, close.method_id) == (text, 0, 0)
    assert not conn.is_closed
    assert conn.receive_data(method(0, spec.ConnectionCloseOk()), 1) == [ConnectionClosed(403, text)]
    assert conn.is_closed


def test_bad_password_without_the_capability_just_closes():
    conn = started()
    events = conn.receive_data(start_ok(response=b"\x00guest\x00wrong", capabilities={}), 0)
    assert len(events) == 1 and isinstance(events[0], ConnectionClosed) and events[0].reply_code == 403
    assert conn.data_to_send() == b""
    assert conn.is_closed


@pytest.mark.parametrize("mechanism, response", [
    ("PLAIN", b"guest\x00guest"),
    ("PLAIN", b"\x00gu\xffest\x00guest"),
    ("AMQPLAIN", b"\x05LOGIN"),
    ("AMQPLAIN", amqplain("guest", 5)),
])
def test_malformed_responses_are_refused(mechanism, response):
    conn = started(authenticate=lambda u, p: True)
    events = conn.receive_data(start_ok(mechanism=mechanism, response=response), 0)
    assert [type(e) for e in events] == [ConnectionClosing]
    closed_with(conn, 403)


def test_unknown_mechanism():
    conn = started()
    events = conn.receive_data(start_ok(mechanism="EXTERNAL", response=b""), 0)
    assert events == [ConnectionClosing(503, "COMMAND_INVALID - unknown authentication mechanism 'EXTERNAL'")]
    closed_with(conn, 503)


def test_external_is_offered_with_a_certificate_login_and_logs_that_user_in():
    seen = []
    conn = new_connection(certificate_login="carol", authenticate_external=lambda user: seen.append(user) or True)
    conn.receive_data(HEADER, 0)
    [(_, start)] = sent_methods(conn.data_to_send())
    assert start.mechanisms == b"PLAIN AMQPLAIN EXTERNAL"
    conn.receive_data(start_ok(mechanism="EXTERNAL", response=b"ignored"), 0)
    assert seen == ["carol"] and conn.username == "carol"
    assert isinstance(sent_methods(conn.data_to_send())[0][1], spec.ConnectionTune)


def test_external_refused_as_rabbitmq_refuses_it():
    conn = started(certificate_login="nobody", authenticate_external=lambda user: False)
    events = conn.receive_data(start_ok(mechanism="EXTERNAL", response=b""), 0)
    text = ("ACCESS_REFUSED - Login was refused using authentication mechanism EXTERNAL. "
            "For details see the broker logfile.")
    assert events == [ConnectionClosing(403, text)]


def test_method_other_than_start_ok_during_handshake():
    conn = started()
    events = conn.receive_data(method(0, spec.ConnectionOpen("/")), 0)
    assert events == [ConnectionClosing(504, "CHANNEL_ERROR - unexpected method in connection state starting")]


def test_channel_open_before_handshake():
    conn = started()
    conn.receive_data(method(1, spec.ChannelOpen()), 0)
    closed_with(conn, 504)


# -- tune and open -----------------------------------------------------------------------------------

def tuned(channel_max=2047, frame_max=131072, heartbeat=60):
    conn = started()
    conn.receive_data(start_ok(), 0)
    conn.data_to_send()
    return conn, conn.receive_data(
        method(0, spec.ConnectionTuneOk(channel_max=channel_max, frame_max=frame_max, heartbeat=heartbeat)), 0)


@pytest.mark.parametrize("channel_max, frame_max", [
    (0, 131072), (2048, 131072), (2047, 0), (2047, 4095), (2047, 131073),
])
def test_tune_ok_out_of_range(channel_max, frame_max):
    conn, events = tuned(channel_max=channel_max, frame_max=frame_max)
    assert [type(e) for e in events] == [ConnectionClosing]
    assert events[0].reply_code == 530 and "negotiated" in events[0].reply_text
    close = closed_with(conn, 530)
    assert (close.class_id, close.method_id) == (10, 31)


def test_tune_ok_values_are_taken():
    conn, events = tuned(channel_max=10, frame_max=4096, heartbeat=0)
    assert events == []
    assert (conn.channel_max, conn.frame_max, conn.heartbeat) == (10, 4096, 0)


def test_tune_ok_heartbeat_taken_as_is():
    conn, _ = tuned(heartbeat=600)
    assert conn.heartbeat == 600


def test_open_vhost():
    conn, _ = tuned()
    events = conn.receive_data(method(0, spec.ConnectionOpen("/")), 0)
    assert events == [Handshaken("/", "guest", conn.client_properties)]
    assert sent_methods(conn.data_to_send()) == [(0, spec.ConnectionOpenOk())]
    assert conn.vhost == "/"


def test_vhost_refused():
    conn, _ = tuned()
    events = conn.receive_data(method(0, spec.ConnectionOpen("/x")), 0)
    text = "NOT_ALLOWED - access to vhost '/x' refused for user 'guest'"
    assert events == [ConnectionClosing(530, text)]
    close = closed_with(conn, 530)
    assert (close.reply_text, close.class_id, close.method_id) == (text, 10, 40)


def test_missing_vhost():
    conn = started(vhost_exists=lambda vhost: vhost == "/")
    conn.receive_data(start_ok(), 0)
    conn.receive_data(method(0, spec.ConnectionTuneOk(2047, 131072, 60)), 0)
    conn.data_to_send()
    events = conn.receive_data(method(0, spec.ConnectionOpen("/nope")), 0)
    assert events == [ConnectionClosing(530, "NOT_ALLOWED - vhost /nope not found")]
    close = closed_with(conn, 530)
    assert (close.class_id, close.method_id) == (10, 40)


def test_a_connection_refused_by_a_limit_is_closed_with_its_text():
    asked = []

    def refusal(user, vhost):
        asked.append((user, vhost))
        return "connection limit (0) is reached"

    # The limit is asked before the permission, which would refuse '/x' too.
    conn = started(connection_refusal=refusal)
    conn.receive_data(start_ok(), 0)
    conn.receive_data(method(0, spec.ConnectionTuneOk(2047, 131072, 60)), 0)
    conn.data_to_send()
    events = conn.receive_data(method(0, spec.ConnectionOpen("/x")), 0)
    assert asked == [("guest", "/x")]
    assert events == [ConnectionClosing(530, "NOT_ALLOWED - connection limit (0) is reached")]
    close = closed_with(conn, 530)
    assert (close.class_id, close.method_id) == (10, 40)


# -- channels ------------------------------------------------------------------------------------------

def test_channel_open_and_client_close():
    conn = open_connection()
    assert conn.receive_data(method(1, spec.ChannelOpen()), 0) == [ChannelOpened(1)]
    assert conn.data_to_send() == b"\x01\x00\x01\x00\x00\x00\x08\x00\x14\x00\x0b\x00\x00\x00\x00\xce"
    events = conn.receive_data(method(1, spec.ChannelClose(200, "bye", 0, 0)), 0)
    assert events == [ChannelClosed(1)]
    conn.answer_channel_close(1)
    assert sent_methods(conn.data_to_send()) == [(1, spec.ChannelCloseOk())]
    conn.answer_channel_close(1)  # answered once
    assert conn.data_to_send() == b""
    assert conn.receive_data(method(1, spec.ChannelOpen()), 0) == [ChannelOpened(1)]


def test_replies_to_what_came_before_a_channel_close_precede_its_close_ok():
    # As RabbitMQ: a method and channel.close in one read get the method's reply, then close-ok.
    conn = open_connection()
    open_channel(conn, 1)
    declare = spec.QueueDeclare(queue="q")
    events = conn.receive_data(method(1, declare) + method(1, spec.ChannelClose(200, "bye", 0, 0)), 0)
    assert events == [MethodReceived(1, declare), ChannelClosed(1)]
    assert conn.data_to_send() == b""
    conn.send_method(1, spec.QueueDeclareOk(queue="q", message_count=0, consumer_count=0))
    conn.answer_channel_close(1)
    assert sent_methods(conn.data_to_send()) == [
        (1, spec.QueueDeclareOk(queue="q", message_count=0, consumer_count=0)),
        (1, spec.ChannelCloseOk()),
    ]


def test_a_channel_closed_by_the_client_is_not_reopened_before_its_close_ok():
    conn = open_connection()
    open_channel(conn, 1)
    conn.receive_data(method(1, spec.ChannelClose(200, "bye", 0, 0)), 0)
    # What else the client sends on it is dropped, but a channel.open, as in RabbitMQ.
    assert conn.receive_data(method(1, spec.BasicQos(prefetch_count=1)), 0) == []
    events = conn.receive_data(method(1, spec.ChannelOpen()), 0)
    assert events == [ConnectionClosing(504, "CHANNEL_ERROR - second 'channel.open' seen")]
    close = closed_with(conn, 504)
    assert (close.class_id, close.method_id) == (20, 10)


def test_an_error_before_the_clients_channel_close_is_sent_and_then_close_ok():
    # As RabbitMQ: what the client sent before its close failed, so the broker closes the channel
    # too; the client's close-ok for that is dropped, and its own close is answered.
    conn = open_connection()
    open_channel(conn, 1)
    conn.receive_data(method(1, spec.QueueDeclare(queue="q", passive=True)) + method(1, spec.ChannelClose(200, "", 0, 0)), 0)
    conn.close_channel(1, 404, "NOT_FOUND - no queue 'q'", 50, 10)
    conn.answer_channel_close(1)
    assert sent_methods(conn.data_to_send()) == [
        (1, spec.ChannelClose(404, "NOT_FOUND - no queue 'q'", 50, 10)),
        (1, spec.ChannelCloseOk()),
    ]
    assert conn.receive_data(method(1, spec.ChannelCloseOk()), 0) == []
    assert conn.receive_data(method(1, spec.ChannelOpen()), 0) == [ChannelOpened(1)]


def test_second_channel_open():
    conn = open_connection()
    open_channel(conn, 1)
    events = conn.receive_data(method(1, spec.ChannelOpen()), 0)
    assert events == [ConnectionClosing(504, "CHANNEL_ERROR - second 'channel.open' seen")]
    closed_with(conn, 504)


def test_method_on_unopened_channel():
    conn = open_connection()
    events = conn.receive_data(method(5, spec.QueueDeclare(queue="q")), 0)
    assert events == [ConnectionClosing(504, "CHANNEL_ERROR - expected 'channel.open'")]
    close = closed_with(conn, 504)
    assert (close.class_id, close.method_id) == (50, 10)


def test_content_frame_on_unopened_channel():
    conn = open_connection()
    conn.receive_data(header(5, 0), 0)
    closed_with(conn, 504)


def test_channel_open_on_channel_0():
    conn = open_connection()
    events = conn.receive_data(method(0, spec.ChannelOpen()), 0)
    assert events == [ConnectionClosing(504, "CHANNEL_ERROR - unexpected method in connection state running")]


def test_channel_numbers_above_channel_max_can_be_opened():
    conn = open_connection(channel_max=2)
    events = conn.receive_data(method(65535, spec.ChannelOpen()) + method(11, spec.ChannelOpen()), 0)
    assert events == [ChannelOpened(65535), ChannelOpened(11)]


def test_channel_max_limits_how_many_channels_are_open():
    conn = open_connection(channel_max=2)
    open_channel(conn, 7)
    open_channel(conn, 1000)
    conn.close_channel(7, 406, "PRECONDITION_FAILED - x")
    conn.data_to_send()
    # A channel we are closing still counts until its close-ok.
    events = conn.receive_data(method(3, spec.ChannelOpen()), 0)
    text = "NOT_ALLOWED - number of channels opened (2) has reached the negotiated channel_max (2)"
    assert events == [ConnectionClosing(530, text)]
    close = closed_with(conn, 530)
    assert (close.reply_text, close.class_id, close.method_id) == (text, 0, 0)


def test_a_channel_refused_by_a_limit_closes_the_connection_without_open_ok():
    refusals = {"guest": None}
    conn = open_connection(channel_refusal=refusals.get)
    open_channel(conn, 1)
    refusals["guest"] = "channel limit reached"
    events = conn.receive_data(method(2, spec.ChannelOpen()), 0)
    assert events == [ConnectionClosing(530, "NOT_ALLOWED - channel limit reached")]
    conn.close_for_error()
    sent = sent_methods(conn.data_to_send())
    assert [type(m) for _, m in sent] == [spec.ConnectionClose]
    assert (sent[0][1].class_id, sent[0][1].method_id) == (0, 0)


def test_a_closed_channel_frees_its_place():
    conn = open_connection(channel_max=1)
    open_channel(conn, 5)
    conn.receive_data(method(5, spec.ChannelClose(200, "", 0, 0)), 0)
    conn.answer_channel_close(5)
    assert conn.receive_data(method(6, spec.ChannelOpen()), 0) == [ChannelOpened(6)]


def test_methods_reach_the_broker():
    conn = open_connection()
    open_channel(conn)
    declare = spec.QueueDeclare(queue="q", durable=True, arguments={"x-max-length": 1})
    events = conn.receive_data(
        method(1, declare) + method(1, spec.ChannelFlow(active=False)) + method(1, spec.BasicAck(delivery_tag=3)), 0)
    assert events == [MethodReceived(1, declare), MethodReceived(1, spec.ChannelFlow(active=False)),
                      MethodReceived(1, spec.BasicAck(delivery_tag=3))]
    assert conn.data_to_send() == b""


@pytest.mark.parametrize("m", [spec.ConnectionOpen("/"), spec.ConnectionUpdateSecret(b"t", "r")])
def test_connection_method_on_a_channel(m):
    conn = open_connection()
    open_channel(conn)
    events = conn.receive_data(method(1, m), 0)
    assert events == [ConnectionClosing(503, "COMMAND_INVALID - unimplemented method")]
    close = closed_with(conn, 503)
    assert (close.class_id, close.method_id) == (m.CLASS_ID, m.METHOD_ID)


def test_unexpected_connection_method_when_running():
    conn = open_connection()
    events = conn.receive_data(method(0, spec.ConnectionTuneOk(10, 4096, 0)), 0)
    assert events == [ConnectionClosing(504, "CHANNEL_ERROR - unexpected method in connection state running")]


def test_update_secret_is_answered_with_update_secret_ok():
    conn = open_connection()
    open_channel(conn)
    events = conn.receive_data(method(0, spec.ConnectionUpdateSecret(b"new-token", "token refreshed")), 0)
    assert events == []
    assert conn.data_to_send() == b"\x01\x00\x00\x00\x00\x00\x04\x00\x0a\x00\x47\xce"
    declare = spec.QueueDeclare(queue="q")
    assert conn.receive_data(method(1, declare), 0) == [MethodReceived(1, declare)]


def test_update_secret_before_open_is_unexpected():
    conn, _ = tuned()
    events = conn.receive_data(method(0, spec.ConnectionUpdateSecret(b"t", "r")), 0)
    assert events == [ConnectionClosing(504, "CHANNEL_ERROR - unexpected method in connection state opening")]
    close = closed_with(conn, 504)
    assert (close.class_id, close.method_id) == (10, 70)


def test_server_channel_close_discards_until_close_ok():
    conn = open_connection()
    open_channel(conn, 1)
    conn.close_channel(1, 404, "NOT_FOUND - no queue 'q'", 50, 10)
    assert sent_methods(conn.data_to_send()) == [
        (1, spec.ChannelClose(404, "NOT_FOUND - no queue 'q'", 50, 10))]
    # In flight from the client: a method, a whole publish, even a channel.open: all dropped.
    events = conn.receive_data(method(1, spec.BasicAck(delivery_tag=1)) + publish(1, b"x")
                               + method(1, spec.ChannelOpen()) + frame(1, 1, b"\xff\xff\xff\xff"), 0)
    assert events == [] and conn.data_to_send() == b""
    assert conn.receive_data(method(1, spec.ChannelCloseOk()), 0) == []
    assert conn.receive_data(method(1, spec.ChannelOpen()), 0) == [ChannelOpened(1)]


def test_server_closes_with_reply_texts_longer_than_a_short_string():
    conn = open_connection()
    open_channel(conn, 1)
    text = "NOT_FOUND - no queue '" + "q" * 255 + "' in vhost '/'"
    conn.close_channel(1, 404, text, 50, 10)
    conn.close(320, "CONNECTION_FORCED - " + text)
    assert sent_methods(conn.data_to_send()) == [
        (1, spec.ChannelClose(404, text[:252] + "...", 50, 10)),
        (0, spec.ConnectionClose(320, ("CONNECTION_FORCED - " + text)[:252] + "...", 0, 0)),
    ]


def test_server_and_client_close_a_channel_at_once():
    conn = open_connection()
    open_channel(conn, 1)
    conn.close_channel(1, 406, "PRECONDITION_FAILED - x")
    conn.data_to_send()
    assert conn.receive_data(method(1, spec.ChannelClose(200, "", 0, 0)), 0) == []
    assert sent_methods(conn.data_to_send()) == [(1, spec.ChannelCloseOk())]
    # The client's close-ok for our close arrives late and is ignored.
    assert conn.receive_data(method(1, spec.ChannelCloseOk()), 0) == []
    assert conn.receive_data(method(1, spec.ChannelOpen()), 0) == [ChannelOpened(1)]


def test_close_channel_on_unknown_channel_is_a_no_op():
    conn = open_connection()
    conn.close_channel(9, 404, "x")
    assert conn.data_to_send() == b""


# -- content -----------------------------------------------------------------------------------------

PROPS = BasicProperties(content_type="text/plain", delivery_mode=2, headers={"a": 1}).encode()


def test_publish_assembled():
    conn = open_connection()
    open_channel(conn)
    events = conn.receive_data(publish(1, b"hello", PROPS), 0)
    assert events == [ContentReceived(1, spec.BasicPublish(routing_key="q"), PROPS, b"hello")]
    assert type(events[0].body) is bytes and type(events[0].properties) is bytes
    assert BasicProperties.decode(events[0].properties).headers == {"a": 1}


def test_zero_length_body_has_no_body_frame():
    conn = open_connection()
    open_channel(conn)
    events = conn.receive_data(method(1, spec.BasicPublish(routing_key="q")) + header(1, 0), 0)
    assert events == [ContentReceived(1, spec.BasicPublish(routing_key="q"), b"\x00\x00", b"")]


def test_body_split_across_frames_and_reads():
    conn = open_connection()
    open_channel(conn)
    data = (method(1, spec.BasicPublish(routing_key="q")) + header(1, 9, PROPS)
            + body(1, b"abc") + body(1, b"") + body(1, b"def") + body(1, b"ghi"))
    events = []
    for i in range(len(data)):
        events += conn.receive_data(data[i:i + 1], 0)
    assert events == [ContentReceived(1, spec.BasicPublish(routing_key="q"), PROPS, b"abcdefghi")]


def test_interleaved_channels():
    conn = open_connection()
    open_channel(conn, 1)
    open_channel(conn, 2)
    data = (method(1, spec.BasicPublish(routing_key="a")) + method(2, spec.BasicPublish(routing_key="b"))
            + header(2, 1) + header(1, 1) + body(1, b"1") + body(2, b"2"))
    events = conn.receive_data(data, 0)
    assert [(e.channel, e.body) for e in events] == [(1, b"1"), (2, b"2")]


@pytest.mark.parametrize("data", [
    body(1, b"x"),                                                                  # body, nothing expected
    header(1, 1),                                                                   # header, nothing expected
    method(1, spec.BasicPublish()) + body(1, b"x"),                                 # body before header
    method(1, spec.BasicPublish()) + method(1, spec.BasicAck()),                    # method before header
    method(1, spec.BasicPublish()) + header(1, 2) + method(1, spec.BasicAck()),     # method inside body
    method(1, spec.BasicPublish()) + header(1, 2) + header(1, 2),                   # second header
    method(1, spec.BasicPublish()) + header(1, 1, class_id=50),                     # wrong class
    method(1, spec.BasicPublish()) + header(1, 2) + body(1, b"xyz"),                # body too long
])
def test_unexpected_content_frames(data):
    conn = open_connection()
    open_channel(conn)
    events = conn.receive_data(data, 0)
    assert [(type(e), e.reply_code) for e in events] == [(ConnectionClosing, 505)]
    closed_with(conn, 505)


def test_short_content_header():
    conn = open_connection()
    open_channel(conn)
    conn.receive_data(method(1, spec.BasicPublish()) + frame(2, 1, b"\x00\x3c\x00\x00"), 0)
    closed_with(conn, 501)


def test_content_frames_on_channel_zero():
    conn = open_connection()
    conn.receive_data(header(0, 1), 0)
    closed_with(conn, 505)


def test_oversized_message_closes_the_channel():
    conn = open_connection(max_message_size=1000)
    open_channel(conn)
    events = conn.receive_data(method(1, spec.BasicPublish()) + header(1, 1001) + body(1, b"x" * 1001), 0)
    text = "PRECONDITION_FAILED - message size 1001 is larger than configured max size 1000"
    assert events == [ChannelClosing(1, 406, text)]
    assert sent_methods(conn.data_to_send()) == [(1, spec.ChannelClose(406, text, 60, 40))]
    assert conn.receive_data(method(1, spec.ChannelCloseOk()) + method(1, spec.ChannelOpen()), 0) == [
        ChannelOpened(1)]


def test_default_max_message_size_is_128_mib():
    conn = open_connection()
    open_channel(conn)
    events = conn.receive_data(method(1, spec.BasicPublish()) + header(1, 128 * 1024 * 1024 + 1), 0)
    assert [(type(e), e.reply_code) for e in events] == [(ChannelClosing, 406)]


def test_send_content_splits_at_negotiated_frame_max():
    conn = open_connection(frame_max=4096)
    open_channel(conn)
    deliver = spec.BasicDeliver(consumer_tag="c", delivery_tag=1, exchange="", routing_key="q")
    conn.send_content(1, deliver, PROPS, b"z" * 10000)
    frames = split_frames(conn.data_to_send())
    assert [t for t, _, _ in frames] == [1, 2, 3, 3, 3]
    assert frames[0][2] == deliver.encode()
    assert frames[1][2][12:] == PROPS
    assert [len(p) for _, _, p in frames[2:]] == [4088, 4088, 10000 - 2 * 4088]


def test_deliveries_reusing_an_encoded_consumer_tag_exchange_and_routing_key_encode_as_any_other():
    conn = open_connection()
    open_channel(conn)
    deliveries = [
        spec.BasicDeliver(consumer_tag=tag, delivery_tag=number, redelivered=number % 2 == 0, exchange=exchange,
                          routing_key=routing_key)
        for number, (tag, exchange, routing_key) in enumerate(
            [("c1", "", "q"), ("c1", "", "q"), ("c2", "", "q"), ("c1", "ex", "q"), ("c1", "", "ré"), ("", "", "")],
            start=1,
        )
    ] + [spec.BasicDeliver(consumer_tag="c1", delivery_tag=2**63, exchange="", routing_key="q")]
    for deliver in deliveries:
        conn.send_content(1, deliver, PROPS, b"body")
    frames = split_frames(conn.data_to_send())
    assert [payload for kind, _, payload in frames if kind == 1] == [deliver.encode() for deliver in deliveries]


def test_large_bodies_are_queued_as_slices_of_themselves_between_joined_frames():
    body = bytes(range(256)) * 1200  # 307,200 bytes: three body frames at frame_max 131072
    deliver = spec.BasicDeliver(consumer_tag="c", delivery_tag=1, exchange="", routing_key="q")
    sent = []
    for take in ("buffers_to_send", "data_to_send"):
        conn = open_connection()
        open_channel(conn)
        conn.send_method(1, spec.BasicAck(delivery_tag=1))
        conn.send_content(1, deliver, PROPS, b"small")
        conn.send_content(1, deliver, PROPS, body)
        conn.send_method(1, spec.BasicAck(delivery_tag=2))
        sent.append(getattr(conn, take)())
    buffers, data = sent
    slices = [buffer for buffer in buffers if isinstance(buffer, memoryview)]
    # The last piece, under SCATTER_MIN, is cheaper joined with the frames around it.
    assert [len(piece) for piece in slices] == [131064, 131064]
    assert all(piece.obj is body for piece in slices), "a body piece was copied"
    assert len(buffers) == 2 * len(slices) + 1, "the frames between the pieces were not joined"
    assert b"".join(buffers) == data
    assert b"".join(payload for kind, _, payload in split_frames(data) if kind == 3) == b"small" + body


def test_small_bodies_are_queued_joined_into_one_buffer():
    conn = open_connection()
    open_channel(conn)
    deliver = spec.BasicDeliver(consumer_tag="c", delivery_tag=1, exchange="", routing_key="q")
    for _ in range(3):
        conn.send_content(1, deliver, PROPS, b"x" * 1000)
    [buffer] = conn.buffers_to_send()
    assert isinstance(buffer, bytes) and len(split_frames(buffer)) == 9
    assert conn.buffers_to_send() == []


def test_send_method():
    conn = open_connection()
    open_channel(conn)
    conn.send_method(1, spec.BasicAck(delivery_tag=1))
    conn.send_method(1, spec.BasicAck(delivery_tag=2))
    assert sent_methods(conn.data_to_send()) == [(1, spec.BasicAck(delivery_tag=1)), (1, spec.BasicAck(delivery_tag=2))]
    assert conn.data_to_send() == b""


def test_nothing_is_sent_on_a_channel_after_its_close_ok():
    conn = open_connection()
    open_channel(conn)
    conn.receive_data(method(1, spec.ChannelClose(reply_code=200, reply_text="bye")), 0.0)
    conn.answer_channel_close(1)
    assert sent_methods(conn.data_to_send()) == [(1, spec.ChannelCloseOk())]
    deliver = spec.BasicDeliver(consumer_tag="c", delivery_tag=1, exchange="", routing_key="q")
    conn.send_method(1, spec.QueueDeclareOk(queue="q", message_count=0, consumer_count=0))
    conn.send_content(1, deliver, PROPS, b"late")
    conn.send_method(0, spec.ConnectionBlocked(reason="low on memory"))
    assert sent_methods(conn.data_to_send()) == [(0, spec.ConnectionBlocked(reason="low on memory"))]


# -- frame errors ----------------------------------------------------------------------------------------

def test_oversize_frame():
    conn = open_connection(frame_max=4096)
    open_channel(conn)
    events = conn.receive_data(method(1, spec.BasicPublish()) + header(1, 5000) + body(1, b"x" * 4097), 0)
    assert [(type(e), e.reply_code) for e in events] == [(ConnectionClosing, 501)]
    closed_with(conn, 501)


def test_frame_max_before_tune_is_8192():
    conn = started()
    events = conn.receive_data(b"\x01\x00\x00\x00\x00\x20\x01", 0)
    assert [e.reply_code for e in events] == [501]


def test_bad_frame_end():
    conn = open_connection()
    events = conn.receive_data(HEARTBEAT[:-1] + b"\x00", 0)
    assert [e.reply_code for e in events] == [501]
    closed_with(conn, 501)


def test_unknown_frame_type():
    conn = open_connection()
    assert [e.reply_code for e in conn.receive_data(frame(5, 0, b""), 0)] == [501]


def test_unknown_method():
    conn = open_connection()
    open_channel(conn)
    events = conn.receive_data(frame(1, 1, b"\x00\x1e\x00\x0a\x00"), 0)   # access.request
    assert [e.reply_code for e in events] == [540]
    close = closed_with(conn, 540)
    assert (close.class_id, close.method_id) == (30, 10)


@pytest.mark.parametrize("payload", [b"\x00", b"\x00\x32\x00\x0a\x00", b"\x00\x3c\x00\x50" + b"\x00" * 10])
def test_malformed_method(payload):
    conn = open_connection()
    open_channel(conn)
    assert [e.reply_code for e in conn.receive_data(frame(1, 1, payload), 0)] == [501]


def test_heartbeat_on_a_channel():
    # RabbitMQ's code (the spec says 501), on a channel open or not.
    conn = open_connection()
    open_channel(conn)
    assert [e.reply_code for e in conn.receive_data(frame(8, 1, b""), 0)] == [505]
    conn = open_connection()
    assert [e.reply_code for e in conn.receive_data(frame(8, 3, b""), 0)] == [505]


# -- heartbeats --------------------------------------------------------------------------------------------

def test_heartbeat_sent_when_nothing_else_was():
    conn = open_connection(heartbeat=60)
    open_channel(conn)
    assert conn.tick(29) == [] and conn.data_to_send() == b""
    assert conn.tick(30) == [] and conn.data_to_send() == HEARTBEAT
    assert conn.tick(45) == [] and conn.data_to_send() == b""
    conn.send_method(1, spec.BasicAck())
    conn.receive_data(HEARTBEAT, 55)
    conn.data_to_send()        # sent at 55
    assert conn.tick(80) == [] and conn.data_to_send() == b""
    assert conn.tick(85) == [] and conn.data_to_send() == HEARTBEAT


def test_peer_timeout():
    conn = open_connection(heartbeat=60)
    conn.receive_data(HEARTBEAT, 100)       # any bytes reset the receive timer
    assert conn.tick(220) == []
    assert conn.tick(220.5) == [ConnectionClosed(0, "missed heartbeats from client, timeout: 60s")]
    assert conn.is_closed
    assert conn.tick(300) == []


def test_heartbeats_go_on_while_the_clients_close_waits_and_its_own_are_not_due():
    # As RabbitMQ, which keeps a client whose close it has not read yet (an alarm) alive.
    conn = open_connection(heartbeat=60)
    conn.receive_data(method(0, spec.ConnectionClose(200, "bye", 0, 0)), 0)
    assert conn.tick(29) == [] and conn.data_to_send() == b""
    assert conn.tick(30) == [] and conn.data_to_send() == HEARTBEAT
    assert conn.tick(500) == [] and conn.data_to_send() == HEARTBEAT
    conn.answer_close()
    assert sent_methods(conn.data_to_send()) == [(0, spec.ConnectionCloseOk())]
    assert conn.tick(1000) == [] and conn.data_to_send() == b""


def test_heartbeats_off():
    conn = open_connection(heartbeat=0)
    assert conn.tick(10_000) == [] and conn.data_to_send() == b""


# -- closing ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("heartbeat", "linger"), [(60, 30.0), (0, 30.0), (5, 5)])
def test_client_closes_connection_and_the_socket_is_left_for_it_to_close(heartbeat, linger):
    # As RabbitMQ: the socket stays open for the negotiated heartbeat, at most 30 s, for the client
    # to close it after reading close-ok.
    conn = open_connection(heartbeat=heartbeat)
    events = conn.receive_data(method(0, spec.ConnectionClose(200, "Normal shutdown", 0, 0)), 0)
    assert events == [ConnectionClosed(200, "Normal shutdown", linger)]
    conn.answer_close()
    assert sent_methods(conn.data_to_send()) == [(0, spec.ConnectionCloseOk())]
    assert conn.is_closed
    # What the client sent after its close is dropped, and nothing more is sent.
    open_channel(conn)
    assert conn.receive_data(method(1, spec.BasicQos(prefetch_count=1)), 1) == []
    assert conn.data_to_send() == b"" and conn.tick(100) == []


def test_replies_to_what_came_before_a_connection_close_precede_its_close_ok():
    # As RabbitMQ: a method and connection.close in one read get the method's reply, then close-ok;
    # a channel.close among them gets no close-ok.
    conn = open_connection()
    open_channel(conn, 1)
    open_channel(conn, 2)
    declare = spec.QueueDeclare(queue="q")
    events = conn.receive_data(
        method(1, declare) + method(2, spec.ChannelClose(200, "", 0, 0))
        + method(0, spec.ConnectionClose(200, "bye", 0, 0)), 0)
    assert events == [MethodReceived(1, declare), ChannelClosed(2), ConnectionClosed(200, "bye", 30.0)]
    assert conn.data_to_send() == b""
    conn.send_method(1, spec.QueueDeclareOk(queue="q", message_count=0, consumer_count=0))
    conn.answer_channel_close(2)
    conn.answer_close()
    conn.send_method(1, spec.BasicAck(delivery_tag=1))  # nothing after close-ok
    assert sent_methods(conn.data_to_send()) == [
        (1, spec.QueueDeclareOk(queue="q", message_count=0, consumer_count=0)),
        (0, spec.ConnectionCloseOk()),
    ]


def test_an_error_before_the_clients_connection_close_is_sent_before_close_ok():
    # As RabbitMQ: a channel error closes the channel, then close-ok; a connection error is sent
    # instead of close-ok.
    conn = open_connection()
    open_channel(conn, 1)
    conn.receive_data(method(1, spec.QueueDeclare(queue="q", passive=True)) + method(0, spec.ConnectionClose(200, "", 0, 0)), 0)
    assert conn.close_owed
    conn.close_channel(1, 404, "NOT_FOUND - no queue 'q'", 50, 10)
    conn.answer_close()
    assert sent_methods(conn.data_to_send()) == [
        (1, spec.ChannelClose(404, "NOT_FOUND - no queue 'q'", 50, 10)),
        (0, spec.ConnectionCloseOk()),
    ]
    conn = open_connection()
    open_channel(conn, 1)
    conn.receive_data(method(1, spec.ChannelFlow(active=False)) + method(0, spec.ConnectionClose(200, "", 0, 0)), 0)
    conn.close(540, "NOT_IMPLEMENTED - active=false", 20, 20)
    conn.answer_close()
    assert sent_methods(conn.data_to_send()) == [(0, spec.ConnectionClose(540, "NOT_IMPLEMENTED - active=false", 20, 20))]
    assert conn.is_closed and not conn.close_owed


def test_a_connection_that_ends_before_the_close_for_its_error_is_sent_stays_ended():
    # Found by the stateful fuzzer: the client went away (EOF here; silence is the same) while the
    # broker still handled what came before its error.
    conn = open_connection()
    open_channel(conn, 1)
    assert [type(e) for e in conn.receive_data(frame(8, 1, b""), 0)] == [ConnectionClosing]
    assert [type(e) for e in conn.receive_data(b"", 1)] == [ConnectionClosed]
    conn.close_for_error()
    assert conn.is_closed and conn.data_to_send() == b""


def test_server_closes_connection():
    conn = open_connection()
    open_channel(conn)
    conn.close(320, "CONNECTION_FORCED - broker shutdown")
    assert sent_methods(conn.data_to_send()) == [(0, spec.ConnectionClose(320, "CONNECTION_FORCED - broker shutdown", 0, 0))]
    conn.send_method(1, spec.BasicAck())   # nothing but close-ok may follow a close
    assert conn.data_to_send() == b""
    events = conn.receive_data(publish(1, b"x") + method(1, spec.ChannelOpen()) + frame(1, 0, b"\xff"), 0)
    assert events == [] and conn.data_to_send() == b""
    events = conn.receive_data(method(0, spec.ConnectionCloseOk()), 0)
    assert events == [ConnectionClosed(320, "CONNECTION_FORCED - broker shutdown")]
    assert conn.is_closed


def test_closes_cross():
    conn = open_connection()
    conn.close(320, "CONNECTION_FORCED - x")
    conn.data_to_send()
    events = conn.receive_data(method(0, spec.ConnectionClose(200, "bye", 0, 0)), 0)
    assert [type(e) for e in events] == [ConnectionClosed]
    assert sent_methods(conn.data_to_send()) == [(0, spec.ConnectionCloseOk())]


def test_no_close_ok_within_timeout():
    conn = open_connection(heartbeat=0)
    conn.close(320, "CONNECTION_FORCED - x")
    assert conn.tick(29) == []
    assert conn.tick(30) == [ConnectionClosed(320, "CONNECTION_FORCED - x")]


def test_eof():
    conn = open_connection()
    events = conn.receive_data(b"", 0)
    assert [type(e) for e in events] == [ConnectionClosed] and conn.is_closed


def test_frames_after_an_error_in_the_same_read_are_discarded():
    conn = open_connection()
    open_channel(conn)
    # A close-ok before our close is sent cannot be for it.
    events = conn.receive_data(
        method(2, spec.BasicAck()) + method(1, spec.BasicAck()) + method(0, spec.ConnectionCloseOk()), 0)
    assert [type(e) for e in events] == [ConnectionClosing]
    closed_with(conn, 504)
    assert conn.receive_data(method(0, spec.ConnectionCloseOk()), 0) == [
        ConnectionClosed(504, "CHANNEL_ERROR - expected 'channel.open'")]


def test_replies_to_what_came_before_an_error_the_protocol_finds_precede_its_close():
    # As RabbitMQ: a declare, then a heartbeat on a channel in one read: declare-ok, then the close.
    conn = open_connection()
    open_channel(conn, 1)
    declare = spec.QueueDeclare(queue="q")
    events = conn.receive_data(method(1, declare) + frame(8, 1, b""), 0)
    text = "UNEXPECTED_FRAME - heartbeat frame on channel 1"
    assert events == [MethodReceived(1, declare), ConnectionClosing(505, text)]
    assert conn.data_to_send() == b""
    conn.send_method(1, spec.QueueDeclareOk(queue="q", message_count=0, consumer_count=0))
    conn.close_for_error()
    conn.send_method(1, spec.BasicAck(delivery_tag=1))  # nothing after the close
    assert sent_methods(conn.data_to_send()) == [
        (1, spec.QueueDeclareOk(queue="q", message_count=0, consumer_count=0)),
        (0, spec.ConnectionClose(505, text, 0, 0)),
    ]
    # A connection error in what came before is sent instead: it came first.
    conn = open_connection()
    open_channel(conn, 1)
    conn.receive_data(method(1, spec.ChannelFlow(active=False)) + method(1, spec.ChannelOpen()), 0)
    conn.close(540, "NOT_IMPLEMENTED - active=false", 20, 20)
    conn.close_for_error()
    assert sent_methods(conn.data_to_send()) == [(0, spec.ConnectionClose(540, "NOT_IMPLEMENTED - active=false", 20, 20))]
    assert conn.receive_data(method(0, spec.ConnectionCloseOk()), 0) == [
        ConnectionClosed(540, "NOT_IMPLEMENTED - active=false")]
