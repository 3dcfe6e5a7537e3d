"""The scenarios with kombu on its py-amqp transport."""

import socket
import time
import uuid

import amqp.exceptions
from kombu import Connection, Consumer, Exchange, Producer, Queue, binding

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


def _drain(connection: Connection, seconds: float = 0.05) -> None:
    try:
        connection.drain_events(timeout=seconds)
    except socket.timeout:
        pass


def _quiet(connection: Connection) -> None:
    deadline = time.monotonic() + QUIET
    while time.monotonic() < deadline:
        _drain(connection)


def _get(connection: Connection, queue: Queue, *, no_ack: bool = False):
    """basic.get, retried while the queue is still empty."""
    return poll(lambda: queue.get(no_ack=no_ack), lambda: _drain(connection), f"message on {queue.name}")


def _message_count(channel, name: str) -> int:
    return Queue(name, channel=channel).queue_declare(passive=True).message_count


def _expect_last_nacked(producer: Producer, queue: str) -> None:
    """Publishes m0.. one over the queue's x-max-length on a confirming connection: the last one must
    be nacked."""
    outcomes = []
    for n in range(MAX_LENGTH + 1):
        try:
            producer.publish(f"m{n}".encode(), routing_key=queue)  # waits for the confirm
            outcomes.append("ack")
        except amqp.exceptions.MessageNacked:
            outcomes.append("nack")
    expect(outcomes, ["ack"] * MAX_LENGTH + ["nack"], "confirms")


def _dead_letter_queue(channel, names: Names) -> tuple[Queue, dict]:
    """A DLX with its queue, and the arguments that make a queue dead-letter there."""
    exchange = Exchange(names("dlx"), "direct", auto_delete=True)
    queue = Queue(names("dlq"), exchange, routing_key=DEAD_LETTER_KEY, exclusive=True, channel=channel)
    queue.declare()
    return queue, {"x-dead-letter-exchange": names("dlx"), "x-dead-letter-routing-key": DEAD_LETTER_KEY}


def _get_dead_letter(connection: Connection, queue: Queue, names: Names):
    message = _get(connection, queue, no_ack=True)
    delivered = (message.delivery_info["exchange"], message.delivery_info["routing_key"])
    expect(delivered, (names("dlx"), DEAD_LETTER_KEY), "dead letter's exchange and key")
    return message


def connect(url: str, names: Names) -> None:
    with Connection(url) as connection:
        connection.connect()
        expect(connection.connected, True, "connected")
        connection.channel().close()


def auth_refused(url: str, names: Names) -> None:
    try:
        Connection(wrong_password(url)).connect()
    except amqp.exceptions.AccessRefused:
        return
    raise AssertionError("a wrong password was accepted")


def routing(url: str, names: Names) -> None:
    with Connection(url) as connection:
        channel = connection.channel()
        exchanges = {kind: Exchange(names(kind), kind, auto_delete=True) for kind in ("direct", "fanout", "topic")}
        queues = {}
        for queue, keys in ROUTING_BINDINGS.items():
            bindings = [binding(exchanges["fanout"])]
            bindings += [binding(exchanges[kind], routing_key=key) for kind, key in keys.items()]
            queues[queue] = Queue(names(queue), bindings=bindings, exclusive=True, channel=channel)
            queues[queue].declare()
        producer = Producer(channel)
        for kind, key, body in ROUTING_PUBLISHES:
            exchange, routing_key = ("", names(key)) if kind == "default" else (exchanges[kind], key)
            producer.publish(body.encode(), exchange=exchange, routing_key=routing_key)
        for queue, expected in ROUTING_EXPECTED.items():
            bodies = [_get(connection, queues[queue], no_ack=True).body.decode() for _ in expected]
            expect(bodies, expected, f"messages on queue {queue}")
            expect(queues[queue].get(), None, f"message left on queue {queue}")


