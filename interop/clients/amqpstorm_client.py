"""The scenarios with AMQPStorm."""

import time
import uuid

from amqpstorm import AMQPChannelError, AMQPConnectionError, AMQPMessageError, Message, UriConnection

from interop.clients.common import (
    Names,
    expect,
    expect_dead_lettered,
    expect_topic_refused,
    large_body,
    main,
    nap,
    operator_policy_queue,
    poll,
    pump_until,
    stream_read,
    topic_keys,
    topic_user,
    wrong_password,
)
from interop.scenarios import (
    ACK_MESSAGES,
    CC_BCC_DELIVERED,
    CC_BCC_HEADERS,
    CC_BCC_QUEUES,
    CHANNELS,
    CONFIRMED_MESSAGES,
    CONSUMER_PRIORITIES,
    CONSUMER_PRIORITY_MESSAGES,
    DEAD_LETTER_KEY,
    DEDUP_CACHE_SIZE,
    DEDUP_EXPECTED,
    DEDUP_PUBLISHES,
    DELAY,
    DELAYED_KEY,
    DELIVERY_LIMIT,
    EXPIRES_WAIT,
    HEARTBEAT,
    IDLE,
    MAX_LENGTH,
    MAX_LENGTH_BYTES,
    MAX_LENGTH_BYTES_BODIES,
    MAX_PRIORITY,
    MESSAGE_EXPIRATION,
    OPERATOR_POLICY_ARGUMENT,
    OPERATOR_POLICY_KEPT,
    OPERATOR_POLICY_PUBLISHES,
    PREFETCH_COUNT,
    PREFETCH_MESSAGES,
    PRIORITY_EXPECTED,
    PRIORITY_PUBLISHES,
    QUEUE_EXPIRES,
    QUEUE_TTL,
    QUIET,
    QUORUM_REFUSALS,
    ROUTING_BINDINGS,
    ROUTING_EXPECTED,
    ROUTING_PUBLISHES,
    SAC_FIRST,
    SAC_REST,
    STREAM_MESSAGES,
    STREAM_OFFSET,
    TOPIC_EXCHANGE,
)


def _pump(*channels):
    def pump() -> None:
        for channel in channels:
            channel.process_data_events(auto_decode=False)
        time.sleep(0.01)

    return pump


def _raise_returns(channel):
    def pump() -> None:
        channel.check_for_errors()  # AMQPStorm raises a basic.return as AMQPMessageError
        time.sleep(0.01)

    return pump


def _quiet(*channels) -> None:
    deadline = time.monotonic() + QUIET
    while time.monotonic() < deadline:
        _pump(*channels)()


def _get(channel, queue: str, *, no_ack: bool = False) -> Message:
    """basic.get, retried while the queue is still empty."""
    return poll(lambda: channel.basic.get(queue, no_ack=no_ack, auto_decode=False), nap, f"message on {queue}")


def _message_count(channel, queue: str) -> int:
    return channel.queue.declare(queue, passive=True)["message_count"]


def _dead_letter_queue(channel, names: Names) -> dict:
    """A DLX with its queue; returns the arguments that make a queue dead-letter there."""
    channel.exchange.declare(names("dlx"), "direct", auto_delete=True)
    channel.queue.declare(names("dlq"), exclusive=True)
    channel.queue.bind(names("dlq"), names("dlx"), routing_key=DEAD_LETTER_KEY)
    return {"x-dead-letter-exchange": names("dlx"), "x-dead-letter-routing-key": DEAD_LETTER_KEY}


def _get_dead_letter(channel, names: Names) -> Message:
    message = _get(channel, names("dlq"), no_ack=True)
    delivered = (message.method["exchange"], message.method["routing_key"])
    expect(delivered, (names("dlx"), DEAD_LETTER_KEY), "dead letter's exchange and key")
    return message


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


def dead_letter_ttl(url: str, names: Names) -> None:
    with UriConnection(url) as connection, connection.channel() as channel:
        dead_letter = _dead_letter_queue(channel, names)
        channel.queue.declare(names("ttl"), exclusive=True, arguments={**dead_letter, "x-message-ttl": QUEUE_TTL})
        channel.queue.declare(names("expiring"), exclusive=True, arguments=dead_letter)
        channel.basic.publish(b"queue-ttl", names("ttl"))
        channel.basic.publish(b"message-ttl", names("expiring"), properties={"expiration": MESSAGE_EXPIRATION})
        dead = {message.body: message for message in [_get_dead_letter(channel, names) for _ in "12"]}
        expect(sorted(dead), [b"message-ttl", b"queue-ttl"], "dead letters")
        expect_dead_lettered(dead[b"queue-ttl"].properties["headers"], "expired", names("ttl"))
        headers = dead[b"message-ttl"].properties["headers"]
        expect_dead_lettered(headers, "expired", names("expiring"), MESSAGE_EXPIRATION)
        expect(dead[b"message-ttl"].expiration, None, "expiration of the dead letter")
        expect([_message_count(channel, names(queue)) for queue in ("ttl", "expiring")], [0, 0], "messages left")


