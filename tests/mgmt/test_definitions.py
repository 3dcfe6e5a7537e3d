"""`/api/definitions[/vhost]`: export (GET) and import (POST, 204) in RabbitMQ's format."""

from __future__ import annotations

import json

import pytest

from .client import ApiClient, segment
from .test_policies import wait_for_depth

VHOST_SECTIONS = ["rabbit_version", "parameters", "policies", "queues", "exchanges", "bindings"]


def mine(items: list[dict], names: set[str]) -> list[dict]:
    return sorted((item for item in items if item.get("name", item.get("source")) in names), key=json.dumps)


@pytest.fixture
def topology(api: ApiClient, unique, cleanup):
    """A document in RabbitMQ's format with one of everything, under unique names in `/`."""
    queue, dead, exchange = cleanup.queue(unique("q")), cleanup.queue(unique("dead")), cleanup.exchange(unique("x"))
    policy = unique("policy")
    document = {
        "policies": [
            {"vhost": "/", "name": policy, "pattern": f"^{queue}$", "apply-to": "queues",
             "definition": {"max-length": 7}, "priority": 3}
        ],
        "queues": [
            {"name": queue, "vhost": "/", "durable": True, "auto_delete": False,
             "arguments": {"x-message-ttl": 60000, "x-dead-letter-exchange": exchange}},
            {"name": dead, "vhost": "/", "durable": False, "auto_delete": False, "arguments": {}},
        ],
        "exchanges": [
            {"name": exchange, "vhost": "/", "type": "topic", "durable": True, "auto_delete": False,
             "internal": False, "arguments": {}}
        ],
        "bindings": [
            {"source": exchange, "vhost": "/", "destination": dead, "destination_type": "queue",
             "routing_key": "a.#", "arguments": {}},
            {"source": "amq.direct", "vhost": "/", "destination": queue, "destination_type": "queue",
             "routing_key": queue, "arguments": {}},
        ],
    }
    yield document
    api.delete(f"/api/policies/%2F/{segment(policy)}")


def test_an_import_exports_back_the_same(api: ApiClient, topology) -> None:
    assert api.post("/api/definitions", topology).status == 204
    exported = api.get("/api/definitions")
    assert exported.status == 200
    names = {item.get("name", item.get("source")) for section in topology.values() for item in section}
    for section, items in topology.items():
        assert mine(exported.json[section], names) == sorted(items, key=json.dumps), section


def test_the_export_has_rabbitmqs_sections(api: ApiClient) -> None:
    exported = api.get("/api/definitions").json
    sections = {"users", "vhosts", "permissions", "topic_permissions", "global_parameters", *VHOST_SECTIONS}
    assert sections <= set(exported)
    assert not [x for x in exported["exchanges"] if x["name"] == "" or x["name"].startswith("amq.")]
    assert all(x["source"] != "" for x in exported["bindings"])


def test_an_import_makes_its_vhosts_users_and_permissions_first(api: ApiClient, unique) -> None:
    vhost, user = unique("vhost"), unique("user")
    document = {
        "users": [{"name": user, "password_hash": "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR",
                   "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["management"], "limits": {}}],
        "vhosts": [{"name": vhost}],
        "permissions": [{"user": user, "vhost": vhost, "configure": "", "write": ".*", "read": ".*"}],
        "queues": [{"name": "q", "vhost": vhost, "durable": True, "auto_delete": False, "arguments": {}}],
    }
    try:
        assert api.post("/api/definitions", document).status == 204
        exported = api.get("/api/definitions").json
        assert {"name": vhost} in exported["vhosts"]
        assert document["permissions"][0] in exported["permissions"]
        assert document["queues"][0] in exported["queues"]
        # As RabbitMQ, the user who imports a new vhost gets every permission in it.
        assert api.get(f"/api/permissions/{vhost}/guest").status == 200
    finally:
        api.delete(f"/api/vhosts/{vhost}")
        api.delete(f"/api/users/{user}")


def test_one_vhosts_export_and_import(api: ApiClient, topology) -> None:
    for section in ("queues", "exchanges", "bindings"):
        for item in topology[section]:
            del item["vhost"]
    assert api.post("/api/definitions/%2F", topology).status == 204
    exported = api.get("/api/definitions/%2F")
    assert exported.status == 200
    assert list(exported.json) == VHOST_SECTIONS
    [queue] = [item for item in exported.json["queues"] if item["name"] == topology["queues"][0]["name"]]
    assert queue == topology["queues"][0]


def test_exclusive_queues_are_not_exported(api: ApiClient, amqp) -> None:
    name = amqp.channel().queue_declare("", exclusive=True).method.queue
    assert name not in [queue["name"] for queue in api.get("/api/definitions").json["queues"]]


def test_an_imported_policy_applies(api: ApiClient, amqp, topology) -> None:
    assert api.post("/api/definitions", topology).status == 204
    channel = amqp.channel()
    queue = topology["queues"][0]["name"]
    for _ in range(9):
        channel.basic_publish("amq.direct", queue, b"m")
    wait_for_depth(channel, queue, 7)


@pytest.mark.parametrize(
    "document, reason",
    [
        ({"queues": [{"name": "mgmt-defs-bad", "durable": True, "auto_delete": False,
                      "arguments": {"x-max-priority": "abc"}}]},
         "precondition_failed: invalid arg 'x-max-priority' for queue 'mgmt-defs-bad' in vhost '/': "
         '"expected integer, got longstr"'),
        # A type name no test sends RabbitMQ otherwise: once its VM holds an atom of that name (a JSON
        # key it was sent makes one), RabbitMQ says "invalid exchange type" instead.
        ({"exchanges": [{"name": "mgmt-defs-bad", "type": "no-such-type", "durable": True,
                         "auto_delete": False, "internal": False, "arguments": {}}]},
         "command_invalid: unknown exchange type 'no-such-type'"),
    ],
)
def test_a_bad_document_is_400_with_rabbitmqs_reason(api: ApiClient, document, reason) -> None:
    # Into one vhost: RabbitMQ words the reason as text there (for the whole broker it sends an
    # Erlang term as a list of character codes).
    reply = api.post("/api/definitions/%2F", document)
    assert (reply.status, reply.json) == (400, {"error": "bad_request", "reason": reason})
    assert api.post("/api/definitions", document).status == 400


def test_a_missing_vhost(api: ApiClient, unique) -> None:
    missing = unique("vhost")
    reply = api.get(f"/api/definitions/{missing}")
    assert (reply.status, reply.json) == (400, {"error": "bad_request", "reason": "vhost_not_found"})
    reply = api.post(f"/api/definitions/{missing}", {})
    assert (reply.status, reply.json) == (404, {"error": "not_found", "reason": "vhost_not_found"})


def test_definitions_are_for_administrators(make_user) -> None:
    policymaker = make_user(["policymaker"])
    for path in ("/api/definitions", "/api/definitions/%2F"):
        reply = policymaker.get(path)
        assert (reply.status, reply.json) == (401, {"error": "not_authorised", "reason": "Not administrator user"})
