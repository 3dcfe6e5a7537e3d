"""`/api/policies`: set, listed, cleared, validated with RabbitMQ's reasons; and what a policy does to
queues and exchanges, observed with pika (RabbitMQ applies a policy to its queues a moment after it
answers, so effects are awaited)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pika
import pytest

from .client import ApiClient, eventually, segment

POLICY_KEYS = {"vhost", "name", "pattern", "apply-to", "definition", "priority"}


class Policies:
    """Policies (or operator policies, under their `path`) in `/` set through the API, each cleared
    after the test."""

    def __init__(self, api: ApiClient, path: str = "/api/policies") -> None:
        self._api = api
        self._path = path
        self.names: list[str] = []

    def put(self, name: str, body: dict[str, Any]) -> int:
        self.names.append(name)
        return self._api.put(f"{self._path}/%2F/{segment(name)}", body).status

    def clear(self) -> None:
        for name in self.names:
            self._api.delete(f"{self._path}/%2F/{segment(name)}")


@pytest.fixture
def policies(api: ApiClient) -> Iterator[Policies]:
    made = Policies(api)
    yield made
    made.clear()


def only(name: str) -> str:
    return f"^{re.escape(name)}$"


def depth(channel: Any, queue: str) -> int:
    return channel.queue_declare(queue, passive=True).method.message_count


def wait_for_depth(channel: Any, queue: str, count: int) -> None:
    """Until `queue` holds `count` ready messages: RabbitMQ counts a publish a moment after it."""

    def check() -> None:
        assert depth(channel, queue) == count

    eventually(check)


def test_put_get_list_delete(api: ApiClient, policies, unique) -> None:
    name = unique("policy")
    body = {"pattern": "^nothing-matches-this$", "definition": {"max-length": 5}, "priority": 7, "apply-to": "queues"}
    assert policies.put(name, body) == 201
    assert policies.put(name, {**body, "priority": 8}) == 204
    reply = api.get(f"/api/policies/%2F/{name}")
    assert reply.status == 200
    assert reply.json == {"vhost": "/", "name": name, **body, "priority": 8}
    assert name in [policy["name"] for policy in api.get("/api/policies").json]
    listed = api.get("/api/policies/%2F").json
    assert all(set(policy) == POLICY_KEYS for policy in listed)
    assert [policy["priority"] for policy in listed] == sorted(policy["priority"] for policy in listed)
    assert api.delete(f"/api/policies/%2F/{name}").status == 204
    assert api.get(f"/api/policies/%2F/{name}").status == 404
    assert api.delete(f"/api/policies/%2F/{name}").status == 404


def test_defaults(api: ApiClient, policies, unique) -> None:
    name = unique("policy")
    assert policies.put(name, {"pattern": "^nothing-matches-this$", "definition": {"message-ttl": 1}}) == 201
    policy = api.get(f"/api/policies/%2F/{name}").json
    assert (policy["apply-to"], policy["priority"]) == ("all", 0)


@pytest.mark.parametrize(
    "body, reason",
    [
        ({"pattern": "x", "definition": {"foo": 1}},
         'Validation failed\n\n[{&lt;&lt;"foo"&gt;&gt;,1}] are not recognised policy settings\n'),
        ({"pattern": "x", "definition": {"max-priority": 5}},
         'Validation failed\n\n[{&lt;&lt;"max-priority"&gt;&gt;,5}] are not recognised policy settings\n'),
        ({"pattern": "x", "definition": {"message-ttl": "x"}},
         'Validation failed\n\n&lt;&lt;"x"&gt;&gt; is not a valid message TTL\n'),
        ({"pattern": "x", "definition": {"max-length": -1}}, "Validation failed\n\n-1 is not a valid maximum length\n"),
        ({"pattern": "x", "definition": {"expires": 0}}, "Validation failed\n\n0 is not a valid queue expiry\n"),
        ({"pattern": "x", "definition": {}}, "Validation failed\n\nno policy provided\n"),
        ({"pattern": "x", "apply-to": "foo", "definition": {"max-length": 1}},
         "Validation failed\n\napply-to 'foo' unrecognised; should be 'queues', 'exchanges' or 'all'\n"),
        ({"pattern": "x", "priority": "1", "definition": {"max-length": 1}},
         'Validation failed\n\npriority should be a number, actually was &lt;&lt;"1"&gt;&gt;\n'),
        ({"definition": {"max-length": 1}}, "[{key_missing,pattern}]"),
        ({}, "[{key_missing,pattern},{key_missing,definition}]"),
    ],
)
def test_an_invalid_policy_is_400_with_rabbitmqs_reason(api: ApiClient, policies, unique, body, reason) -> None:
    name = unique("policy")
    reply = api.put(f"/api/policies/%2F/{name}", body)
    assert (reply.status, reply.json) == (400, {"error": "bad_request", "reason": reason})
    assert api.get(f"/api/policies/%2F/{name}").status == 404


def test_a_policy_in_a_missing_vhost_is_404(api: ApiClient, unique) -> None:
    reply = api.put(f"/api/policies/{unique('vhost')}/p", {"pattern": "x", "definition": {"max-length": 1}})
    assert (reply.status, reply.json) == (404, {"error": "not_found", "reason": "vhost_not_found"})


def test_a_new_length_limit_trims_a_queue_and_clearing_it_lifts_it(api, amqp, policies, unique, cleanup) -> None:
    channel = amqp.channel()
    queue = cleanup.queue(unique("trimmed"))
    channel.queue_declare(queue)
    for n in range(5):
        channel.basic_publish("", queue, str(n).encode())
    name = unique("policy")
    assert policies.put(name, {"pattern": only(queue), "definition": {"max-length": 2}}) == 201
    wait_for_depth(channel, queue, 2)
    assert channel.basic_get(queue, auto_ack=True)[2] == b"3"
    assert api.delete(f"/api/policies/%2F/{name}").status == 204
    for n in range(5):
        channel.basic_publish("", queue, b"more")
    wait_for_depth(channel, queue, 6)


def test_the_smaller_length_wins_and_the_argument_overflow_wins(amqp, policies, unique, cleanup) -> None:
    channel = amqp.channel()
    channel.confirm_delivery()
    queue = cleanup.queue(unique("limited"))
    body = {"pattern": only(queue), "apply-to": "queues", "definition": {"max-length": 2, "overflow": "reject-publish"}}
    assert policies.put(unique("policy"), body) == 201
    channel.queue_declare(queue, arguments={"x-max-length": 10, "x-overflow": "drop-head"})
    for n in range(4):
        channel.basic_publish("", queue, str(n).encode())  # drop-head: never nacked
    assert depth(channel, queue) == 2
    assert channel.basic_get(queue, auto_ack=True)[2] == b"2"


def test_a_policy_overflow_applies_without_an_argument(amqp, policies, unique, cleanup) -> None:
    channel = amqp.channel()
    channel.confirm_delivery()
    queue = cleanup.queue(unique("rejecting"))
    body = {"pattern": only(queue), "definition": {"max-length": 1, "overflow": "reject-publish"}}
    assert policies.put(unique("policy"), body) == 201
    channel.queue_declare(queue)
    channel.basic_publish("", queue, b"kept")
    with pytest.raises(pika.exceptions.NackError):
        channel.basic_publish("", queue, b"refused")
    assert depth(channel, queue) == 1


def test_dead_letter_exchange_from_a_policy_unless_an_argument_names_one(amqp, policies, unique, cleanup) -> None:
    channel = amqp.channel()
    dlx = cleanup.exchange(unique("dlx"))
    channel.exchange_declare(dlx, "fanout")
    dead = cleanup.queue(unique("dead"))
    channel.queue_declare(dead)
    channel.queue_bind(dead, dlx)
    from_policy, from_argument = cleanup.queue(unique("dlp")), cleanup.queue(unique("dla"))
    body = {"pattern": f"{only(from_policy)}|{only(from_argument)}", "definition": {"dead-letter-exchange": dlx}}
    assert policies.put(unique("policy"), body) == 201
    channel.queue_declare(from_policy)
    channel.queue_declare(from_argument, arguments={"x-dead-letter-exchange": "elsewhere"})
    for queue in (from_policy, from_argument):
        channel.basic_publish("", queue, queue.encode())
        method, _, _ = channel.basic_get(queue)
        channel.basic_reject(method.delivery_tag, requeue=False)
    # The argument's exchange does not exist, so only the policy's dead letter arrives.
    wait_for_depth(channel, dead, 1)
    assert channel.basic_get(dead, auto_ack=True)[2] == from_policy.encode()


def test_a_policy_ttl_applies_to_messages_arriving_after_it(amqp, policies, unique, cleanup) -> None:
    channel = amqp.channel()
    queue = cleanup.queue(unique("ttl"))
    channel.queue_declare(queue)
    channel.basic_publish("", queue, b"before")
    body = {"pattern": only(queue), "definition": {"message-ttl": 0}}
    assert policies.put(unique("policy"), body) == 201
    time.sleep(0.2)  # let RabbitMQ's queue take the policy
    channel.basic_publish("", queue, b"after")
    # The message from before has no expiry and stays; one arriving with a TTL of 0 and no consumer
    # expires at once.
    wait_for_depth(channel, queue, 1)
    assert channel.basic_get(queue, auto_ack=True)[2] == b"before"


def test_alternate_exchange_from_a_policy(amqp, policies, unique, cleanup) -> None:
    channel = amqp.channel()
    exchange, alternate = cleanup.exchange(unique("x")), cleanup.exchange(unique("ae"))
    channel.exchange_declare(exchange, "direct")
    channel.exchange_declare(alternate, "fanout")
    caught = cleanup.queue(unique("caught"))
    channel.queue_declare(caught)
    channel.queue_bind(caught, alternate)
    body = {"pattern": only(exchange), "apply-to": "exchanges", "definition": {"alternate-exchange": alternate}}
    assert policies.put(unique("policy"), body) == 201
    channel.basic_publish(exchange, "unrouted", b"x")
    wait_for_depth(channel, caught, 1)


def test_a_management_user_reads_policies_and_a_policymaker_changes_them(make_user, policies, unique) -> None:
    name = unique("policy")
    body = {"pattern": "^nothing-matches-this$", "definition": {"max-length": 1}}
    manager = make_user(["management"])
    assert manager.get("/api/policies").status == 200
    refused = manager.put(f"/api/policies/%2F/{name}", body)
    assert (refused.status, refused.json) == (
        401, {"error": "not_authorised", "reason": "User not authorised to access object"}
    )
    policies.names.append(name)
    assert make_user(["policymaker"]).put(f"/api/policies/%2F/{name}", body).status == 201
    assert manager.delete(f"/api/policies/%2F/{name}").status == 401


def test_a_queue_shows_the_policy_that_applies_to_it(api: ApiClient, amqp, policies, unique, cleanup) -> None:
    shown, plain = cleanup.queue(unique("shown")), cleanup.queue(unique("plain"))
    channel = amqp.channel()
    channel.queue_declare(shown)
    channel.queue_declare(plain)
    name = unique("policy")
    assert policies.put(name, {"pattern": only(shown), "definition": {"max-length": 3}}) == 201

    def check() -> None:
        # RabbitMQ shows a queue's policy from statistics it gathers every few seconds.
        found = api.get(f"/api/queues/%2F/{shown}").json
        assert (found["policy"], found["effective_policy_definition"]) == (name, {"max-length": 3})
        found = api.get(f"/api/queues/%2F/{plain}").json
        assert (found["policy"], found["effective_policy_definition"]) == (None, {})

    eventually(check)
