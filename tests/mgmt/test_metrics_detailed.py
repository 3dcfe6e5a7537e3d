"""`/metrics/detailed`: the families asked for with `family=`, a sample per object, the queue ones
limited to vhosts with `vhost=`; read by `prometheus_client`'s text parser. With MGMT_TEST_URL set,
the same tests read RabbitMQ's `rabbitmq_prometheus` endpoint (port 15692).

RabbitMQ shows most per-object figures at its statistics interval (5 s), so those are awaited."""

from __future__ import annotations

import math
import re
from urllib.parse import urlencode

import pika
import pytest
from prometheus_client.parser import text_string_to_metric_families

from amqpbroker import core
from amqpbroker.mgmt.api import in_turns
from amqpbroker.mgmt.prometheus import NodeStatus, detailed_exposition, text

from .client import ApiClient, eventually
from .test_api import broker_with_queues, turns_of_another_task
from .test_metrics import durable_with_two_messages, type_and_help, value

IDENTITY = {"rabbitmq_build_info", "rabbitmq_identity_info"}
QUEUE_DEPTH = ("queue_messages_ready", "queue_messages_unacked", "queue_messages")
# Every family RabbitMQ 3.10 serves here, by the names `family=` takes.
FAMILIES = (
    "connection_churn_metrics", "node_coarse_metrics", "node_metrics", "node_persister_metrics", "ra_metrics",
    "auth_attempt_metrics", "auth_attempt_detailed_metrics", "queue_coarse_metrics", "queue_consumer_count",
    "queue_metrics", "channel_metrics", "channel_exchange_metrics", "channel_process_metrics",
    "channel_queue_metrics", "connection_coarse_metrics", "connection_metrics", "channel_queue_exchange_metrics",
    "vhost_status", "exchange_bindings", "exchange_names",
)


def detailed_text(metrics: ApiClient, *families: str, vhosts: tuple[str, ...] = ()) -> str:
    """The text of `?family=...&vhost=...`."""
    query = [("family", family) for family in families] + [("vhost", vhost) for vhost in vhosts]
    reply = metrics.get(f"/metrics/detailed?{urlencode(query)}", auth=None)
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/plain; version=0.0.4"
    return reply.body.decode()


def detailed(metrics: ApiClient, *families: str, vhosts: tuple[str, ...] = ()) -> dict[str, object]:
    """The metric families by name (counters without `_total`) of `?family=...&vhost=...`."""
    return parsed(detailed_text(metrics, *families, vhosts=vhosts))


def parsed(raw: str) -> dict[str, object]:
    return {family.name: family for family in text_string_to_metric_families(raw)}


def rabbitmq_families(families: dict) -> set[str]:
    """The names of the broker's own families (RabbitMQ's also has `telemetry_scrape_*`)."""
    return {name for name in families if name.startswith("rabbitmq_")}


def labels_of(families: dict, name: str) -> list[dict[str, str]]:
    return [sample.labels for sample in families[name].samples]


@pytest.mark.parametrize("families, vhosts", [((), ()), (("no_such_family",), ()), (("",), ()), ((), ("/",))])
def test_without_a_family_it_knows_it_serves_only_build_and_identity_info(metrics, families, vhosts) -> None:
    assert rabbitmq_families(detailed(metrics, *families, vhosts=vhosts)) == IDENTITY


def test_a_family_it_does_not_know_is_passed_over_and_one_asked_twice_comes_once(metrics) -> None:
    raw = detailed_text(metrics, "no_such_family", "vhost_status", "vhost_status")
    families = parsed(raw)
    assert rabbitmq_families(families) == {"rabbitmq_cluster_vhost_status"} | IDENTITY
    assert raw.count("# TYPE rabbitmq_cluster_vhost_status gauge\n") == 1
    assert families["rabbitmq_cluster_vhost_status"].type == "gauge"
    assert value(families, "rabbitmq_cluster_vhost_status", vhost="/") == 1


