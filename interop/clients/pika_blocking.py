"""The scenarios with pika's BlockingConnection."""

import uuid

import pika
from pika.exceptions import AuthenticationError, ChannelClosedByBroker, NackError, ProbableAuthenticationError

from interop.clients.common import (
    Names,
    expect,
    expect_dead_lettered,
    expect_topic_refused,
    large_body,
    main,
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


def _connect(url: str) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.URLParameters(url))


def _pump(connection: pika.BlockingConnection):
    return lambda: connection.process_data_events(time_limit=0.05)


def _get(connection, channel, queue: str, *, auto_ack: bool = False):
    """basic.get, retried while the queue is still empty."""

    def fetch():
        method, properties, body = channel.basic_get(queue, auto_ack=auto_ack)
        return None if method is None else (method, properties, body)

    return poll(fetch, _pump(connection), f"message on {queue}")


def _message_count(channel, queue: str) -> int:
    return channel.queue_declare(queue, passive=True).method.message_count


def _expect_last_nacked(channel, queue: str) -> None:
    """Publishes m0.. one over the queue's x-max-length, with confirms: the last one must be nacked."""
    outcomes = []
    for n in range(MAX_LENGTH + 1):
        try:
            channel.basic_publish("", queue, f"m{n}".encode())
            outcomes.append("ack")
        except NackError:
            outcomes.append("nack")
    expect(outcomes, ["ack"] * MAX_LENGTH + ["nack"], "confirms")


def _dead_letter_queue(channel, names: Names) -> dict:
    """A DLX with its queue; returns the arguments that make a queue dead-letter there."""
    channel.exchange_declare(names("dlx"), "direct", auto_delete=True)
    channel.queue_declare(names("dlq"), exclusive=True)
    channel.queue_bind(names("dlq"), names("dlx"), routing_key=DEAD_LETTER_KEY)
    return {"x-dead-letter-exchange": names("dlx"), "x-dead-letter-routing-key": DEAD_LETTER_KEY}


def _get_dead_letter(connection, channel, names: Names):
    method, properties, body = _get(connection, channel, names("dlq"), auto_ack=True)
    expect((method.exchange, method.routing_key), (names("dlx"), DEAD_LETTER_KEY), "dead letter's exchange and key")
    return properties, body


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


def dead_letter_ttl(url: str, names: Names) -> None:
    with _connect(url) as connection:
        channel = connection.channel()
        dead_letter = _dead_letter_queue(channel, names)
        channel.queue_declare(names("ttl"), exclusive=True, arguments={**dead_letter, "x-message-ttl": QUEUE_TTL})
        channel.queue_declare(names("expiring"), exclusive=True, arguments=dead_letter)
        channel.basic_publish("", names("ttl"), b"queue-ttl")
        expiring = pika.BasicProperties(expiration=MESSAGE_EXPIRATION)
        channel.basic_publish("", names("expiring"), b"message-ttl", expiring)
        dead = {body: properties for properties, body in (_get_dead_letter(connection, channel, names) for _ in "12")}
        expect(sorted(dead), [b"message-ttl", b"queue-ttl"], "dead letters")
        expect_dead_lettered(dead[b"queue-ttl"].headers, "expired", names("ttl"))
        expect_dead_lettered(dead[b"message-ttl"].headers, "expired", names("expiring"), MESSAGE_EXPIRATION)
        expect(dead[b"message-ttl"].expiration, None, "expiration of the dead letter")
        expect([_message_count(channel, names(queue)) for queue in ("ttl", "expiring")], [0, 0], "messages left")


def dead_letter_reject(url: str, names: Names) -> None:
    with _connect(url) as connection:
        channel = connection.channel()
        channel.queue_declare(names("q"), exclusive=True, arguments=_dead_letter_queue(channel, names))
        channel.basic_publish("", names("q"), b"rejected")
        method, _, _ = _get(connection, channel, names("q"))
        channel.basic_reject(method.delivery_tag, requeue=False)
        properties, body = _get_dead_letter(connection, channel, names)
        expect(body, b"rejected", "dead letter")
        expect_dead_lettered(properties.headers, "rejected", names("q"))


