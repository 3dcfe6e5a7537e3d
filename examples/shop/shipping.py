"""The shipping service: ships an order once it is both reserved (`stock.reserved`) and paid
(`payment.succeeded`), whichever comes first, and publishes `order.shipped`.

Each event is recorded as a fact about its order; the one that completes the pair ships it. A
repeated event finds the order shipped and publishes `order.shipped` again, in case the first
publication was lost with a connection; the order service ignores the repeat.
"""

from __future__ import annotations

import time

from . import bus

SCHEMA = """
CREATE TABLE IF NOT EXISTS facts (order_id INTEGER NOT NULL, fact TEXT NOT NULL, PRIMARY KEY (order_id, fact));
CREATE TABLE IF NOT EXISTS shipments (order_id INTEGER PRIMARY KEY, at REAL NOT NULL);
"""
FACTS = {"stock.reserved": "reserved", "payment.succeeded": "paid"}


class Shipping:
    def __init__(self, ledger: bus.Ledger) -> None:
        self.ledger = ledger

    def on_event(self, routing_key: str, event: bus.Event) -> list[tuple[str, bus.Event]]:
        order_id = event["order_id"]
        with self.ledger.transaction() as db:
            db.execute("INSERT OR IGNORE INTO facts VALUES (?, ?)", (order_id, FACTS[routing_key]))
            facts = db.execute("SELECT COUNT(*) FROM facts WHERE order_id = ?", (order_id,)).fetchone()[0]
            if facts < len(FACTS):
                return []
            db.execute("INSERT OR IGNORE INTO shipments VALUES (?, ?)", (order_id, time.time()))
        return [("order.shipped", {"order_id": order_id})]


def main() -> None:
    args = bus.service_arguments("The shop's shipping service.").parse_args()
    bus.log_to_stderr("shipping")
    shipping = Shipping(bus.Ledger(args.state / "shipping.db", SCHEMA))
    bus.serve(args.url, {"shipping": shipping.on_event})


if __name__ == "__main__":
    main()
