"""The inventory service: reserves stock for each placed order and publishes `stock.reserved`.

Run several workers on the one `inventory` queue and they share its orders (competing consumers):
each takes `--work-ms` to check the warehouse, so three take orders about three times as fast.
They share one ledger, where a reservation and its stock count change in one transaction, once
per order however often the order is delivered.
"""

from __future__ import annotations

import time

from . import bus
from .orders import PRICES

INITIAL_STOCK = 1_000_000
SCHEMA = """
CREATE TABLE IF NOT EXISTS stock (item TEXT PRIMARY KEY, available INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS reservations (
    order_id INTEGER PRIMARY KEY, item TEXT NOT NULL, quantity INTEGER NOT NULL, worker INTEGER NOT NULL
);
"""


class Inventory:
    def __init__(self, ledger: bus.Ledger, worker: int, work_seconds: float) -> None:
        self.ledger = ledger
        self.worker = worker
        self.work_seconds = work_seconds
        with ledger.transaction() as db:
            db.executemany("INSERT OR IGNORE INTO stock VALUES (?, ?)", [(item, INITIAL_STOCK) for item in PRICES])

    def on_order(self, routing_key: str, order: bus.Event) -> list[tuple[str, bus.Event]]:
        time.sleep(self.work_seconds)  # checking the warehouse
        with self.ledger.transaction() as db:
            reserved = db.execute("SELECT 1 FROM reservations WHERE order_id = ?", (order["order_id"],)).fetchone()
            if reserved is None:
                db.execute(
                    "UPDATE stock SET available = available - ? WHERE item = ?", (order["quantity"], order["item"])
                )
                db.execute(
                    "INSERT INTO reservations VALUES (?, ?, ?, ?)",
                    (order["order_id"], order["item"], order["quantity"], self.worker),
                )
        return [("stock.reserved", {"order_id": order["order_id"], "item": order["item"]})]


def main() -> None:
    parser = bus.service_arguments("The shop's inventory service (one worker).")
    parser.add_argument("--worker", type=int, default=1, help="this worker's number, recorded with its reservations")
    parser.add_argument("--work-ms", type=float, default=20.0, help="time to check the warehouse for one order")
    args = parser.parse_args()
    bus.log_to_stderr(f"inventory-{args.worker}")
    inventory = Inventory(bus.Ledger(args.state / "inventory.db", SCHEMA), args.worker, args.work_ms / 1000)
    bus.serve(args.url, {"inventory": inventory.on_order})


if __name__ == "__main__":
    main()