def dead_letter_reject(url: str, names: Names) -> None:
    with UriConnection(url) as connection, connection.channel() as channel:
        queue = channel.queue.declare(names("q"), exclusive=True, arguments=_dead_letter_queue(channel, names))["queue"]
        channel.basic.publish(b"rejected", queue)
        _get(channel, queue).reject(requeue=False)
        message = _get_dead_letter(channel, names)
        expect(message.body, b"rejected", "dead letter")
        expect_dead_lettered(message.properties["headers"], "rejected", queue)


def max_length(url: str, names: Names) -> None:
    with UriConnection(url) as connection, connection.channel() as channel:
        drop = channel.queue.declare(names("drop"), exclusive=True, arguments={"x-max-length": MAX_LENGTH})["queue"]
        for n in range(MAX_LENGTH + 1):
            channel.basic.publish(f"m{n}".encode(), drop)
        kept = [_get(channel, drop, no_ack=True).body.decode() for _ in range(MAX_LENGTH)]
        expect(kept, [f"m{n}" for n in range(1, MAX_LENGTH + 1)], "messages kept by drop-head")
        expect(channel.basic.get(drop, no_ack=True), None, "message left")
        arguments = {"x-max-length": MAX_LENGTH, "x-overflow": "reject-publish"}
        reject = channel.queue.declare(names("reject"), exclusive=True, arguments=arguments)["queue"]
        channel.confirm_deliveries()
        acked = [channel.basic.publish(f"m{n}".encode(), reject) for n in range(MAX_LENGTH + 1)]  # False: nacked
        expect(acked, [True] * MAX_LENGTH + [False], "confirms")
        expect(_message_count(channel, reject), MAX_LENGTH, "messages in queue")


def priority(url: str, names: Names) -> None:
    with UriConnection(url) as connection, connection.channel() as channel:
        queue = channel.queue.declare(names("q"), exclusive=True, arguments={"x-max-priority": MAX_PRIORITY})["queue"]
        for level, body in PRIORITY_PUBLISHES:
            channel.basic.publish(body.encode(), queue, properties={} if level is None else {"priority": level})
        bodies = []
        channel.basic.consume(lambda message: bodies.append(message.body.decode()), queue, no_ack=True)
        pump_until(lambda: len(bodies) == len(PRIORITY_EXPECTED), _pump(channel), "deliveries")
        expect(bodies, list(PRIORITY_EXPECTED), "delivery order")


def single_active_consumer(url: str, names: Names) -> None:
    with UriConnection(url) as connection, connection.channel() as first, connection.channel() as second:
        arguments = {"x-single-active-consumer": True}
        queue = first.queue.declare(names("q"), exclusive=True, arguments=arguments)["queue"]
        received = {"first": [], "second": []}
        for (name, got), channel in zip(received.items(), (first, second)):
            channel.basic.consume(lambda message, got=got: got.append(message.body), queue, name, no_ack=True)
        pump = _pump(first, second)
        for n in range(SAC_FIRST):
            first.basic.publish(f"m{n}".encode(), queue)
        pump_until(lambda: sum(map(len, received.values())) == SAC_FIRST, pump, "deliveries")
        first_bodies = [f"m{n}".encode() for n in range(SAC_FIRST)]
        expect(received, {"first": first_bodies, "second": []}, "while the first consumes")
        first.basic.cancel("first")
        for n in range(SAC_FIRST, SAC_FIRST + SAC_REST):
            first.basic.publish(f"m{n}".encode(), queue)
        pump_until(lambda: sum(map(len, received.values())) == SAC_FIRST + SAC_REST, pump, "deliveries")
        rest = [f"m{n}".encode() for n in range(SAC_FIRST, SAC_FIRST + SAC_REST)]
        expect(received, {"first": first_bodies, "second": rest}, "after the first cancelled")


