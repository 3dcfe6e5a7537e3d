"""An aio-pika service: takes orders from the `orders` queue, reserves stock, announces the result.

Each order is a JSON message `{"item": ..., "quantity": ...}`. The service publishes
`stock.reserved` or `stock.short` to the `events` topic exchange, then acknowledges the order;
if it fails half-way, the order is requeued and tried again.
"""

from __future__ import annotations

import json

import aio_pika


class InventoryService:
    def __init__(self, url: str, stock: dict[str, int]) -> None:
        self.url = url
        self.stock = stock
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self.url)
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=10)
        self._events = await channel.declare_exchange("events", aio_pika.ExchangeType.TOPIC, durable=True)
        orders = await channel.declare_queue("orders", durable=True)
        await orders.consume(self._on_order)

    async def stop(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def _on_order(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process(requeue=True):
            order = json.loads(message.body)
            item, quantity = order["item"], order["quantity"]
            if self.stock.get(item, 0) >= quantity:
                self.stock[item] -= quantity
                outcome = "reserved"
            else:
                outcome = "short"
            event = aio_pika.Message(json.dumps(order).encode(), content_type="application/json",
                                     delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            await self._events.publish(event, routing_key=f"stock.{outcome}")
