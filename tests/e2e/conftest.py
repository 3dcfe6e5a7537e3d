"""Fixtures for the end-to-end suite.

Set ``AMQP_TEST_URL`` (e.g. ``amqp://guest:guest@127.0.0.1:5672/``) to run the
suite against another broker, such as RabbitMQ; otherwise the embedded broker
from ``amqpbroker.testing`` is started once for the session on a free port.
Reply texts are asserted for the vhost ``/``, so point the URL at that vhost.
"""

from __future__ import annotations

import copy
import os
import signal
from collections.abc import Callable, Iterator

import pika
import pytest

from .support import Cleanup

# A test that runs longer than this fails instead of hanging the suite: pika's
# BlockingConnection waits for replies without a timeout of its own.
TEST_DEADLINE_SECONDS = 20


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    url = os.environ.get("AMQP_TEST_URL")
    if url:
        yield url
        return
    from amqpbroker.testing import Broker

    with Broker(port=0) as broker:
        yield broker.url


@pytest.fixture(scope="session")
def amqp_params(amqp_url: str) -> pika.URLParameters:
    params = pika.URLParameters(amqp_url)
    params.socket_timeout = 5
    params.stack_timeout = 5
    params.blocked_connection_timeout = 5
    return params


@pytest.fixture
def make_params(amqp_params: pika.URLParameters) -> Callable[..., pika.URLParameters]:
    """Connection parameters with some attributes changed, e.g. ``frame_max=4096``."""

    def make(**overrides: object) -> pika.URLParameters:
        params = copy.deepcopy(amqp_params)
        for name, value in overrides.items():
            setattr(params, name, value)
        return params

    return make


@pytest.fixture(autouse=True)
def _deadline() -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        pytest.fail(f"test still running after {TEST_DEADLINE_SECONDS} s: the broker stopped answering")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, TEST_DEADLINE_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def connect(amqp_params: pika.URLParameters) -> Iterator[Callable[..., pika.BlockingConnection]]:
    """Open BlockingConnections that are closed again when the test ends."""
    opened: list[pika.BlockingConnection] = []

    def open_connection(params: pika.URLParameters | None = None) -> pika.BlockingConnection:
        connection = pika.BlockingConnection(params or amqp_params)
        opened.append(connection)
        return connection

    yield open_connection
    for connection in opened:
        if connection.is_open:
            connection.close()


@pytest.fixture
def connection(connect: Callable[..., pika.BlockingConnection]) -> pika.BlockingConnection:
    return connect()


@pytest.fixture
def channel(connection: pika.BlockingConnection) -> pika.adapters.blocking_connection.BlockingChannel:
    return connection.channel()


@pytest.fixture
def cleanup(amqp_params: pika.URLParameters) -> Iterator[Cleanup]:
    """Queues and exchanges registered here are deleted when the test ends."""
    registry = Cleanup()
    yield registry
    registry.delete_all(amqp_params)