def max_length(url: str, names: Names) -> None:
    with _connect(url) as connection:
        channel = connection.channel()
        channel.queue_declare(names("drop"), exclusive=True, arguments={"x-max-length": MAX_LENGTH})
        for n in range(MAX_LENGTH + 1):
            channel.basic_publish("", names("drop"), f"m{n}".encode())
        kept = [_get(connection, channel, names("drop"), auto_ack=True)[2].decode() for _ in range(MAX_LENGTH)]
        expect(kept, [f"m{n}" for n in range(1, MAX_LENGTH + 1)], "messages kept by drop-head")
        expect(_message_count(channel, names("drop")), 0, "messages left")
        arguments = {"x-max-length": MAX_LENGTH, "x-overflow": "reject-publish"}
        channel.queue_declare(names("reject"), exclusive=True, arguments=arguments)
        channel.confirm_delivery()
        _expect_last_nacked(channel, names("reject"))
        expect(_message_count(channel, names("reject")), MAX_LENGTH, "messages in queue")


def priority(url: str, names: Names) -> None:
    with _connect(url) as connection:
        channel = connection.channel()
        arguments = {"x-max-priority": MAX_PRIORITY}
        queue = channel.queue_declare(names("q"), exclusive=True, arguments=arguments).method.queue
        for level, body in PRIORITY_PUBLISHES:
            channel.basic_publish("", queue, body.encode(), pika.BasicProperties(priority=level))
        bodies = []
        channel.basic_consume(queue, lambda ch, method, props, body: bodies.append(body.decode()), auto_ack=True)
        pump_until(lambda: len(bodies) == len(PRIORITY_EXPECTED), _pump(connection), "deliveries")
        expect(bodies, list(PRIORITY_EXPECTED), "delivery order")


def single_active_consumer(url: str, names: Names) -> None:
    with _connect(url) as connection:
        first, second = connection.channel(), connection.channel()
        queue = first.queue_declare(names("q"), exclusive=True, arguments={"x-single-active-consumer": True})
        queue = queue.method.queue
        received = {"first": [], "second": []}
        tags = {
            name: channel.basic_consume(
                queue, lambda ch, method, props, body, got=received[name]: got.append(body.decode()), auto_ack=True
            )
            for name, channel in (("first", first), ("second", second))
        }
        for n in range(SAC_FIRST):
            first.basic_publish("", queue, f"m{n}".encode())
        pump_until(lambda: sum(map(len, received.values())) == SAC_FIRST, _pump(connection), "deliveries")
        expect(received, {"first": [f"m{n}" for n in range(SAC_FIRST)], "second": []}, "while the first consumes")
        first.basic_cancel(tags["first"])
        for n in range(SAC_FIRST, SAC_FIRST + SAC_REST):
            first.basic_publish("", queue, f"m{n}".encode())
        pump_until(lambda: len(received["second"]) == SAC_REST, _pump(connection), "deliveries to the second")
        rest = [f"m{n}" for n in range(SAC_FIRST, SAC_FIRST + SAC_REST)]
        expect(received, {"first": [f"m{n}" for n in range(SAC_FIRST)], "second": rest}, "after the first cancelled")


def alternate_exchange(url: str, names: Names) -> None:
    with _connect(url) as connection:
        channel = connection.channel()
        channel.exchange_declare(names("ae"), "fanout", auto_delete=True)
        channel.queue_declare(names("unrouted"), exclusive=True)
        channel.queue_bind(names("unrouted"), names("ae"))
        channel.exchange_declare(names("x"), "direct", arguments={"alternate-exchange": names("ae")})
        channel.confirm_delivery()
        # Returns None once the publish is confirmed, raises UnroutableError if it came back first.
        channel.basic_publish(names("x"), "nowhere", b"unroutable", mandatory=True)
        method, _, body = _get(connection, channel, names("unrouted"), auto_ack=True)
        delivered = (method.exchange, method.routing_key, body)
        expect(delivered, (names("x"), "nowhere", b"unroutable"), "message in the AE's queue")
        channel.exchange_delete(names("x"))


