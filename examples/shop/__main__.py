"""`python -m examples.shop`: the whole shop, from the repository's root, in one command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import runner
from .payment import MODES


def parse_args(argv: list[str] | None = None) -> tuple[runner.Options, str | None]:
    defaults = runner.Options()
    parser = argparse.ArgumentParser(
        prog="python -m examples.shop",
        description="An order service, inventory, payment, email and shipping, talking through amqpbroker.",
    )
    parser.add_argument("--orders", type=int, default=defaults.orders, help="orders to place (default: %(default)s)")
    parser.add_argument(
        "--rate", type=float, default=defaults.rate,
        help="orders a second, 0 as fast as possible (default: %(default)s)",
    )
    parser.add_argument(
        "--inventory-workers", type=int, default=defaults.inventory_workers,
        help="inventory processes competing for the orders (default: %(default)s)",
    )
    parser.add_argument(
        "--payment", choices=MODES, default=defaults.payment, help="payment's delivery guarantee (default: %(default)s)"
    )
    parser.add_argument("--kill-email", action="store_true", help="kill -9 the email service, start it 2 s later")
    parser.add_argument("--kill-payment", action="store_true", help="kill -9 the payment service, start it 1 s later")
    parser.add_argument("--kill-broker", action="store_true", help="kill -9 the broker, start it 1 s later")
    parser.add_argument(
        "--dir", type=Path, help="for the broker's data, the state and the logs (default: a new temporary one)"
    )
    parser.add_argument(
        "--url", help="use this broker (e.g. a RabbitMQ) instead of starting one; --kill-broker needs ours"
    )
    args = parser.parse_args(argv)
    if args.url and args.kill_broker:
        parser.error("--kill-broker kills the broker this command starts, so not with --url")
    return runner.Options(
        orders=args.orders, rate=args.rate, inventory_workers=args.inventory_workers, payment=args.payment,
        kill_email=args.kill_email, kill_payment=args.kill_payment, kill_broker=args.kill_broker,
        directory=args.dir,
    ), args.url


def describe(report: runner.Report, options: runner.Options) -> str:
    snapshot = report.snapshot
    ended = len(snapshot.outcomes)
    per_second = ended / max(report.seconds, 0.1)
    lines = [
        f"{'done' if report.complete else 'stopped: nothing moved for %.0f s' % options.stall_seconds}: "
        f"{ended} of {options.orders} orders ended in {report.seconds:.1f} s ({per_second:.0f} orders/s)",
        f"  shipped {snapshot.count('shipped')}, payment failed {snapshot.count('failed')}, "
        f"dead-lettered {snapshot.count('dead-lettered')}",
        f"  never ended: {options.orders - ended}; ended otherwise than expected: {len(snapshot.unexpected())}",
        f"  emails: {snapshot.emailed} for {snapshot.paid} payments; extra charges: {snapshot.extra_charges}; "
        f"stock {'consistent' if snapshot.stock_consistent else 'INCONSISTENT'} with the reservations",
    ]
    if len(snapshot.reservations_by_worker) > 1:
        shares = ", ".join(f"#{worker} {count}" for worker, count in snapshot.reservations_by_worker.items())
        lines.append(f"  reservations by inventory worker: {shares}")
    for back, flowing in zip(report.broker_back_seconds, report.flowing_again_seconds):
        lines.append(f"  broker crash: listening again {back:.2f} s after kill -9, orders moving {flowing:.2f} s later")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    options, url = parse_args(argv)
    report = runner.run(options, url)
    print(describe(report, options))
    return 0 if report.complete and not report.snapshot.unexpected() else 1


if __name__ == "__main__":
    sys.exit(main())
