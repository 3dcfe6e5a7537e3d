"""Fault injection, each observed by a real client: forced close, TCP reset, restart, paused queue."""

from __future__ import annotations

import socket
import threading

import pika
import pika.exceptions
import pytest

from .conftest import WAIT_SECONDS, wait_until

PERSISTENT = pika.BasicProperties(delivery_mode=2)
TRANSIENT = pika.BasicProperties(delivery_mode=1)
SHUTDOWN_TEXT = "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"


def test_close_connections_sends_connection_close_320(amqp_broker, amqp_url, connect):
    connection = connect(amqp_url)

    assert amqp_broker.close_connections() == 1
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
        connection.process_data_events(time_limit=WAIT_SECONDS)
    assert (closed.value.reply_code, closed.value.reply_text) == (
        320, "CONNECTION_FORCED - Closed via amqpbroker.testing")


def test_close_connections_with_a_reply_text_of_our_own(amqp_broker, amqp_url, connect):
    first, second = connect(amqp_url), connect(amqp_url)

    assert amqp_broker.close_connections("CONNECTION_FORCED - maintenance") == 2
    for connection in (first, second):
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker, match="maintenance"):
            connection.process_data_events(time_limit=WAIT_SECONDS)


def test_reset_connections_drops_the_socket_and_requeues_unacked(amqp_broker, amqp_vhost, amqp_url, connect):
    connection = connect(amqp_url)
    channel = connection.channel()
    channel.queue_declare("work")
    channel.basic_publish("", "work", b"job")
    method, _, _ = channel.basic_get("work")
    assert amqp_broker.queue("work", amqp_vhost).unacked_count == 1

    assert amqp_broker.reset_connections() == 1
    # No connection.close: the client sees the TCP connection reset.
    with pytest.raises(pika.exceptions.StreamLostError, match="ConnectionResetError"):
        connection.process_data_events(time_limit=WAIT_SECONDS)
    wait_until(lambda: amqp_broker.queue("work", amqp_vhost).message_count == 1, "the requeue")
    assert amqp_broker.messages("work", amqp_vhost)[0].redelivered


def test_restart_keeps_durable_entities_and_persistent_messages_on_the_same_port(
    amqp_broker, amqp_vhost, amqp_url, connect
):
    port = amqp_broker.port
    channel = connect(amqp_url).channel()
    channel.exchange_declare("events", "topic", durable=True)
    channel.exchange_declare("scratch-events", "topic")
    channel.queue_declare("orders", durable=True)
    channel.queue_declare("scratch")
    channel.queue_bind("orders", "events", "order.*")
    channel.confirm_delivery()
    channel.basic_publish("events", "order.paid", b"persistent", PERSISTENT)
    channel.basic_publish("events", "order.paid", b"transient", TRANSIENT)
    channel.basic_publish("", "scratch", b"on a transient queue", PERSISTENT)

    # This test's connection is idle and will not answer connection.close: no need to wait for it.
    amqp_broker.restart(close_timeout=0)

    assert amqp_broker.port == port
    assert [queue.name for queue in amqp_broker.queues(amqp_vhost)] == ["orders"]
    assert "events" in {exchange.name for exchange in amqp_broker.exchanges(amqp_vhost)}
    assert "scratch-events" not in {exchange.name for exchange in amqp_broker.exchanges(amqp_vhost)}
    assert [(b.source, b.destination) for b in amqp_broker.bindings(amqp_vhost)] == [("events", "orders")]
    channel = connect(amqp_url).channel()
    _, _, body = channel.basic_get("orders", auto_ack=True)
    assert body == b"persistent"
    assert channel.basic_get("orders") == (None, None, None)


class Consumer(threading.Thread):
    """Consumes a queue without acknowledging, until its connection ends."""

    def __init__(self, url: str, queue: str) -> None:
        super().__init__()
        self.url = url
        self.queue = queue
        self.received: list[bytes] = []
        self.ended: BaseException | None = None

    def run(self) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        channel = connection.channel()
        channel.basic_qos(prefetch_count=1)
        channel.basic_consume(self.queue, lambda ch, method, props, body: self.received.append(body))
        try:
            channel.start_consuming()
        except pika.exceptions.AMQPError as exc:
            self.ended = exc


def test_restart_closes_clients_with_320_and_redelivers_what_they_had_not_acked(
    amqp_broker, amqp_vhost, amqp_url, connect
):
    channel = connect(amqp_url).channel()
    channel.queue_declare("jobs", durable=True)
    channel.confirm_delivery()
    channel.basic_publish("", "jobs", b"job-1", PERSISTENT)
    channel.basic_publish("", "jobs", b"job-2", PERSISTENT)
    channel.connection.close()
    consumer = Consumer(amqp_url, "jobs")
    consumer.start()
    wait_until(lambda: consumer.received == [b"job-1"], "the first delivery")

    amqp_broker.restart()

    consumer.join(WAIT_SECONDS)
    assert isinstance(consumer.ended, pika.exceptions.ConnectionClosedByBroker)
    assert (consumer.ended.reply_code, consumer.ended.reply_text) == (320, SHUTDOWN_TEXT)
    channel = connect(amqp_url).channel()
    method, _, body = channel.basic_get("jobs", auto_ack=True)
    assert (body, method.redelivered) == (b"job-1", True)
    method, _, body = channel.basic_get("jobs", auto_ack=True)
    assert (body, method.redelivered) == (b"job-2", False)


def test_a_client_connecting_while_the_broker_restarts_is_turned_away(amqp_broker, amqp_url, connect):
    idle = connect(amqp_url)  # answers connection.close only when pumped: until then the old broker waits
    restart = threading.Thread(target=amqp_broker.restart, kwargs={"close_timeout": WAIT_SECONDS})
    restart.start()

    def turned_away() -> bool:
        # A serving broker answers the protocol header with connection.start; a stopping one hangs up.
        with socket.create_connection(("127.0.0.1", amqp_broker.port), timeout=WAIT_SECONDS) as sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            try:
                return sock.recv(1) == b""
            except ConnectionResetError:  # it closed without reading the header
                return True

    wait_until(turned_away, "a connection turned away")
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker):
        idle.process_data_events(time_limit=WAIT_SECONDS)
    restart.join(WAIT_SECONDS)
    assert not restart.is_alive()
    assert connect(amqp_url).is_open


def test_pause_holds_deliveries_until_resume(amqp_broker, amqp_vhost, amqp_url, connect):
    channel = connect(amqp_url).channel()
    channel.queue_declare("slow")
    received: list[bytes] = []
    channel.basic_consume("slow", lambda ch, method, props, body: received.append(body), auto_ack=True)

    amqp_broker.pause("slow", amqp_vhost)
    channel.basic_publish("", "slow", b"one")
    channel.basic_publish("", "slow", b"two")
    # A round trip after the publishes: anything delivered would have come before its reply.
    assert channel.queue_declare("slow", passive=True).method.message_count == 2
    channel.connection.process_data_events(time_limit=0)
    assert received == []

    amqp_broker.resume("slow", amqp_vhost)
    wait_until(lambda: channel.connection.process_data_events(time_limit=0) or len(received) == 2, "deliveries")
    assert received == [b"one", b"two"]
    assert amqp_broker.queue("slow", amqp_vhost).message_count == 0
