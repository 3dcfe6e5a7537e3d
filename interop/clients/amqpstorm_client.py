"""The scenarios with AMQPStorm."""

import time
import uuid

from amqpstorm import AMQPChannelError, AMQPConnectionError, AMQPMessageError, Message, UriConnection

from interop.clients.common import Names, expect, large_body, main, nap, poll, pump_until, wrong_password
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


def _pump(channel):
    def pump() -> None:
        channel.process_data_events(auto_decode=False)
        time.sleep(0.01)

    return pump


def _raise_returns(channel):
    def pump() -> None:
        channel.check_for_errors()  # AMQPStorm raises a basic.return as AMQPMessageError
        time.sleep(0.01)

    return pump


def _quiet(channel) -> None:
    deadline = time.monotonic() + QUIET
    while time.monotonic() < deadline:
        _pump(channel)()


def _get(channel, queue: str, *, no_ack: bool = False) -> Message:
    """basic.get, retried while the queue is still empty."""
    return poll(lambda: channel.basic.get(queue, no_ack=no_ack, auto_decode=False), nap, f"a message on {queue}")


def connect(url: str, names: Names) -> None:
    with UriConnection(url) as connection, connection.channel() as channel:
        expect(channel.is_open, True, "channel open")


def auth_refused(url: str, names: Names) -> None:
    try:
        UriConnection(wrong_password(url)).close()
    except AMQPConnectionError as exc:
        expect(exc.error_code, 403, "reply code")
        return
    raise AssertionError("a wrong password was accepted")


def routing(url: str, names: Names) -> None:
    with UriConnection(url) as connection, connection.channel() as channel:
        for kind in ("direct", "fanout", "topic"):
            channel.exchange.declare(names(kind), kind, auto_delete=True)
        for queue, keys in ROUTING_BINDINGS.items():
            channel.queue.declare(names(queue), exclusive=True)
            channel.queue.bind(names(queue), names("fanout"))
            for kind, key in keys.items():
                channel.queue.bind(names(queue), names(kind), routing_key=key)
        for kind, key, body in ROUTING_PUBLISHES:
            exchange, routing_key = ("", names(key)) if kind == "default" else (names(kind), key)
            channel.basic.publish(body.encode(), routing_key, exchange=exchange)
        for queue, expected in ROUTING_EXPECTED.items():
            bodies = [_get(channel, names(queue), no_ack=True).body.decode() for _ in expected]
            expect(bodies, expected, f"messages on queue {queue}")
            expect(channel.basic.get(names(queue), no_ack=True), None, f"message left on queue {queue}")


def ack(url: str, names: Names) -> None:
    with UriConnection(url) as connection:
        channel = connection.channel()
        queue = channel.queue.declare(names("q"), exclusive=True)["queue"]
        for n in range(ACK_MESSAGES):
            channel.basic.publish(f"m{n}".encode(), queue)
        bodies = []

        def on_message(message: Message) -> None:
            bodies.append(message.body.decode())
            message.ack()

        channel.basic.consume(on_message, queue)
        pump_until(lambda: len(bodies) == ACK_MESSAGES, _pump(channel), "deliveries")
        expect(bodies, [f"m{n}" for n in range(ACK_MESSAGES)], "consumed")
        channel.close()
        with connection.channel() as channel:
            count = channel.queue.declare(queue, passive=True)["message_count"]
            expect(count, 0, "messages requeued after channel close")


def requeue(url: str, names: Names) -> None:
    with UriConnection(url) as connection, connection.channel() as channel:
        queue = channel.queue.declare(names("q"), exclusive=True)["queue"]
        channel.basic.publish(b"again", queue)
        message = _get(channel, queue)
        expect((message.body, message.redelivered), (b"again", False), "first delivery")
        message.reject(requeue=True)
        message = _get(channel, queue)
        expect((message.body, message.redelivered), (b"again", True), "delivery after reject")
        message.nack(requeue=True)
        message = _get(channel, queue)
        expect((message.body, message.redelivered), (b"again", True), "delivery after nack")
        message.ack()
        expect(channel.basic.get(queue), None, "basic.get after ack")


def discard(url: str, names: Names) -> None:
    with UriConnection(url) as connection:
        channel = connection.channel()
        queue = channel.queue.declare(names("q"), exclusive=True)["queue"]
        channel.basic.publish(b"rejected", queue)
        channel.basic.publish(b"nacked", queue)
        _get(channel, queue).reject(requeue=False)
        _get(channel, queue).nack(requeue=False)
        channel.close()
        with connection.channel() as channel:
            expect(channel.queue.declare(queue, passive=True)["message_count"], 0, "messages left")


def prefetch(url: str, names: Names) -> None:
    with UriConnection(url) as connection, connection.channel() as channel:
        queue = channel.queue.declare(names("q"), exclusive=True)["queue"]
        for n in range(PREFETCH_MESSAGES):
            channel.basic.publish(f"m{n}".encode(), queue)
        channel.basic.qos(prefetch_count=PREFETCH_COUNT)
        held = []
        channel.basic.consume(held.append, queue)
        pump_until(lambda: len(held) >= PREFETCH_COUNT, _pump(channel), "deliveries")
        _quiet(channel)
        expect(len(held), PREFETCH_COUNT, "deliveries before any ack")
        held[0].ack()
        pump_until(lambda: len(held) > PREFETCH_COUNT, _pump(channel), "delivery after an ack")
        _quiet(channel)
        expect(len(held), PREFETCH_COUNT + 1, "deliveries after one ack")
        while len(held) < PREFETCH_MESSAGES:
            held[len(held) - PREFETCH_COUNT].ack()
            count = len(held)
            pump_until(lambda: len(held) > count, _pump(channel), "delivery")
        expect([message.body.decode() for message in held], [f"m{n}" for n in range(PREFETCH_MESSAGES)], "delivered")


