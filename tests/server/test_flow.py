"""Publishers are blocked (connection.blocked, their publishes held) while queued bodies exceed the
memory limit, and unblocked once consumers bring it back under."""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import pika
import pytest

from amqpbroker.protocol import spec
from amqpbroker.protocol._frames import content_frames, method_frame
from amqpbroker.server.amqp import HELD_LIMIT
from amqpbroker.testing import Broker

from .blocking import wait_for, watch_blocking
from .raw import FrameReader, handshake, raw_frame

BODY = b"x" * 10_000


def fill_memory(broker: Broker, size: int) -> tuple[pika.BlockingConnection, Any]:
    """Sets off the memory alarm with one message of `size` bytes in queue "fill": the connection
    that published it, and its channel."""
    filler = pika.BlockingConnection(pika.URLParameters(broker.url))
    channel = filler.channel()
    channel.queue_declare("fill")
    channel.basic_publish("", "fill", b"x" * size)
    wait_for(lambda: broker.queue("fill").message_count == 1, filler)
    return filler, channel


def test_publisher_is_blocked_over_the_memory_limit_and_unblocked_when_drained() -> None:
    with Broker(port=0, memory_limit=100_000) as broker:
        params = pika.URLParameters(broker.url)
        publisher = pika.BlockingConnection(params)
        events = watch_blocking(publisher)
        channel = publisher.channel()
        channel.queue_declare("q")
        for _ in range(15):
            channel.basic_publish("", "q", BODY)
        wait_for(lambda: events == ["low on memory"], publisher)

        ready = broker.queue("q").message_count
        assert 10 <= ready <= 15
        for _ in range(5):
            channel.basic_publish("", "q", BODY)
        publisher.process_data_events(time_limit=0.3)
        assert broker.queue("q").message_count == ready, "a blocked publisher's message was routed"

        consumer = pika.BlockingConnection(params)
        consumer_channel = consumer.channel()
        received = 0

        def drain() -> bool:
            nonlocal received
            while consumer_channel.basic_get("q", auto_ack=True)[0] is not None:
                received += 1
            return received == 20

        wait_for(drain, publisher)  # the held publishes are routed once unblocked
        wait_for(lambda: events[-1] == "unblocked", publisher)
        assert events[:2] == ["low on memory", "unblocked"]
        consumer.close()
        publisher.close()


@pytest.mark.slow
def test_blocked_publisher_is_not_dropped_for_missed_heartbeats() -> None:
    with Broker(port=0, memory_limit=10_000) as broker:
        params = pika.URLParameters(broker.url)
        params.heartbeat = 1
        publisher = pika.BlockingConnection(params)
        events = watch_blocking(publisher)
        channel = publisher.channel()
        channel.queue_declare("q")
        channel.basic_publish("", "q", BODY)
        channel.basic_publish("", "q", BODY)
        wait_for(lambda: events == ["low on memory"], publisher)
        publisher.process_data_events(time_limit=3.5)  # well past two heartbeat intervals
        consumer = pika.BlockingConnection(pika.URLParameters(broker.url))
        consumer_channel = consumer.channel()
        wait_for(lambda: consumer_channel.basic_get("q", auto_ack=True)[0] is None, publisher)
        assert publisher.is_open
        channel.queue_declare("q", passive=True)  # the connection still works
        consumer.close()
        publisher.close()


def test_connection_that_consumes_and_publishes_can_ack_while_its_publishes_are_held() -> None:
    # The alarm is caused by this connection's own unacked deliveries: only its acks can clear it.
    with Broker(port=0, memory_limit=15_000) as broker:
        params = pika.URLParameters(broker.url)
        worker = pika.BlockingConnection(params)
        events = watch_blocking(worker)
        channel = worker.channel()
        channel.queue_declare("work")
        channel.queue_declare("results")
        delivered: list[int] = []
        channel.basic_consume("work", lambda ch, method, props, body: delivered.append(method.delivery_tag))

        producer = pika.BlockingConnection(params)
        producer_channel = producer.channel()
        producer_channel.basic_publish("", "work", BODY)
        producer_channel.basic_publish("", "work", BODY)
        wait_for(lambda: len(delivered) == 2, worker)

        channel.basic_publish("", "results", b"result")
        wait_for(lambda: events == ["low on memory"], worker)
        assert broker.queue("results").message_count == 0
        channel.basic_ack(delivered[-1], multiple=True)
        wait_for(lambda: events == ["low on memory", "unblocked"], worker)
        wait_for(lambda: broker.queue("results").message_count == 1, worker)
        producer.close()
        worker.close()


