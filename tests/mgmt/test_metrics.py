"""Prometheus metrics on their own port, read by `prometheus_client`'s text parser. With
MGMT_TEST_URL set, the same tests read RabbitMQ's `rabbitmq_prometheus` endpoint (port 15692)."""

from __future__ import annotations

import re
import tempfile
import time

import pika
import pytest
from prometheus_client.parser import text_string_to_metric_families

from amqpbroker import core
from amqpbroker.config import load
from amqpbroker.mgmt.api import in_turns
from amqpbroker.mgmt.prometheus import NodeStatus, exposition, render
from amqpbroker.testing import Broker

from .client import ApiClient, eventually
from .test_api import broker_with_queues, turns_of_another_task
from .test_wiring import _start, _stop

# The series the issue names, by type, as rabbitmq_prometheus serves them on /metrics (the disk's
# free space only where the broker keeps data on disk, the memory limit only when it has one).
GAUGES = (
    "rabbitmq_queue_messages_ready",
    "rabbitmq_queue_messages_unacked",
    "rabbitmq_queue_messages",
    "rabbitmq_queue_consumers",
    "rabbitmq_queues",
    "rabbitmq_connections",
    "rabbitmq_channels",
    "rabbitmq_consumers",
    "rabbitmq_process_resident_memory_bytes",
)
COUNTERS = (
    "rabbitmq_connections_opened",
    "rabbitmq_connections_closed",
    "rabbitmq_channels_opened",
    "rabbitmq_channels_closed",
    "rabbitmq_queues_declared",
    "rabbitmq_queues_created",
    "rabbitmq_queues_deleted",
    "rabbitmq_queue_messages_published",
    "rabbitmq_global_messages_received",
    "rabbitmq_global_messages_routed",
    "rabbitmq_global_messages_delivered",
    "rabbitmq_global_messages_acknowledged",
)
INFOS = ("rabbitmq_build_info", "rabbitmq_identity_info")


def scrape(metrics: ApiClient, path: str = "/metrics") -> dict[str, object]:
    """The metric families by name (counters without `_total`, as the parser names them)."""
    reply = metrics.get(path, auth=None)
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/plain; version=0.0.4"
    return {family.name: family for family in text_string_to_metric_families(reply.body.decode())}