def confirms(url: str, names: Names) -> None:
    with UriConnection(url) as connection, connection.channel() as channel:
        queue = channel.queue.declare(names("q"), exclusive=True)["queue"]
        channel.confirm_deliveries()
        acked = [channel.basic.publish(f"m{n}".encode(), queue) for n in range(CONFIRMED_MESSAGES)]
        expect(acked, [True] * CONFIRMED_MESSAGES, "confirmations")
        expect(channel.queue.declare(queue, passive=True)["message_count"], CONFIRMED_MESSAGES, "messages in queue")


def mandatory(url: str, names: Names) -> None:
    with UriConnection(url) as connection, connection.channel() as channel:
        channel.basic.publish(b"lost", names("nowhere"), mandatory=True)
        try:
            pump_until(lambda: False, _raise_returns(channel), "basic.return")
        except AMQPMessageError as exc:
            expect(exc.error_code, 312, "reply code")
            expect("NO_ROUTE" in str(exc), True, f"NO_ROUTE in {exc}")


def rpc(url: str, names: Names) -> None:
    with UriConnection(url) as connection, connection.channel() as server, connection.channel() as client:
        server.queue.declare(names("rpc"), exclusive=True)

        def serve(request: Message) -> None:
            reply = Message.create(server, request.body.upper(), {"correlation_id": request.correlation_id})
            reply.publish(request.reply_to)
            request.ack()

        server.basic.consume(serve, names("rpc"))
        reply_queue = client.queue.declare("", exclusive=True)["queue"]
        replies = []
        client.basic.consume(replies.append, reply_queue, no_ack=True)
        correlation_id = str(uuid.uuid4())
        request = Message.create(client, b"ping", {"reply_to": reply_queue, "correlation_id": correlation_id})
        request.publish(names("rpc"))

        def pump() -> None:
            server.process_data_events(auto_decode=False)
            client.process_data_events(auto_decode=False)
            time.sleep(0.01)

        pump_until(lambda: replies, pump, "reply")
        expect((replies[0].correlation_id, replies[0].body), (correlation_id, b"PING"), "reply")


def large_message(url: str, names: Names) -> None:
    body = large_body()
    with UriConnection(url) as connection, connection.channel() as channel:
        queue = channel.queue.declare(names("q"), exclusive=True)["queue"]
        channel.basic.publish(body, queue)
        received = _get(channel, queue, no_ack=True).body
        expect(received == body, True, f"received {len(received)} bytes equal to the {len(body)} sent")


def many_channels(url: str, names: Names) -> None:
    with UriConnection(url) as connection:
        channels = [connection.channel() for _ in range(CHANNELS)]
        queue = channels[0].queue.declare(names("q"), exclusive=True)["queue"]
        for n, channel in enumerate(channels):
            channel.basic.publish(str(n).encode(), queue)
        received = set()
        channels[-1].basic.consume(lambda message: received.add(int(message.body)), queue, no_ack=True)
        pump_until(lambda: len(received) == CHANNELS, _pump(channels[-1]), f"{CHANNELS} messages")
        expect(len({channel.channel_id for channel in channels}), CHANNELS, "distinct channel numbers")
        for channel in channels:
            channel.close()


def not_found(url: str, names: Names) -> None:
    with UriConnection(url) as connection:
        try:
            connection.channel().queue.declare(names("missing"), passive=True)
            raise AssertionError("passive declare of a missing queue succeeded")
        except AMQPChannelError as exc:
            expect(exc.error_code, 404, "reply code")
        with connection.channel() as channel:
            channel.queue.declare("", exclusive=True)


def precondition_failed(url: str, names: Names) -> None:
    with UriConnection(url) as connection:
        channel = connection.channel()
        channel.queue.declare(names("q"), durable=False)
        try:
            channel.queue.declare(names("q"), durable=True)
            raise AssertionError("redeclare with durable=True succeeded")
        except AMQPChannelError as exc:
            expect(exc.error_code, 406, "reply code")
        with connection.channel() as channel:
            channel.queue.delete(names("q"))


def heartbeat(url: str, names: Names) -> None:
    with UriConnection(f"{url}?heartbeat={HEARTBEAT}") as connection:
        expect(connection.parameters["heartbeat"], HEARTBEAT, "heartbeat sent in tune-ok")
        time.sleep(IDLE)  # AMQPStorm's own thread sends heartbeats and watches the broker's
        connection.check_for_errors()
        with connection.channel() as channel:
            channel.queue.declare("", exclusive=True)


def consumer_cancel(url: str, names: Names) -> None:
    with UriConnection(url) as connection, connection.channel() as consumer, connection.channel() as other:
        queue = consumer.queue.declare(names("q"), exclusive=True)["queue"]
        tag = consumer.basic.consume(lambda message: None, queue)
        expect(consumer.consumer_tags, [tag], "consumer tags")
        other.queue.delete(queue)
        pump_until(lambda: not consumer.consumer_tags, _pump(consumer), "basic.cancel from the server")


if __name__ == "__main__":
    main({scenario.__name__: scenario for scenario in (
        connect, auth_refused, routing, ack, requeue, discard, prefetch, confirms, mandatory, rpc,
        large_message, many_channels, not_found, precondition_failed, heartbeat, consumer_cancel,
    )})
