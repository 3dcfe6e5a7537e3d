"""The scenarios with pika's BlockingConnection."""

import uuid

import pika
from pika.exceptions import AuthenticationError, ChannelClosedByBroker, ProbableAuthenticationError

from interop.clients.common import Names, expect, large_body, main, poll, pump_until, wrong_password
from interop.scenarios import (
    ACK_MESSAGES,
    CHANNELS,
    CONFIRMED_MESSAGES,
    HEARTBEAT,
    IDLE,
    PREFETCH_COUNT,
    PREFETCH_MESSAGES,
    QUIET,
    ROUTING_BINDINGS,
    ROUTING_EXPECTED,
    ROUTING_PUBLISHES,
)


def _connect(url: str) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.URLParameters(url))


def _pump(connection: pika.BlockingConnection):
    return lambda: connection.process_data_events(time_limit=0.05)


def _get(connection, channel, queue: str, *, auto_ack: bool = False):
    """basic.get, retried while the queue is still empty."""

    def fetch():
        method, properties, body = channel.basic_get(queue, auto_ack=auto_ack)
        return None if method is None else (method, properties, body)

    return poll(fetch, _pump(connection), f"a message on {queue}")


def _message_count(channel, queue: str) -> int:
    return channel.queue_declare(queue, passive=True).method.message_count


def connect(url: str, names: Names) -> None:
    with _connect(url) as connection:
        channel = connection.channel()
        expect(channel.is_open, True, "channel open")
        channel.close()


def auth_refused(url: str, names: Names) -> None:
    try:
        _connect(wrong_password(url)).close()
    except (AuthenticationError, ProbableAuthenticationError):
        return
    raise AssertionError("a wrong password was accepted")


def routing(url: str, names: Names) -> None:
    with _connect(url) as connection:
        channel = connection.channel()
        for kind in ("direct", "fanout", "topic"):
            channel.exchange_declare(names(kind), kind, auto_delete=True)
        for queue, keys in ROUTING_BINDINGS.items():
            channel.queue_declare(names(queue), exclusive=True)
            channel.queue_bind(names(queue), names("fanout"))
            for kind, key in keys.items():
                channel.queue_bind(names(queue), names(kind), routing_key=key)
        for kind, key, body in ROUTING_PUBLISHES:
            exchange, routing_key = ("", names(key)) if kind == "default" else (names(kind), key)
            channel.basic_publish(exchange, routing_key, body.encode())
        for queue, expected in ROUTING_EXPECTED.items():
            bodies = [_get(connection, channel, names(queue), auto_ack=True)[2].decode() for _ in expected]
            expect(bodies, expected, f"messages on queue {queue}")
            expect(_message_count(channel, names(queue)), 0, f"messages left on queue {queue}")


def ack(url: str, names: Names) -> None:
    with _connect(url) as connection:
        channel = connection.channel()
        queue = channel.queue_declare(names("q"), exclusive=True).method.queue
        for n in range(ACK_MESSAGES):
            channel.basic_publish("", queue, f"m{n}".encode())
        bodies = []
        for method, _, body in channel.consume(queue, inactivity_timeout=10):
            if method is None:
                raise TimeoutError("deliveries stopped")
            bodies.append(body.decode())
            channel.basic_ack(method.delivery_tag)
            if len(bodies) == ACK_MESSAGES:
                break
        channel.cancel()
        expect(bodies, [f"m{n}" for n in range(ACK_MESSAGES)], "consumed")
        channel.close()
        expect(_message_count(connection.channel(), queue), 0, "messages requeued after channel close")


