"""Fixtures for the management API tests: our embedded broker, or RabbitMQ as the reference.

Set ``MGMT_TEST_URL=http://guest:guest@127.0.0.1:15672`` (with ``AMQP_TEST_URL`` for the same
broker's AMQP side) to run every test against RabbitMQ's management plugin; otherwise one embedded
broker serving the API on a free port is started for the session. The tests compare status codes
and the keys tools read, so the same assertions hold against both.

- `api`: an `ApiClient` as guest (administrator) for the broker under test.
- `metrics`: an `ApiClient` of the same broker's Prometheus port (RabbitMQ's 15692 for the reference).
- `amqp_url`: the same broker's AMQP URL (vhost `/`); `amqp`: a pika connection to it.
- `reference`: True when the broker under test is RabbitMQ.
- `embedded`: the embedded `Broker` (the test is skipped in reference mode: it needs our internals).
- `unique`: a name no other test uses, for queues and exchanges (cleaned up by `cleanup`).
- `cleanup`: queues and exchanges registered here are deleted over the API after the test.
- `make_user`: a user with given tags and full permissions on `/`, deleted after the test.
- `other_vhost`: a vhost with a queue `q` in it, deleted after the test.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pika
import pytest

from amqpbroker.core.users import User, hash_password

from .client import ApiClient, segment

MGMT_TEST_URL = os.environ.get("MGMT_TEST_URL")


@pytest.fixture(scope="session")
def reference() -> bool:
    return bool(MGMT_TEST_URL)


@pytest.fixture(scope="session")
def _broker() -> Iterator[object]:
    if MGMT_TEST_URL:
        yield None
        return
    from amqpbroker.testing import Broker

    with Broker(http_port=0, metrics_port=0) as broker:
        yield broker


@pytest.fixture
def embedded(_broker: object) -> object:
    if _broker is None:
        pytest.skip("looks inside amqpbroker: not run against the reference broker")
    return _broker


@pytest.fixture(scope="session")
def api(_broker) -> ApiClient:
    return ApiClient(MGMT_TEST_URL or _broker.http_url)


@pytest.fixture(scope="session")
def metrics(_broker) -> ApiClient:
    """A client of the metrics port: ours, or RabbitMQ's 15692 on the reference's host."""
    if MGMT_TEST_URL:
        return ApiClient(f"http://{urlsplit(MGMT_TEST_URL).hostname}:15692")
    return ApiClient(f"http://127.0.0.1:{_broker.metrics_port}")


@pytest.fixture(scope="session")
def amqp_url(_broker) -> str:
    if MGMT_TEST_URL:
        url = os.environ.get("AMQP_TEST_URL")
        if not url:
            pytest.fail("MGMT_TEST_URL is set without AMQP_TEST_URL for the same broker")
        return url
    return _broker.url


@pytest.fixture
def amqp(amqp_url: str) -> Iterator[pika.BlockingConnection]:
    """A blocking AMQP connection to the broker under test, closed after the test."""
    params = pika.URLParameters(amqp_url)
    params.socket_timeout = params.stack_timeout = params.blocked_connection_timeout = 5
    connection = pika.BlockingConnection(params)
    yield connection
    if connection.is_open:
        connection.close()


@pytest.fixture
def unique() -> Callable[[str], str]:
    def make(prefix: str) -> str:
        return f"mgmt-{prefix}-{uuid.uuid4().hex[:10]}"

    return make


class Cleanup:
    def __init__(self, api: ApiClient) -> None:
        self._api = api
        self._paths: list[str] = []

    def queue(self, name: str, vhost: str = "/") -> str:
        self._paths.append(f"/api/queues/{segment(vhost)}/{segment(name)}")
        return name

    def exchange(self, name: str, vhost: str = "/") -> str:
        self._paths.append(f"/api/exchanges/{segment(vhost)}/{segment(name)}")
        return name

    def delete_all(self) -> None:
        for path in reversed(self._paths):
            self._api.delete(path)


@pytest.fixture
def cleanup(api: ApiClient) -> Iterator[Cleanup]:
    registry = Cleanup(api)
    yield registry
    registry.delete_all()


@pytest.fixture
def other_vhost(api: ApiClient, unique) -> Iterator[str]:
    """A vhost made by guest, in which nobody else has a permission, with a queue `q` in it."""
    name = unique("vhost")
    assert api.put(f"/api/vhosts/{segment(name)}").status == 201
    assert api.put(f"/api/queues/{segment(name)}/q").status == 201
    yield name
    api.delete(f"/api/vhosts/{segment(name)}")


@pytest.fixture
def make_user(api: ApiClient, _broker, unique) -> Iterator[Callable[[list[str]], ApiClient]]:
    """`make_user(tags)`: a client logged in as a new user with those tags."""
    made: list[str] = []

    def make(tags: list[str]) -> ApiClient:
        name, password = unique("user"), "secret"
        made.append(name)
        if _broker is None:
            run = ["rabbitmqctl", "-q"]
            subprocess.run([*run, "add_user", name, password], check=True, capture_output=True)
            subprocess.run([*run, "set_user_tags", name, *tags], check=True, capture_output=True)
            permissions = ["set_permissions", "-p", "/", name, ".*", ".*", ".*"]
            subprocess.run([*run, *permissions], check=True, capture_output=True)
        else:
            user = User(name, hash_password(password), list(tags))
            _broker.call(lambda: _broker.server.broker.users.put(user))
            _broker.call(lambda: _broker.server.broker.permissions.set("/", name, ".*", ".*", ".*"))
        return api.as_user(name, password)

    yield make
    for name in made:
        if _broker is None:
            subprocess.run(["rabbitmqctl", "-q", "delete_user", name], capture_output=True)
        else:
            _broker.call(_broker.server.broker.delete_user, name)
