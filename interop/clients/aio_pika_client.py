"""The scenarios with aio-pika."""

import asyncio
import uuid

import aio_pika
import aiormq
from aio_pika import ExchangeType, Message

from interop.clients.common import (
    Names,
    expect,
    expect_dead_lettered,
    expect_topic_refused,
    large_body,
    main,
    operator_policy_queue,
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
    PATIENCE,
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


async def _get(queue: aio_pika.abc.AbstractQueue, *, no_ack: bool = False) -> aio_pika.abc.AbstractIncomingMessage:
    """basic.get, retried while the queue is still empty."""
    try:
        async with asyncio.timeout(PATIENCE):
            while (message := await queue.get(no_ack=no_ack, fail=False)) is None:
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise TimeoutError(f"no message on {queue.name} within {PATIENCE} s") from None
    return message


async def _expect_last_nacked(channel: aio_pika.abc.AbstractChannel, queue: str) -> None:
    """Publishes m0.. one over the queue's x-max-length, with confirms: the last one must be nacked."""
    outcomes = []
    for n in range(MAX_LENGTH + 1):
        try:
            await channel.default_exchange.publish(Message(f"m{n}".encode()), routing_key=queue)
            outcomes.append("ack")
        except aiormq.exceptions.DeliveryError:  # aiormq's answer to basic.nack
            outcomes.append("nack")
    expect(outcomes, ["ack"] * MAX_LENGTH + ["nack"], "confirms")


async def _dead_letter_queue(channel: aio_pika.abc.AbstractChannel, names: Names) -> aio_pika.abc.AbstractQueue:
    """A DLX with its queue; `_dead_letter_arguments(names)` make a queue dead-letter there."""
    exchange = await channel.declare_exchange(names("dlx"), ExchangeType.DIRECT, auto_delete=True)
    queue = await channel.declare_queue(names("dlq"), exclusive=True)
    await queue.bind(exchange, routing_key=DEAD_LETTER_KEY)
    return queue


def _dead_letter_arguments(names: Names) -> dict:
    return {"x-dead-letter-exchange": names("dlx"), "x-dead-letter-routing-key": DEAD_LETTER_KEY}


async def _get_dead_letter(queue: aio_pika.abc.AbstractQueue, names: Names) -> aio_pika.abc.AbstractIncomingMessage:
    message = await _get(queue, no_ack=True)
    expect((message.exchange, message.routing_key), (names("dlx"), DEAD_LETTER_KEY), "dead letter's exchange and key")
    return message


async def connect(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        expect(channel.is_closed, False, "channel closed")


async def auth_refused(url: str, names: Names) -> None:
    try:
        await (await aio_pika.connect(wrong_password(url))).close()
    except (aiormq.exceptions.AuthenticationError, aiormq.exceptions.ProbableAuthenticationError):
        return
    raise AssertionError("a wrong password was accepted")


async def routing(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        exchanges = {
            kind: await channel.declare_exchange(names(kind), ExchangeType(kind), auto_delete=True)
            for kind in ("direct", "fanout", "topic")
        }
        exchanges["default"] = channel.default_exchange
        queues = {}
        for queue, keys in ROUTING_BINDINGS.items():
            queues[queue] = await channel.declare_queue(names(queue), exclusive=True)
            await queues[queue].bind(exchanges["fanout"])
            for kind, key in keys.items():
                await queues[queue].bind(exchanges[kind], routing_key=key)
        for kind, key, body in ROUTING_PUBLISHES:
            await exchanges[kind].publish(Message(body.encode()), routing_key=names(key) if kind == "default" else key)
        for queue, expected in ROUTING_EXPECTED.items():
            bodies = [(await _get(queues[queue], no_ack=True)).body.decode() for _ in expected]
            expect(bodies, expected, f"messages on queue {queue}")
            expect(await queues[queue].get(fail=False), None, f"message left on queue {queue}")


async def ack(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(names("q"), exclusive=True)
        for n in range(ACK_MESSAGES):
            await channel.default_exchange.publish(Message(f"m{n}".encode()), routing_key=queue.name)
        bodies = []
        async with asyncio.timeout(PATIENCE), queue.iterator() as messages:
            async for message in messages:
                bodies.append(message.body.decode())
                await message.ack()
                if len(bodies) == ACK_MESSAGES:
                    break
        expect(bodies, [f"m{n}" for n in range(ACK_MESSAGES)], "consumed")
        await channel.close()
        queue = await (await connection.channel()).declare_queue(names("q"), passive=True)
        expect(queue.declaration_result.message_count, 0, "messages requeued after channel close")


async def requeue(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(names("q"), exclusive=True)
        await channel.default_exchange.publish(Message(b"again"), routing_key=queue.name)
        message = await _get(queue)
        expect((message.body, message.redelivered), (b"again", False), "first delivery")
        await message.reject(requeue=True)
        message = await _get(queue)
        expect((message.body, message.redelivered), (b"again", True), "delivery after reject")
        await message.nack(requeue=True)
        message = await _get(queue)
        expect((message.body, message.redelivered), (b"again", True), "delivery after nack")
        await message.ack()
        expect(await queue.get(fail=False), None, "basic.get after ack")


async def discard(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(names("q"), exclusive=True)
        await channel.default_exchange.publish(Message(b"rejected"), routing_key=queue.name)
        await channel.default_exchange.publish(Message(b"nacked"), routing_key=queue.name)
        await (await _get(queue)).reject(requeue=False)
        await (await _get(queue)).nack(requeue=False)
        await channel.close()
        queue = await (await connection.channel()).declare_queue(names("q"), passive=True)
        expect(queue.declaration_result.message_count, 0, "messages left")


async def prefetch(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(names("q"), exclusive=True)
        for n in range(PREFETCH_MESSAGES):
            await channel.default_exchange.publish(Message(f"m{n}".encode()), routing_key=queue.name)
        await channel.set_qos(prefetch_count=PREFETCH_COUNT)
        deliveries = asyncio.Queue()
        await queue.consume(deliveries.put)
        held = [await asyncio.wait_for(deliveries.get(), PATIENCE) for _ in range(PREFETCH_COUNT)]
        await asyncio.sleep(QUIET)
        expect(deliveries.qsize(), 0, "deliveries beyond the prefetch limit")
        await held[0].ack()
        held.append(await asyncio.wait_for(deliveries.get(), PATIENCE))
        await asyncio.sleep(QUIET)
        expect(deliveries.qsize(), 0, "deliveries beyond the prefetch limit after one ack")
        while len(held) < PREFETCH_MESSAGES:
            await held[len(held) - PREFETCH_COUNT].ack()
            held.append(await asyncio.wait_for(deliveries.get(), PATIENCE))
        expect([message.body.decode() for message in held], [f"m{n}" for n in range(PREFETCH_MESSAGES)], "delivered")


async def confirms(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(names("q"), exclusive=True)
        publishes = [Message(f"m{n}".encode()) for n in range(CONFIRMED_MESSAGES)]
        confirmations = await asyncio.gather(
            *(channel.default_exchange.publish(message, routing_key=queue.name) for message in publishes)
        )
        expect({type(confirmation).__name__ for confirmation in confirmations}, {"Ack"}, "confirmations")
        queue = await channel.declare_queue(names("q"), passive=True)
        expect(queue.declaration_result.message_count, CONFIRMED_MESSAGES, "messages in queue")


async def mandatory(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        try:
            await channel.default_exchange.publish(Message(b"lost"), routing_key=names("nowhere"), mandatory=True)
            raise AssertionError("unroutable mandatory publish was not returned")
        except aiormq.exceptions.PublishError as exc:
            returned = (exc.message.delivery.reply_code, exc.message.delivery.reply_text, exc.message.body)
            expect(returned, (312, "NO_ROUTE", b"lost"), "basic.return")


async def rpc(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        server = await connection.channel()
        requests = await server.declare_queue(names("rpc"), exclusive=True)

        async def serve(request: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with request.process():
                reply = Message(request.body.upper(), correlation_id=request.correlation_id)
                await server.default_exchange.publish(reply, routing_key=request.reply_to)

        await requests.consume(serve)
        client = await connection.channel()
        replies = await client.declare_queue(exclusive=True)
        answer = asyncio.get_running_loop().create_future()
        await replies.consume(answer.set_result, no_ack=True)
        correlation_id = str(uuid.uuid4())
        request = Message(b"ping", reply_to=replies.name, correlation_id=correlation_id)
        await client.default_exchange.publish(request, routing_key=names("rpc"))
        reply = await asyncio.wait_for(answer, PATIENCE)
        expect((reply.correlation_id, reply.body), (correlation_id, b"PING"), "reply")


async def large_message(url: str, names: Names) -> None:
    body = large_body()
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(names("q"), exclusive=True)
        await channel.default_exchange.publish(Message(body), routing_key=queue.name)
        received = (await _get(queue, no_ack=True)).body
        expect(received == body, True, f"received {len(received)} bytes equal to the {len(body)} sent")


async def many_channels(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        channels = [await connection.channel() for _ in range(CHANNELS)]
        queue = await channels[0].declare_queue(names("q"), exclusive=True)
        for n, channel in enumerate(channels):
            await channel.default_exchange.publish(Message(str(n).encode()), routing_key=queue.name)
        received = set()
        async with asyncio.timeout(PATIENCE), queue.iterator(no_ack=True) as messages:
            async for message in messages:
                received.add(int(message.body))
                if len(received) == CHANNELS:
                    break
        expect(len({channel.number for channel in channels}), CHANNELS, "distinct channel numbers")
        for channel in channels:
            await channel.close()


async def not_found(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        try:
            await channel.declare_queue(names("missing"), passive=True)
            raise AssertionError("passive declare of a missing queue succeeded")
        except aiormq.exceptions.ChannelNotFoundEntity:  # aiormq's class for reply code 404
            pass
        await (await connection.channel()).declare_queue(exclusive=True)


async def precondition_failed(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        await channel.declare_queue(names("q"), durable=False)
        try:
            await channel.declare_queue(names("q"), durable=True)
            raise AssertionError("redeclare with durable=True succeeded")
        except aiormq.exceptions.ChannelPreconditionFailed:  # aiormq's class for reply code 406
            pass
        await (await connection.channel()).queue_delete(names("q"))


async def heartbeat(url: str, names: Names) -> None:
    async with await aio_pika.connect(url, heartbeat=HEARTBEAT) as connection:
        await asyncio.sleep(IDLE)
        await (await connection.channel()).declare_queue(exclusive=True)


async def consumer_cancel(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(names("q"), exclusive=True)
        cancelled = asyncio.get_running_loop().create_future()
        underlay = await channel.get_underlay_channel()
        underlay.on_consumer_cancel_callbacks.add(lambda frame: cancelled.set_result(frame.consumer_tag))
        tag = await queue.consume(lambda message: None)
        await (await connection.channel()).queue_delete(queue.name)
        expect(await asyncio.wait_for(cancelled, PATIENCE), tag, "cancelled consumer tag")


async def dead_letter_ttl(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        dead_letters = await _dead_letter_queue(channel, names)
        arguments = {**_dead_letter_arguments(names), "x-message-ttl": QUEUE_TTL}
        ttl = await channel.declare_queue(names("ttl"), exclusive=True, arguments=arguments)
        arguments = _dead_letter_arguments(names)
        expiring = await channel.declare_queue(names("expiring"), exclusive=True, arguments=arguments)
        await channel.default_exchange.publish(Message(b"queue-ttl"), routing_key=ttl.name)
        # aio-pika takes the expiration in seconds and sends it in milliseconds
        expiring_message = Message(b"message-ttl", expiration=int(MESSAGE_EXPIRATION) / 1000)
        await channel.default_exchange.publish(expiring_message, routing_key=expiring.name)
        dead = {message.body: message for message in [await _get_dead_letter(dead_letters, names) for _ in "12"]}
        expect(sorted(dead), [b"message-ttl", b"queue-ttl"], "dead letters")
        expect_dead_lettered(dead[b"queue-ttl"].headers, "expired", ttl.name)
        expect_dead_lettered(dead[b"message-ttl"].headers, "expired", expiring.name, MESSAGE_EXPIRATION)
        expect(dead[b"message-ttl"].expiration, None, "expiration of the dead letter")
        for queue in (ttl, expiring):
            left = await channel.declare_queue(queue.name, passive=True)
            expect(left.declaration_result.message_count, 0, f"messages left on {queue.name}")


async def dead_letter_reject(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        dead_letters = await _dead_letter_queue(channel, names)
        queue = await channel.declare_queue(names("q"), exclusive=True, arguments=_dead_letter_arguments(names))
        await channel.default_exchange.publish(Message(b"rejected"), routing_key=queue.name)
        await (await _get(queue)).reject(requeue=False)
        message = await _get_dead_letter(dead_letters, names)
        expect(message.body, b"rejected", "dead letter")
        expect_dead_lettered(message.headers, "rejected", queue.name)


async def max_length(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        drop = await channel.declare_queue(names("drop"), exclusive=True, arguments={"x-max-length": MAX_LENGTH})
        for n in range(MAX_LENGTH + 1):
            await channel.default_exchange.publish(Message(f"m{n}".encode()), routing_key=drop.name)
        kept = [(await _get(drop, no_ack=True)).body.decode() for _ in range(MAX_LENGTH)]
        expect(kept, [f"m{n}" for n in range(1, MAX_LENGTH + 1)], "messages kept by drop-head")
        expect(await drop.get(fail=False), None, "message left")
        arguments = {"x-max-length": MAX_LENGTH, "x-overflow": "reject-publish"}
        reject = await channel.declare_queue(names("reject"), exclusive=True, arguments=arguments)
        await _expect_last_nacked(channel, reject.name)
        reject = await channel.declare_queue(names("reject"), passive=True)
        expect(reject.declaration_result.message_count, MAX_LENGTH, "messages in queue")


async def priority(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        arguments = {"x-max-priority": MAX_PRIORITY}
        queue = await channel.declare_queue(names("q"), exclusive=True, arguments=arguments)
        for level, body in PRIORITY_PUBLISHES:
            await channel.default_exchange.publish(Message(body.encode(), priority=level), routing_key=queue.name)
        bodies = []
        async with asyncio.timeout(PATIENCE), queue.iterator(no_ack=True) as messages:
            async for message in messages:
                bodies.append(message.body.decode())
                if len(bodies) == len(PRIORITY_EXPECTED):
                    break
        expect(bodies, list(PRIORITY_EXPECTED), "delivery order")


async def single_active_consumer(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        arguments = {"x-single-active-consumer": True}
        queue = await channel.declare_queue(names("q"), exclusive=True, arguments=arguments)
        received = {"first": asyncio.Queue(), "second": asyncio.Queue()}
        for name, deliveries in received.items():
            await queue.consume(deliveries.put, no_ack=True, consumer_tag=name)
        for n in range(SAC_FIRST):
            await channel.default_exchange.publish(Message(f"m{n}".encode()), routing_key=queue.name)
        bodies = [(await asyncio.wait_for(received["first"].get(), PATIENCE)).body.decode() for _ in range(SAC_FIRST)]
        expected = [f"m{n}" for n in range(SAC_FIRST)]
        expect((bodies, received["second"].qsize()), (expected, 0), "while the first consumes")
        await queue.cancel("first")
        for n in range(SAC_FIRST, SAC_FIRST + SAC_REST):
            await channel.default_exchange.publish(Message(f"m{n}".encode()), routing_key=queue.name)
        bodies = [(await asyncio.wait_for(received["second"].get(), PATIENCE)).body.decode() for _ in range(SAC_REST)]
        expect(bodies, [f"m{n}" for n in range(SAC_FIRST, SAC_FIRST + SAC_REST)], "deliveries to the second consumer")
        expect(received["first"].qsize(), 0, "deliveries to the first after it cancelled")


async def alternate_exchange(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        # With confirms and on_return_raises, publish raises PublishError if the message comes back.
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        alternate = await channel.declare_exchange(names("ae"), ExchangeType.FANOUT, auto_delete=True)
        unrouted = await channel.declare_queue(names("unrouted"), exclusive=True)
        await unrouted.bind(alternate)
        arguments = {"alternate-exchange": alternate.name}
        exchange = await channel.declare_exchange(names("x"), ExchangeType.DIRECT, arguments=arguments)
        await exchange.publish(Message(b"unroutable"), routing_key="nowhere", mandatory=True)
        message = await _get(unrouted, no_ack=True)
        delivered = (message.exchange, message.routing_key, message.body)
        expect(delivered, (exchange.name, "nowhere", b"unroutable"), "message in the AE's queue")
        await channel.exchange_delete(exchange.name)


async def quorum_queue(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        dead_letters = await _dead_letter_queue(channel, names)
        arguments = {"x-queue-type": "quorum", "x-delivery-limit": DELIVERY_LIMIT, **_dead_letter_arguments(names)}
        queue = await channel.declare_queue(names("quorum"), durable=True, arguments=arguments)
        await channel.default_exchange.publish(Message(b"poison"), routing_key=queue.name)
        await (await _get(queue)).reject(requeue=True)
        message = await _get(queue)
        redelivery = (message.redelivered, message.headers.get("x-delivery-count"))
        expect(redelivery, (True, 1), "redelivered, x-delivery-count")
        await message.reject(requeue=True)
        message = await _get_dead_letter(dead_letters, names)
        expect(message.body, b"poison", "dead letter")
        expect_dead_lettered(message.headers, "delivery_limit", queue.name)
        await channel.queue_delete(queue.name)


async def consumer_priority(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(names("q"), exclusive=True)
        received = {}
        for name, level in CONSUMER_PRIORITIES.items():
            consumer = await connection.channel()
            await consumer.set_qos(prefetch_count=CONSUMER_PRIORITY_MESSAGES)
            received[name] = asyncio.Queue()
            on_their_channel = await consumer.get_queue(queue.name, ensure=False)
            await on_their_channel.consume(received[name].put, arguments={"x-priority": level})
        for n in range(CONSUMER_PRIORITY_MESSAGES):
            await channel.default_exchange.publish(Message(f"m{n}".encode()), routing_key=queue.name)
        bodies = [
            (await asyncio.wait_for(received["high"].get(), PATIENCE)).body.decode()
            for _ in range(CONSUMER_PRIORITY_MESSAGES)
        ]
        await asyncio.sleep(QUIET)
        expected = ([f"m{n}" for n in range(CONSUMER_PRIORITY_MESSAGES)], 0)
        expect((bodies, received["low"].qsize()), expected, "deliveries to the high and the low consumer")


async def cc_bcc(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(names("x"), ExchangeType.DIRECT, auto_delete=True)
        queues = {}
        for key in CC_BCC_QUEUES:
            queues[key] = await channel.declare_queue(names(key), exclusive=True)
            await queues[key].bind(exchange, routing_key=key)
        await exchange.publish(Message(b"copied", headers=CC_BCC_HEADERS), routing_key=CC_BCC_QUEUES[0])
        for key, queue in queues.items():
            message = await _get(queue, no_ack=True)
            delivered = (message.routing_key, message.headers, message.body)
            expect(delivered, (CC_BCC_QUEUES[0], CC_BCC_DELIVERED, b"copied"), f"copy on queue {key}")


async def queue_expires(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        await channel.declare_queue(names("q"), arguments={"x-expires": QUEUE_EXPIRES})
        await asyncio.sleep(EXPIRES_WAIT)
        try:
            await channel.declare_queue(names("q"), passive=True)
            raise AssertionError("the queue outlived its x-expires")
        except aiormq.exceptions.ChannelNotFoundEntity:  # aiormq's class for reply code 404
            pass


async def max_length_bytes(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        arguments = {"x-max-length-bytes": MAX_LENGTH_BYTES}
        queue = await channel.declare_queue(names("q"), exclusive=True, arguments=arguments)
        for body in MAX_LENGTH_BYTES_BODIES:
            await channel.default_exchange.publish(Message(body.encode()), routing_key=queue.name)
        kept = [(await _get(queue, no_ack=True)).body.decode() for _ in range(2)]
        expect(kept, list(MAX_LENGTH_BYTES_BODIES[1:]), "messages kept by drop-head")
        expect(await queue.get(fail=False), None, "message left")


async def reject_publish_dlx(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        dead_letters = await _dead_letter_queue(channel, names)
        arguments = {"x-max-length": MAX_LENGTH, "x-overflow": "reject-publish-dlx", **_dead_letter_arguments(names)}
        queue = await channel.declare_queue(names("q"), exclusive=True, arguments=arguments)
        await _expect_last_nacked(channel, queue.name)
        message = await _get_dead_letter(dead_letters, names)
        expect(message.body, f"m{MAX_LENGTH}".encode(), "dead letter")
        expect_dead_lettered(message.headers, "maxlen", queue.name)
        queue = await channel.declare_queue(names("q"), passive=True)
        expect(queue.declaration_result.message_count, MAX_LENGTH, "messages in queue")


async def quorum_declare_rules(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        for flags, arguments, text in QUORUM_REFUSALS:
            channel = await connection.channel()
            try:
                await channel.declare_queue(
                    names("q"), **{"durable": True, **flags}, arguments={"x-queue-type": "quorum", **arguments}
                )
                raise AssertionError(f"declared a quorum queue with {flags} {arguments}")
            except aiormq.exceptions.ChannelPreconditionFailed as exc:  # aiormq's class for reply code 406
                expect(exc.args[0].startswith(f"{text} for queue '{names('q')}'"), True, f"reply text {exc.args[0]!r}")
        channel = await connection.channel()
        await channel.declare_queue(names("q"), durable=True, arguments={"x-queue-type": "quorum"})
        await channel.queue_delete(names("q"))


async def stream(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(names("stream"), durable=True, arguments={"x-queue-type": "stream"})
        for n in range(STREAM_MESSAGES):
            await channel.default_exchange.publish(Message(f"s{n}".encode()), routing_key=queue.name)

        async def reader(offset, count: int) -> asyncio.Queue:
            consuming = await connection.channel()
            await consuming.set_qos(prefetch_count=count)
            received = asyncio.Queue()

            async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                await message.ack()
                await received.put((message.body.decode(), message.headers["x-stream-offset"]))

            on_their_channel = await consuming.get_queue(queue.name, ensure=False)
            await on_their_channel.consume(on_message, arguments={"x-stream-offset": offset})
            return received

        async def taken(received: asyncio.Queue, count: int) -> list:
            return [await asyncio.wait_for(received.get(), PATIENCE) for _ in range(count)]

        first = await taken(await reader("first", STREAM_MESSAGES), STREAM_MESSAGES)
        expect(first, stream_read(0), "from first")
        rest = STREAM_MESSAGES - STREAM_OFFSET
        middle = await taken(await reader(STREAM_OFFSET, rest), rest)
        expect(middle, stream_read(STREAM_OFFSET), f"from {STREAM_OFFSET}")
        following = await reader("next", 1)
        await channel.default_exchange.publish(Message(f"s{STREAM_MESSAGES}".encode()), routing_key=queue.name)
        expect(await taken(following, 1), stream_read(STREAM_MESSAGES, STREAM_MESSAGES + 1), "from next")
        await channel.queue_delete(queue.name)



async def topic_permissions(url: str, names: Names) -> None:
    allowed, readable, refused = topic_keys(names)
    async with await aio_pika.connect(topic_user(url)) as connection:
        channel = await connection.channel()  # in confirm mode: a publish waits for its confirm
        exchange = await channel.get_exchange(TOPIC_EXCHANGE)
        queue = await channel.declare_queue(names("q"), exclusive=True)
        for key in (allowed, readable):
            await queue.bind(exchange, routing_key=key)
        await exchange.publish(Message(b"allowed"), routing_key=allowed)
        message = await _get(queue, no_ack=True)
        expect((message.routing_key, message.body), (allowed, b"allowed"), "message published with the allowed key")
        try:
            await exchange.publish(Message(b"refused"), routing_key=readable)
            raise AssertionError(f"a publish with the key {readable!r} was accepted")
        except aiormq.exceptions.ChannelAccessRefused as exc:  # aiormq's class for reply code 403
            expect_topic_refused(403, exc.args[0], readable)
        queue = await (await connection.channel()).get_queue(names("q"))
        try:
            await queue.bind(TOPIC_EXCHANGE, routing_key=refused)
            raise AssertionError(f"a binding with the key {refused!r} was accepted")
        except aiormq.exceptions.ChannelAccessRefused as exc:
            expect_topic_refused(403, exc.args[0], refused)
        queue = await (await connection.channel()).get_queue(names("q"))
        expect(await queue.get(fail=False), None, "message left")


async def operator_policy(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        arguments = {"x-max-length": OPERATOR_POLICY_ARGUMENT}
        queue = await channel.declare_queue(operator_policy_queue(names), exclusive=True, arguments=arguments)
        for body in OPERATOR_POLICY_PUBLISHES:
            await channel.default_exchange.publish(Message(body.encode()), routing_key=queue.name)  # returns once acked
        declared = await channel.declare_queue(queue.name, passive=True)
        expect(declared.declaration_result.message_count, len(OPERATOR_POLICY_KEPT), "messages in queue")
        kept = [(await _get(queue, no_ack=True)).body.decode() for _ in OPERATOR_POLICY_KEPT]
        expect(kept, list(OPERATOR_POLICY_KEPT), "messages kept by drop-head")
        expect((await channel.queue_delete(queue.name)).message_count, 0, "messages left")


async def deduplication(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        # With confirms, publish raises if the broker nacks.
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(names("dedup-q"), exclusive=True,
                                            arguments={"x-message-deduplication": True})
        exchange = await channel.declare_exchange(names("dedup-x"), "x-message-deduplication", auto_delete=True,
                                                  arguments={"x-cache-size": DEDUP_CACHE_SIZE})
        bound = await channel.declare_queue(names("dedup-bound"), exclusive=True)
        await bound.bind(exchange)
        for target, publish in ((queue, channel.default_exchange.publish), (bound, exchange.publish)):
            for body, value in DEDUP_PUBLISHES:
                routing_key = queue.name if target is queue else ""
                await publish(Message(body.encode(), headers={"x-deduplication-header": value}), routing_key)
            got = []
            while (message := await target.get(no_ack=True, fail=False)) is not None:
                got.append(message.body.decode())
            expect(tuple(got), DEDUP_EXPECTED, f"messages in {target.name}")


async def delayed_message(url: str, names: Names) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(names("delayed"), "x-delayed-message", auto_delete=True,
                                                  arguments={"x-delayed-type": "direct"})
        queue = await channel.declare_queue(names("delayed-q"), exclusive=True)
        await queue.bind(exchange, DELAYED_KEY)
        await exchange.publish(Message(b"late", headers={"x-delay": DELAY}), DELAYED_KEY)
        await exchange.publish(Message(b"now"), DELAYED_KEY)
        got = []
        for _ in range(2):
            message = await _get(queue, no_ack=True)
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
