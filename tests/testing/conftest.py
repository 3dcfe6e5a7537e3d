"""Helpers for the tests of the embedded broker and the pytest plugin (whose fixtures they use)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pika
import pika.exceptions
import pytest

WAIT_SECONDS = 5.0


@pytest.fixture
def connect() -> Iterator[Callable[[str], pika.BlockingConnection]]:
    """Opens pika connections that are closed again, if still open, when the test ends."""
    opened: list[pika.BlockingConnection] = []

    def open_connection(url: str) -> pika.BlockingConnection:
        params = pika.URLParameters(url)
        params.socket_timeout = WAIT_SECONDS
        params.stack_timeout = WAIT_SECONDS
        connection = pika.BlockingConnection(params)
        opened.append(connection)
        return connection

    yield open_connection
    for connection in opened:
        if connection.is_open:
            try:
                connection.close()
            except pika.exceptions.AMQPError:
                pass  # the broker dropped it (a reset, or a restart that did not wait for it)


def wait_until(condition: Callable[[], bool], what: str = "condition") -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {WAIT_SECONDS} s waiting for {what}")
        time.sleep(0.005)