def ack(url: str, names: Names) -> None:
    with Connection(url) as connection:
        channel = connection.channel()
        queue = Queue(names("q"), auto_delete=False, channel=channel)  # exclusive would imply auto_delete in kombu
        queue.declare()
        producer = Producer(channel)
        for n in range(ACK_MESSAGES):
            producer.publish(f"m{n}".encode(), routing_key=queue.name)
        bodies = []

        def on_message(body, message) -> None:
            bodies.append(message.body.decode())
            message.ack()

        with Consumer(channel, queues=[queue], callbacks=[on_message]):
            pump_until(lambda: len(bodies) == ACK_MESSAGES, lambda: _drain(connection), "deliveries")
        expect(bodies, [f"m{n}" for n in range(ACK_MESSAGES)], "consumed")
        channel.close()
        channel = connection.channel()
        expect(_message_count(channel, queue.name), 0, "messages requeued after channel close")
        queue(channel).delete()


def requeue(url: str, names: Names) -> None:
    with Connection(url) as connection:
        queue = Queue(names("q"), exclusive=True, channel=connection.channel())
        queue.declare()
        Producer(queue.channel).publish(b"again", routing_key=queue.name)
        message = _get(connection, queue)
        expect((message.body, message.delivery_info["redelivered"]), (b"again", False), "first delivery")
        message.reject(requeue=True)
        message = _get(connection, queue)
        expect((message.body, message.delivery_info["redelivered"]), (b"again", True), "delivery after reject")
        message.requeue()
        message = _get(connection, queue)
        expect((message.body, message.delivery_info["redelivered"]), (b"again", True), "delivery after requeue")
        message.ack()
        expect(queue.get(), None, "basic.get after ack")


def discard(url: str, names: Names) -> None:
    with Connection(url) as connection:
        channel = connection.channel()
        queue = Queue(names("q"), exclusive=True, channel=channel)
        queue.declare()
        Producer(channel).publish(b"rejected", routing_key=queue.name)
        Producer(channel).publish(b"rejected too", routing_key=queue.name)
        _get(connection, queue).reject(requeue=False)
        _get(connection, queue).reject(requeue=False)
        channel.close()
        expect(_message_count(connection.channel(), queue.name), 0, "messages left")


def prefetch(url: str, names: Names) -> None:
    with Connection(url) as connection:
        channel = connection.channel()
        queue = Queue(names("q"), exclusive=True, channel=channel)
        queue.declare()
        producer = Producer(channel)
        for n in range(PREFETCH_MESSAGES):
            producer.publish(f"m{n}".encode(), routing_key=queue.name)
        held = []
        consumer = Consumer(channel, queues=[queue], callbacks=[lambda body, message: held.append(message)])
        consumer.qos(prefetch_count=PREFETCH_COUNT)
        with consumer:
            pump_until(lambda: len(held) >= PREFETCH_COUNT, lambda: _drain(connection), "deliveries")
            _quiet(connection)
            expect(len(held), PREFETCH_COUNT, "deliveries before any ack")
            held[0].ack()
            pump_until(lambda: len(held) > PREFETCH_COUNT, lambda: _drain(connection), "delivery after an ack")
            _quiet(connection)
            expect(len(held), PREFETCH_COUNT + 1, "deliveries after one ack")
            while len(held) < PREFETCH_MESSAGES:
                held[len(held) - PREFETCH_COUNT].ack()
                count = len(held)
                pump_until(lambda: len(held) > count, lambda: _drain(connection), "delivery")
        expect([message.body.decode() for message in held], [f"m{n}" for n in range(PREFETCH_MESSAGES)], "delivered")


def confirms(url: str, names: Names) -> None:
    with Connection(url, transport_options={"confirm_publish": True}) as connection:
        channel = connection.channel()
        queue = Queue(names("q"), exclusive=True, channel=channel)
        queue.declare()
        producer = Producer(channel)
        for n in range(CONFIRMED_MESSAGES):
            producer.publish(f"m{n}".encode(), routing_key=queue.name)  # waits for the ack, raises on a nack
        expect(_message_count(channel, queue.name), CONFIRMED_MESSAGES, "messages in queue")


