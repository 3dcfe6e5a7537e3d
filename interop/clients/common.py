"""What the Python client programs share: the command line the runner speaks, and small helpers.

A client program is run as `python -m interop.clients.X --url URL --prefix PREFIX SCENARIO...`
and prints one result line per scenario (`INTEROP-RESULT {"scenario", "ok", "detail"}`), or with
`--list` the names of the scenarios it implements, one per line.
"""

import argparse
import asyncio
import inspect
import json
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from interop.scenarios import LARGE_MESSAGE_SIZE, NAMES, PATIENCE

RESULT_MARK = "INTEROP-RESULT "
_INTEROP_DIR = Path(__file__).resolve().parent.parent


class Names:
    """Queue and exchange names unique to one scenario of one run."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self, suffix: str) -> str:
        return f"{self.prefix}.{suffix}"


def large_body() -> bytes:
    pattern = bytes(range(251))
    return (pattern * (LARGE_MESSAGE_SIZE // len(pattern) + 1))[:LARGE_MESSAGE_SIZE]


def wrong_password(url: str) -> str:
    parts = urlsplit(url)
    user = parts.username or "guest"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:wrong-{user}@{host}"))


def expect(actual: object, expected: object, what: str) -> None:
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


def pump_until(done: Callable[[], bool], pump: Callable[[], object], what: str, timeout: float = PATIENCE) -> None:
    """Call `pump` (which processes the client's I/O briefly) until `done()`, or fail."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout} s")
        pump()


def _describe(exc: BaseException) -> str:
    ours = [frame for frame in traceback.extract_tb(exc.__traceback__) if Path(frame.filename).is_relative_to(_INTEROP_DIR)]
    where = f" (at {Path(ours[-1].filename).name}:{ours[-1].lineno})" if ours else ""
    return f"{type(exc).__name__}: {exc}{where}"


def main(scenarios: dict[str, Callable[[str, Names], object]]) -> None:
    unknown = set(scenarios) - set(NAMES)
    if unknown:
        raise SystemExit(f"unknown scenarios: {sorted(unknown)}")
    parser = argparse.ArgumentParser()
    parser.add_argument("--list", action="store_true", help="print the implemented scenarios")
    parser.add_argument("--url")
    parser.add_argument("--prefix", default="interop")
    parser.add_argument("scenarios", nargs="*")
    args = parser.parse_args()
    if not set(args.scenarios) <= set(scenarios):
        parser.error(f"not implemented here: {sorted(set(args.scenarios) - set(scenarios))}")
    if args.list:
        print("\n".join(name for name in NAMES if name in scenarios))
        return
    for name in args.scenarios:
        try:
            outcome = scenarios[name](args.url, Names(f"{args.prefix}.{name}"))
            if inspect.iscoroutine(outcome):
                asyncio.run(outcome)
            result = {"scenario": name, "ok": True, "detail": ""}
        except Exception as exc:
            result = {"scenario": name, "ok": False, "detail": _describe(exc)}
        print(RESULT_MARK + json.dumps(result), flush=True)