def test_queue_coarse_metrics_give_each_queue_its_depth_labelled_vhost_then_queue(
    metrics, amqp, unique, cleanup
) -> None:
    queue = cleanup.queue(unique("detailed"))
    channel = amqp.channel()
    channel.queue_declare(queue)
    for _ in range(3):
        channel.basic_publish("", queue, b"m")
    channel.basic_get(queue)  # left unacknowledged

    def depth() -> str:
        raw = detailed_text(metrics, "queue_coarse_metrics")
        families = parsed(raw)
        found = {name: value(families, f"rabbitmq_detailed_{name}", vhost="/", queue=queue) for name in QUEUE_DEPTH}
        assert found == {"queue_messages_ready": 2, "queue_messages_unacked": 1, "queue_messages": 3}
        return raw

    raw = eventually(depth)
    for name in QUEUE_DEPTH:
        assert re.search(rf'^rabbitmq_detailed_{name}{{vhost="/",queue="{queue}"}} \d', raw, re.M), name
        assert f"# TYPE rabbitmq_detailed_{name} gauge\n" in raw


def test_queue_metrics_give_each_queue_the_bytes_its_messages_take(metrics, amqp, unique, cleanup) -> None:
    queue = cleanup.queue(unique("detailed"))
    durable_with_two_messages(amqp, queue, auto_ack=True)
    expected = {
        "queue_messages_bytes": 30, "queue_messages_persistent": 0, "queue_messages_persistent_bytes": 0,
        "queue_messages_ram": 1, "queue_consumers": 0,
    }

    def found() -> dict:
        families = detailed(metrics, "queue_metrics")
        assert {name: value(families, f"rabbitmq_detailed_{name}", vhost="/", queue=queue) for name in expected} == (
            expected)
        return families

    families = eventually(found)
    # The message left has no timestamp: the queue's is NaN, as RabbitMQ gives it.
    assert math.isnan(value(families, "rabbitmq_detailed_queue_head_message_timestamp", vhost="/", queue=queue))


def test_vhost_limits_the_queue_families_to_the_vhosts_named_and_no_other_family(
    metrics, api, unique, cleanup, other_vhost
) -> None:
    here = cleanup.queue(unique("here"))
    assert api.put(f"/api/queues/%2F/{here}").status == 201
    asked = ("queue_coarse_metrics", "queue_consumer_count", "vhost_status")

    def limited() -> dict:
        families = detailed(metrics, *asked, vhosts=(other_vhost,))
        for name in ("rabbitmq_detailed_queue_messages", "rabbitmq_detailed_queue_consumers"):
            assert labels_of(families, name) and {labels["vhost"] for labels in labels_of(families, name)} == {
                other_vhost
            }
        return families

    families = eventually(limited)
    assert value(families, "rabbitmq_detailed_queue_messages", vhost=other_vhost, queue="q") == 0
    assert {"/", other_vhost} <= {labels["vhost"] for labels in labels_of(families, "rabbitmq_cluster_vhost_status")}
    # Of a vhost that is not there, nothing; beside one that is, that one's queues.
    nowhere = detailed(metrics, *asked, vhosts=(unique("nowhere"),))
    for name in ("rabbitmq_detailed_queue_messages", "rabbitmq_detailed_queue_consumers"):
        assert families[name].type == nowhere[name].type == "gauge"
        assert nowhere[name].samples == []
    assert value(nowhere, "rabbitmq_cluster_vhost_status", vhost=other_vhost) == 1
    both = detailed(metrics, "queue_consumer_count", vhosts=(unique("nowhere"), other_vhost))
    assert labels_of(both, "rabbitmq_detailed_queue_consumers") == [{"vhost": other_vhost, "queue": "q"}]


def test_queue_consumers_come_once_when_queue_metrics_and_queue_consumer_count_are_both_asked_for(
    metrics, amqp, unique, cleanup
) -> None:
    queue = cleanup.queue(unique("consumed"))
    channel = amqp.channel()
    channel.queue_declare(queue)
    channel.basic_consume(queue, lambda *delivery: None)

    def consumers() -> str:
        raw = detailed_text(metrics, "queue_consumer_count", "queue_metrics")
        families = parsed(raw)
        assert value(families, "rabbitmq_detailed_queue_consumers", vhost="/", queue=queue) == 1
        return raw

    assert eventually(consumers).count("# TYPE rabbitmq_detailed_queue_consumers gauge\n") == 1