def mandatory(url: str, names: Names) -> None:
    with Connection(url) as connection:
        returned = []
        producer = Producer(
            connection.channel(), on_return=lambda exc, exchange, routing_key, message: returned.append((exc, message))
        )
        producer.publish(b"lost", routing_key=names("nowhere"), mandatory=True)
        pump_until(lambda: returned, lambda: _drain(connection), "basic.return")
        exc, message = returned[0]
        expect((exc.reply_code, exc.reply_text, message.body), (312, "NO_ROUTE", b"lost"), "basic.return")


def rpc(url: str, names: Names) -> None:
    with Connection(url) as connection:
        server = connection.channel()
        requests = Queue(names("rpc"), exclusive=True, channel=server)
        requests.declare()

        def serve(body, request) -> None:
            reply_to, correlation_id = request.properties["reply_to"], request.properties["correlation_id"]
            Producer(server).publish(request.body.upper(), routing_key=reply_to, correlation_id=correlation_id)
            request.ack()

        client = connection.channel()
        # Named: a Consumer redeclares its queues, and a server-named amq.gen-* queue may not be declared.
        replies = Queue(names("replies"), exclusive=True, channel=client)
        replies.declare()
        answers = []
        with (
            Consumer(server, queues=[requests], callbacks=[serve]),
            Consumer(client, queues=[replies], callbacks=[lambda body, message: answers.append(message)], no_ack=True),
        ):
            correlation_id = str(uuid.uuid4())
            Producer(client).publish(
                b"ping", routing_key=requests.name, reply_to=replies.name, correlation_id=correlation_id
            )
            pump_until(lambda: answers, lambda: _drain(connection), "reply")
        expect((answers[0].properties["correlation_id"], answers[0].body), (correlation_id, b"PING"), "reply")


def large_message(url: str, names: Names) -> None:
    body = large_body()
    with Connection(url) as connection:
        queue = Queue(names("q"), exclusive=True, channel=connection.channel())
        queue.declare()
        Producer(queue.channel).publish(body, routing_key=queue.name)
        received = _get(connection, queue, no_ack=True).body
        expect(received == body, True, f"received {len(received)} bytes equal to the {len(body)} sent")


def many_channels(url: str, names: Names) -> None:
    with Connection(url) as connection:
        channels = [connection.channel() for _ in range(CHANNELS)]
        queue = Queue(names("q"), exclusive=True, channel=channels[0])
        queue.declare()
        for n, channel in enumerate(channels):
            Producer(channel).publish(str(n).encode(), routing_key=queue.name)
        received = set()
        collect = [lambda body, message: received.add(int(message.body))]
        with Consumer(channels[-1], queues=[queue], callbacks=collect, no_ack=True):
            pump_until(lambda: len(received) == CHANNELS, lambda: _drain(connection), f"{CHANNELS} messages")
        expect(len({channel.channel_id for channel in channels}), CHANNELS, "distinct channel numbers")
        for channel in channels:
            channel.close()


def not_found(url: str, names: Names) -> None:
    with Connection(url) as connection:
        try:
            Queue(names("missing"), channel=connection.channel()).queue_declare(passive=True)
            raise AssertionError("passive declare of a missing queue succeeded")
        except amqp.exceptions.NotFound as exc:
            expect(exc.reply_code, 404, "reply code")
        Queue(exclusive=True, channel=connection.channel()).declare()


def precondition_failed(url: str, names: Names) -> None:
    with Connection(url) as connection:
        Queue(names("q"), durable=False, auto_delete=False, channel=connection.channel()).declare()
        try:
            Queue(names("q"), durable=True, auto_delete=False, channel=connection.channel()).declare()
            raise AssertionError("redeclare with durable=True succeeded")
        except amqp.exceptions.PreconditionFailed as exc:
            expect(exc.reply_code, 406, "reply code")
        Queue(names("q"), channel=connection.channel()).delete()


def heartbeat(url: str, names: Names) -> None:
    with Connection(url, heartbeat=HEARTBEAT) as connection:
        connection.connect()
        expect(connection.connection.heartbeat, HEARTBEAT, "negotiated heartbeat")
        deadline = time.monotonic() + IDLE
        while time.monotonic() < deadline:
            connection.heartbeat_check()  # raises ConnectionForced after two missed broker heartbeats
            _drain(connection, HEARTBEAT / 4)
        Queue(exclusive=True, channel=connection.channel()).declare()


