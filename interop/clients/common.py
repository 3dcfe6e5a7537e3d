"""What the Python client programs share: the command line the runner speaks, and small helpers.

A client program is run as `python -m interop.clients.X --url=URL --prefix=PREFIX SCENARIO...`
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
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from interop.scenarios import (
    LARGE_MESSAGE_SIZE,
    NAMES,
    OPERATOR_POLICY_QUEUES,
    PATIENCE,
    STREAM_MESSAGES,
    TOPIC_REFUSAL,
    TOPIC_USER,
)

T = TypeVar("T")
RESULT_MARK = "INTEROP-RESULT "
_CLIENTS_DIR = Path(__file__).resolve().parent


class Names:
    """Queue and exchange names unique to one scenario of one run."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self, suffix: str) -> str:
        return f"{self.prefix}.{suffix}"


def large_body() -> bytes:
    pattern = bytes(range(251))
    return (pattern * (LARGE_MESSAGE_SIZE // len(pattern) + 1))[:LARGE_MESSAGE_SIZE]


def stream_read(start: int, stop: int = STREAM_MESSAGES) -> list[tuple[str, int]]:
    """What a reader of the `stream` scenario gets: (body, x-stream-offset) of offsets start to stop - 1."""
    return [(f"s{n}", n) for n in range(start, stop)]


def _as_user(url: str, user: str, password: str) -> str:
    """`url` with other credentials: the same host, port and vhost."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


def wrong_password(url: str) -> str:
    user = urlsplit(url).username or "guest"
    return _as_user(url, user, f"wrong-{user}")


def topic_user(url: str) -> str:
    """`url` for the user of the topic_permissions scenario, whose password is its name."""
    return _as_user(url, TOPIC_USER, TOPIC_USER)


def topic_keys(names: Names) -> tuple[str, str, str]:
    """The topic_permissions scenario's routing keys: one its user may publish and bind with, one it
    may bind with only, and one it may do neither with."""
    return tuple(f"{word}.{names('key')}" for word in ("allowed", "readable", "refused"))


def expect_topic_refused(reply_code: int, reply_text: str, key: str) -> None:
    expect((reply_code, reply_text), (403, TOPIC_REFUSAL.format(key)), f"refusal of the topic {key!r}")


def operator_policy_queue(names: Names) -> str:
    """The operator_policy scenario's queue: a name the pattern of interop's OPERATOR_POLICIES matches."""
    return OPERATOR_POLICY_QUEUES + names("q")


def expect(actual: object, expected: object, what: str) -> None:
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


def expect_dead_lettered(headers: dict | None, reason: str, queue: str, original_expiration: str | None = None) -> None:
    """The headers RabbitMQ 3.x writes on a message dead-lettered once from `queue`, published there via
    the default exchange: one x-death entry and the x-first-death-* headers."""
    headers = headers or {}
    deaths = headers.get("x-death")
    expect(len(deaths or ()), 1, f"x-death entries in {headers!r}")
    death = dict(deaths[0])
    expect("time" in death, True, f"time in {death!r}")
    del death["time"]
    expected = {"count": 1, "reason": reason, "queue": queue, "exchange": "", "routing-keys": [queue]}
    if original_expiration is not None:
        expected["original-expiration"] = original_expiration
    expect(death, expected, "x-death")
    first = {key: headers.get(f"x-first-death-{key}") for key in ("reason", "queue", "exchange")}
    expect(first, {"reason": reason, "queue": queue, "exchange": ""}, "x-first-death-*")


def poll(fetch: Callable[[], T | None], pump: Callable[[], object], what: str, timeout: float = PATIENCE) -> T:
    """Call `fetch` until it returns something, calling `pump` (the client's I/O, briefly) in between."""
    deadline = time.monotonic() + timeout
    while (result := fetch()) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout} s")
        pump()
    return result


def pump_until(done: Callable[[], bool], pump: Callable[[], object], what: str, timeout: float = PATIENCE) -> None:
    poll(lambda: True if done() else None, pump, what, timeout)


def nap() -> None:
    time.sleep(0.05)


def _describe(exc: BaseException) -> str:
    """The error, and the line of the client program where it surfaced."""
    in_client = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if Path(frame.filename).resolve().parent == _CLIENTS_DIR and frame.filename != __file__
    ]
    where = f" (at {Path(in_client[-1].filename).name}:{in_client[-1].lineno})" if in_client else ""
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
