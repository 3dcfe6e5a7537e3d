"""The six RabbitMQ tutorials for Python, written as tests.

Where a tutorial runs two programs (a producer and its consumers, an RPC client
and server), each program here is a thread with its own connection.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import pika
from pika.adapters.blocking_connection import BlockingChannel

from .support import unique

PROGRAM_LIFETIME_SECONDS = 15.0


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


class Program(threading.Thread):
    """A tutorial program with its own connection, run in a thread.

    ``setup(channel, program)`` declares what the program needs and starts
    consuming; the thread then serves its connection until the ``with`` block ends.
    Whatever goes wrong in the thread is raised again in the test.
    """

    def __init__(self, params: pika.URLParameters, setup: Callable[[BlockingChannel, Program], None]) -> None:
        super().__init__(daemon=True)
        self.params = params
        self.setup = setup
        self.received: list[bytes] = []
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            connection = pika.BlockingConnection(self.params)
            try:
                self.setup(connection.channel(), self)
                self.ready.set()
                give_up_at = time.monotonic() + PROGRAM_LIFETIME_SECONDS
                while not self.stopping.is_set() and time.monotonic() < give_up_at:
                    connection.process_data_events(time_limit=0.02)
            finally:
                if connection.is_open:
                    connection.close()
        except BaseException as error:
            self.error = error
            self.ready.set()

    def __enter__(self) -> Program:
        self.start()
        assert self.ready.wait(timeout=5), "program did not get ready within 5 s"
        if self.error:
            raise self.error
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        self.join(timeout=5)
        assert not self.is_alive(), "program did not stop within 5 s"
        if self.error:
            raise self.error


def test_tutorial_1_hello_world(amqp_params, connect, cleanup):
    queue = cleanup.queue(unique("hello"))

    def receive(channel, program):
        channel.queue_declare(queue)
        channel.basic_consume(queue, lambda ch, method, properties, body: program.received.append(body), auto_ack=True)

    with Program(amqp_params, receive) as receiver:
        sender = connect().channel()
        sender.queue_declare(queue)
        sender.basic_publish("", queue, b"Hello World!")
        sender.connection.close()

        _wait_for(lambda: receiver.received, what="the greeting")

    assert receiver.received == [b"Hello World!"]


def test_tutorial_2_work_queues(amqp_params, connect, cleanup):
    queue = cleanup.queue(unique("task_queue"))
    tasks = [f"task {number}{'.' * (number % 3)}".encode() for number in range(12)]
    delivery_modes = set()

    def work(channel, program):
        channel.queue_declare(queue, durable=True)
        channel.basic_qos(prefetch_count=1)

        def callback(ch, method, properties, body):
            time.sleep(0.01 * body.count(b"."))
            delivery_modes.add(properties.delivery_mode)
            program.received.append(body)
            ch.basic_ack(delivery_tag=method.delivery_tag)

        channel.basic_consume(queue, callback)

    with Program(amqp_params, work) as first, Program(amqp_params, work) as second:
        producer = connect().channel()
        producer.queue_declare(queue, durable=True)
        for task in tasks:
            producer.basic_publish(
                "", queue, task, pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)
            )

        _wait_for(lambda: len(first.received) + len(second.received) == len(tasks), what="all tasks")
        remaining = producer.queue_declare(queue, durable=True).method

    assert sorted(first.received + second.received) == sorted(tasks)
    assert first.received and second.received, "both workers get tasks"
    assert remaining.message_count == 0
    assert delivery_modes == {pika.DeliveryMode.Persistent.value}


def test_tutorial_3_publish_subscribe(amqp_params, connect, cleanup):
    exchange = cleanup.exchange(unique("logs"))
    messages = [f"log line {number}".encode() for number in range(5)]

    def subscribe(channel, program):
        channel.exchange_declare(exchange, exchange_type="fanout")
        queue = channel.queue_declare("", exclusive=True).method.queue
        assert queue.startswith("amq.gen-")
        channel.queue_bind(queue, exchange)
        channel.basic_consume(queue, lambda ch, method, properties, body: program.received.append(body), auto_ack=True)

    with Program(amqp_params, subscribe) as first, Program(amqp_params, subscribe) as second:
        emitter = connect().channel()
        emitter.exchange_declare(exchange, exchange_type="fanout")
        for message in messages:
            emitter.basic_publish(exchange, "", message)

        _wait_for(lambda: len(first.received) == len(second.received) == len(messages), what="every log twice")

    assert first.received == messages
    assert second.received == messages


def test_tutorial_4_routing(amqp_params, connect, cleanup):
    exchange = cleanup.exchange(unique("direct_logs"))

    def receive_logs(*severities):
        def setup(channel, program):
            channel.exchange_declare(exchange, exchange_type="direct")
            queue = channel.queue_declare("", exclusive=True).method.queue
            for severity in severities:
                channel.queue_bind(queue, exchange, routing_key=severity)
            channel.basic_consume(
                queue,
                lambda ch, method, properties, body: program.received.append(method.routing_key.encode() + b":" + body),
                auto_ack=True,
            )

        return setup

    emitted = [
        ("info", "starting"),
        ("debug", "noise"),
        ("warning", "disk 80%"),
        ("error", "disk full"),
        ("info", "done"),
    ]
    with (
        Program(amqp_params, receive_logs("error")) as errors_only,
        Program(amqp_params, receive_logs("info", "warning", "error")) as everything,
    ):
        emitter = connect().channel()
        emitter.exchange_declare(exchange, exchange_type="direct")
        for severity, message in emitted:
            emitter.basic_publish(exchange, severity, message.encode())

        _wait_for(lambda: len(everything.received) == 4 and len(errors_only.received) == 1, what="routed logs")

    assert errors_only.received == [b"error:disk full"]
    assert everything.received == [b"info:starting", b"warning:disk 80%", b"error:disk full", b"info:done"]


def test_tutorial_5_topics(amqp_params, connect, cleanup):
    exchange = cleanup.exchange(unique("topic_logs"))

    def receive_logs(*binding_keys):
        def setup(channel, program):
            channel.exchange_declare(exchange, exchange_type="topic")
            queue = channel.queue_declare("", exclusive=True).method.queue
            for binding_key in binding_keys:
                channel.queue_bind(queue, exchange, routing_key=binding_key)
            channel.basic_consume(
                queue, lambda ch, method, properties, body: program.received.append(body), auto_ack=True
            )

        return setup

    routing_keys = [
        "quick.orange.rabbit",
        "lazy.orange.elephant",
        "quick.orange.fox",
        "lazy.brown.fox",
        "lazy.pink.rabbit",
        "quick.brown.fox",
        "orange",
        "quick.orange.new.rabbit",
        "lazy.orange.new.rabbit",
        "quick.orange.male.rabbit",
    ]
    with (
        Program(amqp_params, receive_logs("*.orange.*")) as q1,
        Program(amqp_params, receive_logs("*.*.rabbit", "lazy.#")) as q2,
    ):
        emitter = connect().channel()
        emitter.exchange_declare(exchange, exchange_type="topic")
        for routing_key in routing_keys + ["x.orange.last", "lazy.last"]:
            emitter.basic_publish(exchange, routing_key, routing_key.encode())

        _wait_for(
            lambda: q1.received[-1:] == [b"x.orange.last"] and q2.received[-1:] == [b"lazy.last"],
            what="the last message of each queue",
        )

    assert q1.received == [b"quick.orange.rabbit", b"lazy.orange.elephant", b"quick.orange.fox", b"x.orange.last"]
    assert q2.received == [
        b"quick.orange.rabbit",
        b"lazy.orange.elephant",
        b"lazy.brown.fox",
        b"lazy.pink.rabbit",
        b"lazy.orange.new.rabbit",
        b"lazy.last",
    ]


def _fib(n: int) -> int:
    return n if n < 2 else _fib(n - 1) + _fib(n - 2)


def test_tutorial_6_rpc(amqp_params, connect, cleanup):
    rpc_queue = cleanup.queue(unique("rpc_queue"))

    def serve(channel, program):
        channel.queue_declare(rpc_queue)
        channel.basic_qos(prefetch_count=1)

        def on_request(ch, method, properties, body):
            response = str(_fib(int(body))).encode()
            ch.basic_publish(
                "",
                properties.reply_to,
                response,
                pika.BasicProperties(correlation_id=properties.correlation_id),
            )
            ch.basic_ack(delivery_tag=method.delivery_tag)

        channel.basic_consume(rpc_queue, on_request)

    with Program(amqp_params, serve):
        client_connection = connect()
        client = client_connection.channel()
        callback_queue = client.queue_declare("", exclusive=True).method.queue
        responses: dict[str, bytes] = {}
        client.basic_consume(
            callback_queue,
            lambda ch, method, properties, body: responses.__setitem__(properties.correlation_id, body),
            auto_ack=True,
        )

        results = {}
        for n in (0, 1, 2, 10, 20):
            correlation_id = str(uuid.uuid4())
            client.basic_publish(
                "",
                rpc_queue,
                str(n).encode(),
                pika.BasicProperties(reply_to=callback_queue, correlation_id=correlation_id),
            )
            deadline = time.monotonic() + 5
            while correlation_id not in responses:
                assert time.monotonic() < deadline, f"no RPC response for fib({n})"
                client_connection.process_data_events(time_limit=0.02)
            results[n] = int(responses.pop(correlation_id))

    assert results == {0: 0, 1: 1, 2: 1, 10: 55, 20: 6765}
    assert responses == {}
