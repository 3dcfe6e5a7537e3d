"""The order service: places orders (`order.placed` on the `shop` exchange) and records how each
one ends: shipped (`order.shipped`), failed (`payment.failed`), or dead-lettered (its message
reached `shop.dead` after failing three times in some service).

Orders are made from their number, so a test knows how each must end: every tenth card is
declined, and every fortieth is garbled (the payment gateway cannot read it, so charging fails
every time and the message is dead-lettered).
"""

from __future__ import annotations

import time

from . import bus

PRICES = {"book": 1500, "lamp": 4200, "mug": 800, "pen": 250}  # cents
OUTCOMES = {"valid": "shipped", "declined": "failed", "garbled": "dead-lettered"}
SCHEMA = """
CREATE TABLE IF NOT EXISTS placed (order_id INTEGER PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS outcomes (order_id INTEGER PRIMARY KEY, state TEXT NOT NULL, at REAL NOT NULL);
"""


def make_order(order_id: int) -> bus.Event:
    item = list(PRICES)[order_id % len(PRICES)]
    quantity = 1 + order_id % 3
    card = "declined" if order_id % 10 == 3 else "garbled" if order_id % 40 == 17 else "valid"
    return {
        "order_id": order_id,
        "item": item,
        "quantity": quantity,
        "amount_cents": PRICES[item] * quantity,
        "card": card,
        "email": f"customer{order_id}@example.com",
    }


def expected_outcome(order_id: int) -> str:
    return OUTCOMES[make_order(order_id)["card"]]


class OrderService:
    def __init__(self, ledger: bus.Ledger, count: int, rate: float) -> None:
        """Places orders 1 to `count`, `rate` a second (0: as fast as the broker confirms them)."""
        self.ledger = ledger
        self.count = count
        self.rate = rate
        with ledger.transaction() as db:
            # Started again, it carries on after the last order it saw confirmed.
            self._next = 1 + db.execute("SELECT COALESCE(MAX(order_id), 0) FROM placed").fetchone()[0]
        self._first, self._started = self._next, time.monotonic()

    def place_due(self, send) -> None:
        due = self.count if not self.rate else self._first + int((time.monotonic() - self._started) * self.rate)
        # A few at a time, so that the outcomes coming in are recorded meanwhile.
        for order_id in range(self._next, min(due, self.count, self._next + 49) + 1):
            # If the connection drops before the confirm, this raises, and the order is placed
            # again on the next connection: maybe twice, never not at all.
            send("order.placed", make_order(order_id))
            with self.ledger.transaction() as db:
                db.execute("INSERT OR IGNORE INTO placed VALUES (?, ?)", (order_id, time.time()))
            self._next = order_id + 1

    def on_outcome(self, routing_key: str, event: bus.Event) -> list:
        state = {"order.shipped": "shipped", "payment.failed": "failed"}[routing_key]
        self._record(event["order_id"], state)
        return []

    def on_dead_letter(self, routing_key: str, event: bus.Event) -> list:
        self._record(event["order_id"], "dead-lettered")
        return []

    def _record(self, order_id: int, state: str) -> None:
        # An order ends once: a repeated outcome (a redelivery, or an event published twice) is ignored.
        with self.ledger.transaction() as db:
            db.execute("INSERT OR IGNORE INTO outcomes VALUES (?, ?, ?)", (order_id, state, time.time()))


def main() -> None:
    parser = bus.service_arguments("The shop's order service.")
    parser.add_argument("--orders", type=int, default=200, help="how many orders to place")
    parser.add_argument("--rate", type=float, default=100.0, help="orders a second; 0 as fast as possible")
    args = parser.parse_args()
    bus.log_to_stderr("orders")
    service = OrderService(bus.Ledger(args.state / "orders.db", SCHEMA), args.orders, args.rate)
    handlers = {"orders": service.on_outcome, bus.DEAD_LETTER_QUEUE: service.on_dead_letter}
    bus.serve(args.url, handlers, idle=service.place_due)


if __name__ == "__main__":
    main()