def requeue(url: str, names: Names) -> None:
    with _connect(url) as connection:
        channel = connection.channel()
        queue = channel.queue_declare(names("q"), exclusive=True).method.queue
        channel.basic_publish("", queue, b"again")
        method, _, body = _get(connection, channel, queue)
        expect((body, method.redelivered), (b"again", False), "first delivery")
        channel.basic_reject(method.delivery_tag, requeue=True)
        method, _, body = _get(connection, channel, queue)
        expect((body, method.redelivered), (b"again", True), "delivery after reject")
        channel.basic_nack(method.delivery_tag, requeue=True)
        method, _, body = _get(connection, channel, queue)
        expect((body, method.redelivered), (b"again", True), "delivery after nack")
        channel.basic_ack(method.delivery_tag)
        expect(channel.basic_get(queue)[0], None, "basic.get after ack")


def discard(url: str, names: Names) -> None:
    with _connect(url) as connection:
        channel = connection.channel()
        queue = channel.queue_declare(names("q"), exclusive=True).method.queue
        channel.basic_publish("", queue, b"rejected")
        channel.basic_publish("", queue, b"nacked")
        method, _, _ = _get(connection, channel, queue)
        channel.basic_reject(method.delivery_tag, requeue=False)
        method, _, _ = _get(connection, channel, queue)
        channel.basic_nack(method.delivery_tag, requeue=False)
        channel.close()
        expect(_message_count(connection.channel(), queue), 0, "messages left")


def prefetch(url: str, names: Names) -> None:
    with _connect(url) as connection:
        channel = connection.channel()
        queue = channel.queue_declare(names("q"), exclusive=True).method.queue
        for n in range(PREFETCH_MESSAGES):
            channel.basic_publish("", queue, f"m{n}".encode())
        channel.basic_qos(prefetch_count=PREFETCH_COUNT)
        deliveries = []
        channel.basic_consume(queue, lambda ch, method, props, body: deliveries.append((method, body)))
        pump_until(lambda: len(deliveries) >= PREFETCH_COUNT, _pump(connection), "deliveries")
        connection.process_data_events(time_limit=QUIET)
        expect(len(deliveries), PREFETCH_COUNT, "deliveries before any ack")
        channel.basic_ack(deliveries[0][0].delivery_tag)
        pump_until(lambda: len(deliveries) > PREFETCH_COUNT, _pump(connection), "delivery after an ack")
        connection.process_data_events(time_limit=QUIET)
        expect(len(deliveries), PREFETCH_COUNT + 1, "deliveries after one ack")
        for n in range(1, PREFETCH_MESSAGES):
            pump_until(lambda: len(deliveries) > n, _pump(connection), "delivery")
            channel.basic_ack(deliveries[n][0].delivery_tag)
        expect([body.decode() for _, body in deliveries], [f"m{n}" for n in range(PREFETCH_MESSAGES)], "delivered")


def confirms(url: str, names: Names) -> None:
    with _connect(url) as connection:
        channel = connection.channel()
        queue = channel.queue_declare(names("q"), exclusive=True).method.queue
        channel.confirm_delivery()
        for n in range(CONFIRMED_MESSAGES):
            channel.basic_publish("", queue, f"m{n}".encode())  # raises NackError unless acked
        expect(_message_count(channel, queue), CONFIRMED_MESSAGES, "messages in queue")


def mandatory(url: str, names: Names) -> None:
    with _connect(url) as connection:
        channel = connection.channel()
        returned = []
        channel.add_on_return_callback(lambda ch, method, props, body: returned.append((method, body)))
        channel.basic_publish("", names("nowhere"), b"lost", mandatory=True)
        pump_until(lambda: returned, _pump(connection), "basic.return")
        method, body = returned[0]
        expect((method.reply_code, method.reply_text, body), (312, "NO_ROUTE", b"lost"), "basic.return")


