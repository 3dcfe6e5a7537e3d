"""`/api/parameters/{component}/{vhost}/{name}`: runtime parameters set, read, listed and cleared,
with RabbitMQ's validation of the components we act on (federation upstreams, shovels); and the
global ones, `/api/global-parameters/{name}`, among them the cluster's name."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pika
import pytest

from .client import ApiClient, segment

UPSTREAM = {"uri": "amqp://127.0.0.1:1", "max-hops": 2}


@pytest.fixture
def upstream(api: ApiClient, unique: Callable[[str], str]) -> Iterator[str]:
    name = unique("upstream")
    yield name
    api.delete(f"/api/parameters/federation-upstream/%2F/{segment(name)}")


def test_set_read_list_clear(api: ApiClient, upstream: str) -> None:
    path = f"/api/parameters/federation-upstream/%2F/{segment(upstream)}"
    assert api.put(path, {"value": UPSTREAM}).status == 201
    expected = {"value": UPSTREAM, "vhost": "/", "component": "federation-upstream", "name": upstream}
    assert api.get(path).json == expected
    assert expected in api.get("/api/parameters/federation-upstream/%2F").json
    assert expected in api.get("/api/parameters/federation-upstream").json
    assert expected in api.get("/api/parameters").json
    assert api.put(path, {"value": {**UPSTREAM, "max-hops": 3}}).status == 204
    assert api.get(path).json["value"]["max-hops"] == 3
    assert api.delete(path).status == 204
    assert api.delete(path).status == 404
    assert api.get(path).status == 404


@pytest.mark.parametrize(("component", "value", "reason"), [
    ("nosuchcomponent", {"a": 1}, "Validation failed\n\ncomponent nosuchcomponent not found\n"),
    ("federation-upstream", {"exchange": "x"}, 'Validation failed\n\nKey "uri" not found in {name}\n'),
    ("federation-upstream", {"uri": "amqp://127.0.0.1:1", "ack-mode": "x"},
     'Validation failed\n\nack-mode should be one of [&lt;&lt;"no-ack"&gt;&gt;,&lt;&lt;"on-publish"&gt;&gt;,'
     '&lt;&lt;"on-confirm"&gt;&gt;], actually was &lt;&lt;"x"&gt;&gt;\n'),
    ("federation-upstream", {"uri": "amqp://127.0.0.1:1", "foo": 1},
     'Validation failed\n\nUnrecognised terms [{&lt;&lt;"foo"&gt;&gt;,1}] in {name}\n'),
    ("shovel", {"src-uri": "amqp://127.0.0.1:1", "src-queue": "q", "dest-uri": "amqp://127.0.0.1:1", "foo": 1},
     'Validation failed\n\nUnrecognised terms [{&lt;&lt;"foo"&gt;&gt;,1}] in {name}\n'),
    ("shovel", {"src-uri": "amqp://127.0.0.1:1", "src-queue": "q", "src-exchange": "x",
                "dest-uri": "amqp://127.0.0.1:1"},
     "Validation failed\n\nCannot specify 'src-exchange' and 'src-queue'\n"),
])
def test_invalid_values_are_refused_as_rabbitmq_does(
    api: ApiClient, upstream: str, component: str, value: dict, reason: str
) -> None:
    path = f"/api/parameters/{component}/%2F/{segment(upstream)}"
    reply = api.put(path, {"value": value})
    assert (reply.status, reply.json) == (400, {"error": "bad_request", "reason": reason.replace("{name}", upstream)})
    assert api.get(path).status == 404


def test_a_value_is_required(api: ApiClient, upstream: str) -> None:
    reply = api.put(f"/api/parameters/federation-upstream/%2F/{segment(upstream)}", {})
    assert (reply.status, reply.json) == (400, {"error": "bad_request", "reason": "[{key_missing,value}]"})


@pytest.fixture
def global_name(api: ApiClient, unique: Callable[[str], str]) -> Iterator[str]:
    name = unique("global")
    yield name
    api.delete(f"/api/global-parameters/{segment(name)}")


def test_a_global_parameter_is_set_read_listed_and_cleared(api: ApiClient, global_name: str) -> None:
    path = f"/api/global-parameters/{segment(global_name)}"
    assert api.put(path, {"value": {"a": 1}}).status == 201
    assert api.put(path, {"value": "text"}).status == 204
    assert api.get(path).json == {"name": global_name, "value": "text"}
    listed = api.get("/api/global-parameters").json
    assert {"name": global_name, "value": "text"} in listed
    assert [item["name"] for item in listed] == sorted(item["name"] for item in listed)
    reply = api.put(path, {"values": 1})
    assert (reply.status, reply.json) == (400, {"error": "bad_request", "reason": "[{key_missing,value}]"})
    assert api.delete(path).status == 204
    assert api.delete(path).status == 404
    assert api.get(path).status == 404


def test_global_parameters_take_a_policymaker(make_user) -> None:
    assert make_user(["policymaker"]).get("/api/global-parameters").status == 200
    reply = make_user(["management"]).get("/api/global-parameters")
    assert (reply.status, reply.json) == (401, {"error": "not_authorised", "reason": "User not authorised to access object"})


def test_the_cluster_name_set_by_an_administrator_is_shown_and_advertised(api: ApiClient, amqp_url: str,
                                                                         make_user) -> None:
    default = api.get("/api/cluster-name").json["name"]
    reply = make_user(["policymaker"]).put("/api/cluster-name", {"name": "by-a-policymaker"})
    assert (reply.status, reply.json) == (401, {"error": "not_authorised", "reason": "Not administrator user"})
    reply = api.put("/api/cluster-name", {"nam": "typo"})
    assert (reply.status, reply.json) == (400, {"error": "bad_request", "reason": "[{key_missing,name}]"})
    assert api.put("/api/cluster-name", {"name": "named-cluster"}).status == 204
    try:
        assert make_user(["management"]).get("/api/cluster-name").json == {"name": "named-cluster"}
        assert api.get("/api/overview").json["cluster_name"] == "named-cluster"
        assert {"name": "cluster_name", "value": "named-cluster"} in api.get("/api/global-parameters").json
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        try:
            assert connection._impl.server_properties["cluster_name"] == "named-cluster"
        finally:
            connection.close()
    finally:
        assert api.delete("/api/global-parameters/cluster_name").status == 204
    assert api.get("/api/cluster-name").json == {"name": default}