def consumer_cancel(url: str, names: Names) -> None:
    with Connection(url) as connection:
        queue = Queue(names("q"), exclusive=True, channel=connection.channel())
        queue.declare()
        cancelled = []
        tag = str(uuid.uuid4())
        queue.consume(consumer_tag=tag, callback=lambda message: None, on_cancel=cancelled.append)
        Queue(names("q"), channel=connection.channel()).delete()
        pump_until(lambda: cancelled, lambda: _drain(connection), "basic.cancel from the server")
        expect(cancelled, [tag], "cancelled consumer tags")


def dead_letter_ttl(url: str, names: Names) -> None:
    with Connection(url) as connection:
        channel = connection.channel()
        dead_letters, arguments = _dead_letter_queue(channel, names)
        ttl = Queue(names("ttl"), exclusive=True, queue_arguments={**arguments, "x-message-ttl": QUEUE_TTL})
        expiring = Queue(names("expiring"), exclusive=True, queue_arguments=arguments)
        for queue in (ttl, expiring):
            queue(channel).declare()
        producer = Producer(channel)
        producer.publish(b"queue-ttl", routing_key=ttl.name)
        # kombu takes the expiration in seconds and sends it in milliseconds
        producer.publish(b"message-ttl", routing_key=expiring.name, expiration=int(MESSAGE_EXPIRATION) / 1000)
        dead = {message.body: message for message in [_get_dead_letter(connection, dead_letters, names) for _ in "12"]}
        expect(sorted(dead), [b"message-ttl", b"queue-ttl"], "dead letters")
        expect_dead_lettered(dead[b"queue-ttl"].headers, "expired", ttl.name)
        expect_dead_lettered(dead[b"message-ttl"].headers, "expired", expiring.name, MESSAGE_EXPIRATION)
        expect(dead[b"message-ttl"].properties.get("expiration"), None, "expiration of the dead letter")
        expect([_message_count(channel, queue.name) for queue in (ttl, expiring)], [0, 0], "messages left")


def dead_letter_reject(url: str, names: Names) -> None:
    with Connection(url) as connection:
        channel = connection.channel()
        dead_letters, arguments = _dead_letter_queue(channel, names)
        queue = Queue(names("q"), exclusive=True, queue_arguments=arguments, channel=channel)
        queue.declare()
        Producer(channel).publish(b"rejected", routing_key=queue.name)
        _get(connection, queue).reject(requeue=False)
        message = _get_dead_letter(connection, dead_letters, names)
        expect(message.body, b"rejected", "dead letter")
        expect_dead_lettered(message.headers, "rejected", queue.name)


def max_length(url: str, names: Names) -> None:
    with Connection(url, transport_options={"confirm_publish": True}) as connection:
        channel = connection.channel()
        drop = Queue(names("drop"), exclusive=True, queue_arguments={"x-max-length": MAX_LENGTH}, channel=channel)
        drop.declare()
        producer = Producer(channel)
        for n in range(MAX_LENGTH + 1):
            producer.publish(f"m{n}".encode(), routing_key=drop.name)
        kept = [_get(connection, drop, no_ack=True).body.decode() for _ in range(MAX_LENGTH)]
        expect(kept, [f"m{n}" for n in range(1, MAX_LENGTH + 1)], "messages kept by drop-head")
        expect(drop.get(), None, "message left")
        arguments = {"x-max-length": MAX_LENGTH, "x-overflow": "reject-publish"}
        reject = Queue(names("reject"), exclusive=True, queue_arguments=arguments, channel=channel)
        reject.declare()
        _expect_last_nacked(producer, reject.name)
        expect(_message_count(channel, reject.name), MAX_LENGTH, "messages in queue")


