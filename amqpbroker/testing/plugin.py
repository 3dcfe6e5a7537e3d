"""pytest fixtures for testing AMQP applications against an embedded broker instead of RabbitMQ.

Registered through the `pytest11` entry point, so installing amqpbroker is enough. It only defines
fixtures: nothing starts unless a test asks for one.

- `amqp_broker`: one `amqpbroker.testing.Broker` for the session (for each xdist worker), in
  memory, on a free port, with the inspection and fault-injection methods.
- `amqp_vhost`: a virtual host made for one test and deleted after it.
- `amqp_url`: the URL of that virtual host, so tests cannot see each other's queues or messages.
- `amqp_broker_factory`: starts brokers of a test's own (a manual clock, durable data, limits),
  stopped when the test ends.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ._embedded import Broker


@pytest.fixture(scope="session")
def amqp_broker() -> Iterator[Broker]:
    """The session's broker: in memory, on a free port, in a background thread."""
    broker = Broker(port=0).start()
    yield broker
    # Connections that tests left idle would not answer connection.close: reset them at once.
    broker.stop(close_timeout=0)


@pytest.fixture
def amqp_vhost(amqp_broker: Broker, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh vhost named after the test; deleted afterwards, closing connections still on it."""
    name = f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', request.node.name)[:80]}-{secrets.token_hex(4)}"
    amqp_broker.add_vhost(name)
    yield name
    # The session's broker is shared: network faults the test left on must not reach the next one.
    amqp_broker.heal()
    amqp_broker.delete_vhost(name)


@pytest.fixture
def amqp_url(amqp_broker: Broker, amqp_vhost: str) -> str:
    """`amqp://guest:guest@127.0.0.1:PORT/VHOST` for this test's own vhost."""
    return amqp_broker.vhost_url(amqp_vhost)


@pytest.fixture
def amqp_broker_factory() -> Iterator[Callable[..., Broker]]:
    """Starts `Broker(port=0, **arguments)` for each call; all are stopped when the test ends."""
    started: list[Broker] = []

    def start(**arguments: Any) -> Broker:
        broker = Broker(**{"port": 0, **arguments}).start()
        started.append(broker)
        return broker

    yield start
    for broker in reversed(started):
        broker.stop(close_timeout=0)
