"""The scenarios with aio-pika."""

import asyncio
import uuid

import aio_pika
import aiormq
from aio_pika import ExchangeType, Message

from interop.clients.common import Names, expect, large_body, main, wrong_password
from interop.scenarios import (
    ACK_MESSAGES,
    CHANNELS,
    CONFIRMED_MESSAGES,
    HEARTBEAT,
    IDLE,
    PATIENCE,
    PREFETCH_COUNT,
    PREFETCH_MESSAGES,
    QUIET,
    ROUTING_BINDINGS,
    ROUTING_EXPECTED,
    ROUTING_PUBLISHES,
)


async def _get(queue: aio_pika.abc.AbstractQueue, *, no_ack: bool = False) -> aio_pika.abc.AbstractIncomingMessage:
    """basic.get, retried while the queue is still empty."""
    async with asyncio.timeout(PATIENCE):
        while (message := await queue.get(no_ack=no_ack, fail=False)) is None:
            await asyncio.sleep(0.05)
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


if __name__ == "__main__":
    main({scenario.__name__: scenario for scenario in (
        connect, auth_refused, routing, ack, requeue, discard, prefetch, confirms, mandatory, rpc,
        large_message, many_channels, not_found, precondition_failed, heartbeat, consumer_cancel,
    )})