def test_held_publishes_are_bounded_and_routed_in_order_once_unblocked() -> None:
    count = 200  # 2 MB: several times what may be held
    limit = 2 * count * len(BODY)  # room for all of them once the filler is gone
    with Broker(port=0, memory_limit=limit) as broker:
        params = pika.URLParameters(broker.url)
        filler, filler_channel = fill_memory(broker, limit)

        publisher = pika.BlockingConnection(params)
        channel = publisher.channel()
        channel.queue_declare("ordered")
        for n in range(count):
            channel.basic_publish("", "ordered", n.to_bytes(4, "big") + BODY)
        publisher.process_data_events(time_limit=0.5)
        held = broker.call(lambda: max(connection.held_bytes for connection in broker.server.connections))
        # Reads stop at the limit, or at the end of the frame that crosses it (a body frame here is
        # 7 + 10,000 + 1 bytes).
        assert 0 < held <= HELD_LIMIT + len(BODY) + 8
        assert broker.queue("ordered").message_count == 0

        assert filler_channel.basic_get("fill", auto_ack=True)[0] is not None
        wait_for(lambda: broker.queue("ordered").message_count == count, publisher)
        bodies = [message.body for message in broker.messages("ordered")]
        assert [int.from_bytes(body[:4], "big") for body in bodies] == list(range(count))
        filler.close()
        publisher.close()


def test_a_client_that_sends_a_megabyte_at_once_under_an_alarm_holds_the_limit_and_a_frame() -> None:
    with Broker(port=0, memory_limit=100_000) as broker:
        filler, _ = fill_memory(broker, 100_000)

        publish = spec.BasicPublish(exchange="", routing_key="q")
        one = content_frames(1, publish.CLASS_ID, publish.encode(), b"\x00\x00", BODY, 131072)
        with socket.create_connection(("127.0.0.1", broker.port)) as sock:
            # Read by the broker as fast as it may: 100 publishes of 10 KB, all sent at once.
            sock.sendall(handshake(frame_max=131072) + method_frame(1, spec.ChannelOpen().encode()) + one * 100)
            held = 0
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                now = broker.call(lambda: max(c.held_bytes for c in broker.server.connections))
                if now and now == held:
                    break  # the reader has stopped
                held = now
                time.sleep(0.2)
            assert 0 < held <= HELD_LIMIT + len(one)
        filler.close()


@contextlib.contextmanager
def blocked_client(broker: Broker, heartbeat: int = 0) -> Iterator[tuple[socket.socket, Iterator[tuple[int, Any]]]]:
    """An open connection of raw frames that asks to be told when it is blocked: its socket, and
    the methods the broker sends it (with a `heartbeat`, its heartbeats too, as None)."""
    with socket.create_connection(("127.0.0.1", broker.port)) as sock:
        sock.settimeout(30)
        reader = FrameReader(sock).methods(heartbeats=bool(heartbeat))
        sock.sendall(handshake(frame_max=131072, capabilities={"connection.blocked": True}, heartbeat=heartbeat))
        assert next(method for channel, method in reader if channel == 0 and type(method) is spec.ConnectionOpenOk)
        yield sock, reader


def send(sock: socket.socket, *methods: spec.Method) -> None:
    """`methods` on channel 1, in one write."""
    sock.sendall(b"".join(method_frame(1, method.encode()) for method in methods))


