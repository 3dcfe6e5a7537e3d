"""Testing an aio-pika service with the amqpbroker pytest plugin.

This repository runs pytest-trio in trio mode, so each test here runs its own asyncio loop with
`asyncio.run`; with pytest-asyncio they would be `async def` tests. The broker's inspection and
pause/resume methods return at once and may be called from the loop; `restart()` waits for
clients to close, so call it through `asyncio.to_thread`.
Run with `pytest examples/aio_pika_consumer`.
"""

from __future__ import annotations

import asyncio
import json

import aio_pika

from inventory import InventoryService


async def publish_order(channel, item, quantity):
    # The channel has publisher confirms on: this returns once the broker has the order.
    body = json.dumps({"item": item, "quantity": quantity}).encode()
    await channel.default_exchange.publish(aio_pika.Message(body), routing_key="orders")


async def listen_for_events(channel):
    events = await channel.declare_exchange("events", aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(events, "stock.*")
    return queue


async def next_event(queue):
    async with queue.iterator() as messages:
        async for message in messages:
            await message.ack()
            return message.routing_key, json.loads(message.body)


def test_an_order_reserves_stock(amqp_url):
    async def scenario():
        service = InventoryService(amqp_url, {"apple": 3})
        await service.start()
        async with await aio_pika.connect(amqp_url) as connection:
            channel = await connection.channel()
            events = await listen_for_events(channel)

            await publish_order(channel, "apple", 2)
            assert await asyncio.wait_for(next_event(events), 5) == ("stock.reserved", {"item": "apple", "quantity": 2})
            await publish_order(channel, "apple", 2)
            assert await asyncio.wait_for(next_event(events), 5) == ("stock.short", {"item": "apple", "quantity": 2})
        await service.stop()
        assert service.stock == {"apple": 1}

    asyncio.run(scenario())


def test_orders_wait_while_the_queue_is_paused(amqp_url, amqp_broker, amqp_vhost):
    async def scenario():
        service = InventoryService(amqp_url, {"pear": 5})
        await service.start()
        async with await aio_pika.connect(amqp_url) as connection:
            channel = await connection.channel()
            events = await listen_for_events(channel)

            amqp_broker.pause("orders", amqp_vhost)
            await publish_order(channel, "pear", 1)
            assert amqp_broker.queue("orders", amqp_vhost).message_count == 1
            assert service.stock == {"pear": 5}

            amqp_broker.resume("orders", amqp_vhost)
            assert await asyncio.wait_for(next_event(events), 5) == ("stock.reserved", {"item": "pear", "quantity": 1})
        await service.stop()
        assert service.stock == {"pear": 4}

    asyncio.run(scenario())


def test_the_service_survives_a_stalled_connection(amqp_url, amqp_broker, amqp_vhost):
    """The service's connection stops passing bytes either way, as behind a dead NAT entry: its
    heartbeats (1 s here; aio-pika gives up after three missed ones and a second) notice, its robust
    connection connects again, and the order that the stalled connection never saw is handled."""

    async def scenario():
        service = InventoryService(f"{amqp_url}?heartbeat=1&name=inventory", {"plum": 5})
        await service.start()
        async with await aio_pika.connect(amqp_url) as connection:
            channel = await connection.channel()
            events = await listen_for_events(channel)

            assert amqp_broker.stall(connection="inventory") == 1
            await publish_order(channel, "plum", 1)
            assert await asyncio.wait_for(next_event(events), 30) == ("stock.reserved", {"item": "plum", "quantity": 1})
        await service.stop()
        assert service.stock == {"plum": 4}
        assert [event.kind for event in amqp_broker.history(amqp_vhost) if event.queue == "orders"] == [
            "routed", "delivered", "requeued", "delivered", "acked"]

    asyncio.run(scenario())
