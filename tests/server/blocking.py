"""What the flow-control tests share: waiting on a pika connection, and recording what
connection.blocked and connection.unblocked it was told."""

from __future__ import annotations

import time
from collections.abc import Callable

import pika


def wait_for(condition: Callable[[], bool], connection: pika.BlockingConnection, timeout: float = 10.0) -> None:
    """Processes the connection's events until `condition()` holds, or fails."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        connection.process_data_events(time_limit=0.05)


def watch_blocking(connection: pika.BlockingConnection) -> list[str]:
    """A list that receives each connection.blocked's reason and "unblocked", in order."""
    events: list[str] = []
    connection.add_on_connection_blocked_callback(lambda conn, frame: events.append(frame.method.reason))
    connection.add_on_connection_unblocked_callback(lambda conn, frame: events.append("unblocked"))
    return events
