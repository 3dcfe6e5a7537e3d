"""python -m interop: run the scenarios with every client against a broker and print the table.

Exit status: 0 when every applicable cell passed, 1 when one failed, 2 when the broker could not be
started or reached.
"""

import argparse
import sys
import time
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import amqp.exceptions

from interop import brokers, report
from interop.clients import CLIENTS, INTEROP_DIR
from interop.runner import FAIL, Cell, run
from interop.scenarios import DEFINITIONS, NAMES, OPERATOR_POLICIES

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"


def _with_vhost(url: str) -> str:
    """Spell the default vhost out: clients differ on whether an empty path means "" or "/"."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/%2F")) if parts.path in ("", "/") else url


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))


def _choices(known: tuple[str, ...]):
    def parse(value: str) -> list[str]:
        chosen = [name.strip() for name in value.split(",") if name.strip()]
        unknown = sorted(set(chosen) - set(known))
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown: {', '.join(unknown)} (known: {', '.join(known)})")
        return [name for name in known if name in chosen]

    return parse


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m interop", description=__doc__.split("\n")[0])
    broker = parser.add_mutually_exclusive_group()
    broker.add_argument("--url", default=DEFAULT_URL, help=f"the broker to test (default {DEFAULT_URL})")
    broker.add_argument("--reference", action="store_true", help="start a private RabbitMQ on a free port, test it")
    broker.add_argument("--ours", action="store_true", help="start this checkout's amqpbroker on a free port, test it")
    client_names = tuple(client.name for client in CLIENTS)
    parser.add_argument("--clients", type=_choices(client_names), default=list(client_names), help="comma-separated")
    parser.add_argument("--scenarios", type=_choices(NAMES), default=list(NAMES), help="comma-separated")
    parser.add_argument("--exclude", type=_choices(NAMES), default=[], help="comma-separated scenarios to leave out")
    parser.add_argument("--out", type=Path, default=INTEROP_DIR / "results", help="for results.json and results.md")
    parser.add_argument("--timeout", type=float, default=30, help="seconds each scenario may take (default 30)")
    parser.add_argument("--jobs", type=int, default=8, help="cells run at once (default 8)")
    args = parser.parse_args(argv)
    args.scenarios = [name for name in args.scenarios if name not in args.exclude]
    return args


def _broker(args: argparse.Namespace) -> AbstractContextManager[str]:
    provisions = {"definitions": DEFINITIONS, "operator_policies": OPERATOR_POLICIES}
    if args.reference:
        return brokers.rabbitmq(args.out / "broker.log", **provisions)
    if args.ours:
        return brokers.ours(args.out / "broker.log", **provisions)
    return nullcontext(_with_vhost(args.url))


def _print_failure(cell: Cell) -> None:
    if cell.status == FAIL:
        print(f"FAIL {cell.client} / {cell.scenario}: {' '.join(cell.detail.split())}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    clients = [client for client in CLIENTS if client.name in args.clients]
    args.out.mkdir(parents=True, exist_ok=True)
    started_at, started = datetime.now(timezone.utc), time.monotonic()
    try:
        with _broker(args) as url:
            product = brokers.server_product(url)
            size = f"{len(clients)} clients × {len(args.scenarios)} scenarios"
            print(f"{product} at {_redacted(url)}: {size}", flush=True)
            # RabbitMQ here has neither the deduplication nor the delayed-message plugin.
            plugins = not product.startswith("RabbitMQ")
            # A broker at --url was not given DEFINITIONS and OPERATOR_POLICIES: what the scenarios
            # that need them expect may not hold there.
            cells = run(url, clients, args.scenarios, timeout=args.timeout, jobs=args.jobs, on_cell=_print_failure,
                        plugins=plugins, provisioned=args.reference or args.ours)
    except brokers.BrokerError as exc:
        print(f"interop: {exc}", file=sys.stderr)
        return 2
    except (OSError, amqp.exceptions.AMQPError) as exc:
        print(f"interop: cannot connect to the broker: {exc}", file=sys.stderr)
        return 2
    meta = {
        "broker": product,
        "url": _redacted(url),
        "started_at": started_at.isoformat(timespec="seconds"),
        "duration_seconds": round(time.monotonic() - started, 1),
    }
    report.write(args.out, meta, cells, clients, args.scenarios)
    print()
    print(report.text(cells, clients, args.scenarios))
    print(f"\n{meta['duration_seconds']:.0f} s; results in {args.out}")
    return 1 if report.summarize(cells)["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