def quorum_queue(url: str, names: Names) -> None:
    with _connect(url) as connection:
        channel = connection.channel()
        arguments = {"x-queue-type": "quorum", "x-delivery-limit": DELIVERY_LIMIT, **_dead_letter_queue(channel, names)}
        queue = channel.queue_declare(names("quorum"), durable=True, arguments=arguments).method.queue
        channel.basic_publish("", queue, b"poison")
        method, _, _ = _get(connection, channel, queue)
        channel.basic_reject(method.delivery_tag, requeue=True)
        method, properties, _ = _get(connection, channel, queue)
        redelivery = (method.redelivered, (properties.headers or {}).get("x-delivery-count"))
        expect(redelivery, (True, 1), "redelivered, x-delivery-count")
        channel.basic_reject(method.delivery_tag, requeue=True)
        properties, body = _get_dead_letter(connection, channel, names)
        expect(body, b"poison", "dead letter")
        expect_dead_lettered(properties.headers, "delivery_limit", queue)
        expect(_message_count(channel, queue), 0, "messages left")
        channel.queue_delete(queue)


def consumer_priority(url: str, names: Names) -> None:
    with _connect(url) as connection:
        queue = connection.channel().queue_declare(names("q"), exclusive=True).method.queue
        received = {name: [] for name in CONSUMER_PRIORITIES}
        for name, level in CONSUMER_PRIORITIES.items():
            channel = connection.channel()
            channel.basic_qos(prefetch_count=CONSUMER_PRIORITY_MESSAGES)
            channel.basic_consume(
                queue, lambda ch, method, props, body, got=received[name]: got.append(body.decode()),
                arguments={"x-priority": level},
            )
        channel = connection.channel()
        for n in range(CONSUMER_PRIORITY_MESSAGES):
            channel.basic_publish("", queue, f"m{n}".encode())
        pump_until(lambda: len(received["high"]) == CONSUMER_PRIORITY_MESSAGES, _pump(connection), "deliveries")
        connection.process_data_events(time_limit=QUIET)
        expect(received, {"high": [f"m{n}" for n in range(CONSUMER_PRIORITY_MESSAGES)], "low": []}, "deliveries")


def cc_bcc(url: str, names: Names) -> None:
    with _connect(url) as connection:
        channel = connection.channel()
        channel.exchange_declare(names("x"), "direct", auto_delete=True)
        for key in CC_BCC_QUEUES:
            channel.queue_declare(names(key), exclusive=True)
            channel.queue_bind(names(key), names("x"), routing_key=key)
        channel.basic_publish(names("x"), CC_BCC_QUEUES[0], b"copied", pika.BasicProperties(headers=CC_BCC_HEADERS))
        for key in CC_BCC_QUEUES:
            method, properties, body = _get(connection, channel, names(key), auto_ack=True)
            delivered = (method.routing_key, properties.headers, body)
            expect(delivered, (CC_BCC_QUEUES[0], CC_BCC_DELIVERED, b"copied"), f"copy on queue {key}")


def queue_expires(url: str, names: Names) -> None:
    with _connect(url) as connection:
        channel = connection.channel()
        channel.queue_declare(names("q"), arguments={"x-expires": QUEUE_EXPIRES})
        connection.sleep(EXPIRES_WAIT)
        try:
            channel.queue_declare(names("q"), passive=True)
            raise AssertionError("the queue outlived its x-expires")
        except ChannelClosedByBroker as exc:
            expect(exc.reply_code, 404, "reply code")


def max_length_bytes(url: str, names: Names) -> None:
    with _connect(url) as connection:
        channel = connection.channel()
        channel.queue_declare(names("q"), exclusive=True, arguments={"x-max-length-bytes": MAX_LENGTH_BYTES})
        for body in MAX_LENGTH_BYTES_BODIES:
            channel.basic_publish("", names("q"), body.encode())
        kept = [_get(connection, channel, names("q"), auto_ack=True)[2].decode() for _ in range(2)]
        expect(kept, list(MAX_LENGTH_BYTES_BODIES[1:]), "messages kept by drop-head")
        expect(_message_count(channel, names("q")), 0, "messages left")