def rpc(url: str, names: Names) -> None:
    with _connect(url) as connection:
        server = connection.channel()
        server.queue_declare(names("rpc"), exclusive=True)

        def serve(ch, method, props, body):
            reply = pika.BasicProperties(correlation_id=props.correlation_id)
            ch.basic_publish("", props.reply_to, body.upper(), reply)
            ch.basic_ack(method.delivery_tag)

        server.basic_consume(names("rpc"), serve)
        client = connection.channel()
        reply_queue = client.queue_declare("", exclusive=True).method.queue
        replies = []
        client.basic_consume(reply_queue, lambda ch, method, props, body: replies.append((props, body)), auto_ack=True)
        correlation_id = str(uuid.uuid4())
        request = pika.BasicProperties(reply_to=reply_queue, correlation_id=correlation_id)
        client.basic_publish("", names("rpc"), b"ping", request)
        pump_until(lambda: replies, _pump(connection), "reply")
        props, body = replies[0]
        expect((props.correlation_id, body), (correlation_id, b"PING"), "reply")


def large_message(url: str, names: Names) -> None:
    body = large_body()
    with _connect(url) as connection:
        channel = connection.channel()
        queue = channel.queue_declare(names("q"), exclusive=True).method.queue
        channel.basic_publish("", queue, body)
        _, _, received = _get(connection, channel, queue, auto_ack=True)
        expect(received == body, True, f"received {len(received)} bytes equal to the {len(body)} sent")


def many_channels(url: str, names: Names) -> None:
    with _connect(url) as connection:
        channels = [connection.channel() for _ in range(CHANNELS)]
        queue = channels[0].queue_declare(names("q"), exclusive=True).method.queue
        for n, channel in enumerate(channels):
            channel.basic_publish("", queue, str(n).encode())
        received = set()
        channels[-1].basic_consume(queue, lambda ch, method, props, body: received.add(int(body)), auto_ack=True)
        pump_until(lambda: len(received) == CHANNELS, _pump(connection), f"{CHANNELS} messages")
        expect(len({channel.channel_number for channel in channels}), CHANNELS, "distinct channel numbers")
        for channel in channels:
            channel.close()


def not_found(url: str, names: Names) -> None:
    with _connect(url) as connection:
        channel = connection.channel()
        try:
            channel.queue_declare(names("missing"), passive=True)
            raise AssertionError("passive declare of a missing queue succeeded")
        except ChannelClosedByBroker as exc:
            expect(exc.reply_code, 404, "reply code")
        connection.channel().queue_declare("", exclusive=True)


def precondition_failed(url: str, names: Names) -> None:
    with _connect(url) as connection:
        channel = connection.channel()
        channel.queue_declare(names("q"), durable=False)
        try:
            channel.queue_declare(names("q"), durable=True)
            raise AssertionError("redeclare with durable=True succeeded")
        except ChannelClosedByBroker as exc:
            expect(exc.reply_code, 406, "reply code")
        connection.channel().queue_delete(names("q"))


def heartbeat(url: str, names: Names) -> None:
    proposed = []

    def negotiate(connection, broker_value: int) -> int:
        proposed.append(broker_value)
        return HEARTBEAT

    params = pika.URLParameters(url)
    params.heartbeat = negotiate
    with pika.BlockingConnection(params) as connection:
        expect(proposed[0] > 0, True, f"broker proposes heartbeats ({proposed[0]})")
        connection.sleep(IDLE)
        connection.channel().queue_declare("", exclusive=True)


def consumer_cancel(url: str, names: Names) -> None:
    with _connect(url) as connection:
        consumer = connection.channel()
        queue = consumer.queue_declare(names("q"), exclusive=True).method.queue
        cancelled = []
        consumer.add_on_cancel_callback(lambda method: cancelled.append(method.method.consumer_tag))
        tag = consumer.basic_consume(queue, lambda *delivery: None)
        connection.channel().queue_delete(queue)
        pump_until(lambda: cancelled, _pump(connection), "basic.cancel from the server")
        expect(cancelled, [tag], "cancelled consumer tags")


if __name__ == "__main__":
    main({scenario.__name__: scenario for scenario in (
        connect, auth_refused, routing, ack, requeue, discard, prefetch, confirms, mandatory, rpc,
        large_message, many_channels, not_found, precondition_failed, heartbeat, consumer_cancel,
    )})
