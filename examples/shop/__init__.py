"""A shop on amqpbroker: an order service, inventory, payment, email and shipping, each a process
with its own small pika program, talking only through the broker.

    orders ──order.placed──▶ inventory ──stock.reserved────────────▶ shipping ──order.shipped──▶ orders
           └─order.placed──▶ payment ──payment.succeeded──▶ email
                                     ├─payment.succeeded──────────▶ shipping
                                     └─payment.failed─────────────────────────────────────────▶ orders
    a message failing three times ──▶ shop.dead ──▶ orders

`python -m examples.shop` (from the repository's root) runs it all; `runner.py` says how, `bus.py`
what the services share, and `docs/guarantees.md` why each piece is there.
"""