def test_connection_churn_metrics_count_what_was_opened_closed_and_declared(
    metrics, amqp_url, unique, cleanup
) -> None:
    names = ("connections_opened", "connections_closed", "channels_opened", "channels_closed",
             "queues_declared", "queues_created", "queues_deleted")
    before = detailed(metrics, "connection_churn_metrics")
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.queue_declare(unique("churn"), exclusive=True)
    channel.close()
    connection.close()

    def grown() -> dict:
        after = detailed(metrics, "connection_churn_metrics")
        for name in names:
            # The reference broker is shared: its counts grow by at least ours.
            assert value(after, f"rabbitmq_detailed_{name}") - value(before, f"rabbitmq_detailed_{name}") >= 1, name
        return after

    after = eventually(grown)
    for name in names:
        assert after[f"rabbitmq_detailed_{name}"].type == "counter"
        assert labels_of(after, f"rabbitmq_detailed_{name}") == [{}]


def test_node_families_have_the_process_figures_unlabelled(metrics) -> None:
    families = detailed(metrics, "node_coarse_metrics", "node_metrics")
    for name in ("process_open_fds", "process_resident_memory_bytes", "process_max_fds"):
        assert families[f"rabbitmq_detailed_{name}"].type == "gauge"
        [sample] = families[f"rabbitmq_detailed_{name}"].samples
        assert sample.labels == {} and sample.value > 0, name


def channel_with_prefetch(families: dict, prefetch: int) -> dict:
    """The labels of the one channel whose consumer prefetch is `prefetch` (a test's own value)."""
    found = [sample.labels for sample in families["rabbitmq_detailed_consumer_prefetch"].samples
             if sample.value == prefetch]
    assert len(found) == 1
    return found[0]


def test_channel_metrics_label_each_channel_with_its_consumers_unacked_messages_and_prefetch(
    metrics, amqp, unique, cleanup
) -> None:
    queue = cleanup.queue(unique("prefetched"))
    channel = amqp.channel()
    channel.confirm_delivery()
    channel.queue_declare(queue)
    for _ in range(2):
        channel.basic_publish("", queue, b"m")
    channel.basic_qos(prefetch_count=4321)
    channel.basic_consume(queue, lambda *delivery: None)

    def ours() -> tuple[dict, dict]:
        families = detailed(metrics, "channel_metrics")
        labels = channel_with_prefetch(families, 4321)
        assert value(families, "rabbitmq_detailed_channel_messages_unacked", **labels) == 2
        return families, labels

    families, labels = eventually(ours)
    assert list(labels) == ["channel"]
    assert value(families, "rabbitmq_detailed_channel_consumers", **labels) == 1
    assert value(families, "rabbitmq_detailed_channel_prefetch", **labels) == 0
    assert value(families, "rabbitmq_detailed_channel_messages_unconfirmed", **labels) == 0
    for name in ("channel_consumers", "channel_messages_unacked", "channel_messages_unconfirmed",
                 "channel_messages_uncommitted", "channel_acks_uncommitted", "consumer_prefetch", "channel_prefetch"):
        assert families[f"rabbitmq_detailed_{name}"].type == "gauge"
        assert {tuple(sample) for sample in labels_of(families, f"rabbitmq_detailed_{name}")} == {("channel",)}


def test_channel_metrics_count_what_a_transaction_holds(metrics, amqp, unique, cleanup) -> None:
    queue = cleanup.queue(unique("transacted"))
    channel = amqp.channel()
    channel.queue_declare(queue)
    channel.basic_publish("", queue, b"to ack")
    channel.basic_qos(prefetch_count=5432)
    channel.tx_select()
    for _ in range(3):
        channel.basic_publish("", queue, b"m")
    method, _, _ = channel.basic_get(queue)
    channel.basic_ack(method.delivery_tag)

    def ours() -> None:
        families = detailed(metrics, "channel_metrics")
        labels = channel_with_prefetch(families, 5432)
        assert value(families, "rabbitmq_detailed_channel_messages_uncommitted", **labels) == 3
        assert value(families, "rabbitmq_detailed_channel_acks_uncommitted", **labels) == 1

    eventually(ours)


def test_connection_metrics_give_each_connection_its_channels_labelled_channel(metrics, amqp) -> None:
    for _ in range(11):
        amqp.channel()

    def ours() -> dict:
        families = detailed(metrics, "connection_metrics")
        assert 11 in [sample.value for sample in families["rabbitmq_detailed_connection_channels"].samples]
        return families

    families = eventually(ours)
    assert families["rabbitmq_detailed_connection_channels"].type == "gauge"
    assert {tuple(labels) for labels in labels_of(families, "rabbitmq_detailed_connection_channels")} == {("channel",)}