def alternate_exchange(url: str, names: Names) -> None:
    with UriConnection(url) as connection, connection.channel() as channel:
        channel.exchange.declare(names("ae"), "fanout", auto_delete=True)
        channel.queue.declare(names("unrouted"), exclusive=True)
        channel.queue.bind(names("unrouted"), names("ae"))
        channel.exchange.declare(names("x"), "direct", arguments={"alternate-exchange": names("ae")})
        channel.confirm_deliveries()
        # With confirms, a mandatory publish raises AMQPMessageError if the message came back first.
        acked = channel.basic.publish(b"unroutable", "nowhere", exchange=names("x"), mandatory=True)
        expect(acked, True, "confirm")
        message = _get(channel, names("unrouted"), no_ack=True)
        delivered = (message.method["exchange"], message.method["routing_key"], message.body)
        expect(delivered, (names("x"), "nowhere", b"unroutable"), "message in the AE's queue")
        channel.exchange.delete(names("x"))


def quorum_queue(url: str, names: Names) -> None:
    with UriConnection(url) as connection, connection.channel() as channel:
        dead_letter = _dead_letter_queue(channel, names)
        arguments = {"x-queue-type": "quorum", "x-delivery-limit": DELIVERY_LIMIT, **dead_letter}
        queue = channel.queue.declare(names("quorum"), durable=True, arguments=arguments)["queue"]
        channel.basic.publish(b"poison", queue)
        _get(channel, queue).reject(requeue=True)
        message = _get(channel, queue)
        redelivery = (message.redelivered, (message.properties["headers"] or {}).get("x-delivery-count"))
        expect(redelivery, (True, 1), "redelivered, x-delivery-count")
        message.reject(requeue=True)
        message = _get_dead_letter(channel, names)
        expect(message.body, b"poison", "dead letter")
        expect_dead_lettered(message.properties["headers"], "delivery_limit", queue)
        expect(_message_count(channel, queue), 0, "messages left")
        channel.queue.delete(queue)


def consumer_priority(url: str, names: Names) -> None:
    with UriConnection(url) as connection, connection.channel() as high, connection.channel() as low:
        queue = high.queue.declare(names("q"), exclusive=True)["queue"]
        received = {name: [] for name in CONSUMER_PRIORITIES}
        consumers = {"high": high, "low": low}
        for name, channel in consumers.items():
            channel.basic.qos(prefetch_count=CONSUMER_PRIORITY_MESSAGES)
            channel.basic.consume(
                lambda message, got=received[name]: got.append(message.body), queue,
                arguments={"x-priority": CONSUMER_PRIORITIES[name]},
            )
        for n in range(CONSUMER_PRIORITY_MESSAGES):
            high.basic.publish(f"m{n}".encode(), queue)
        pump_until(lambda: len(received["high"]) == CONSUMER_PRIORITY_MESSAGES, _pump(high, low), "deliveries")
        _quiet(high, low)
        expected = {"high": [f"m{n}".encode() for n in range(CONSUMER_PRIORITY_MESSAGES)], "low": []}
        expect(received, expected, "deliveries")


def cc_bcc(url: str, names: Names) -> None:
    with UriConnection(url) as connection, connection.channel() as channel:
        channel.exchange.declare(names("x"), "direct", auto_delete=True)
        for key in CC_BCC_QUEUES:
            channel.queue.declare(names(key), exclusive=True)
            channel.queue.bind(names(key), names("x"), routing_key=key)
        properties = {"headers": CC_BCC_HEADERS}
        channel.basic.publish(b"copied", CC_BCC_QUEUES[0], exchange=names("x"), properties=properties)
        for key in CC_BCC_QUEUES:
            message = _get(channel, names(key), no_ack=True)
            delivered = (message.method["routing_key"], message.properties["headers"], message.body)
            expect(delivered, (CC_BCC_QUEUES[0], CC_BCC_DELIVERED, b"copied"), f"copy on queue {key}")


def queue_expires(url: str, names: Names) -> None:
    with UriConnection(url) as connection:
        with connection.channel() as channel:
            channel.queue.declare(names("q"), arguments={"x-expires": QUEUE_EXPIRES})
        time.sleep(EXPIRES_WAIT)
        try:
            connection.channel().queue.declare(names("q"), passive=True)
            raise AssertionError("the queue outlived its x-expires")
        except AMQPChannelError as exc:
            expect(exc.error_code, 404, "reply code")


def max_length_bytes(url: str, names: Names) -> None:
    with UriConnection(url) as connection, connection.channel() as channel:
        arguments = {"x-max-length-bytes": MAX_LENGTH_BYTES}
        queue = channel.queue.declare(names("q"), exclusive=True, arguments=arguments)["queue"]
        for body in MAX_LENGTH_BYTES_BODIES:
            channel.basic.publish(body.encode(), queue)
        kept = [_get(channel, queue, no_ack=True).body.decode() for _ in range(2)]
        expect(kept, list(MAX_LENGTH_BYTES_BODIES[1:]), "messages kept by drop-head")
        expect(channel.basic.get(queue, no_ack=True), None, "message left")


