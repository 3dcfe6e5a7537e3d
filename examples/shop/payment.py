"""The payment service: charges each placed order and publishes `payment.succeeded` or
`payment.failed`.

`--mode` chooses the delivery guarantee, to see what each costs when the service is killed:

- `at-most-once`: automatic acknowledgement. The broker forgets a message as it sends it, so the
  orders in flight when the service dies are never charged, and never end.
- `at-least-once`: manual acknowledgement after the charge and its event. Nothing is lost, but an
  order charged just before a crash is delivered again and charged again.
- `effectively-once` (the default): at-least-once, and the charge is recorded in one transaction
  with the check for an earlier one, so a redelivered order is answered from the record.

A garbled card makes the gateway raise: the message is returned to the queue, and its third failure
dead-letters it to `shop.dead`.
"""

from __future__ import annotations

import time

from . import bus

MODES = ("at-most-once", "at-least-once", "effectively-once")
# No primary key: in at-least-once mode a second charge for an order is a second row.
SCHEMA = """
CREATE TABLE IF NOT EXISTS charges (order_id INTEGER NOT NULL, amount_cents INTEGER NOT NULL, outcome TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS charges_by_order ON charges (order_id);
"""


class GatewayError(Exception):
    pass


class Payment:
    def __init__(self, ledger: bus.Ledger, mode: str, work_seconds: float) -> None:
        self.ledger = ledger
        self.deduplicate = mode != "at-least-once"
        self.work_seconds = work_seconds

    def on_order(self, routing_key: str, order: bus.Event) -> list[tuple[str, bus.Event]]:
        if order["card"] == "garbled":
            raise GatewayError(f"cannot read the card of order {order['order_id']}")
        time.sleep(self.work_seconds)  # the gateway's round trip
        with self.ledger.transaction() as db:
            charged = None
            if self.deduplicate:
                charged = db.execute("SELECT outcome FROM charges WHERE order_id = ?", (order["order_id"],)).fetchone()
            if charged is None:
                outcome = "succeeded" if order["card"] == "valid" else "failed"
                db.execute("INSERT INTO charges VALUES (?, ?, ?)", (order["order_id"], order["amount_cents"], outcome))
            else:
                [outcome] = charged
        event = {"order_id": order["order_id"], "amount_cents": order["amount_cents"], "email": order["email"]}
        return [(f"payment.{outcome}", event)]


def main() -> None:
    parser = bus.service_arguments("The shop's payment service.")
    parser.add_argument("--mode", choices=MODES, default="effectively-once")
    parser.add_argument("--work-ms", type=float, default=12.0, help="the payment gateway's time for one charge")
    args = parser.parse_args()
    bus.log_to_stderr("payment")
    payment = Payment(bus.Ledger(args.state / "payment.db", SCHEMA), args.mode, args.work_ms / 1000)
    bus.serve(args.url, {"payment": payment.on_order}, auto_ack=args.mode == "at-most-once")


if __name__ == "__main__":
    main()