def priority(url: str, names: Names) -> None:
    with Connection(url) as connection:
        channel = connection.channel()
        arguments = {"x-max-priority": MAX_PRIORITY}
        queue = Queue(names("q"), exclusive=True, queue_arguments=arguments, channel=channel)
        queue.declare()
        producer = Producer(channel)
        for level, body in PRIORITY_PUBLISHES:
            producer.publish(body.encode(), routing_key=queue.name, priority=level)
        bodies = []
        with Consumer(channel, queues=[queue], callbacks=[lambda body, message: bodies.append(body.decode())]):
            pump_until(lambda: len(bodies) == len(PRIORITY_EXPECTED), lambda: _drain(connection), "deliveries")
        expect(bodies, list(PRIORITY_EXPECTED), "delivery order")


def single_active_consumer(url: str, names: Names) -> None:
    with Connection(url) as connection:
        first, second = connection.channel(), connection.channel()
        queue = Queue(names("q"), exclusive=True, queue_arguments={"x-single-active-consumer": True}, channel=first)
        queue.declare()
        received = {"first": [], "second": []}
        consumers = {
            name: Consumer(channel, queues=[queue], callbacks=[lambda body, message, got=got: got.append(body)])
            for (name, got), channel in zip(received.items(), (first, second))
        }
        for consumer in consumers.values():
            consumer.consume(no_ack=True)
        producer = Producer(first)
        for n in range(SAC_FIRST):
            producer.publish(f"m{n}".encode(), routing_key=queue.name)

        def delivered() -> int:
            return sum(map(len, received.values()))

        pump_until(lambda: delivered() == SAC_FIRST, lambda: _drain(connection), "deliveries")
        first_bodies = [f"m{n}".encode() for n in range(SAC_FIRST)]
        expect(received, {"first": first_bodies, "second": []}, "while the first consumes")
        consumers["first"].cancel()
        for n in range(SAC_FIRST, SAC_FIRST + SAC_REST):
            producer.publish(f"m{n}".encode(), routing_key=queue.name)
        pump_until(lambda: delivered() == SAC_FIRST + SAC_REST, lambda: _drain(connection), "deliveries")
        rest = [f"m{n}".encode() for n in range(SAC_FIRST, SAC_FIRST + SAC_REST)]
        expect(received, {"first": first_bodies, "second": rest}, "after the first cancelled")


def alternate_exchange(url: str, names: Names) -> None:
    with Connection(url, transport_options={"confirm_publish": True}) as connection:
        channel = connection.channel()
        unrouted = Queue(names("unrouted"), Exchange(names("ae"), "fanout", auto_delete=True), exclusive=True)
        unrouted = unrouted(channel)
        unrouted.declare()
        exchange = Exchange(names("x"), "direct", arguments={"alternate-exchange": names("ae")}, channel=channel)
        exchange.declare()
        returned = []
        producer = Producer(channel, on_return=lambda exc, exchange, routing_key, message: returned.append(message))
        producer.publish(b"unroutable", exchange=exchange, routing_key="nowhere", mandatory=True)  # waits for a confirm
        expect(returned, [], "returned messages")  # a basic.return comes before the confirm
        message = _get(connection, unrouted, no_ack=True)
        delivered = (message.delivery_info["exchange"], message.delivery_info["routing_key"], message.body)
        expect(delivered, (exchange.name, "nowhere", b"unroutable"), "message in the AE's queue")
        exchange.delete()


def quorum_queue(url: str, names: Names) -> None:
    with Connection(url) as connection:
        channel = connection.channel()
        dead_letters, arguments = _dead_letter_queue(channel, names)
        arguments = {"x-queue-type": "quorum", "x-delivery-limit": DELIVERY_LIMIT, **arguments}
        queue = Queue(names("quorum"), durable=True, auto_delete=False, queue_arguments=arguments, channel=channel)
        queue.declare()
        Producer(channel).publish(b"poison", routing_key=queue.name)
        _get(connection, queue).requeue()
        message = _get(connection, queue)
        redelivery = (message.delivery_info["redelivered"], message.headers.get("x-delivery-count"))
        expect(redelivery, (True, 1), "redelivered, x-delivery-count")
        message.requeue()
        message = _get_dead_letter(connection, dead_letters, names)
        expect(message.body, b"poison", "dead letter")
        expect_dead_lettered(message.headers, "delivery_limit", queue.name)
        queue.delete()


