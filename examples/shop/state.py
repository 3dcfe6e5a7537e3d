"""Where the shop stands, read from the services' SQLite files: what the live summary prints and
what the end-to-end test checks. Reading never waits for a service (SQLite's WAL mode)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from .inventory import INITIAL_STOCK
from .orders import expected_outcome


@dataclass(frozen=True)
class Snapshot:
    placed: int = 0
    reserved: int = 0
    paid: int = 0
    declined: int = 0
    emailed: int = 0
    outcomes: dict[int, str] = field(default_factory=dict)  # order id: shipped, failed or dead-lettered
    extra_charges: int = 0  # charges beyond the first of an order
    stock_consistent: bool = True  # every item's stock fell by exactly what was reserved of it
    reservations_by_worker: dict[int, int] = field(default_factory=dict)

    def count(self, outcome: str) -> int:
        return sum(1 for state in self.outcomes.values() if state == outcome)

    @property
    def progress(self) -> tuple[int, ...]:
        return (self.placed, self.reserved, self.paid + self.declined, self.emailed, len(self.outcomes))

    def unexpected(self) -> dict[int, str]:
        """Orders that ended otherwise than their card says they must."""
        return {order: state for order, state in self.outcomes.items() if state != expected_outcome(order)}

    def line(self) -> str:
        return (
            f"placed {self.placed:4}  reserved {self.reserved:4}  paid {self.paid:4}  emailed {self.emailed:4}  "
            f"shipped {self.count('shipped'):4}  failed {self.count('failed'):3}  "
            f"dead-lettered {self.count('dead-lettered'):2}"
        )


def read(state: Path) -> Snapshot:
    orders = _query(state / "orders.db", "SELECT order_id, state FROM outcomes")
    stock = _query(state / "inventory.db", "SELECT item, available FROM stock")
    reserved = _query(state / "inventory.db", "SELECT item, SUM(quantity) FROM reservations GROUP BY item")
    reserved_of = dict(reserved)
    charges = _query(
        state / "payment.db", "SELECT outcome, COUNT(DISTINCT order_id), COUNT(*) FROM charges GROUP BY outcome"
    )
    by_outcome = {outcome: distinct for outcome, distinct, _ in charges}
    return Snapshot(
        placed=_count(state / "orders.db", "placed"),
        reserved=_count(state / "inventory.db", "reservations"),
        paid=by_outcome.get("succeeded", 0),
        declined=by_outcome.get("failed", 0),
        emailed=_count(state / "email.db", "sent"),
        outcomes=dict(orders),
        extra_charges=sum(rows - distinct for _, distinct, rows in charges),
        stock_consistent=all(INITIAL_STOCK - available == reserved_of.get(item, 0) for item, available in stock),
        reservations_by_worker=dict(
            _query(state / "inventory.db", "SELECT worker, COUNT(*) FROM reservations GROUP BY worker ORDER BY worker")
        ),
    )


def _count(path: Path, table: str) -> int:
    rows = _query(path, f"SELECT COUNT(*) FROM {table}")
    return rows[0][0] if rows else 0


def _query(path: Path, sql: str) -> list[tuple]:
    """The rows, or none while the service has not yet made its file and tables."""
    if not path.exists():
        return []
    db = sqlite3.connect(path, timeout=5)
    try:
        return db.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()