def reject_publish_dlx(url: str, names: Names) -> None:
    with UriConnection(url) as connection, connection.channel() as channel:
        dead_letter = _dead_letter_queue(channel, names)
        arguments = {"x-max-length": MAX_LENGTH, "x-overflow": "reject-publish-dlx", **dead_letter}
        queue = channel.queue.declare(names("q"), exclusive=True, arguments=arguments)["queue"]
        channel.confirm_deliveries()
        acked = [channel.basic.publish(f"m{n}".encode(), queue) for n in range(MAX_LENGTH + 1)]  # False: nacked
        expect(acked, [True] * MAX_LENGTH + [False], "confirms")
        message = _get_dead_letter(channel, names)
        expect(message.body, f"m{MAX_LENGTH}".encode(), "dead letter")
        expect_dead_lettered(message.properties["headers"], "maxlen", queue)
        expect(_message_count(channel, queue), MAX_LENGTH, "messages in queue")


def quorum_declare_rules(url: str, names: Names) -> None:
    with UriConnection(url) as connection:
        for flags, arguments, text in QUORUM_REFUSALS:
            try:
                connection.channel().queue.declare(
                    names("q"), **{"durable": True, **flags}, arguments={"x-queue-type": "quorum", **arguments}
                )
                raise AssertionError(f"declared a quorum queue with {flags} {arguments}")
            except AMQPChannelError as exc:
                refused = (exc.error_code, f"{text} for queue '{names('q')}'" in str(exc))
                expect(refused, (406, True), f"refusal of {flags} {arguments} ({exc})")
        with connection.channel() as channel:
            channel.queue.declare(names("q"), durable=True, arguments={"x-queue-type": "quorum"})
            channel.queue.delete(names("q"))


def stream(url: str, names: Names) -> None:
    with UriConnection(url) as connection, connection.channel() as channel:
        arguments = {"x-queue-type": "stream"}
        queue = channel.queue.declare(names("stream"), durable=True, arguments=arguments)["queue"]
        channel.confirm_deliveries()
        for n in range(STREAM_MESSAGES):
            channel.basic.publish(f"s{n}".encode(), queue)
        readers = []

        def reader(offset, count: int) -> list:
            consuming = connection.channel()
            consuming.basic.qos(prefetch_count=count)
            got = []

            def on_message(message: Message) -> None:
                got.append((message.body.decode(), message.properties["headers"]["x-stream-offset"]))
                message.ack()

            consuming.basic.consume(on_message, queue, arguments={"x-stream-offset": offset})
            readers.append(consuming)
            return got

        rest = STREAM_MESSAGES - STREAM_OFFSET
        first, middle = reader("first", STREAM_MESSAGES), reader(STREAM_OFFSET, rest)
        pump_until(lambda: (len(first), len(middle)) == (STREAM_MESSAGES, rest), _pump(*readers), "deliveries")
        expect(first, stream_read(0), "from first")
        expect(middle, stream_read(STREAM_OFFSET), f"from {STREAM_OFFSET}")
        following = reader("next", 1)
        channel.basic.publish(f"s{STREAM_MESSAGES}".encode(), queue)
        pump_until(lambda: following, _pump(*readers), "the delivery from next")
        expect(following, stream_read(STREAM_MESSAGES, STREAM_MESSAGES + 1), "from next")
        channel.queue.delete(queue)



def _closed_by_broker(channel) -> AMQPChannelError:
    """The error of the channel.close the broker answers a refused publish with, once AMQPStorm's
    reader thread has it. Sending another method to have it raised races that thread's close-ok:
    a method that arrives after the close-ok is on a closed channel, a connection error (504)."""
    pump_until(lambda: channel.is_closed, nap, "channel.close")
    try:
        channel.check_for_errors()
    except AMQPChannelError as exc:
        return exc
    raise AssertionError("the channel closed without an error")


def _expect_topic_refused(exc: AMQPChannelError, key: str) -> None:
    # AMQPStorm's message is "Channel N was closed by remote server: " and the reply text.
    expect_topic_refused(exc.error_code, str(exc).split(": ", 1)[-1], key)