def consumer_priority(url: str, names: Names) -> None:
    with Connection(url) as connection:
        received = {name: [] for name in CONSUMER_PRIORITIES}
        for name, level in CONSUMER_PRIORITIES.items():
            queue = Queue(names("q"), exclusive=True, consumer_arguments={"x-priority": level})
            consumer = Consumer(
                connection.channel(), queues=[queue],
                callbacks=[lambda body, message, got=received[name]: got.append(body.decode())],
            )
            consumer.qos(prefetch_count=CONSUMER_PRIORITY_MESSAGES)
            consumer.consume()
        producer = Producer(connection.channel())
        for n in range(CONSUMER_PRIORITY_MESSAGES):
            producer.publish(f"m{n}".encode(), routing_key=names("q"))
        pump_until(lambda: len(received["high"]) == CONSUMER_PRIORITY_MESSAGES, lambda: _drain(connection), "deliveries")
        _quiet(connection)
        expect(received, {"high": [f"m{n}" for n in range(CONSUMER_PRIORITY_MESSAGES)], "low": []}, "deliveries")


def cc_bcc(url: str, names: Names) -> None:
    with Connection(url) as connection:
        channel = connection.channel()
        exchange = Exchange(names("x"), "direct", auto_delete=True)
        queues = {
            key: Queue(names(key), exchange, routing_key=key, exclusive=True, channel=channel) for key in CC_BCC_QUEUES
        }
        for queue in queues.values():
            queue.declare()
        Producer(channel).publish(b"copied", exchange=exchange, routing_key=CC_BCC_QUEUES[0], headers=CC_BCC_HEADERS)
        for key, queue in queues.items():
            message = _get(connection, queue, no_ack=True)
            delivered = (message.delivery_info["routing_key"], message.headers, message.body)
            expect(delivered, (CC_BCC_QUEUES[0], CC_BCC_DELIVERED, b"copied"), f"copy on queue {key}")


def queue_expires(url: str, names: Names) -> None:
    with Connection(url) as connection:
        Queue(names("q"), queue_arguments={"x-expires": QUEUE_EXPIRES}, channel=connection.channel()).declare()
        time.sleep(EXPIRES_WAIT)
        try:
            Queue(names("q"), channel=connection.channel()).queue_declare(passive=True)
            raise AssertionError("the queue outlived its x-expires")
        except amqp.exceptions.NotFound as exc:
            expect(exc.reply_code, 404, "reply code")


def max_length_bytes(url: str, names: Names) -> None:
    with Connection(url, transport_options={"confirm_publish": True}) as connection:
        channel = connection.channel()
        arguments = {"x-max-length-bytes": MAX_LENGTH_BYTES}
        queue = Queue(names("q"), exclusive=True, queue_arguments=arguments, channel=channel)
        queue.declare()
        producer = Producer(channel)
        for body in MAX_LENGTH_BYTES_BODIES:
            producer.publish(body.encode(), routing_key=queue.name)
        kept = [_get(connection, queue, no_ack=True).body.decode() for _ in range(2)]
        expect(kept, list(MAX_LENGTH_BYTES_BODIES[1:]), "messages kept by drop-head")
        expect(queue.get(), None, "message left")


def reject_publish_dlx(url: str, names: Names) -> None:
    with Connection(url, transport_options={"confirm_publish": True}) as connection:
        channel = connection.channel()
        dead_letters, arguments = _dead_letter_queue(channel, names)
        arguments = {"x-max-length": MAX_LENGTH, "x-overflow": "reject-publish-dlx", **arguments}
        queue = Queue(names("q"), exclusive=True, queue_arguments=arguments, channel=channel)
        queue.declare()
        _expect_last_nacked(Producer(channel), queue.name)
        message = _get_dead_letter(connection, dead_letters, names)
        expect(message.body, f"m{MAX_LENGTH}".encode(), "dead letter")
        expect_dead_lettered(message.headers, "maxlen", queue.name)
        expect(_message_count(channel, queue.name), MAX_LENGTH, "messages in queue")


