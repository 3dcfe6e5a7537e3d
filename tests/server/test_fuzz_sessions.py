"""Thousands of malformed sessions against a real broker, beside a healthy client that must not notice.

Each session is one TCP connection doing one wrong thing: random bytes, a frame cut short, an
unknown frame type, a frame larger than frame_max, a method on a channel never opened, more
channels open than channel_max, methods out of order, or a publish abandoned mid-frame. Sessions with a known verdict read the broker's
connection.close and check its reply code. Meanwhile a pika connection publishes with confirms
and consumes with manual acks; the fuzzer waits for it to complete a round after every block of
sessions, so it is shown to work throughout. At the end the broker has no connection left but the
healthy one, logged no error, and still serves a new client.
"""

from __future__ import annotations

import logging
import random
import socket
import struct
import threading
import time
from collections.abc import Callable

import pika
import pytest

from amqpbroker.protocol import spec
from amqpbroker.protocol._frames import content_frames, method_frame
from amqpbroker.testing import Broker

from .raw import HEADER, FrameReader, handshake, raw_frame

SESSIONS = 2_000
LONG_SESSIONS = 30_000
BLOCK = 100  # sessions between two checks that the healthy connection made progress
WAIT_SECONDS = 20
FUZZ_QUEUE = "fuzz"

HANDSHAKE = handshake()
CHANNEL_OPEN = method_frame(1, spec.ChannelOpen().encode())


def publish(channel: int, body: bytes, routing_key: str = FUZZ_QUEUE) -> bytes:
    return content_frames(channel, 60, spec.BasicPublish(routing_key=routing_key).encode(), b"\x00\x00", body, 4096)


# Each session kind: rng -> (bytes to send, the reply code of the connection.close it must get, or None
# when the outcome is not fixed, e.g. random bytes that may announce a frame still being awaited).
Session = tuple[bytes, int | None]


def random_bytes(rng: random.Random) -> Session:
    garbage = rng.randbytes(rng.randrange(1, 200))
    return rng.choice([b"", HEADER, HANDSHAKE, HANDSHAKE + CHANNEL_OPEN]) + garbage, None


def truncated_frame(rng: random.Random) -> Session:
    whole = rng.choice([HANDSHAKE + CHANNEL_OPEN + publish(1, rng.randbytes(rng.randrange(5000))),
                        HANDSHAKE + method_frame(1, spec.QueueDeclare(queue=FUZZ_QUEUE).encode())])
    return whole[:rng.randrange(len(whole))], None


def bad_frame_type(rng: random.Random) -> Session:
    frame_type = rng.choice([0, 4, 5, 7, 9, 65, 206, 255])
    return HANDSHAKE + raw_frame(frame_type, rng.randrange(3), b"\x00\x3c\x00\x28"), 501


def oversize_frame(rng: random.Random) -> Session:
    size = rng.choice([4097, 10_000, 2**20, 2**32 - 1])
    return HANDSHAKE + CHANNEL_OPEN + struct.pack(">BHI", rng.choice([1, 2, 3]), 1, size) + b"\x00" * 64, 501


def bad_frame_end(rng: random.Random) -> Session:
    return HANDSHAKE + method_frame(0, spec.ConnectionClose(200, "", 0, 0).encode())[:-1] + b"\x00", 501


def wrong_channel(rng: random.Random) -> Session:
    channel = rng.choice([2, 7, 16, 17, 2047, 65535])
    m = rng.choice([spec.QueueDeclare(queue=FUZZ_QUEUE), spec.BasicQos(prefetch_count=1), spec.ChannelClose()])
    return HANDSHAKE + CHANNEL_OPEN + method_frame(channel, m.encode()), 504


def too_many_channels(rng: random.Random) -> Session:
    # channel_max counts open channels, whatever their numbers: the 17th open is one too many.
    numbers = rng.sample(range(2, 65536), 16)
    opens = b"".join(method_frame(channel, spec.ChannelOpen().encode()) for channel in numbers)
    return HANDSHAKE + CHANNEL_OPEN + opens, 530


def out_of_order(rng: random.Random) -> Session:
    return rng.choice([
        (HEADER + method_frame(0, spec.ConnectionOpen(virtual_host="/").encode()), 504),
        (HANDSHAKE + CHANNEL_OPEN + CHANNEL_OPEN, 504),
        (HANDSHAKE + CHANNEL_OPEN + raw_frame(3, 1, b"body without header"), 505),
        (HANDSHAKE + CHANNEL_OPEN + raw_frame(2, 1, struct.pack(">HHQ", 60, 0, 3) + b"\x00\x00"), 505),
        (HANDSHAKE + CHANNEL_OPEN + method_frame(1, spec.BasicPublish().encode())
         + method_frame(1, spec.BasicAck().encode()), 505),
        (HANDSHAKE + CHANNEL_OPEN + method_frame(1, spec.ConnectionTuneOk(1, 4096, 0).encode()), 503),
        (HANDSHAKE + method_frame(0, spec.QueueDeclare().encode()), 504),
        (HANDSHAKE + CHANNEL_OPEN + raw_frame(1, 1, b"\x00\x32\x00\x0a\x00"), 501),
        (HANDSHAKE + CHANNEL_OPEN + raw_frame(1, 1, b"\x00\x63\x00\x01"), 540),
        (HANDSHAKE + raw_frame(8, 1, b""), 505),
    ])


