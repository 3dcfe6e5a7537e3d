"""Floods: many queues on one connection, many connections with many channels, and a publisher
flood with no consumer held under the memory limit. Each ends with the broker still serving.

The clients are raw sockets that pipeline their frames, so the broker, not a client's round
trips, is what is exercised. Figures (times, RSS) are measured by hand, never asserted here.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Callable

import pika
import pytest

from amqpbroker.protocol import spec
from amqpbroker.protocol._frames import content_frames, method_frame
from amqpbroker.testing import Broker

from .raw import FrameReader, handshake

WAIT_SECONDS = 60
QUEUES = 10_000
CONNECTIONS = 1_000
CHANNELS = 10
MEMORY_LIMIT = 8 * 1024 * 1024
BODY = 64 * 1024


def wait_until(predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def still_serves(broker: Broker) -> None:
    params = pika.URLParameters(broker.url)
    params.blocked_connection_timeout = WAIT_SECONDS  # a failure, not a hang, if it stays blocked
    connection = pika.BlockingConnection(params)
    channel = connection.channel()
    channel.confirm_delivery()
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.basic_publish("", queue, b"still serving")
    _method, _properties, body = channel.basic_get(queue, auto_ack=True)
    assert body == b"still serving"
    connection.close()


def open_channels(port: int, channels: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(handshake(channel_max=channels) + b"".join(
        method_frame(n, spec.ChannelOpen().encode()) for n in range(1, channels + 1)))
    return sock


@pytest.mark.slow
def test_ten_thousand_queues_on_one_connection() -> None:
    with Broker(port=0) as broker:
        with socket.create_connection(("127.0.0.1", broker.port)) as sock:
            sock.settimeout(WAIT_SECONDS)
            sock.sendall(handshake() + method_frame(1, spec.ChannelOpen().encode()) + b"".join(
                method_frame(1, spec.QueueDeclare(queue=f"flood-{n}").encode()) for n in range(QUEUES)))
            declared = []
            for _channel, method in FrameReader(sock).methods():
                if isinstance(method, spec.QueueDeclareOk):
                    declared.append(method.queue)
                    if len(declared) == QUEUES:
                        break
                assert not isinstance(method, (spec.ChannelClose, spec.ConnectionClose)), method
            assert declared == [f"flood-{n}" for n in range(QUEUES)]
            assert broker.call(lambda: len(broker.server.broker.vhosts["/"].queues)) == QUEUES
            still_serves(broker)


@pytest.mark.slow
def test_a_thousand_connections_with_ten_channels_each() -> None:
    with Broker(port=0) as broker:
        sockets = [open_channels(broker.port, CHANNELS) for _ in range(CONNECTIONS)]
        try:
            for sock in sockets:
                sock.settimeout(WAIT_SECONDS)
                opened = 0
                for channel, method in FrameReader(sock).methods():
                    assert not isinstance(method, spec.ConnectionClose), method
                    if isinstance(method, spec.ChannelOpenOk):
                        opened += 1
                        if opened == CHANNELS:
                            break
                assert opened == CHANNELS
            assert broker.call(lambda: len(broker.server.connections)) == CONNECTIONS
            still_serves(broker)
        finally:
            for sock in sockets:
                sock.close()
        wait_until(lambda: broker.call(lambda: len(broker.server.connections)) == 0)
        still_serves(broker)


@pytest.mark.slow
def test_publisher_flood_without_consumers_is_held_under_the_memory_limit() -> None:
    with Broker(port=0, memory_limit=MEMORY_LIMIT) as broker:
        sock = socket.create_connection(("127.0.0.1", broker.port))
        sock.sendall(handshake(frame_max=131072, capabilities={"connection.blocked": True})
                     + method_frame(1, spec.ChannelOpen().encode())
                     + method_frame(1, spec.QueueDeclare(queue="flood").encode()))
        told: Counter = Counter()
        # Its own socket object, so that its timeout is not the sender's.
        incoming = sock.dup()
        incoming.settimeout(WAIT_SECONDS)
        reader = threading.Thread(target=lambda: told.update(
            type(method).__name__ for _channel, method in FrameReader(incoming).methods()), daemon=True)
        reader.start()
        publish = content_frames(1, 60, spec.BasicPublish(routing_key="flood").encode(), b"\x00\x00",
                                 bytes(BODY), 131072)
        # Far more than the limit: the broker stops reading, and then the kernel's buffers fill up.
        sock.settimeout(2)
        sent = 0
        try:
            while sent < 20 * MEMORY_LIMIT:
                sock.sendall(publish)
                sent += BODY
        except TimeoutError:
            pass
        wait_until(lambda: told["ConnectionBlocked"] == 1)
        queued = broker.call(lambda: broker.server.broker.vhosts["/"].queues["flood"].message_count)
        # The alarm goes on once the limit is crossed; what was read before is all that is queued.
        assert queued * BODY <= MEMORY_LIMIT + 2 * 1024 * 1024, queued
        assert sent > MEMORY_LIMIT

        # Deleting the queue brings memory back under the limit: the publisher is unblocked and goes
        # on. (A purge would let what the kernel still buffers of the flood, several MiB, fill the
        # queue past the limit again, and block the connection `still_serves` opens.)
        consumer = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = consumer.channel()
        channel.queue_delete("flood")
        wait_until(lambda: told["ConnectionUnblocked"] == 1)
        consumer.close()
        sock.shutdown(socket.SHUT_RDWR)  # the reader sees the end of the stream
        reader.join(WAIT_SECONDS)
        sock.close()
        incoming.close()
        still_serves(broker)