def publish_held(sock: socket.socket, methods: Iterator[tuple[int, Any]], exchange: str, then: bytes = b"") -> None:
    """Opens channel 1 and declares queue "q", then publishes b"held" to `exchange` with routing key
    "q", and sends `then` in the same write: the alarm holds the publish, and the client is told."""
    send(sock, spec.ChannelOpen(), spec.QueueDeclare(queue="q"))
    assert [next(methods), next(methods)] == [(1, spec.ChannelOpenOk()), (1, spec.QueueDeclareOk("q", 0, 0))]
    publish = spec.BasicPublish(exchange=exchange, routing_key="q")
    sock.sendall(content_frames(1, publish.CLASS_ID, publish.encode(), b"\x00\x00", b"held", 131072) + then)
    assert next(methods) == (0, spec.ConnectionBlocked(reason="low on memory"))


def test_a_channel_closed_under_an_alarm_is_answered_after_what_the_alarm_held() -> None:
    with Broker(port=0, memory_limit=100_000) as broker:
        filler, filler_channel = fill_memory(broker, 100_000)
        with blocked_client(broker) as (sock, reader):
            # Held by the alarm, to fail once routed; the close waits behind it.
            close = spec.ChannelClose(reply_code=200, reply_text="bye")
            publish_held(sock, reader, "missing", method_frame(1, close.encode()))

            assert filler_channel.basic_get("fill", auto_ack=True)[0] is not None  # the alarm clears
            assert next(reader) == (0, spec.ConnectionUnblocked())
            # As RabbitMQ: the publish's error closes the channel, then the client's close is answered.
            assert next(reader) == (1, spec.ChannelClose(404, "NOT_FOUND - no exchange 'missing' in vhost '/'", 60, 40))
            assert next(reader) == (1, spec.ChannelCloseOk())
            send(sock, spec.ChannelCloseOk(), spec.ChannelOpen(), spec.QueueDeclare(queue="q", passive=True))
            assert next(reader) == (1, spec.ChannelOpenOk())
            assert next(reader) == (1, spec.QueueDeclareOk("q", 0, 0))
        filler.close()


def test_a_connection_closed_under_an_alarm_is_answered_once_what_the_alarm_held_is_routed() -> None:
    # As RabbitMQ, which reads nothing of a blocked publisher until the alarm clears: the publish
    # sent before the close is not lost, and the client is kept alive meanwhile.
    with Broker(port=0, memory_limit=100_000) as broker:
        filler, filler_channel = fill_memory(broker, 100_000)
        with blocked_client(broker, heartbeat=1) as (sock, reader):
            methods = ((channel, method) for channel, method in reader if method is not None)
            publish_held(sock, methods, "", raw_frame(8, 0, b"")
                         + method_frame(0, spec.ConnectionClose(reply_code=200, reply_text="bye").encode()))
            # Heartbeats, and nothing else, while the alarm is on.
            assert [next(reader), next(reader)] == [(0, None), (0, None)]
            assert broker.queue("q").message_count == 0

            assert filler_channel.basic_get("fill", auto_ack=True)[0] is not None  # the alarm clears
            assert next(methods) == (0, spec.ConnectionUnblocked())
            assert next(methods) == (0, spec.ConnectionCloseOk())
        assert broker.queue("q").message_count == 1
        filler.close()


def test_a_publisher_that_ends_its_socket_under_an_alarm_has_what_the_alarm_held_routed() -> None:
    # As RabbitMQ, which reads nothing of a blocked publisher until the alarm clears and then
    # routes what it finds in the socket, the publishes of a client that closed it meanwhile too.
    with Broker(port=0, memory_limit=100_000) as broker:
        filler, filler_channel = fill_memory(broker, 100_000)
        with blocked_client(broker) as (sock, reader):
            publish_held(sock, reader, "")
            sock.shutdown(socket.SHUT_WR)  # the broker reads the end of the socket
            wait_for(lambda: broker.call(lambda: any(
                connection.protocol.is_closed for connection in broker.server.connections)), filler)
            assert broker.queue("q").message_count == 0

            assert filler_channel.basic_get("fill", auto_ack=True)[0] is not None  # the alarm clears
            wait_for(lambda: broker.queue("q").message_count == 1, filler)
            assert [message.body for message in broker.messages("q")] == [b"held"]
            wait_for(lambda: broker.call(lambda: len(broker.server.connections)) == 1, filler)  # the filler's
        filler.close()


