"""Run a scenario on one of pika's asynchronous adapters, in its own event loop,
inside an ordinary synchronous test, with a deadline.

Scenario callbacks only record what happened; the test asserts afterwards, so a
failing expectation never gets lost inside an event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pika
from pika.adapters.asyncio_connection import AsyncioConnection
from pika.channel import Channel

ADAPTERS = ["select", "asyncio"]

Scenario = Callable[[Channel, Callable[[], None]], None]


def run_scenario(params: pika.URLParameters, adapter: str, scenario: Scenario, timeout: float = 10.0) -> None:
    """Open a connection and a channel, call ``scenario(channel, finish)`` and run the
    event loop until the scenario calls ``finish()``; fail if that takes longer than
    ``timeout`` seconds or the connection fails."""
    problems: list[str] = []
    finished = False

    def finish() -> None:
        nonlocal finished
        finished = True
        if connection.is_open:
            connection.close()

    def give_up() -> None:
        if not finished:
            problems.append(f"scenario did not finish within {timeout} s")
            finish()

    def on_open(opened: pika.connection.Connection) -> None:
        opened.channel(on_open_callback=lambda channel: scenario(channel, finish))

    def on_open_error(failed: pika.connection.Connection, error: BaseException) -> None:
        problems.append(f"connection failed to open: {error!r}")
        stop()

    def on_close(closed: pika.connection.Connection, reason: BaseException) -> None:
        if not finished:
            problems.append(f"connection closed before the scenario finished: {reason!r}")
        stop()

    if adapter == "select":
        connection = pika.SelectConnection(params, on_open, on_open_error, on_close)
        stop, start = connection.ioloop.stop, connection.ioloop.start
        connection.ioloop.call_later(timeout, give_up)
        start()
    else:
        loop = asyncio.new_event_loop()
        try:
            connection = AsyncioConnection(params, on_open, on_open_error, on_close, custom_ioloop=loop)
            stop = loop.stop
            loop.call_later(timeout, give_up)
            loop.run_forever()
        finally:
            loop.close()
    assert not problems, problems
