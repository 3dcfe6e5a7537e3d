"""The request handling itself, with routes of its own: a handler's bug is a 500 for that request
only, HEAD is GET without a body, and a durable change is answered once it is committed."""

from __future__ import annotations

import json

import pytest

from amqpbroker import core
from amqpbroker.mgmt import Api, Node, Routes
from amqpbroker.mgmt.http import HTTPRequest
from amqpbroker.testing import Broker

from .client import ApiClient

_GUEST = {"authorization": "Basic Z3Vlc3Q6Z3Vlc3Q="}

routes = Routes()


def _request(method: str, target: str, headers: dict[str, str]) -> HTTPRequest:
    return HTTPRequest(method, target, headers, b"", "127.0.0.1")


@routes.get("/api/broken")
def broken(request, broker):
    raise RuntimeError("a bug")


@routes.get("/api/fine")
def fine(request, broker):
    return {"a": 1, "b": 2}


@routes.get("/api/users/without-permissions")
def literal(request, broker):
    return "literal"


@routes.get("/api/users/{name}")
def parameter(request, broker):
    return request.params["name"]


@pytest.fixture
def api() -> Api:
    return Api(core.Broker(), routes, Node("test@here", []))


async def test_a_handlers_bug_is_a_500_for_that_request_only(api: Api) -> None:
    failed = await api.handle(_request("GET", "/api/broken", _GUEST))
    assert failed.status == 500
    assert json.loads(failed.body)["error"] == "internal_server_error"
    assert (await api.handle(_request("GET", "/api/fine", _GUEST))).status == 200


async def test_head_is_get_without_a_body(api: Api) -> None:
    response = await api.handle(_request("HEAD", "/api/fine?columns=a", _GUEST))
    assert response.status == 200 and json.loads(response.body) == {"a": 1}


async def test_a_literal_segment_wins_over_a_parameter(api: Api) -> None:
    literal = await api.handle(_request("GET", "/api/users/without-permissions", _GUEST))
    named = await api.handle(_request("GET", "/api/users/someone%2Felse", _GUEST))
    assert (json.loads(literal.body), json.loads(named.body)) == ("literal", "someone/else")


async def test_malformed_credentials_are_400(api: Api) -> None:
    response = await api.handle(_request("GET", "/api/fine", {"authorization": "Basic !!!"}))
    assert response.status == 400


def test_durable_changes_survive_a_restart(tmp_path) -> None:
    with Broker(http_port=0, data_dir=str(tmp_path)) as broker:
        client = ApiClient(broker.http_url)
        assert client.put("/api/queues/%2F/kept", {"durable": True}).status == 201
        assert client.put("/api/exchanges/%2F/kept-x", {"type": "fanout", "durable": True}).status == 201
        assert client.post("/api/bindings/%2F/e/kept-x/q/kept", {"routing_key": "k"}).status == 201
        published = client.post("/api/exchanges/%2F/kept-x/publish", {
            "routing_key": "k", "payload": "persistent", "payload_encoding": "string",
            "properties": {"delivery_mode": 2}})
        assert published.json == {"routed": True}
        broker.restart()
        assert client.get("/api/queues/%2F/kept").json["messages"] == 1
        assert [b["source"] for b in client.get("/api/queues/%2F/kept/bindings").json] == ["", "kept-x"]
        got = client.post("/api/queues/%2F/kept/get", {"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto"})
        assert got.json[0]["payload"] == "persistent"
        broker.restart()
        assert client.get("/api/queues/%2F/kept").json["messages"] == 0