def reject_publish_dlx(url: str, names: Names) -> None:
    with _connect(url) as connection:
        channel = connection.channel()
        dead_letter = _dead_letter_queue(channel, names)
        arguments = {"x-max-length": MAX_LENGTH, "x-overflow": "reject-publish-dlx", **dead_letter}
        channel.queue_declare(names("q"), exclusive=True, arguments=arguments)
        channel.confirm_delivery()
        _expect_last_nacked(channel, names("q"))
        properties, body = _get_dead_letter(connection, channel, names)
        expect(body, f"m{MAX_LENGTH}".encode(), "dead letter")
        expect_dead_lettered(properties.headers, "maxlen", names("q"))
        expect(_message_count(channel, names("q")), MAX_LENGTH, "messages in queue")


def quorum_declare_rules(url: str, names: Names) -> None:
    with _connect(url) as connection:
        for flags, arguments, text in QUORUM_REFUSALS:
            try:
                connection.channel().queue_declare(
                    names("q"), **{"durable": True, **flags}, arguments={"x-queue-type": "quorum", **arguments}
                )
                raise AssertionError(f"declared a quorum queue with {flags} {arguments}")
            except ChannelClosedByBroker as exc:
                refused = (exc.reply_code, exc.reply_text.startswith(f"{text} for queue '{names('q')}'"))
                expect(refused, (406, True), f"refusal of {flags} {arguments} ({exc.reply_text})")
        channel = connection.channel()
        channel.queue_declare(names("q"), durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_delete(names("q"))


def stream(url: str, names: Names) -> None:
    with _connect(url) as connection:
        channel = connection.channel()
        queue = channel.queue_declare(names("stream"), durable=True, arguments={"x-queue-type": "stream"}).method.queue
        channel.confirm_delivery()
        for n in range(STREAM_MESSAGES):
            channel.basic_publish("", queue, f"s{n}".encode())

        def reader(offset, count: int) -> list:
            consuming = connection.channel()
            consuming.basic_qos(prefetch_count=count)
            got = []

            def on_message(ch, method, properties, body) -> None:
                got.append((body.decode(), properties.headers["x-stream-offset"]))
                ch.basic_ack(method.delivery_tag)

            consuming.basic_consume(queue, on_message, arguments={"x-stream-offset": offset})
            return got

        first, middle = reader("first", STREAM_MESSAGES), reader(STREAM_OFFSET, STREAM_MESSAGES - STREAM_OFFSET)
        pump_until(lambda: len(first) == STREAM_MESSAGES and len(middle) == STREAM_MESSAGES - STREAM_OFFSET,
                   _pump(connection), "deliveries")
        expect(first, stream_read(0), "from first")
        expect(middle, stream_read(STREAM_OFFSET), f"from {STREAM_OFFSET}")
        following = reader("next", 1)
        channel.basic_publish("", queue, f"s{STREAM_MESSAGES}".encode())
        # The other readers get it too, and must have it before the close: pika rejects what it holds
        # for a consumer when it closes the channel, and a stream refuses a reject with 540.
        last = STREAM_MESSAGES + 1
        pump_until(lambda: following and len(first) + len(middle) == last + last - STREAM_OFFSET,
                   _pump(connection), "the delivery to every reader")
        expect(following, stream_read(STREAM_MESSAGES, last), "from next")
        expect((first, middle), (stream_read(0, last), stream_read(STREAM_OFFSET, last)), "the others, then")
        channel.queue_delete(queue)


def topic_permissions(url: str, names: Names) -> None:
    allowed, readable, refused = topic_keys(names)
    with _connect(topic_user(url)) as connection:
        channel = connection.channel()
        queue = channel.queue_declare(names("q"), exclusive=True).method.queue
        for key in (allowed, readable):
            channel.queue_bind(queue, TOPIC_EXCHANGE, routing_key=key)
        channel.basic_publish(TOPIC_EXCHANGE, allowed, b"allowed")
        method, _, body = _get(connection, channel, queue, auto_ack=True)
        expect((method.routing_key, body), (allowed, b"allowed"), "message published with the allowed key")
        channel.basic_publish(TOPIC_EXCHANGE, readable, b"refused")
        try:  # the next method on the channel is answered with the publish's channel.close
            channel.queue_declare(queue, passive=True)
            raise AssertionError(f"a publish with the key {readable!r} was accepted")
        except ChannelClosedByBroker as exc:
            expect_topic_refused(exc.reply_code, exc.reply_text, readable)
        try:
            connection.channel().queue_bind(queue, TOPIC_EXCHANGE, routing_key=refused)
            raise AssertionError(f"a binding with the key {refused!r} was accepted")
        except ChannelClosedByBroker as exc:
            expect_topic_refused(exc.reply_code, exc.reply_text, refused)
        expect(_message_count(connection.channel(), queue), 0, "messages left")


def operator_policy(url: str, names: Names) -> None:
    with _connect(url) as connection:
        channel = connection.channel()
        queue = operator_policy_queue(names)
        channel.queue_declare(queue, exclusive=True, arguments={"x-max-length": OPERATOR_POLICY_ARGUMENT})
        channel.confirm_delivery()
        for body in OPERATOR_POLICY_PUBLISHES:
            channel.basic_publish("", queue, body.encode())  # raises NackError unless acked
        expect(_message_count(channel, queue), len(OPERATOR_POLICY_KEPT), "messages in queue")
        kept = [_get(connection, channel, queue, auto_ack=True)[2].decode() for _ in OPERATOR_POLICY_KEPT]
        expect(kept, list(OPERATOR_POLICY_KEPT), "messages kept by drop-head")
        expect(channel.queue_delete(queue).method.message_count, 0, "messages left")


def deduplication(url: str, names: Names) -> None:
    with _connect(url) as connection:
        channel = connection.channel()
        channel.confirm_delivery()
        queue = channel.queue_declare(names("dedup-q"), exclusive=True,
                                      arguments={"x-message-deduplication": True}).method.queue
        channel.exchange_declare(names("dedup-x"), "x-message-deduplication", auto_delete=True,
                                 arguments={"x-cache-size": DEDUP_CACHE_SIZE})
        bound = channel.queue_declare(names("dedup-bound"), exclusive=True).method.queue
        channel.queue_bind(bound, names("dedup-x"))
        for exchange, routing_key, target in (("", queue, queue), (names("dedup-x"), "", bound)):
            for body, value in DEDUP_PUBLISHES:
                # Returns once confirmed; a nack would raise NackError.
                channel.basic_publish(exchange, routing_key, body.encode(),
                                      pika.BasicProperties(headers={"x-deduplication-header": value}))
            got = []
            while (message := channel.basic_get(target, auto_ack=True))[0] is not None:
                got.append(message[2].decode())
            expect(tuple(got), DEDUP_EXPECTED, f"messages in {target}")


def delayed_message(url: str, names: Names) -> None:
    with _connect(url) as connection:
        channel = connection.channel()
        channel.exchange_declare(names("delayed"), "x-delayed-message", auto_delete=True,
                                 arguments={"x-delayed-type": "direct"})
        queue = channel.queue_declare(names("delayed-q"), exclusive=True).method.queue
        channel.queue_bind(queue, names("delayed"), DELAYED_KEY)
        channel.basic_publish(names("delayed"), DELAYED_KEY, b"late", pika.BasicProperties(headers={"x-delay": DELAY}))
        channel.basic_publish(names("delayed"), DELAYED_KEY, b"now")
        got = []
        channel.basic_consume(queue, lambda ch, method, properties, body: got.append((body, properties.headers)),
                              auto_ack=True)
        pump_until(lambda: len(got) == 2, _pump(connection), "both messages")
        expect(got, [(b"now", None), (b"late", {"x-delay": -DELAY})], "deliveries (body, headers)")


if __name__ == "__main__":
    main({scenario.__name__: scenario for scenario in (
        connect, auth_refused, routing, ack, requeue, discard, prefetch, confirms, mandatory, rpc,
        large_message, many_channels, not_found, precondition_failed, heartbeat, consumer_cancel,
        dead_letter_ttl, dead_letter_reject, max_length, priority, single_active_consumer, alternate_exchange,
        quorum_queue, consumer_priority, cc_bcc, queue_expires, max_length_bytes, reject_publish_dlx,
        quorum_declare_rules, stream, topic_permissions, operator_policy, deduplication, delayed_message,
    )})
