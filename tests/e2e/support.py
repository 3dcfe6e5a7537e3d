"""Helpers shared by the end-to-end tests: unique names, bounded waits, cleanup."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel

WAIT_SECONDS = 5.0


def unique(prefix: str) -> str:
    """A name no other test (nor another user of the same broker) will use."""
    return f"e2e-{prefix}-{uuid.uuid4().hex[:12]}"


def wait_until(
    connection: pika.BlockingConnection,
    condition: Callable[[], bool],
    timeout: float = WAIT_SECONDS,
    what: str = "condition",
) -> None:
    """Process the connection's events until ``condition()`` holds, or fail."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        connection.process_data_events(time_limit=0.02)


def get_within(
    channel: BlockingChannel, queue: str, *, auto_ack: bool = False, timeout: float = WAIT_SECONDS
) -> tuple[pika.spec.Basic.GetOk, pika.BasicProperties, bytes]:
    """basic.get until a message arrives; for messages published on another channel."""
    deadline = time.monotonic() + timeout
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=auto_ack)
        if method is not None:
            return method, properties, body
        if time.monotonic() > deadline:
            raise AssertionError(f"no message in {queue!r} after {timeout} s")
        channel.connection.sleep(0.01)


def drain(channel: BlockingChannel, queue: str) -> list[bytes]:
    """The bodies of every ready message of ``queue``, taken with basic.get and no ack."""
    bodies = []
    while True:
        method, _, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return bodies
        bodies.append(body)


def round_trip(channel: BlockingChannel) -> None:
    """A synchronous no-op, so that an error caused by an earlier asynchronous
    method (publish, ack, ...) is raised here."""
    channel.exchange_declare("amq.direct", passive=True)


def queue_exists(channel_factory: Callable[[], BlockingChannel], queue: str) -> bool:
    """Whether a passive declare on a fresh channel finds ``queue``."""
    channel = channel_factory()
    try:
        channel.queue_declare(queue, passive=True)
    except pika.exceptions.ChannelClosedByBroker as error:
        assert error.reply_code == 404, error
        return False
    channel.close()
    return True


def exchange_exists(channel_factory: Callable[[], BlockingChannel], exchange: str) -> bool:
    """Whether a passive declare on a fresh channel finds ``exchange``."""
    channel = channel_factory()
    try:
        channel.exchange_declare(exchange, passive=True)
    except pika.exceptions.ChannelClosedByBroker as error:
        assert error.reply_code == 404, error
        return False
    channel.close()
    return True


class Cleanup:
    """Names of queues and exchanges a test created outside exclusive or auto-delete scope."""

    def __init__(self) -> None:
        self.queues: list[str] = []
        self.exchanges: list[str] = []

    def queue(self, name: str) -> str:
        self.queues.append(name)
        return name

    def exchange(self, name: str) -> str:
        self.exchanges.append(name)
        return name

    def delete_all(self, params: pika.URLParameters) -> None:
        if not (self.queues or self.exchanges):
            return
        connection = pika.BlockingConnection(params)
        try:
            channel = connection.channel()
            for queue in self.queues:
                channel.queue_delete(queue)
            for exchange in self.exchanges:
                channel.exchange_delete(exchange)
        finally:
            connection.close()


def reply(closed: pytest.ExceptionInfo) -> tuple[int, str]:
    """(reply code, reply text) of the channel or connection close the broker sent."""
    return closed.value.reply_code, closed.value.reply_text
