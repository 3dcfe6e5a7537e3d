"""The scenarios with pika's asynchronous adapter, AsyncioConnection.

pika's asynchronous API is callback based; `_call` turns one callback-taking channel method into an
awaitable, which fails if the broker closes the channel instead of answering.
"""

import asyncio
import uuid

import pika
from pika.adapters.asyncio_connection import AsyncioConnection
from pika.exceptions import AuthenticationError, ChannelClosedByBroker, ProbableAuthenticationError

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

_closed: dict[object, asyncio.Future] = {}  # each channel's close reason, once it is closed


async def _connect(params: pika.URLParameters) -> AsyncioConnection:
    opened = asyncio.get_running_loop().create_future()
    AsyncioConnection(
        params,
        on_open_callback=opened.set_result,
        on_open_error_callback=lambda connection, error: opened.set_exception(error),
        custom_ioloop=asyncio.get_running_loop(),
    )
    return await asyncio.wait_for(opened, PATIENCE)


async def _close(connection: AsyncioConnection) -> None:
    closed = asyncio.get_running_loop().create_future()
    connection.add_on_close_callback(lambda connection, reason: closed.set_result(reason))
    connection.close()
    await asyncio.wait_for(closed, PATIENCE)


async def _channel(connection: AsyncioConnection):
    opened = asyncio.get_running_loop().create_future()
    channel = connection.channel(on_open_callback=opened.set_result)
    closed = _closed[channel] = asyncio.get_running_loop().create_future()
    channel.add_on_close_callback(lambda channel, reason: closed.done() or closed.set_result(reason))
    await asyncio.wait_for(opened, PATIENCE)
    return channel


async def _call(channel, method, *args, **kwargs):
    """Call a channel method that answers through `callback`; raise if the channel closes instead."""
    replied = asyncio.get_running_loop().create_future()
    method(*args, callback=replied.set_result, **kwargs)
    done, _ = await asyncio.wait({replied, _closed[channel]}, timeout=PATIENCE, return_when=asyncio.FIRST_COMPLETED)
    if not done:
        raise TimeoutError(f"no reply to {method.__name__}")
    if replied not in done:
        raise _closed[channel].result()
    return replied.result()


async def _consume(
    channel, queue: str, *, auto_ack: bool = False, consumer_tag: str | None = None, arguments: dict | None = None
) -> asyncio.Queue:
    deliveries = asyncio.Queue()

    def on_message(channel, *delivery) -> None:
        deliveries.put_nowait(delivery)

    await _call(
        channel, channel.basic_consume, queue, on_message, auto_ack=auto_ack, consumer_tag=consumer_tag,
        arguments=arguments,
    )
    return deliveries


async def _next(deliveries: asyncio.Queue):
    """The next (method, properties, body) from a consumer."""
    try:
        return await asyncio.wait_for(deliveries.get(), PATIENCE)
    except TimeoutError:
        raise TimeoutError(f"no delivery within {PATIENCE} s") from None


async def _queue(channel, name: str = "", arguments: dict | None = None) -> str:
    return (await _call(channel, channel.queue_declare, name, exclusive=True, arguments=arguments)).method.queue


async def _message_count(connection: AsyncioConnection, queue: str) -> int:
    channel = await _channel(connection)
    return (await _call(channel, channel.queue_declare, queue, passive=True)).method.message_count


async def _confirms(channel) -> asyncio.Queue:
    """Put the channel in confirm mode; the queue gets ("Ack" or "Nack", delivery tag) per confirm.

    For scenarios that wait for each confirm before the next publish, so a confirm with `multiple`
    set (RabbitMQ sets it on a nack) covers its own tag only.
    """
    outcomes = asyncio.Queue()

    def on_confirm(frame) -> None:
        outcomes.put_nowait((type(frame.method).__name__, frame.method.delivery_tag))

    await _call(channel, channel.confirm_delivery, on_confirm)
    return outcomes


async def _expect_last_nacked(channel, queue: str) -> None:
    """Publishes m0.. one over the queue's x-max-length, with confirms: the last one must be nacked."""
    outcomes = await _confirms(channel)
    confirms = []
    for n in range(MAX_LENGTH + 1):
        channel.basic_publish("", queue, f"m{n}".encode())
        confirms.append(await asyncio.wait_for(outcomes.get(), PATIENCE))
    expect(confirms, [("Ack", n) for n in range(1, MAX_LENGTH + 1)] + [("Nack", MAX_LENGTH + 1)], "confirms")