def quorum_declare_rules(url: str, names: Names) -> None:
    with Connection(url) as connection:
        for flags, arguments, text in QUORUM_REFUSALS:
            # The channel's own queue_declare: kombu's Queue makes every exclusive queue auto-delete too.
            declaration = {"durable": True, "auto_delete": False, **flags}
            try:
                connection.channel().queue_declare(
                    names("q"), **declaration, arguments={"x-queue-type": "quorum", **arguments}
                )
                raise AssertionError(f"declared a quorum queue with {flags} {arguments}")
            except amqp.exceptions.PreconditionFailed as exc:
                refused = exc.reply_text.startswith(f"{text} for queue '{names('q')}'")
                expect(refused, True, f"reply text {exc.reply_text!r}")
        queue = Queue(names("q"), durable=True, auto_delete=False, queue_arguments={"x-queue-type": "quorum"},
                      channel=connection.channel())
        queue.declare()
        queue.delete()


def stream(url: str, names: Names) -> None:
    with Connection(url, transport_options={"confirm_publish": True}) as connection:
        channel = connection.channel()
        arguments = {"x-queue-type": "stream"}
        queue = Queue(names("stream"), durable=True, auto_delete=False, queue_arguments=arguments, channel=channel)
        queue.declare()
        producer = Producer(channel)
        for n in range(STREAM_MESSAGES):
            producer.publish(f"s{n}".encode(), routing_key=queue.name)

        consumers = []

        def reader(offset, count: int) -> list:
            got = []

            def on_message(body, message) -> None:
                got.append((body.decode(), message.headers["x-stream-offset"]))
                message.ack()

            reading = Queue(queue.name, no_declare=True, consumer_arguments={"x-stream-offset": offset})
            consumer = Consumer(connection.channel(), queues=[reading], callbacks=[on_message], auto_declare=False)
            consumer.qos(prefetch_count=count)
            consumer.consume()
            consumers.append(consumer)
            return got

        rest = STREAM_MESSAGES - STREAM_OFFSET
        first, middle = reader("first", STREAM_MESSAGES), reader(STREAM_OFFSET, rest)
        delivered = (STREAM_MESSAGES, rest)
        pump_until(lambda: (len(first), len(middle)) == delivered, lambda: _drain(connection), "deliveries")
        expect(first, stream_read(0), "from first")
        expect(middle, stream_read(STREAM_OFFSET), f"from {STREAM_OFFSET}")
        following = reader("next", 1)
        producer.publish(f"s{STREAM_MESSAGES}".encode(), routing_key=queue.name)
        pump_until(lambda: following, lambda: _drain(connection), "the delivery from next")
        expect(following, stream_read(STREAM_MESSAGES, STREAM_MESSAGES + 1), "from next")
        for consumer in consumers:
            # Cancelled first: py-amqp raises on a server's basic.cancel, which deleting the stream sends.
            consumer.cancel()
        queue.delete()



def topic_permissions(url: str, names: Names) -> None:
    allowed, readable, refused = topic_keys(names)
    with Connection(topic_user(url)) as connection:
        channel = connection.channel()
        exchange = Exchange(TOPIC_EXCHANGE, "topic", no_declare=True)  # it exists: bindings need not declare it
        bindings = [binding(exchange, routing_key=key) for key in (allowed, readable)]
        queue = Queue(names("q"), bindings=bindings, exclusive=True, channel=channel)
        queue.declare()
        producer = Producer(channel)
        producer.publish(b"allowed", exchange=exchange, routing_key=allowed)
        message = _get(connection, queue, no_ack=True)
        delivered = (message.delivery_info["routing_key"], message.body)
        expect(delivered, (allowed, b"allowed"), "message published with the allowed key")
        producer.publish(b"refused", exchange=exchange, routing_key=readable)
        try:  # the next method on the channel is answered with the publish's channel.close
            queue.queue_declare(passive=True)
            raise AssertionError(f"a publish with the key {readable!r} was accepted")
        except amqp.exceptions.AccessRefused as exc:
            expect_topic_refused(exc.reply_code, exc.reply_text, readable)
        try:
            Queue(names("q"), exchange, routing_key=refused, channel=connection.channel()).queue_bind()
            raise AssertionError(f"a binding with the key {refused!r} was accepted")
        except amqp.exceptions.AccessRefused as exc:
            expect_topic_refused(exc.reply_code, exc.reply_text, refused)
        expect(_message_count(connection.channel(), names("q")), 0, "messages left")


