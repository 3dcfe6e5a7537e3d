"""`/api/nodes`, the health checks and the aliveness test."""

from __future__ import annotations

import pytest

from .client import ApiClient, segment

NODE_KEYS = {
    "name", "type", "running", "uptime", "mem_used", "mem_limit", "mem_alarm", "disk_free", "disk_free_limit",
    "disk_free_alarm", "fd_used", "fd_total",
}


def test_nodes_list_this_node(api: ApiClient) -> None:
    nodes = api.get("/api/nodes").json
    assert len(nodes) == 1
    node = nodes[0]
    assert NODE_KEYS <= node.keys()
    assert node["running"] is True
    assert (node["mem_alarm"], node["disk_free_alarm"]) == (False, False)
    assert all(isinstance(node[key], int) and node[key] > 0 for key in ("mem_used", "mem_limit", "fd_used", "fd_total"))
    assert node["name"] == api.get("/api/overview").json["node"]
    one = api.get(f"/api/nodes/{segment(node['name'])}")
    assert one.status == 200 and one.json["name"] == node["name"]


def test_a_missing_node_is_404(api: ApiClient, embedded) -> None:
    # RabbitMQ 3.10 answers 500, from a crash looking the node up.
    assert api.get("/api/nodes/nosuch@nowhere").status == 404


def test_nodes_need_the_monitoring_tag(make_user) -> None:
    reply = make_user(["management"]).get("/api/nodes")
    assert reply.status == 401
    assert reply.json == {"error": "not_authorised", "reason": "Not monitor user"}
    assert make_user(["monitoring"]).get("/api/nodes").status == 200


@pytest.mark.parametrize("path", [
    "/api/healthchecks/node", "/api/health/checks/alarms", "/api/health/checks/local-alarms",
    "/api/health/checks/virtual-hosts", "/api/aliveness-test/%2F",
])
def test_health_checks_are_ok(api: ApiClient, path: str) -> None:
    reply = api.get(path)
    assert (reply.status, reply.json) == (200, {"status": "ok"})


@pytest.mark.parametrize("path", [
    "/api/health/checks/node-is-quorum-critical", "/api/health/checks/node-is-mirror-sync-critical",
])
def test_a_single_node_is_never_critical_to_a_replicated_queue(api: ApiClient, path: str) -> None:
    reply = api.get(path)
    assert (reply.status, reply.json) == (200, {"status": "ok", "reason": "single node cluster"})


def test_the_node_health_check_of_the_node_the_contexts_name(api: ApiClient) -> None:
    # As AMQPStorm's health check finds its node: the management listener's context names it.
    # (RabbitMQ lists its Prometheus listener among the contexts too, when that plugin is enabled.)
    overview = api.get("/api/overview").json
    [context] = [context for context in overview["contexts"] if int(context["port"]) == api.port]
    assert context["node"] == overview["node"] and context["path"] == "/"
    [listed] = [listed for listed in api.get("/api/nodes").json[0]["contexts"] if int(listed["port"]) == api.port]
    assert listed.items() <= context.items() and listed["path"] == "/"
    reply = api.get(f"/api/healthchecks/node/{segment(context['node'])}")
    assert (reply.status, reply.json) == (200, {"status": "ok"})
    reply = api.get("/api/healthchecks/node/nosuch@nowhere")
    assert (reply.status, reply.json) == (404, {"error": "Object Not Found", "reason": "Not Found"})


def test_listener_checks(api: ApiClient) -> None:
    amqp_port = next(listener["port"] for listener in api.get("/api/overview").json["listeners"]
                     if listener["protocol"] == "amqp")
    assert api.get(f"/api/health/checks/port-listener/{amqp_port}").json == {"status": "ok", "port": amqp_port}
    assert api.get("/api/health/checks/port-listener/1").status == 503
    assert api.get("/api/health/checks/protocol-listener/amqp").json == {"status": "ok", "protocol": "amqp"}
    assert api.get("/api/health/checks/protocol-listener/nosuch").status == 503


def test_aliveness_test_of_a_missing_vhost_is_404(api: ApiClient, unique) -> None:
    assert api.get(f"/api/aliveness-test/{unique('vhost')}").status == 404


def test_feature_flags_are_rabbitmqs_and_enabled(api: ApiClient) -> None:
    flags = {flag["name"]: flag for flag in api.get("/api/feature-flags").json}
    # RabbitMQ 3.10's, which a client or a tool may look for before using what they stand for.
    assert {"quorum_queue", "stream_queue", "user_limits", "virtual_host_metadata",
            "implicit_default_bindings"} <= flags.keys()
    for flag in flags.values():
        assert set(flag) == {"name", "desc", "doc_url", "state", "stability", "provided_by"}
        assert (flag["state"], flag["stability"]) == ("enabled", "stable")


def test_enabling_a_feature_flag_is_204_and_an_unknown_one_400(api: ApiClient) -> None:
    assert api.put("/api/feature-flags/quorum_queue/enable", {}).status == 204
    reply = api.put("/api/feature-flags/no_such_flag/enable", {})
    assert (reply.status, reply.json) == (400, {"error": "bad_request", "reason": "unsupported"})
    assert api.get("/api/feature-flags/quorum_queue").status == 404


def test_feature_flags_are_for_administrators(make_user) -> None:
    reply = make_user(["monitoring"]).get("/api/feature-flags")
    assert reply.status == 401
    assert reply.json == {"error": "not_authorised", "reason": "Not administrator user"}
