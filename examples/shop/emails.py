"""The email service: sends a confirmation for each `payment.succeeded`, once.

Sending is a row in its outbox, written with the check for an earlier one in one transaction: a
redelivered event finds its email sent. (A real mail API would take the order number as an
idempotency key, or a relay would send the outbox.)
"""

from __future__ import annotations

import time

from . import bus

SCHEMA = "CREATE TABLE IF NOT EXISTS sent (order_id INTEGER PRIMARY KEY, address TEXT NOT NULL, at REAL NOT NULL);"


class Mailer:
    def __init__(self, ledger: bus.Ledger, work_seconds: float) -> None:
        self.ledger = ledger
        self.work_seconds = work_seconds

    def on_paid(self, routing_key: str, payment: bus.Event) -> list:
        time.sleep(self.work_seconds)  # rendering the email
        with self.ledger.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO sent VALUES (?, ?, ?)", (payment["order_id"], payment["email"], time.time())
            )
        return []


def main() -> None:
    parser = bus.service_arguments("The shop's email service.")
    parser.add_argument("--work-ms", type=float, default=5.0, help="time to send one email")
    args = parser.parse_args()
    bus.log_to_stderr("email")
    mailer = Mailer(bus.Ledger(args.state / "email.db", SCHEMA), args.work_ms / 1000)
    bus.serve(args.url, {"email": mailer.on_paid})


if __name__ == "__main__":
    main()