def operator_policy(url: str, names: Names) -> None:
    with Connection(url, transport_options={"confirm_publish": True}) as connection:
        channel = connection.channel()
        arguments = {"x-max-length": OPERATOR_POLICY_ARGUMENT}
        queue = Queue(operator_policy_queue(names), exclusive=True, queue_arguments=arguments, channel=channel)
        queue.declare()
        producer = Producer(channel)
        for body in OPERATOR_POLICY_PUBLISHES:
            producer.publish(body.encode(), routing_key=queue.name)  # waits for the ack, raises on a nack
        expect(_message_count(channel, queue.name), len(OPERATOR_POLICY_KEPT), "messages in queue")
        kept = [_get(connection, queue, no_ack=True).body.decode() for _ in OPERATOR_POLICY_KEPT]
        expect(kept, list(OPERATOR_POLICY_KEPT), "messages kept by drop-head")
        expect(queue.delete(), 0, "messages left")


def deduplication(url: str, names: Names) -> None:
    with Connection(url, transport_options={"confirm_publish": True}) as connection:
        channel = connection.channel()
        queue = Queue(names("dedup-q"), exclusive=True, queue_arguments={"x-message-deduplication": True},
                      channel=channel)
        queue.declare()
        exchange = Exchange(names("dedup-x"), "x-message-deduplication", auto_delete=True,
                            arguments={"x-cache-size": DEDUP_CACHE_SIZE}, channel=channel)
        bound = Queue(names("dedup-bound"), exchange, exclusive=True, channel=channel)
        bound.declare()
        producer = Producer(channel)
        for target, publish_to in ((queue, {"routing_key": queue.name}), (bound, {"exchange": exchange})):
            for body, value in DEDUP_PUBLISHES:
                # Waits for the confirm; a nack would raise.
                producer.publish(body.encode(), headers={"x-deduplication-header": value}, **publish_to)
            got = []
            while (message := target.get(no_ack=True)) is not None:
                got.append(message.body.decode())
            expect(tuple(got), DEDUP_EXPECTED, f"messages in {target.name}")


def delayed_message(url: str, names: Names) -> None:
    with Connection(url) as connection:
        channel = connection.channel()
        exchange = Exchange(names("delayed"), "x-delayed-message", auto_delete=True,
                            arguments={"x-delayed-type": "direct"}, channel=channel)
        queue = Queue(names("delayed-q"), exchange, routing_key=DELAYED_KEY, exclusive=True, channel=channel)
        queue.declare()
        producer = Producer(channel)
        producer.publish(b"late", exchange=exchange, routing_key=DELAYED_KEY, headers={"x-delay": DELAY})
        producer.publish(b"now", exchange=exchange, routing_key=DELAYED_KEY)
        got = []
        for _ in range(2):
            message = _get(connection, queue, no_ack=True)
            got.append((message.body, message.headers))
        expect(got, [(b"now", {}), (b"late", {"x-delay": -DELAY})], "deliveries (body, headers)")


if __name__ == "__main__":
    main({scenario.__name__: scenario for scenario in (
        connect, auth_refused, routing, ack, requeue, discard, prefetch, confirms, mandatory, rpc,
        large_message, many_channels, not_found, precondition_failed, heartbeat, consumer_cancel,
        dead_letter_ttl, dead_letter_reject, max_length, priority, single_active_consumer, alternate_exchange,
        quorum_queue, consumer_priority, cc_bcc, queue_expires, max_length_bytes, reject_publish_dlx,
        quorum_declare_rules, stream, topic_permissions, operator_policy, deduplication, delayed_message,
    )})
