"""Dynamic shovels between amqpbroker and a real RabbitMQ node started by the tests: into RabbitMQ
and back, the x-shovelled header, src-delete-after, and at-least-once in order when RabbitMQ is
killed (SIGKILL) and restarted mid-stream, and when amqpbroker (a subprocess on a data directory)
is."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest

from amqpbroker.core.shovels import ShovelConfig
from amqpbroker.testing import Broker
from amqpbroker.testing.rabbitmq import RabbitMQNode, free_port

from .support import DEADLINE_SECONDS, Publisher, check_at_least_once_in_order, drain, persistent, shovel_uri


@pytest.fixture
def broker() -> Iterator[Broker]:
    with Broker(port=0, http_port=0) as broker:
        yield broker


def api(broker: Broker, method: str, path: str) -> tuple[int, object]:
    request = urllib.request.Request(broker.http_url + path, method=method)
    request.add_header("authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            body = reply.read()
            return reply.status, json.loads(body) if body else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def set_shovel(broker: Broker, name: str, **value: object) -> None:
    config = ShovelConfig.from_value({key.replace("_", "-"): field for key, field in value.items()})
    broker.call(broker.server.set_shovel, "/", name, config)


def shovel_state(broker: Broker, name: str) -> tuple[str, str | None] | None:
    def read() -> tuple[str, str | None] | None:
        shovel = broker.server.shovels.get(("/", name))
        return None if shovel is None else (shovel.status.state, shovel.status.reason)

    return broker.call(read)


def wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def publish(url: str, queue: str, count: int) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare(queue, durable=True)
    for i in range(count):
        channel.basic_publish("", queue, str(i).encode(), persistent(i))
    connection.close()


def test_into_rabbitmq_and_back(broker: Broker, remote: RabbitMQNode) -> None:
    out, middle, back = unique("out"), unique("middle"), unique("back")
    set_shovel(broker, "there", src_uri=shovel_uri(broker.url), src_queue=out, dest_uri=shovel_uri(remote.url),
               dest_queue=middle, add_forward_headers=True)
    set_shovel(broker, "home", src_uri=shovel_uri(remote.url), src_queue=middle, dest_uri=shovel_uri(broker.url),
               dest_queue=back, add_forward_headers=True)
    publish(broker.url, out, 300)

    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    channel = connection.channel()
    channel.queue_declare(back, durable=True)
    received = []
    deadline = time.monotonic() + DEADLINE_SECONDS
    while len(received) < 300 and time.monotonic() < deadline:
        method, properties, body = channel.basic_get(back, auto_ack=True)
        if method is None:
            connection.sleep(0.05)
            continue
        received.append((int(body), properties))
    connection.close()

    assert [i for i, _ in received] == list(range(300))
    properties = received[0][1]
    assert properties.delivery_mode == 2 and properties.message_id == "0"
    # Newest hop first, as RabbitMQ prepends its entry.
    there_uri = shovel_uri(broker.url).replace("guest:guest@", "")
    remote_uri = shovel_uri(remote.url).replace("guest:guest@", "")
    assert properties.headers["x-shovelled"] == [
        {"shovelled-by": broker.call(lambda: broker.server.shovels.get(("/", "home")).node),
         "shovel-type": "dynamic", "shovel-name": "home", "shovel-vhost": "/",
         "src-uri": remote_uri, "dest-uri": there_uri, "src-queue": middle, "dest-queue": back},
        {"shovelled-by": broker.call(lambda: broker.server.shovels.get(("/", "there")).node),
         "shovel-type": "dynamic", "shovel-name": "there", "shovel-vhost": "/",
         "src-uri": there_uri, "dest-uri": remote_uri, "src-queue": out, "dest-queue": middle},
    ]
    assert shovel_state(broker, "there") == ("running", None)
    status, shovels = api(broker, "GET", "/api/shovels/%2F")
    assert status == 200
    there = next(shovel for shovel in shovels if shovel["name"] == "there")
    del there["timestamp"]
    assert there == {
        "node": there["node"], "name": "there", "vhost": "/", "type": "dynamic", "state": "running",
        "src_uri": there_uri, "src_protocol": "amqp091", "dest_protocol": "amqp091", "dest_uri": remote_uri,
        "src_queue": out, "dest_queue": middle,
    }
    assert sorted(shovel["name"] for shovel in api(broker, "GET", "/api/shovels")[1]) == ["home", "there"]


def test_exchange_to_exchange_with_keys(broker: Broker, remote: RabbitMQNode) -> None:
    """src-exchange + key: a private queue bound there; dest-exchange + key: published there with it."""
    source_exchange, dest_exchange, queue = unique("src-x"), unique("dest-x"), unique("q")
    connection = pika.BlockingConnection(pika.URLParameters(remote.url))
    channel = connection.channel()
    channel.exchange_declare(dest_exchange, "direct")
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, dest_exchange, "routed")
    connection.close()
    mine = pika.BlockingConnection(pika.URLParameters(broker.url))
    channel = mine.channel()
    channel.exchange_declare(source_exchange, "topic")
    set_shovel(broker, "x2x", src_uri=shovel_uri(broker.url), src_exchange=source_exchange,
               src_exchange_key="a.*", dest_uri=shovel_uri(remote.url), dest_exchange=dest_exchange,
               dest_exchange_key="routed", ack_mode="on-publish")
    wait_for(lambda: shovel_state(broker, "x2x") == ("running", None), "the shovel to run")
    channel.confirm_delivery()
    for i, key in enumerate(["a.b", "b.b", "a.c"]):
        channel.basic_publish(source_exchange, key, str(i).encode())
    mine.close()
    assert drain(remote.url, queue, {0, 2}) == [0, 2]


def test_src_delete_after_queue_length(broker: Broker, remote: RabbitMQNode) -> None:
    """It moves the messages there when it starts, then deletes itself; later ones stay."""
    source, dest = unique("src"), unique("dest")
    publish(broker.url, source, 50)
    set_shovel(broker, "once", src_uri=shovel_uri(broker.url), src_queue=source, dest_uri=shovel_uri(remote.url),
               dest_queue=dest, src_delete_after="queue-length", prefetch_count=7)
    wait_for(lambda: shovel_state(broker, "once") is None, "the shovel to delete itself")
    publish(broker.url, source, 5)
    assert drain(remote.url, dest, set(range(50))) == list(range(50))
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    assert connection.channel().queue_declare(source, passive=True).method.message_count == 5
    connection.close()


def test_terminated_with_reason_then_running(broker: Broker, remote: RabbitMQNode) -> None:
    """A shovel whose destination refuses it reports terminated with the reason, and retries."""
    source = unique("src")
    set_shovel(broker, "refused", src_uri=shovel_uri(broker.url), src_queue=source,
               dest_uri=shovel_uri(remote.url).replace("guest:guest", "guest:wrong"), dest_queue="q",
               reconnect_delay=0.2)
    wait_for(lambda: (shovel_state(broker, "refused") or ("",))[0] == "terminated", "terminated")
    state, reason = shovel_state(broker, "refused")
    assert "ACCESS_REFUSED" in reason
    [listed] = api(broker, "GET", "/api/shovels")[1]
    assert listed["state"] in ("terminated", "starting") and set(listed) >= {"name", "vhost", "node", "type"}
    assert api(broker, "DELETE", "/api/shovels/vhost/%2F/refused/restart") == (204, None)
    assert api(broker, "DELETE", "/api/shovels/vhost/%2F/nosuch/restart")[0] == 404
    set_shovel(broker, "refused", src_uri=shovel_uri(broker.url), src_queue=source,
               dest_uri=shovel_uri(remote.url), dest_queue=unique("dest"))
    wait_for(lambda: shovel_state(broker, "refused") == ("running", None), "running")


@pytest.mark.slow
def test_remote_killed_and_restarted_mid_stream(broker: Broker, remote: RabbitMQNode) -> None:
    """SIGKILL to RabbitMQ while the shovel feeds it: every message our publisher had confirmed
    arrives, at least once, first arrivals in publish order."""
    source, dest = unique("src"), unique("dest")
    set_shovel(broker, "survivor", src_uri=shovel_uri(broker.url), src_queue=source,
               dest_uri=shovel_uri(remote.url), dest_queue=dest, reconnect_delay=0.5, prefetch_count=100)
    publisher = Publisher(broker.url, source, 2000)
    publisher.start()
    publisher.wait_for(700)
    remote.kill()
    wait_for(lambda: (shovel_state(broker, "survivor") or ("",))[0] == "terminated", "the shovel to notice")
    remote.start()
    confirmed = publisher.finish()
    check_at_least_once_in_order(drain(remote.url, dest, set(confirmed)), confirmed)
    assert shovel_state(broker, "survivor") == ("running", None)


class BrokerProcess:
    """amqpbroker in a subprocess on a data directory and a fixed port, with shovels, killed with
    SIGKILL and started again."""

    def __init__(self, data_dir: Path, shovels: dict[str, dict]) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.shovels = shovels
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def start(self) -> None:
        self.starts += 1
        with open(self.data_dir.parent / f"broker-{self.starts}.log", "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.links.shovel_broker", str(self.data_dir), str(self.port),
                 json.dumps(self.shovels)],
                stdout=log, stderr=subprocess.STDOUT,
            )
        process = self.process
        wait_for(lambda: accepts(self.port) or process.poll() is not None, "the broker to listen")
        assert process.poll() is None, (self.data_dir.parent / f"broker-{self.starts}.log").read_text()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.slow
def test_amqpbroker_killed_and_restarted_mid_stream(tmp_path: Path, remote: RabbitMQNode) -> None:
    """SIGKILL to amqpbroker, the shovel's source, while it shovels into RabbitMQ and a publisher
    feeds it: after its restart on the same data directory, every message the publisher had
    confirmed arrives, at least once, first arrivals in publish order."""
    source, dest = unique("src"), unique("dest")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    process = BrokerProcess(data_dir, {})
    process.shovels["crashing"] = {
        "src-uri": shovel_uri(process.url), "src-queue": source, "dest-uri": shovel_uri(remote.url),
        "dest-queue": dest, "reconnect-delay": 0.5, "prefetch-count": 100,
    }
    process.start()
    try:
        publisher = Publisher(process.url, source, 2000)
        publisher.start()
        publisher.wait_for(700)
        process.kill()
        process.start()
        confirmed = publisher.finish()
        check_at_least_once_in_order(drain(remote.url, dest, set(confirmed)), confirmed)
        assert publisher.reconnects
    finally:
        process.kill()
