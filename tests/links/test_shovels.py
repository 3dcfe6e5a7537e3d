"""Dynamic shovels between amqpbroker and a real RabbitMQ node started by the tests: into RabbitMQ
and back, the x-shovelled header, src-delete-after, and at-least-once in order when RabbitMQ is
killed (SIGKILL) and restarted mid-stream, and when amqpbroker (a subprocess on a data directory)
is."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pika
import pytest

from amqpbroker.testing import Broker
from amqpbroker.testing.rabbitmq import RabbitMQNode, free_port

from .support import (
    DEADLINE_SECONDS,
    Publisher,
    api,
    check_at_least_once_in_order,
    drain,
    persistent,
    shovel_uri,
    unique,
    wait_for,
)


def set_shovel(http_url: str, name: str, **value: object) -> None:
    """PUT /api/parameters/shovel/%2F/{name}, keys written with underscores."""
    body = {"value": {key.replace("_", "-"): field for key, field in value.items()}}
    assert api(http_url, "PUT", f"/api/parameters/shovel/%2F/{name}", body)[0] in (201, 204)


def shovel_state(broker: Broker, name: str) -> tuple[str, str | None] | None:
    def read() -> tuple[str, str | None] | None:
        shovel = broker.server.links.shovels.get(("/", name))
        return None if shovel is None else (shovel.status.state, shovel.status.reason)

    return broker.call(read)


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
    set_shovel(broker.http_url, "there", src_uri=shovel_uri(broker.url), src_queue=out, dest_uri=shovel_uri(remote.url),
               dest_queue=middle, add_forward_headers=True)
    set_shovel(broker.http_url, "home", src_uri=shovel_uri(remote.url), src_queue=middle, dest_uri=shovel_uri(broker.url),
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
        {"shovelled-by": broker.call(lambda: broker.server.links.shovels.get(("/", "home")).node),
         "shovel-type": "dynamic", "shovel-name": "home", "shovel-vhost": "/",
         "src-uri": remote_uri, "dest-uri": there_uri, "src-queue": middle, "dest-queue": back},
        {"shovelled-by": broker.call(lambda: broker.server.links.shovels.get(("/", "there")).node),
         "shovel-type": "dynamic", "shovel-name": "there", "shovel-vhost": "/",
         "src-uri": there_uri, "dest-uri": remote_uri, "src-queue": out, "dest-queue": middle},
    ]
    assert shovel_state(broker, "there") == ("running", None)
    status, shovels = api(broker.http_url, "GET", "/api/shovels/%2F")
    assert status == 200
    there = next(shovel for shovel in shovels if shovel["name"] == "there")
    del there["timestamp"]
    assert there == {
        "node": there["node"], "name": "there", "vhost": "/", "type": "dynamic", "state": "running",
        "src_uri": there_uri, "src_protocol": "amqp091", "dest_protocol": "amqp091", "dest_uri": remote_uri,
        "src_queue": out, "dest_queue": middle,
    }
    assert sorted(shovel["name"] for shovel in api(broker.http_url, "GET", "/api/shovels")[1]) == ["home", "there"]


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
    set_shovel(broker.http_url, "x2x", src_uri=shovel_uri(broker.url), src_exchange=source_exchange,
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
    set_shovel(broker.http_url, "once", src_uri=shovel_uri(broker.url), src_queue=source, dest_uri=shovel_uri(remote.url),
               dest_queue=dest, src_delete_after="queue-length", prefetch_count=7)
    wait_for(lambda: api(broker.http_url, "GET", "/api/parameters/shovel/%2F/once")[0] == 404,
             "the shovel to delete its definition")
    assert shovel_state(broker, "once") is None
    publish(broker.url, source, 5)
    assert drain(remote.url, dest, set(range(50))) == list(range(50))
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    assert connection.channel().queue_declare(source, passive=True).method.message_count == 5
    connection.close()


def test_terminated_with_reason_then_running(broker: Broker, remote: RabbitMQNode) -> None:
    """A shovel whose destination refuses it reports terminated with the reason, and retries."""
    source = unique("src")
    set_shovel(broker.http_url, "refused", src_uri=shovel_uri(broker.url), src_queue=source,
               dest_uri=shovel_uri(remote.url).replace("guest:guest", "guest:wrong"), dest_queue="q",
               reconnect_delay=0.2)
    wait_for(lambda: (shovel_state(broker, "refused") or ("",))[0] == "terminated", "terminated")
    state, reason = shovel_state(broker, "refused")
    assert "ACCESS_REFUSED" in reason
    [listed] = api(broker.http_url, "GET", "/api/shovels")[1]
    assert listed["state"] in ("terminated", "starting") and set(listed) >= {"name", "vhost", "node", "type"}
    assert api(broker.http_url, "DELETE", "/api/shovels/vhost/%2F/refused/restart") == (204, None)
    assert api(broker.http_url, "DELETE", "/api/shovels/vhost/%2F/nosuch/restart")[0] == 404
    set_shovel(broker.http_url, "refused", src_uri=shovel_uri(broker.url), src_queue=source,
               dest_uri=shovel_uri(remote.url), dest_queue=unique("dest"))
    wait_for(lambda: shovel_state(broker, "refused") == ("running", None), "running")


@pytest.mark.slow
def test_remote_killed_and_restarted_mid_stream(broker: Broker, remote: RabbitMQNode) -> None:
    """SIGKILL to RabbitMQ while the shovel feeds it: every message our publisher had confirmed
    arrives, at least once, first arrivals in publish order."""
    source, dest = unique("src"), unique("dest")
    set_shovel(broker.http_url, "survivor", src_uri=shovel_uri(broker.url), src_queue=source,
               dest_uri=shovel_uri(remote.url), dest_queue=dest, reconnect_delay=0.5, prefetch_count=100)
    publisher = Publisher(broker.url, source, 2000)
    publisher.start()
    publisher.wait_for(700)
    # RabbitMQ can lose a queue declared moments before a SIGKILL, and the messages it confirmed
    # into it: its restart then recovers no queue (seen in 1 run of 10 under load). That is
    # RabbitMQ's window, not the shovel's; its schema log is synced first, so that what this test
    # checks is the shovel's at-least-once.
    remote.ctl("eval", "mnesia:sync_log().")
    remote.kill()
    wait_for(lambda: (shovel_state(broker, "survivor") or ("",))[0] == "terminated", "the shovel to notice")
    remote.start()
    confirmed = publisher.finish()
    check_at_least_once_in_order(drain(remote.url, dest, set(confirmed)), confirmed)
    # The drain may be done before the shovel's next attempt has connected.
    wait_for(lambda: shovel_state(broker, "survivor") == ("running", None), "the shovel to run again")


class BrokerProcess:
    """`python -m amqpbroker` on a data directory and fixed ports, killed with SIGKILL and started again."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.http_port = free_port()
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        self.starts += 1
        log_path = self.data_dir.parent / f"broker-{self.starts}.log"
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "amqpbroker", "--host", "127.0.0.1", "--port", str(self.port),
                 "--http-port", str(self.http_port), "--no-metrics", "--data-dir", str(self.data_dir)],
                stdout=log, stderr=subprocess.STDOUT,
            )
        process = self.process
        wait_for(lambda: accepts(self.http_port) or process.poll() is not None, "the broker to listen")
        assert process.poll() is None, log_path.read_text()

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
    feeds it: restarted on the same data directory, it runs the shovel again (its definition is
    durable), and every message the publisher had confirmed arrives, at least once, first arrivals
    in publish order."""
    source, dest = unique("src"), unique("dest")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    process = BrokerProcess(data_dir)
    process.start()
    try:
        set_shovel(process.http_url, "crashing", src_uri=shovel_uri(process.url), src_queue=source,
                   dest_uri=shovel_uri(remote.url), dest_queue=dest, reconnect_delay=0.5, prefetch_count=100)
        publisher = Publisher(process.url, source, 2000)
        publisher.start()
        publisher.wait_for(700)
        process.kill()
        process.start()
        confirmed = publisher.finish()
        check_at_least_once_in_order(drain(remote.url, dest, set(confirmed)), confirmed)
        assert publisher.reconnects
        [shovel] = api(process.http_url, "GET", "/api/shovels")[1]
        assert (shovel["name"], shovel["state"]) == ("crashing", "running")
    finally:
        process.kill()