def abandoned_publish(rng: random.Random) -> Session:
    """A client that was publishing (and consuming) dies in the middle of a frame."""
    consume = method_frame(1, spec.BasicConsume(queue=FUZZ_QUEUE).encode())
    whole = HANDSHAKE + CHANNEL_OPEN + consume + b"".join(
        publish(1, rng.randbytes(rng.randrange(3000))) for _ in range(rng.randrange(1, 5)))
    return whole[:rng.randrange(len(HANDSHAKE), len(whole))], None


KINDS: list[Callable[[random.Random], Session]] = [
    random_bytes, truncated_frame, bad_frame_type, oversize_frame, bad_frame_end, wrong_channel, too_many_channels,
    out_of_order, abandoned_publish,
]


def read_close_code(sock: socket.socket) -> int | None:
    """The reply code of the connection.close the broker sends (None if the socket closed without one)."""
    sock.settimeout(WAIT_SECONDS)
    for _channel, method in FrameReader(sock).methods():
        if isinstance(method, spec.ConnectionClose):
            return method.reply_code
    return None


def run_session(port: int, data: bytes, expected: int | None) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            # The broker may close as soon as it has read the error, before the rest was sent.
            pass
        if expected is not None:
            assert read_close_code(sock) == expected, data


class Healthy(threading.Thread):
    """Publishes message n with a confirm, then consumes it with a manual ack, round after round."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.rounds = 0
        self.progress = threading.Condition()
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            with self.progress:
                self.progress.notify_all()

    def _run(self) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        publisher = connection.channel()
        publisher.confirm_delivery()
        queue = publisher.queue_declare("", exclusive=True).method.queue
        consumer = connection.channel()
        consumer.basic_qos(prefetch_count=10)
        received: list[bytes] = []
        consumer.basic_consume(queue, lambda ch, m, p, body: (received.append(body), ch.basic_ack(m.delivery_tag)))
        while not self.stop.is_set():
            body = str(self.rounds).encode()
            publisher.basic_publish("", queue, body)
            while len(received) <= self.rounds:
                connection.process_data_events(time_limit=0.1)
            assert received[self.rounds] == body, (received[self.rounds], body)
            with self.progress:
                self.rounds += 1
                self.progress.notify_all()
        connection.close()

    def wait_for_round(self, after: int) -> None:
        with self.progress:
            assert self.progress.wait_for(lambda: self.rounds > after or self.error is not None, WAIT_SECONDS)
        assert self.error is None, self.error


def wait_until(predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.slow
def test_malformed_sessions_beside_a_healthy_connection(long_run: bool, caplog: pytest.LogCaptureFixture) -> None:
    rng = random.Random(20261130)
    sessions = LONG_SESSIONS if long_run else SESSIONS
    caplog.set_level(logging.WARNING, logger="amqpbroker")
    with Broker(port=0) as broker:
        setup = pika.BlockingConnection(pika.URLParameters(broker.url))
        setup.channel().queue_declare(FUZZ_QUEUE)
        setup.close()
        healthy = Healthy(broker.url)
        healthy.start()
        healthy.wait_for_round(0)
        kinds_seen = {kind.__name__: 0 for kind in KINDS}
        for n in range(sessions):
            if n % BLOCK == 0:
                healthy.wait_for_round(healthy.rounds)
            kind = rng.choice(KINDS)
            kinds_seen[kind.__name__] += 1
            run_session(broker.port, *kind(rng))
        healthy.wait_for_round(healthy.rounds)
        healthy.stop.set()
        healthy.join(WAIT_SECONDS)
        assert healthy.error is None, healthy.error
        assert all(kinds_seen.values()), kinds_seen

        # Every malformed session is gone: none left half-open inside the broker.
        wait_until(lambda: broker.call(lambda: len(broker.server.connections)) == 0)
        after = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = after.channel()
        channel.confirm_delivery()
        channel.queue_purge(FUZZ_QUEUE)
        channel.basic_publish("", FUZZ_QUEUE, b"still serving")
        method, _properties, body = channel.basic_get(FUZZ_QUEUE, auto_ack=True)
        assert body == b"still serving"
        after.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