def test_a_channel_closed_for_an_error_under_an_alarm_answers_the_close_the_alarm_held() -> None:
    # The consumer timeout closes a channel whose publish, and close, the alarm holds: the held
    # publish goes with the channel, as RabbitMQ's channel drops what it had not handled, and the
    # client's close is answered after the broker's.
    with Broker(port=0, memory_limit=100_000, consumer_timeout=300) as broker:
        filler, filler_channel = fill_memory(broker, 100_000)
        publish = spec.BasicPublish(exchange="", routing_key="q")
        with blocked_client(broker) as (sock, reader):
            send(sock, spec.ChannelOpen(), spec.QueueDeclare(queue="q"), spec.BasicConsume(queue="fill"))
            assert [type(next(reader)[1]) for _ in range(4)] == [
                spec.ChannelOpenOk, spec.QueueDeclareOk, spec.BasicConsumeOk, spec.BasicDeliver]
            sock.sendall(content_frames(1, publish.CLASS_ID, publish.encode(), b"\x00\x00", b"held", 131072)
                         + method_frame(1, spec.ChannelClose(reply_code=200, reply_text="bye").encode()))
            assert next(reader) == (0, spec.ConnectionBlocked(reason="low on memory"))

            # The delivery goes unacknowledged past the consumer timeout.
            close = next(method for channel, method in reader if channel == 1)
            assert (type(close), close.reply_code) == (spec.ChannelClose, 406)
            assert next(reader) == (1, spec.ChannelCloseOk())
            send(sock, spec.ChannelCloseOk(), spec.ChannelOpen())
            assert next(reader) == (1, spec.ChannelOpenOk())
        assert filler_channel.basic_get("fill", auto_ack=True)[0] is not None  # requeued, and the alarm clears
        assert broker.queue("q").message_count == 0
        filler.close()


def test_a_channel_the_protocol_closes_under_an_alarm_drops_what_the_alarm_held_of_it() -> None:
    # A content header over the size limit closes the channel at once, held publish or not: the held
    # publish goes with the channel, and never reaches the channel opened again under its number.
    with Broker(port=0, memory_limit=100_000) as broker:
        filler, filler_channel = fill_memory(broker, 100_000)
        publish = spec.BasicPublish(exchange="missing", routing_key="q")
        too_large = spec.BasicPublish(exchange="", routing_key="q")
        with blocked_client(broker) as (sock, reader):
            send(sock, spec.ChannelOpen(), spec.QueueDeclare(queue="q"))
            assert [type(next(reader)[1]) for _ in range(2)] == [spec.ChannelOpenOk, spec.QueueDeclareOk]
            sock.sendall(content_frames(1, publish.CLASS_ID, publish.encode(), b"\x00\x00", b"held", 131072)
                         + method_frame(1, too_large.encode())
                         + raw_frame(2, 1, struct.pack(">HHQ", 60, 0, 1 << 30) + b"\x00\x00"))
            close = next(reader)[1]  # the protocol's, sent as it reads the header
            assert (type(close), close.reply_code) == (spec.ChannelClose, 406)
            assert next(reader) == (0, spec.ConnectionBlocked(reason="low on memory"))
            send(sock, spec.ChannelCloseOk(), spec.ChannelOpen())
            assert next(reader) == (1, spec.ChannelOpenOk())

            assert filler_channel.basic_get("fill", auto_ack=True)[0] is not None  # the alarm clears
            assert next(reader) == (0, spec.ConnectionUnblocked())
            # Nothing of the old channel's publish (its 404) reaches the new one.
            send(sock, spec.QueueDeclare(queue="q", passive=True))
            assert next(reader) == (1, spec.QueueDeclareOk("q", 0, 0))
        filler.close()