def topic_permissions(url: str, names: Names) -> None:
    allowed, readable, refused = topic_keys(names)
    with UriConnection(topic_user(url)) as connection:
        channel = connection.channel()
        queue = channel.queue.declare(names("q"), exclusive=True)["queue"]
        for key in (allowed, readable):
            channel.queue.bind(queue, TOPIC_EXCHANGE, routing_key=key)
        channel.basic.publish(b"allowed", allowed, exchange=TOPIC_EXCHANGE)
        message = _get(channel, queue, no_ack=True)
        delivered = (message.method["routing_key"], message.body)
        expect(delivered, (allowed, b"allowed"), "message published with the allowed key")
        channel.basic.publish(b"refused", readable, exchange=TOPIC_EXCHANGE)
        _expect_topic_refused(_closed_by_broker(channel), readable)
        try:
            connection.channel().queue.bind(queue, TOPIC_EXCHANGE, routing_key=refused)
            raise AssertionError(f"a binding with the key {refused!r} was accepted")
        except AMQPChannelError as exc:
            _expect_topic_refused(exc, refused)
        with connection.channel() as channel:
            expect(_message_count(channel, queue), 0, "messages left")


def operator_policy(url: str, names: Names) -> None:
    with UriConnection(url) as connection, connection.channel() as channel:
        arguments = {"x-max-length": OPERATOR_POLICY_ARGUMENT}
        queue = channel.queue.declare(operator_policy_queue(names), exclusive=True, arguments=arguments)["queue"]
        channel.confirm_deliveries()
        acked = [channel.basic.publish(body.encode(), queue) for body in OPERATOR_POLICY_PUBLISHES]
        expect(acked, [True] * len(OPERATOR_POLICY_PUBLISHES), "confirmations")
        expect(_message_count(channel, queue), len(OPERATOR_POLICY_KEPT), "messages in queue")
        kept = [_get(channel, queue, no_ack=True).body.decode() for _ in OPERATOR_POLICY_KEPT]
        expect(kept, list(OPERATOR_POLICY_KEPT), "messages kept by drop-head")
        expect(channel.queue.delete(queue)["message_count"], 0, "messages left")


def deduplication(url: str, names: Names) -> None:
    with UriConnection(url) as connection, connection.channel() as channel:
        channel.confirm_deliveries()
        queue = channel.queue.declare(names("dedup-q"), exclusive=True,
                                      arguments={"x-message-deduplication": True})["queue"]
        channel.exchange.declare(names("dedup-x"), "x-message-deduplication", auto_delete=True,
                                 arguments={"x-cache-size": DEDUP_CACHE_SIZE})
        bound = channel.queue.declare(names("dedup-bound"), exclusive=True)["queue"]
        channel.queue.bind(bound, names("dedup-x"))
        for exchange, routing_key, target in (("", queue, queue), (names("dedup-x"), "", bound)):
            for body, value in DEDUP_PUBLISHES:
                properties = {"headers": {"x-deduplication-header": value}}
                acked = channel.basic.publish(body.encode(), routing_key, exchange=exchange, properties=properties)
                expect(acked, True, "confirm")
            got = []
            while (message := channel.basic.get(target, no_ack=True, auto_decode=False)) is not None:
                got.append(message.body.decode())
            expect(tuple(got), DEDUP_EXPECTED, f"messages in {target}")


def delayed_message(url: str, names: Names) -> None:
    with UriConnection(url) as connection, connection.channel() as channel:
        channel.exchange.declare(names("delayed"), "x-delayed-message", auto_delete=True,
                                 arguments={"x-delayed-type": "direct"})
        queue = channel.queue.declare(names("delayed-q"), exclusive=True)["queue"]
        channel.queue.bind(queue, names("delayed"), DELAYED_KEY)
        channel.basic.publish(b"late", DELAYED_KEY, exchange=names("delayed"), properties={"headers": {"x-delay": DELAY}})
        channel.basic.publish(b"now", DELAYED_KEY, exchange=names("delayed"))
        got = []
        for _ in range(2):
            message = _get(channel, queue, no_ack=True)
            got.append((message.body, message.properties["headers"]))
        expect(got, [(b"now", None), (b"late", {"x-delay": -DELAY})], "deliveries (body, headers)")


if __name__ == "__main__":
    main({scenario.__name__: scenario for scenario in (
        connect, auth_refused, routing, ack, requeue, discard, prefetch, confirms, mandatory, rpc,
        large_message, many_channels, not_found, precondition_failed, heartbeat, consumer_cancel,
        dead_letter_ttl, dead_letter_reject, max_length, priority, single_active_consumer, alternate_exchange,
        quorum_queue, consumer_priority, cc_bcc, queue_expires, max_length_bytes, reject_publish_dlx,
        quorum_declare_rules, stream, topic_permissions, operator_policy, deduplication, delayed_message,
    )})
