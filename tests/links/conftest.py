"""Fixtures for the links to other brokers (shovels, federation): a private RabbitMQ node per test
module, as the remote side, and amqpbroker embedded.

Debian's rabbitmq-server must be installed (`.ci/run` installs it); elsewhere these tests are
skipped when it is absent, unless AMQPBROKER_REQUIRE_TOOLS is set, where its absence fails them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from amqpbroker.testing import Broker, rabbitmq


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rabbitmq.RabbitMQNode]:
    """A RabbitMQ node of this module's own, started once (it takes seconds) and stopped at the end."""
    if not rabbitmq.installed():
        message = "rabbitmq-server is not installed (Debian package rabbitmq-server; .ci/run installs it)"
        if os.environ.get("AMQPBROKER_REQUIRE_TOOLS"):
            pytest.fail(message)
        pytest.skip(message)
    node = rabbitmq.RabbitMQNode(Path(tmp_path_factory.mktemp("rabbitmq")))
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def broker() -> Iterator[Broker]:
    """amqpbroker, embedded, with its management API."""
    with Broker(port=0, http_port=0) as broker:
        yield broker