async def _dead_letter_queue(channel, names: Names) -> dict:
    """A DLX with its queue; returns the arguments that make a queue dead-letter there."""
    await _call(channel, channel.exchange_declare, names("dlx"), "direct", auto_delete=True)
    await _queue(channel, names("dlq"))
    await _call(channel, channel.queue_bind, names("dlq"), names("dlx"), routing_key=DEAD_LETTER_KEY)
    return {"x-dead-letter-exchange": names("dlx"), "x-dead-letter-routing-key": DEAD_LETTER_KEY}


async def _next_dead_letter(deliveries: asyncio.Queue, names: Names):
    method, properties, body = await _next(deliveries)
    expect((method.exchange, method.routing_key), (names("dlx"), DEAD_LETTER_KEY), "dead letter's exchange and key")
    return properties, body


async def connect(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    channel = await _channel(connection)
    expect(channel.is_open, True, "channel open")
    await _close(connection)


async def auth_refused(url: str, names: Names) -> None:
    try:
        await _close(await _connect(pika.URLParameters(wrong_password(url))))
    except (AuthenticationError, ProbableAuthenticationError):
        return
    raise AssertionError("a wrong password was accepted")


async def routing(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    channel = await _channel(connection)
    for kind in ("direct", "fanout", "topic"):
        await _call(channel, channel.exchange_declare, names(kind), kind, auto_delete=True)
    consumers = {}
    for queue, keys in ROUTING_BINDINGS.items():
        await _queue(channel, names(queue))
        await _call(channel, channel.queue_bind, names(queue), names("fanout"))
        for kind, key in keys.items():
            await _call(channel, channel.queue_bind, names(queue), names(kind), routing_key=key)
        consumers[queue] = await _consume(channel, names(queue), auto_ack=True)
    for kind, key, body in ROUTING_PUBLISHES:
        exchange, routing_key = ("", names(key)) if kind == "default" else (names(kind), key)
        channel.basic_publish(exchange, routing_key, body.encode())
    for queue, expected in ROUTING_EXPECTED.items():
        bodies = [(await _next(consumers[queue]))[2].decode() for _ in expected]
        expect(bodies, expected, f"messages on queue {queue}")
    await asyncio.sleep(QUIET)
    expect([consumer.qsize() for consumer in consumers.values()], [0, 0], "unexpected messages")
    await _close(connection)


async def ack(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    channel = await _channel(connection)
    queue = await _queue(channel, names("q"))
    for n in range(ACK_MESSAGES):
        channel.basic_publish("", queue, f"m{n}".encode())
    deliveries = await _consume(channel, queue)
    bodies = []
    for _ in range(ACK_MESSAGES):
        method, _, body = await _next(deliveries)
        bodies.append(body.decode())
        channel.basic_ack(method.delivery_tag)
    expect(bodies, [f"m{n}" for n in range(ACK_MESSAGES)], "consumed")
    channel.close()
    expect(await _message_count(connection, queue), 0, "messages requeued after channel close")
    await _close(connection)


async def requeue(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    channel = await _channel(connection)
    queue = await _queue(channel, names("q"))
    channel.basic_publish("", queue, b"again")
    deliveries = await _consume(channel, queue)
    method, _, body = await _next(deliveries)
    expect((body, method.redelivered), (b"again", False), "first delivery")
    channel.basic_reject(method.delivery_tag, requeue=True)
    method, _, body = await _next(deliveries)
    expect((body, method.redelivered), (b"again", True), "delivery after reject")
    channel.basic_nack(method.delivery_tag, requeue=True)
    method, _, body = await _next(deliveries)
    expect((body, method.redelivered), (b"again", True), "delivery after nack")
    channel.basic_ack(method.delivery_tag)
    await _close(connection)


async def discard(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    channel = await _channel(connection)
    queue = await _queue(channel, names("q"))
    channel.basic_publish("", queue, b"rejected")
    channel.basic_publish("", queue, b"nacked")
    deliveries = await _consume(channel, queue)
    method, _, _ = await _next(deliveries)
    channel.basic_reject(method.delivery_tag, requeue=False)
    method, _, _ = await _next(deliveries)
    channel.basic_nack(method.delivery_tag, requeue=False)
    channel.close()
    expect(await _message_count(connection, queue), 0, "messages left")
    await _close(connection)


async def prefetch(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    channel = await _channel(connection)
    queue = await _queue(channel, names("q"))
    for n in range(PREFETCH_MESSAGES):
        channel.basic_publish("", queue, f"m{n}".encode())
    await _call(channel, channel.basic_qos, prefetch_count=PREFETCH_COUNT)
    deliveries = await _consume(channel, queue)
    held = [await _next(deliveries) for _ in range(PREFETCH_COUNT)]
    await asyncio.sleep(QUIET)
    expect(deliveries.qsize(), 0, "deliveries beyond the prefetch limit")
    channel.basic_ack(held[0][0].delivery_tag)
    held.append(await _next(deliveries))
    await asyncio.sleep(QUIET)
    expect(deliveries.qsize(), 0, "deliveries beyond the prefetch limit after one ack")
    while len(held) < PREFETCH_MESSAGES:
        channel.basic_ack(held[len(held) - PREFETCH_COUNT][0].delivery_tag)
        held.append(await _next(deliveries))
    expect([body.decode() for _, _, body in held], [f"m{n}" for n in range(PREFETCH_MESSAGES)], "delivered")
    await _close(connection)


async def confirms(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    channel = await _channel(connection)
    queue = await _queue(channel, names("q"))
    acked = asyncio.Event()
    outcomes = []

    def on_confirm(frame) -> None:
        outcomes.append((type(frame.method).__name__, frame.method.delivery_tag, frame.method.multiple))
        if frame.method.delivery_tag == CONFIRMED_MESSAGES:
            acked.set()

    await _call(channel, channel.confirm_delivery, on_confirm)
    for n in range(CONFIRMED_MESSAGES):
        channel.basic_publish("", queue, f"m{n}".encode())
    await asyncio.wait_for(acked.wait(), PATIENCE)
    confirmed = set()
    for kind, tag, multiple in outcomes:
        expect(kind, "Ack", f"confirm of delivery tag {tag}")
        confirmed |= set(range(1, tag + 1)) if multiple else {tag}
    expect(confirmed, set(range(1, CONFIRMED_MESSAGES + 1)), "confirmed delivery tags")
    await _close(connection)


async def mandatory(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    channel = await _channel(connection)
    returned = asyncio.get_running_loop().create_future()
    channel.add_on_return_callback(lambda channel, method, props, body: returned.set_result((method, body)))
    channel.basic_publish("", names("nowhere"), b"lost", mandatory=True)
    method, body = await asyncio.wait_for(returned, PATIENCE)
    expect((method.reply_code, method.reply_text, body), (312, "NO_ROUTE", b"lost"), "basic.return")
    await _close(connection)


async def rpc(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    server = await _channel(connection)
    await _queue(server, names("rpc"))

    def serve(channel, method, props, body) -> None:
        reply = pika.BasicProperties(correlation_id=props.correlation_id)
        channel.basic_publish("", props.reply_to, body.upper(), reply)
        channel.basic_ack(method.delivery_tag)

    await _call(server, server.basic_consume, names("rpc"), serve)
    client = await _channel(connection)
    reply_queue = await _queue(client)
    replies = await _consume(client, reply_queue, auto_ack=True)
    correlation_id = str(uuid.uuid4())
    request = pika.BasicProperties(reply_to=reply_queue, correlation_id=correlation_id)
    client.basic_publish("", names("rpc"), b"ping", request)
    _, props, body = await _next(replies)
    expect((props.correlation_id, body), (correlation_id, b"PING"), "reply")
    await _close(connection)


async def large_message(url: str, names: Names) -> None:
    body = large_body()
    connection = await _connect(pika.URLParameters(url))
    channel = await _channel(connection)
    queue = await _queue(channel, names("q"))
    channel.basic_publish("", queue, body)
    _, _, received = await _next(await _consume(channel, queue, auto_ack=True))
    expect(received == body, True, f"received {len(received)} bytes equal to the {len(body)} sent")
    await _close(connection)


async def many_channels(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    channels = [await _channel(connection) for _ in range(CHANNELS)]
    queue = await _queue(channels[0], names("q"))
    for n, channel in enumerate(channels):
        channel.basic_publish("", queue, str(n).encode())
    deliveries = await _consume(channels[-1], queue, auto_ack=True)
    received = {int((await _next(deliveries))[2]) for _ in range(CHANNELS)}
    expect(received, set(range(CHANNELS)), "message from every channel")
    expect(len({channel.channel_number for channel in channels}), CHANNELS, "distinct channel numbers")
    await _close(connection)


async def not_found(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    channel = await _channel(connection)
    try:
        await _call(channel, channel.queue_declare, names("missing"), passive=True)
        raise AssertionError("passive declare of a missing queue succeeded")
    except ChannelClosedByBroker as exc:
        expect(exc.reply_code, 404, "reply code")
    await _queue(await _channel(connection))
    await _close(connection)


async def precondition_failed(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    channel = await _channel(connection)
    await _call(channel, channel.queue_declare, names("q"), durable=False)
    try:
        await _call(channel, channel.queue_declare, names("q"), durable=True)
        raise AssertionError("redeclare with durable=True succeeded")
    except ChannelClosedByBroker as exc:
        expect(exc.reply_code, 406, "reply code")
    channel = await _channel(connection)
    await _call(channel, channel.queue_delete, names("q"))
    await _close(connection)


async def heartbeat(url: str, names: Names) -> None:
    proposed = []

    def negotiate(connection, broker_value: int) -> int:
        proposed.append(broker_value)
        return HEARTBEAT

    params = pika.URLParameters(url)
    params.heartbeat = negotiate
    connection = await _connect(params)
    expect(proposed[0] > 0, True, f"broker proposes heartbeats ({proposed[0]})")
    await asyncio.sleep(IDLE)
    await _queue(await _channel(connection))
    await _close(connection)


async def consumer_cancel(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    consumer = await _channel(connection)
    queue = await _queue(consumer, names("q"))
    cancelled = asyncio.get_running_loop().create_future()
    consumer.add_on_cancel_callback(lambda frame: cancelled.set_result(frame.method.consumer_tag))
    tag = consumer.basic_consume(queue, lambda *delivery: None)
    other = await _channel(connection)
    await _call(other, other.queue_delete, queue)
    expect(await asyncio.wait_for(cancelled, PATIENCE), tag, "cancelled consumer tag")
    await _close(connection)


async def dead_letter_ttl(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    channel = await _channel(connection)
    dead_letter = await _dead_letter_queue(channel, names)
    await _queue(channel, names("ttl"), {**dead_letter, "x-message-ttl": QUEUE_TTL})
    await _queue(channel, names("expiring"), dead_letter)
    channel.basic_publish("", names("ttl"), b"queue-ttl")
    channel.basic_publish("", names("expiring"), b"message-ttl", pika.BasicProperties(expiration=MESSAGE_EXPIRATION))
    deliveries = await _consume(channel, names("dlq"), auto_ack=True)
    dead = {body: properties for properties, body in [await _next_dead_letter(deliveries, names) for _ in "12"]}
    expect(sorted(dead), [b"message-ttl", b"queue-ttl"], "dead letters")
    expect_dead_lettered(dead[b"queue-ttl"].headers, "expired", names("ttl"))
    expect_dead_lettered(dead[b"message-ttl"].headers, "expired", names("expiring"), MESSAGE_EXPIRATION)
    expect(dead[b"message-ttl"].expiration, None, "expiration of the dead letter")
    counts = [await _message_count(connection, names(queue)) for queue in ("ttl", "expiring")]
    expect(counts, [0, 0], "messages left")
    await _close(connection)


async def dead_letter_reject(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    channel = await _channel(connection)
    queue = await _queue(channel, names("q"), await _dead_letter_queue(channel, names))
    dead_letters = await _consume(channel, names("dlq"), auto_ack=True)
    channel.basic_publish("", queue, b"rejected")
    method, _, _ = await _next(await _consume(channel, queue))
    channel.basic_reject(method.delivery_tag, requeue=False)
    properties, body = await _next_dead_letter(dead_letters, names)
    expect(body, b"rejected", "dead letter")
    expect_dead_lettered(properties.headers, "rejected", queue)
    await _close(connection)


async def max_length(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    channel = await _channel(connection)
    drop = await _queue(channel, names("drop"), {"x-max-length": MAX_LENGTH})
    for n in range(MAX_LENGTH + 1):
        channel.basic_publish("", drop, f"m{n}".encode())
    deliveries = await _consume(channel, drop, auto_ack=True)
    kept = [(await _next(deliveries))[2].decode() for _ in range(MAX_LENGTH)]
    expect(kept, [f"m{n}" for n in range(1, MAX_LENGTH + 1)], "messages kept by drop-head")
    await asyncio.sleep(QUIET)
    expect(deliveries.qsize(), 0, "more deliveries")
    confirming = await _channel(connection)
    reject = await _queue(confirming, names("reject"), {"x-max-length": MAX_LENGTH, "x-overflow": "reject-publish"})
    await _expect_last_nacked(confirming, reject)
    expect(await _message_count(connection, reject), MAX_LENGTH, "messages in queue")
    await _close(connection)


async def priority(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    channel = await _channel(connection)
    queue = await _queue(channel, names("q"), {"x-max-priority": MAX_PRIORITY})
    for level, body in PRIORITY_PUBLISHES:
        channel.basic_publish("", queue, body.encode(), pika.BasicProperties(priority=level))
    deliveries = await _consume(channel, queue, auto_ack=True)
    bodies = [(await _next(deliveries))[2].decode() for _ in PRIORITY_EXPECTED]
    expect(bodies, list(PRIORITY_EXPECTED), "delivery order")
    await _close(connection)


async def single_active_consumer(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    first, second = await _channel(connection), await _channel(connection)
    queue = await _queue(first, names("q"), {"x-single-active-consumer": True})
    received = {
        name: await _consume(channel, queue, auto_ack=True, consumer_tag=name)
        for name, channel in (("first", first), ("second", second))
    }
    for n in range(SAC_FIRST):
        first.basic_publish("", queue, f"m{n}".encode())
    bodies = [(await _next(received["first"]))[2].decode() for _ in range(SAC_FIRST)]
    expect((bodies, received["second"].qsize()), ([f"m{n}" for n in range(SAC_FIRST)], 0), "while the first consumes")
    await _call(first, first.basic_cancel, "first")
    for n in range(SAC_FIRST, SAC_FIRST + SAC_REST):
        first.basic_publish("", queue, f"m{n}".encode())
    bodies = [(await _next(received["second"]))[2].decode() for _ in range(SAC_REST)]
    expect(bodies, [f"m{n}" for n in range(SAC_FIRST, SAC_FIRST + SAC_REST)], "deliveries to the second consumer")
    expect(received["first"].qsize(), 0, "deliveries to the first after it cancelled")
    await _close(connection)


async def alternate_exchange(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    channel = await _channel(connection)
    await _call(channel, channel.exchange_declare, names("ae"), "fanout", auto_delete=True)
    unrouted = await _queue(channel, names("unrouted"))
    await _call(channel, channel.queue_bind, unrouted, names("ae"))
    arguments = {"alternate-exchange": names("ae")}
    await _call(channel, channel.exchange_declare, names("x"), "direct", arguments=arguments)
    returned = []
    channel.add_on_return_callback(lambda channel, method, props, body: returned.append(body))
    outcomes = await _confirms(channel)
    channel.basic_publish(names("x"), "nowhere", b"unroutable", mandatory=True)
    expect(await asyncio.wait_for(outcomes.get(), PATIENCE), ("Ack", 1), "confirm")
    expect(returned, [], "returned messages")  # a basic.return comes before the confirm
    method, _, body = await _next(await _consume(channel, unrouted, auto_ack=True))
    expect((method.exchange, method.routing_key, body), (names("x"), "nowhere", b"unroutable"), "message in AE's queue")
    await _call(channel, channel.exchange_delete, names("x"))
    await _close(connection)


async def quorum_queue(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    channel = await _channel(connection)
    dead_letter = await _dead_letter_queue(channel, names)
    arguments = {"x-queue-type": "quorum", "x-delivery-limit": DELIVERY_LIMIT, **dead_letter}
    await _call(channel, channel.queue_declare, names("quorum"), durable=True, arguments=arguments)
    dead_letters = await _consume(channel, names("dlq"), auto_ack=True)
    channel.basic_publish("", names("quorum"), b"poison")
    deliveries = await _consume(channel, names("quorum"))
    method, _, _ = await _next(deliveries)
    channel.basic_reject(method.delivery_tag, requeue=True)
    method, properties, _ = await _next(deliveries)
    redelivery = (method.redelivered, (properties.headers or {}).get("x-delivery-count"))
    expect(redelivery, (True, 1), "redelivered, x-delivery-count")
    channel.basic_reject(method.delivery_tag, requeue=True)
    properties, body = await _next_dead_letter(dead_letters, names)
    expect(body, b"poison", "dead letter")
    expect_dead_lettered(properties.headers, "delivery_limit", names("quorum"))
    await _call(channel, channel.queue_delete, names("quorum"))
    await _close(connection)


async def consumer_priority(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    channel = await _channel(connection)
    queue = await _queue(channel, names("q"))
    received = {}
    for name, level in CONSUMER_PRIORITIES.items():
        consumer = await _channel(connection)
        await _call(consumer, consumer.basic_qos, prefetch_count=CONSUMER_PRIORITY_MESSAGES)
        received[name] = await _consume(consumer, queue, arguments={"x-priority": level})
    for n in range(CONSUMER_PRIORITY_MESSAGES):
        channel.basic_publish("", queue, f"m{n}".encode())
    bodies = [(await _next(received["high"]))[2].decode() for _ in range(CONSUMER_PRIORITY_MESSAGES)]
    await asyncio.sleep(QUIET)
    expected = ([f"m{n}" for n in range(CONSUMER_PRIORITY_MESSAGES)], 0)
    expect((bodies, received["low"].qsize()), expected, "deliveries to the high and the low consumer")
    await _close(connection)


async def cc_bcc(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    channel = await _channel(connection)
    await _call(channel, channel.exchange_declare, names("x"), "direct", auto_delete=True)
    for key in CC_BCC_QUEUES:
        await _queue(channel, names(key))
        await _call(channel, channel.queue_bind, names(key), names("x"), routing_key=key)
    channel.basic_publish(names("x"), CC_BCC_QUEUES[0], b"copied", pika.BasicProperties(headers=CC_BCC_HEADERS))
    for key in CC_BCC_QUEUES:
        method, properties, body = await _next(await _consume(channel, names(key), auto_ack=True))
        delivered = (method.routing_key, properties.headers, body)
        expect(delivered, (CC_BCC_QUEUES[0], CC_BCC_DELIVERED, b"copied"), f"copy on queue {key}")
    await _close(connection)


async def queue_expires(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    channel = await _channel(connection)
    await _call(channel, channel.queue_declare, names("q"), arguments={"x-expires": QUEUE_EXPIRES})
    await asyncio.sleep(EXPIRES_WAIT)
    try:
        await _call(channel, channel.queue_declare, names("q"), passive=True)
        raise AssertionError("the queue outlived its x-expires")
    except ChannelClosedByBroker as exc:
        expect(exc.reply_code, 404, "reply code")
    await _close(connection)


async def max_length_bytes(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    channel = await _channel(connection)
    queue = await _queue(channel, names("q"), {"x-max-length-bytes": MAX_LENGTH_BYTES})
    for body in MAX_LENGTH_BYTES_BODIES:
        channel.basic_publish("", queue, body.encode())
    deliveries = await _consume(channel, queue, auto_ack=True)
    kept = [(await _next(deliveries))[2].decode() for _ in range(2)]
    expect(kept, list(MAX_LENGTH_BYTES_BODIES[1:]), "messages kept by drop-head")
    await asyncio.sleep(QUIET)
    expect(deliveries.qsize(), 0, "more deliveries")
    await _close(connection)


async def reject_publish_dlx(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    channel = await _channel(connection)
    dead_letter = await _dead_letter_queue(channel, names)
    dead_letters = await _consume(channel, names("dlq"), auto_ack=True)
    arguments = {"x-max-length": MAX_LENGTH, "x-overflow": "reject-publish-dlx", **dead_letter}
    queue = await _queue(channel, names("q"), arguments)
    await _expect_last_nacked(channel, queue)
    properties, body = await _next_dead_letter(dead_letters, names)
    expect(body, f"m{MAX_LENGTH}".encode(), "dead letter")
    expect_dead_lettered(properties.headers, "maxlen", queue)
    expect(await _message_count(connection, queue), MAX_LENGTH, "messages in queue")
    await _close(connection)


async def quorum_declare_rules(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    for flags, arguments, text in QUORUM_REFUSALS:
        channel = await _channel(connection)
        try:
            await _call(
                channel, channel.queue_declare, names("q"), **{"durable": True, **flags},
                arguments={"x-queue-type": "quorum", **arguments},
            )
            raise AssertionError(f"declared a quorum queue with {flags} {arguments}")
        except ChannelClosedByBroker as exc:
            refused = (exc.reply_code, exc.reply_text.startswith(f"{text} for queue '{names('q')}'"))
            expect(refused, (406, True), f"refusal of {flags} {arguments} ({exc.reply_text})")
    channel = await _channel(connection)
    await _call(channel, channel.queue_declare, names("q"), durable=True, arguments={"x-queue-type": "quorum"})
    await _call(channel, channel.queue_delete, names("q"))
    await _close(connection)


async def stream(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    channel = await _channel(connection)
    queue = names("stream")
    await _call(channel, channel.queue_declare, queue, durable=True, arguments={"x-queue-type": "stream"})
    outcomes = await _confirms(channel)
    for n in range(STREAM_MESSAGES):
        channel.basic_publish("", queue, f"s{n}".encode())
        expect(await asyncio.wait_for(outcomes.get(), PATIENCE), ("Ack", n + 1), "confirm")

    async def reader(offset, count: int):
        """A consumer from `offset` on a channel of its own, once the broker has it."""
        consuming = await _channel(connection)
        await _call(consuming, consuming.basic_qos, prefetch_count=count)
        return consuming, await _consume(consuming, queue, arguments={"x-stream-offset": offset})

    async def taken(consumer, count: int) -> list:
        consuming, deliveries = consumer
        got = []
        for _ in range(count):
            method, properties, body = await _next(deliveries)
            got.append((body.decode(), properties.headers["x-stream-offset"]))
            consuming.basic_ack(method.delivery_tag)
        return got

    first = await taken(await reader("first", STREAM_MESSAGES), STREAM_MESSAGES)
    expect(first, stream_read(0), "from first")
    rest = STREAM_MESSAGES - STREAM_OFFSET
    middle = await taken(await reader(STREAM_OFFSET, rest), rest)
    expect(middle, stream_read(STREAM_OFFSET), f"from {STREAM_OFFSET}")
    following = await reader("next", 1)
    channel.basic_publish("", queue, f"s{STREAM_MESSAGES}".encode())
    expect(await taken(following, 1), stream_read(STREAM_MESSAGES, STREAM_MESSAGES + 1), "from next")
    await _call(channel, channel.queue_delete, queue)
    await _close(connection)



async def topic_permissions(url: str, names: Names) -> None:
    allowed, readable, refused = topic_keys(names)
    connection = await _connect(pika.URLParameters(topic_user(url)))
    channel = await _channel(connection)
    queue = await _queue(channel, names("q"))
    for key in (allowed, readable):
        await _call(channel, channel.queue_bind, queue, TOPIC_EXCHANGE, routing_key=key)
    deliveries = await _consume(await _channel(connection), queue, auto_ack=True)
    channel.basic_publish(TOPIC_EXCHANGE, allowed, b"allowed")
    method, _, body = await _next(deliveries)
    expect((method.routing_key, body), (allowed, b"allowed"), "message published with the allowed key")
    channel.basic_publish(TOPIC_EXCHANGE, readable, b"refused")
    try:  # the next method on the channel is answered with the publish's channel.close
        await _call(channel, channel.queue_declare, queue, passive=True)
        raise AssertionError(f"a publish with the key {readable!r} was accepted")
    except ChannelClosedByBroker as exc:
        expect_topic_refused(exc.reply_code, exc.reply_text, readable)
    channel = await _channel(connection)
    try:
        await _call(channel, channel.queue_bind, queue, TOPIC_EXCHANGE, routing_key=refused)
        raise AssertionError(f"a binding with the key {refused!r} was accepted")
    except ChannelClosedByBroker as exc:
        expect_topic_refused(exc.reply_code, exc.reply_text, refused)
    await asyncio.sleep(QUIET)
    expect(deliveries.qsize(), 0, "messages after the allowed one")
    await _close(connection)


async def operator_policy(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    channel = await _channel(connection)
    outcomes = await _confirms(channel)
    queue = await _queue(channel, operator_policy_queue(names), {"x-max-length": OPERATOR_POLICY_ARGUMENT})
    for tag, body in enumerate(OPERATOR_POLICY_PUBLISHES, 1):
        channel.basic_publish("", queue, body.encode())
        expect(await asyncio.wait_for(outcomes.get(), PATIENCE), ("Ack", tag), "confirm")
    expect(await _message_count(connection, queue), len(OPERATOR_POLICY_KEPT), "messages in queue")
    deliveries = await _consume(channel, queue, auto_ack=True)
    kept = [(await _next(deliveries))[2].decode() for _ in OPERATOR_POLICY_KEPT]
    expect(kept, list(OPERATOR_POLICY_KEPT), "messages kept by drop-head")
    deleted = await _call(channel, channel.queue_delete, queue)
    expect(deleted.method.message_count, 0, "messages left")
    await _close(connection)


async def deduplication(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    channel = await _channel(connection)
    outcomes = await _confirms(channel)
    queue = await _queue(channel, names("dedup-q"), {"x-message-deduplication": True})
    await _call(channel, channel.exchange_declare, names("dedup-x"), "x-message-deduplication", auto_delete=True,
                arguments={"x-cache-size": DEDUP_CACHE_SIZE})
    bound = await _queue(channel, names("dedup-bound"))
    await _call(channel, channel.queue_bind, bound, names("dedup-x"))
    tag = 0
    for exchange, routing_key, target in (("", queue, queue), (names("dedup-x"), "", bound)):
        for body, value in DEDUP_PUBLISHES:
            channel.basic_publish(exchange, routing_key, body.encode(),
                                  pika.BasicProperties(headers={"x-deduplication-header": value}))
            tag += 1
            expect(await asyncio.wait_for(outcomes.get(), PATIENCE), ("Ack", tag), "confirm")
        expect(await _message_count(connection, target), len(DEDUP_EXPECTED), f"messages in {target}")
        deliveries = await _consume(channel, target, auto_ack=True)
        got = [(await _next(deliveries))[2].decode() for _ in DEDUP_EXPECTED]
        expect(tuple(got), DEDUP_EXPECTED, f"messages in {target}")
    await _close(connection)


async def delayed_message(url: str, names: Names) -> None:
    connection = await _connect(pika.URLParameters(url))
    channel = await _channel(connection)
    await _call(channel, channel.exchange_declare, names("delayed"), "x-delayed-message", auto_delete=True,
                arguments={"x-delayed-type": "direct"})
    queue = await _queue(channel, names("delayed-q"))
    await _call(channel, channel.queue_bind, queue, names("delayed"), DELAYED_KEY)
    channel.basic_publish(names("delayed"), DELAYED_KEY, b"late", pika.BasicProperties(headers={"x-delay": DELAY}))
    channel.basic_publish(names("delayed"), DELAYED_KEY, b"now")
    deliveries = await _consume(channel, queue, auto_ack=True)
    got = [(body, properties.headers) for _, properties, body in [await _next(deliveries), await _next(deliveries)]]
    expect(got, [(b"now", None), (b"late", {"x-delay": -DELAY})], "deliveries (body, headers)")
    await _close(connection)


if __name__ == "__main__":
    main({scenario.__name__: scenario for scenario in (
        connect, auth_refused, routing, ack, requeue, discard, prefetch, confirms, mandatory, rpc,
        large_message, many_channels, not_found, precondition_failed, heartbeat, consumer_cancel,
        dead_letter_ttl, dead_letter_reject, max_length, priority, single_active_consumer, alternate_exchange,
        quorum_queue, consumer_priority, cc_bcc, queue_expires, max_length_bytes, reject_publish_dlx,
        quorum_declare_rules, stream, topic_permissions, operator_policy, deduplication, delayed_message,
    )})
