"""Debian's `rabbitmqadmin` (from the rabbitmq-server package) drives the broker unchanged: list,
declare, publish, get, purge, delete, policies and operator policies among them. (export and import
belong to the definitions endpoints.)

`.ci/run` installs it; elsewhere these tests are skipped when it is absent, unless
AMQPBROKER_REQUIRE_TOOLS is set, as CI sets it, where its absence fails them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable

import pytest

from .client import ApiClient, eventually

RABBITMQADMIN = shutil.which("rabbitmqadmin")


@pytest.fixture
def admin(api: ApiClient) -> Callable[..., str]:
    """Runs `rabbitmqadmin ARGS...` against the broker under test and returns its output."""
    if RABBITMQADMIN is None:
        message = "rabbitmqadmin is not installed (Debian package rabbitmq-server; .ci/run extracts it)"
        if os.environ.get("AMQPBROKER_REQUIRE_TOOLS"):
            pytest.fail(message)
        pytest.skip(message)

    def run(*args: str) -> str:
        command = [sys.executable, RABBITMQADMIN, "-H", api.host, "-P", str(api.port), "-u", api.user,
                   "-p", api.password, *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        return result.stdout

    return run


def _listed(admin: Callable[..., str], kind: str) -> list[dict]:
    return json.loads(admin("-f", "raw_json", "list", kind))


def test_declare_list_publish_get_purge_delete(admin, amqp, unique) -> None:
    queue, exchange = unique("q"), unique("x")
    assert "queue declared" in admin("declare", "queue", f"name={queue}", "durable=false")
    assert "exchange declared" in admin("declare", "exchange", f"name={exchange}", "type=topic")
    assert "binding declared" in admin("declare", "binding", f"source={exchange}", f"destination={queue}",
                                       "routing_key=a.*")
    try:
        assert {"name": queue, "durable": False} == {
            k: v for k, v in next(q for q in _listed(admin, "queues") if q["name"] == queue).items()
            if k in ("name", "durable")}
        assert any(e["name"] == exchange and e["type"] == "topic" for e in _listed(admin, "exchanges"))
        bindings = [(b["source"], b["destination"], b["routing_key"]) for b in _listed(admin, "bindings")]
        assert ("", queue, queue) in bindings and (exchange, queue, "a.*") in bindings
        table = admin("list", "queues")
        assert queue in table and "messages" in table

        admin("publish", f"exchange={exchange}", "routing_key=a.b", "payload=first")
        admin("publish", "exchange=amq.default", f"routing_key={queue}", "payload=second")
        eventually(lambda: _assert_messages(admin, queue, 2))
        got = json.loads(admin("-f", "raw_json", "get", f"queue={queue}", "count=2", "ackmode=ack_requeue_true"))
        assert [(m["payload"], m["exchange"], m["routing_key"]) for m in got] == [
            ("first", exchange, "a.b"), ("second", "", queue)]
        assert "queue purged" in admin("purge", "queue", f"name={queue}")
        assert amqp.channel().queue_declare(queue, passive=True).method.message_count == 0

        assert "binding deleted" in admin("delete", "binding", f"source={exchange}", "destination_type=queue",
                                          f"destination={queue}", "properties_key=a.*")
        assert (exchange, queue, "a.*") not in [
            (b["source"], b["destination"], b["routing_key"]) for b in _listed(admin, "bindings")]
    finally:
        admin("delete", "exchange", f"name={exchange}")
        admin("delete", "queue", f"name={queue}")
    assert not any(q["name"] == queue for q in _listed(admin, "queues"))
    assert not any(e["name"] == exchange for e in _listed(admin, "exchanges"))


def _assert_messages(admin: Callable[..., str], queue: str, count: int) -> None:
    assert next(q for q in _listed(admin, "queues") if q["name"] == queue)["messages"] == count


def test_show_overview_and_list_nodes_connections_and_channels(admin, amqp) -> None:
    overview = admin("show", "overview")
    assert "rabbitmq_version" in overview and "object_totals.queues" in overview
    assert len(_listed(admin, "nodes")) == 1
    amqp.channel()
    eventually(lambda: _assert_some(_listed(admin, "connections")))
    eventually(lambda: _assert_some(_listed(admin, "channels")))


def _assert_some(items: list) -> None:
    assert items


@pytest.mark.parametrize("kind", ["policy", "operator_policy"])
def test_declare_list_and_delete_a_policy(admin, unique, kind: str) -> None:
    name = unique(kind)
    declared = admin("declare", kind, f"name={name}", "pattern=^nothing-matches-this$",
                     'definition={"max-length": 4}', "apply-to=queues", "priority=3")
    assert f"{kind} declared" in declared
    try:
        listed = [p for p in _listed(admin, kind.replace("policy", "policies")) if p["name"] == name]
        assert [(p["pattern"], p["definition"], p["apply-to"], p["priority"]) for p in listed] == [
            ("^nothing-matches-this$", {"max-length": 4}, "queues", 3)]
    finally:
        assert f"{kind} deleted" in admin("delete", kind, f"name={name}")
    assert name not in [p["name"] for p in _listed(admin, kind.replace("policy", "policies"))]