def value(families: dict, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    return sum(sample.value for sample in families[name].samples if labels.items() <= sample.labels.items())


def test_metrics_parse_with_rabbitmqs_series_names_and_types(metrics) -> None:
    families = scrape(metrics)
    assert {name: families[name].type for name in GAUGES} == {name: "gauge" for name in GAUGES}
    assert {name: families[name].type for name in COUNTERS} == {name: "counter" for name in COUNTERS}
    for name in INFOS:
        assert families[name].samples[0].value == 1
    assert set(families["rabbitmq_build_info"].samples[0].labels) >= {"rabbitmq_version"}
    assert set(families["rabbitmq_identity_info"].samples[0].labels) >= {"rabbitmq_node", "rabbitmq_cluster"}


def test_metrics_follow_traffic(metrics, amqp, unique, cleanup) -> None:
    queue = cleanup.queue(unique("metrics"))
    before = scrape(metrics)
    channel = amqp.channel()
    channel.queue_declare(queue)
    for _ in range(5):
        channel.basic_publish("", queue, b"m")
    channel.basic_publish("", unique("nowhere"), b"lost")
    method, _, _ = channel.basic_get(queue)
    channel.basic_ack(method.delivery_tag)
    channel.basic_get(queue, auto_ack=True)
    # RabbitMQ emits a queue's series at its statistics interval (5 s); ours are current.
    deadline = time.monotonic() + 15
    while True:
        per_object = scrape(metrics, "/metrics/per-object")
        found = (
            value(per_object, "rabbitmq_queue_messages_ready", vhost="/", queue=queue),
            value(per_object, "rabbitmq_queue_messages_published", queue_vhost="/", queue=queue),
        )
        if found == (3, 5) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert found == (3, 5)
    after = scrape(metrics)
    # The reference broker is shared with other tests: its totals grow by at least ours.
    for name, grown in {
        "rabbitmq_global_messages_received": 6,
        "rabbitmq_global_messages_routed": 5,
        "rabbitmq_global_messages_unroutable_dropped": 1,
        "rabbitmq_global_messages_delivered": 2,
        "rabbitmq_global_messages_delivered_get_manual_ack": 1,
        "rabbitmq_global_messages_delivered_get_auto_ack": 1,
        "rabbitmq_global_messages_acknowledged": 1,
        "rabbitmq_queues_declared": 1,
        "rabbitmq_queues_created": 1,
        "rabbitmq_channels_opened": 1,
    }.items():
        assert value(after, name) - value(before, name) >= grown, name
    assert value(after, "rabbitmq_connections") >= 1
    assert value(after, "rabbitmq_channels") >= 1


def durable_with_two_messages(amqp, queue: str, *, auto_ack: bool) -> None:
    """Declares `queue` durable, publishes a persistent message of 100 bytes with a timestamp of
    1,700,000,000 and a transient one of 30 bytes, then takes the first with basic.get (left
    unacknowledged unless `auto_ack`)."""
    channel = amqp.channel()
    channel.queue_declare(queue, durable=True)
    channel.basic_publish("", queue, b"x" * 100, pika.BasicProperties(delivery_mode=2, timestamp=1_700_000_000))
    channel.basic_publish("", queue, b"y" * 30)
    channel.basic_get(queue, auto_ack=auto_ack)


def test_a_queues_bytes_and_persistent_messages_are_series_of_their_own(metrics, amqp, unique, cleanup) -> None:
    queue = cleanup.queue(unique("bytes"))
    durable_with_two_messages(amqp, queue, auto_ack=False)
    expected = {
        "rabbitmq_queue_messages_bytes": 130,
        "rabbitmq_queue_messages_ready_bytes": 30,
        "rabbitmq_queue_messages_unacked_bytes": 100,
        "rabbitmq_queue_messages_ram": 2,
        "rabbitmq_queue_messages_ram_bytes": 130,
        "rabbitmq_queue_messages_ready_ram": 1,
        "rabbitmq_queue_messages_unacked_ram": 1,
        "rabbitmq_queue_messages_persistent": 1,
        "rabbitmq_queue_messages_persistent_bytes": 100,
        "rabbitmq_queue_messages_paged_out": 0,
        "rabbitmq_queue_messages_paged_out_bytes": 0,
        "rabbitmq_queue_head_message_timestamp": 1_700_000_000,
    }

    def counted() -> dict:
        families = scrape(metrics, "/metrics/per-object")
        assert {name: value(families, name, vhost="/", queue=queue) for name in expected} == expected
        return families

    eventually(counted)
    aggregated = scrape(metrics)
    assert {name: aggregated[name].type for name in expected} == {name: "gauge" for name in expected}
    # Summed over the queues, a timestamp would mean nothing: RabbitMQ gives no sample of it.
    assert aggregated["rabbitmq_queue_head_message_timestamp"].samples == []


def test_consumer_capacity_is_a_series_per_queue_and_utilisation_is_summed(metrics, amqp, unique, cleanup) -> None:
    idle, alone = cleanup.queue(unique("idle")), cleanup.queue(unique("alone"))
    channel = amqp.channel()
    for name in (idle, alone):
        channel.queue_declare(name)
    channel.basic_consume(idle, lambda *args: None)
    names = ("rabbitmq_queue_consumer_capacity", "rabbitmq_queue_consumer_utilisation")

    def reported() -> None:
        families = scrape(metrics, "/metrics/per-object")
        assert [value(families, name, vhost="/", queue=idle) for name in names] == [1.0, 1.0]
        assert [value(families, name, vhost="/", queue=alone) for name in names] == [0, 0]

    # RabbitMQ emits a queue's series at its statistics interval (5 s); ours are current.
    eventually(reported, timeout=20)
    aggregated = scrape(metrics)
    assert {name: aggregated[name].type for name in names} == {name: "gauge" for name in names}
    # As RabbitMQ: summed over queues the capacity has no sample; the utilisation, the same figure, has.
    assert aggregated["rabbitmq_queue_consumer_capacity"].samples == []
    assert value(aggregated, "rabbitmq_queue_consumer_utilisation") >= 1.0


def test_other_paths_and_methods_are_refused(metrics) -> None:
    assert metrics.get("/", auth=None).status == 404
    assert metrics.get("/api/overview", auth=None).status == 404
    refused = metrics.post("/metrics", auth=None)
    assert refused.status == 405
    assert refused.headers["allow"] == "HEAD, GET, OPTIONS"
    assert metrics.request("HEAD", "/metrics", auth=None).status == 204


def test_our_families_are_typed_and_described_as_rabbitmqs(reference, metrics) -> None:
    if not reference:
        pytest.skip("compares our series with RabbitMQ's: set MGMT_TEST_URL")
    theirs = type_and_help(metrics.get("/metrics", auth=None).body.decode())
    status = NodeStatus("n", "3.10.8", "0", 0.0, 0, 0, 0, disk_free_bytes=0, disk_free_limit_bytes=0,
                        store_size_bytes=0)
    ours = type_and_help(render(core.Broker(memory_limit=1), status))
    ours = {name: described for name, described in ours.items() if not name.startswith("amqpbroker_")}
    assert ours == {name: theirs[name] for name in ours}


async def test_a_per_object_scrape_of_many_queues_lets_other_tasks_run_while_it_is_rendered() -> None:
    broker, names = broker_with_queues(3000)
    status = NodeStatus("n", "3.10.8", "0", 0.0, 0, 0, 0)
    lines, turns = await turns_of_another_task(lambda: in_turns(exposition(broker, status, per_object=True)))
    assert "\n".join(lines) + "\n" == render(broker, status, per_object=True)
    ready = [line for line in lines if line.startswith("rabbitmq_queue_messages_ready{")]
    assert ready == [f'rabbitmq_queue_messages_ready{{vhost="/",queue="{name}"}} 0' for name in names]
    assert turns >= 2


def type_and_help(text: str) -> dict[str, tuple[str, str]]:
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    return {name: (types[name], help) for name, help in re.findall(r"^# HELP (\S+) (.*)$", text, re.M)}


def test_store_size_and_disk_space_are_reported_with_a_data_directory() -> None:
    with tempfile.TemporaryDirectory() as data_dir, Broker(
        data_dir=data_dir, disk_free_limit=1, metrics_port=0
    ) as broker:
        metrics = ApiClient(f"http://127.0.0.1:{broker.metrics_port}")

        def checked() -> dict:
            # The disk's free space, as the disk alarm last read it: once it has.
            families = scrape(metrics)
            assert value(families, "rabbitmq_disk_space_available_bytes") > 0
            return families

        families = eventually(checked)
        assert value(families, "rabbitmq_disk_space_available_limit_bytes") == 1
        assert value(families, "amqpbroker_store_size_bytes") > 0


def test_the_embedded_broker_serves_no_metrics_unless_asked_and_keeps_the_port_across_a_restart() -> None:
    with Broker() as broker:
        assert broker.metrics_port is None
    with Broker(metrics_port=0) as broker:
        port = broker.metrics_port
        broker.restart()
        assert broker.metrics_port == port
        assert ApiClient(f"http://127.0.0.1:{port}").get("/metrics", auth=None).status == 200


def test_the_default_metrics_port_is_rabbitmqs() -> None:
    assert load([], {})["metrics.port"] == 15692
    assert not load(["--no-metrics"], {})["metrics.enabled"]


@pytest.mark.parametrize("args, served", [(("--metrics-port", "0"), True), (("--no-metrics",), False)])
def test_the_command_serves_metrics_on_metrics_port_zero_and_none_with_no_metrics(
    args: tuple[str, ...], served: bool
) -> None:
    process, lines = _start("--no-http", *args)
    try:
        if served:
            line = _line_with(process, "Prometheus metrics on")
            port = int(re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line).group(1))
            assert "rabbitmq_connections" in scrape(ApiClient(f"http://127.0.0.1:{port}"))
        else:
            assert not any("Prometheus" in line for line in lines)
    finally:
        _stop(process)


def _line_with(process, text: str) -> str:
    for _ in range(20):
        line = process.stderr.readline()
        if text in line:
            return line
    raise AssertionError(f"no log line with {text!r}")

