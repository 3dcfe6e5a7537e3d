"""The request handling itself, with routes of its own: a handler's bug is a 500 for that request
only, HEAD is GET without a body, a durable change is answered once it is committed, and a long
listing lets the broker's other tasks run while it is built and encoded."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from amqpbroker import core
from amqpbroker.mgmt import ROUTES, Api, Node, Routes
from amqpbroker.mgmt.api import encode
from amqpbroker.mgmt.http import HTTPRequest
from amqpbroker.testing import Broker

from .client import ApiClient

_GUEST = {"authorization": "Basic Z3Vlc3Q6Z3Vlc3Q="}
T = TypeVar("T")

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


async def turns_of_another_task(work: Callable[[], Awaitable[T]]) -> tuple[T, int]:
    """What `work()` returns, and how many times another task ran while it was awaited."""
    turns = 0

    async def other_task() -> None:
        nonlocal turns
        while True:
            await trio.lowlevel.checkpoint()
            turns += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other_task)
        await trio.lowlevel.checkpoint()
        before = turns
        result = await work()
        during = turns - before
        nursery.cancel_scope.cancel()
    return result, during


def broker_with_queues(count: int) -> tuple[core.Broker, list[str]]:
    broker = core.Broker()
    names = [f"q{n:04}" for n in range(count)]
    for name in names:
        broker.vhosts["/"].declare_queue(name, None)
    return broker, names


async def test_a_long_listing_lets_other_tasks_run_while_it_is_answered() -> None:
    broker, names = broker_with_queues(3000)
    api = Api(broker, ROUTES, Node("test@here", []))
    response, turns = await turns_of_another_task(lambda: api.handle(_request("GET", "/api/queues", _GUEST)))
    listed = json.loads(response.body)
    assert [queue["name"] for queue in listed] == names
    assert response.body == json.dumps(listed, separators=(",", ":")).encode()
    # Answered in one go, the other task would not have run at all; 3,000 queues take several turns.
    assert turns >= 2


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@given(_JSON_VALUES)
def test_an_answer_encoded_in_turns_is_what_json_dumps_writes(value) -> None:
    assert trio.run(encode, value) == json.dumps(value, separators=(",", ":"))