def test_exchange_families_count_bindings_and_name_exchanges_but_the_default_and_internal_ones(
    metrics, amqp, unique, cleanup
) -> None:
    exchange, internal = cleanup.exchange(unique("topic")), cleanup.exchange(unique("internal"))
    queue = cleanup.queue(unique("bound"))
    channel = amqp.channel()
    channel.exchange_declare(exchange, "topic")
    channel.exchange_declare(internal, "fanout", internal=True)
    channel.queue_declare(queue)
    channel.queue_bind(queue, exchange, "a.#")
    channel.queue_bind(queue, exchange, "b.#")
    channel.exchange_bind(internal, exchange, "c.#")
    raw = detailed_text(metrics, "exchange_bindings", "exchange_names")
    families = parsed(raw)
    names = {"rabbitmq_cluster_exchange_bindings", "rabbitmq_cluster_exchange_name"}
    assert rabbitmq_families(families) == names | IDENTITY
    labels = f'vhost="/",exchange="{exchange}",type="topic"'
    assert f"rabbitmq_cluster_exchange_bindings{{{labels}}} 3\n" in raw
    assert f"rabbitmq_cluster_exchange_name{{{labels}}} 1\n" in raw
    for name in names:
        assert families[name].type == "gauge"
        named = {labels["exchange"] for labels in labels_of(families, name) if labels["vhost"] == "/"}
        assert "amq.direct" in named and exchange in named
        assert "" not in named and internal not in named


def test_our_detailed_families_are_typed_and_described_as_rabbitmqs(reference, metrics) -> None:
    if not reference:
        pytest.skip("compares our series with RabbitMQ's: set MGMT_TEST_URL")
    theirs = type_and_help(detailed_text(metrics, *FAMILIES))
    status = NodeStatus("n", "3.10.8", "0", 0.0, 0, 0, 0, disk_free_bytes=0, disk_free_limit_bytes=0)
    ours = type_and_help(text(detailed_exposition(core.Broker(memory_limit=1), status, FAMILIES)))
    assert ours == {name: theirs[name] for name in ours}


async def test_a_detailed_scrape_of_many_queues_lets_other_tasks_run_while_it_is_rendered() -> None:
    broker, names = broker_with_queues(3000)
    status = NodeStatus("n", "3.10.8", "0", 0.0, 0, 0, 0)
    lines, turns = await turns_of_another_task(
        lambda: in_turns(detailed_exposition(broker, status, {"queue_coarse_metrics"}))
    )
    ready = [line for line in lines if line.startswith("rabbitmq_detailed_queue_messages_ready{")]
    assert ready == [f'rabbitmq_detailed_queue_messages_ready{{vhost="/",queue="{name}"}} 0' for name in names]
    assert turns >= 2


def test_exchanges_and_vhosts_that_go_while_a_scrape_is_rendered_leave_it_whole() -> None:
    broker = core.Broker()
    for vhost in ("/", "other"):
        broker.add_vhost(vhost).declare_exchange("x", "topic")
    status = NodeStatus("n", "3.10.8", "0", 0.0, 0, 0, 0)
    lines = detailed_exposition(broker, status, {"exchange_names"})
    taken = [next(lines) for _ in range(3)]
    assert taken[2] == 'rabbitmq_cluster_exchange_name{vhost="/",exchange="amq.direct",type="direct"} 1'
    broker.vhosts["/"].delete_exchange("x")
    broker.delete_vhost("other")
    # Each as of the turn that took it, as in RabbitMQ, whose figures are not one snapshot either.
    rest = list(lines)
    assert 'rabbitmq_cluster_exchange_name{vhost="/",exchange="x",type="topic"} 1' in rest
    assert rest[-1] == 'rabbitmq_identity_info{rabbitmq_node="n",rabbitmq_cluster="n"} 1'


def test_head_options_and_other_methods_are_answered_as_on_metrics(metrics) -> None:
    assert metrics.request("HEAD", "/metrics/detailed", auth=None).status == 204
    assert metrics.request("OPTIONS", "/metrics/detailed", auth=None).headers["allow"] == "HEAD, GET, OPTIONS"
    refused = metrics.post("/metrics/detailed", auth=None)
    assert (refused.status, refused.headers["allow"]) == (405, "HEAD, GET, OPTIONS")
