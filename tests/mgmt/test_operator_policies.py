"""`/api/operator-policies`: set, listed, cleared, validated with RabbitMQ's reasons, by administrators
only; what an operator policy does to queues beside their arguments and policies, observed with pika;
and operator policies as the runtime parameters RabbitMQ keeps them as."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .client import ApiClient, eventually, segment
from .test_policies import POLICY_KEYS, Policies, depth, only, policies, wait_for_depth  # noqa: F401 (the fixture)

PATH = "/api/operator-policies"


@pytest.fixture
def operator_policies(api: ApiClient) -> Iterator[Policies]:
    made = Policies(api, PATH)
    yield made
    made.clear()


def test_put_get_list_delete(api: ApiClient, operator_policies, unique) -> None:
    name = unique("cap")
    body = {"pattern": "^nothing-matches-this$", "definition": {"max-length": 5}, "priority": 7, "apply-to": "queues"}
    assert operator_policies.put(name, body) == 201
    assert operator_policies.put(name, {**body, "priority": 8}) == 204
    reply = api.get(f"{PATH}/%2F/{name}")
    assert reply.status == 200
    assert reply.json == {"vhost": "/", "name": name, **body, "priority": 8}
    assert name in [policy["name"] for policy in api.get(PATH).json]
    listed = api.get(f"{PATH}/%2F").json
    assert all(set(policy) == POLICY_KEYS for policy in listed)
    assert name not in [policy["name"] for policy in api.get("/api/policies").json]
    assert api.delete(f"{PATH}/%2F/{name}").status == 204
    assert api.get(f"{PATH}/%2F/{name}").status == 404
    assert api.delete(f"{PATH}/%2F/{name}").status == 404


def test_defaults(api: ApiClient, operator_policies, unique) -> None:
    name = unique("cap")
    assert operator_policies.put(name, {"pattern": "^nothing-matches-this$", "definition": {"expires": 1}}) == 201
    policy = api.get(f"{PATH}/%2F/{name}").json
    assert (policy["apply-to"], policy["priority"]) == ("all", 0)


@pytest.mark.parametrize(
    "body, reason",
    [
        # Unlike a policy's, these reasons are not escaped as HTML.
        ({"pattern": "x", "definition": {"alternate-exchange": "x"}},
         'Validation failed\n\n[{<<"alternate-exchange">>,<<"x">>}] are not recognised policy settings\n'),
        ({"pattern": "x", "definition": {"overflow": "reject-publish"}},
         'Validation failed\n\n[{<<"overflow">>,<<"reject-publish">>}] are not recognised policy settings\n'),
        ({"pattern": "x", "definition": {"ha-params": 2}},
         'Validation failed\n\n[{<<"ha-params">>,2}] are not recognised policy settings\n'),
        ({"pattern": "x", "definition": {"max-length": "x"}},
         'Validation failed\n\n<<"x">> is not a valid maximum length\n'),
        ({"pattern": "x", "definition": {"delivery-limit": -1, "expires": 0}},
         "Validation failed\n\n-1 is not a valid delivery limit\n"),
        ({"pattern": "x", "definition": {}}, "Validation failed\n\nno policy provided\n"),
        ({"definition": {"max-length": 1}}, "[{key_missing,pattern}]"),
    ],
)
def test_an_invalid_operator_policy_is_400_with_rabbitmqs_reason(api: ApiClient, operator_policies, unique, body,
                                                                 reason) -> None:
    name = unique("cap")
    reply = api.put(f"{PATH}/%2F/{name}", body)
    assert (reply.status, reply.json) == (400, {"error": "bad_request", "reason": reason})
    assert api.get(f"{PATH}/%2F/{name}").status == 404


def test_every_limit_an_operator_policy_may_set_is_accepted(api: ApiClient, operator_policies, unique) -> None:
    definition = {
        "delivery-limit": 2, "expires": 1000, "max-in-memory-bytes": 7, "max-in-memory-length": 5, "max-length": 3,
        "max-length-bytes": 100, "message-ttl": 60000,
    }
    name = unique("cap")
    assert operator_policies.put(name, {"pattern": "^nothing-matches-this$", "definition": definition}) == 201
    assert api.get(f"{PATH}/%2F/{name}").json["definition"] == definition


def test_an_operator_policy_in_a_missing_vhost_is_404(api: ApiClient, unique) -> None:
    reply = api.put(f"{PATH}/{unique('vhost')}/p", {"pattern": "x", "definition": {"max-length": 1}})
    assert (reply.status, reply.json) == (404, {"error": "not_found", "reason": "vhost_not_found"})


def test_only_an_administrator_sees_one_or_changes_them(api: ApiClient, make_user, operator_policies, unique) -> None:
    name = unique("cap")
    body = {"pattern": "^nothing-matches-this$", "definition": {"max-length": 1}}
    refusal = (401, {"error": "not_authorised", "reason": "Not administrator user"})
    policymaker = make_user(["policymaker"])
    refused = policymaker.put(f"{PATH}/%2F/{segment(name)}", body)
    assert (refused.status, refused.json) == refusal
    assert operator_policies.put(name, body) == 201
    refused = policymaker.get(f"{PATH}/%2F/{segment(name)}")
    assert (refused.status, refused.json) == refusal
    assert policymaker.delete(f"{PATH}/%2F/{segment(name)}").status == 401
    # A listing shows the operator policies of the vhosts the user may use.
    assert name in [policy["name"] for policy in make_user(["management"]).get(PATH).json]


def test_an_operator_policy_caps_a_queues_own_limit_until_cleared(api, amqp, operator_policies, unique,
                                                                  cleanup) -> None:
    channel = amqp.channel()
    channel.confirm_delivery()
    queue = cleanup.queue(unique("capped"))
    name = unique("cap")
    assert operator_policies.put(name, {"pattern": only(queue), "apply-to": "queues", "definition": {"max-length": 3}}) == 201
    channel.queue_declare(queue, arguments={"x-max-length": 10})
    for n in range(5):
        channel.basic_publish("", queue, str(n).encode())
    assert depth(channel, queue) == 3
    assert channel.basic_get(queue, auto_ack=True)[2] == b"2"
    assert api.delete(f"{PATH}/%2F/{segment(name)}").status == 204
    for n in range(8):
        channel.basic_publish("", queue, b"more")
    wait_for_depth(channel, queue, 10)


def test_a_policys_smaller_limit_wins_over_the_operator_policys(amqp, policies, operator_policies, unique,
                                                                cleanup) -> None:
    channel = amqp.channel()
    channel.confirm_delivery()
    queue = cleanup.queue(unique("twice-capped"))
    assert operator_policies.put(unique("cap"), {"pattern": only(queue), "definition": {"max-length": 3}}) == 201
    assert policies.put(unique("policy"), {"pattern": only(queue), "definition": {"max-length": 2}}) == 201
    channel.queue_declare(queue)
    for n in range(5):
        channel.basic_publish("", queue, str(n).encode())
    assert depth(channel, queue) == 2


def test_the_highest_priority_operator_policy_applies(amqp, operator_policies, unique, cleanup) -> None:
    channel = amqp.channel()
    channel.confirm_delivery()
    queue = cleanup.queue(unique("prioritised"))
    assert operator_policies.put(unique("low"), {"pattern": only(queue), "definition": {"max-length": 1}}) == 201
    body = {"pattern": only(queue), "definition": {"max-length": 3}, "priority": 1}
    assert operator_policies.put(unique("high"), body) == 201
    channel.queue_declare(queue)
    for n in range(5):
        channel.basic_publish("", queue, str(n).encode())
    assert depth(channel, queue) == 3


def test_an_operator_ttl_caps_the_queues_own(amqp, operator_policies, unique, cleanup) -> None:
    channel = amqp.channel()
    channel.confirm_delivery()
    queue = cleanup.queue(unique("short-lived"))
    assert operator_policies.put(unique("cap"), {"pattern": only(queue), "definition": {"message-ttl": 0}}) == 201
    channel.queue_declare(queue, arguments={"x-message-ttl": 60_000})
    channel.basic_publish("", queue, b"expires at once")
    wait_for_depth(channel, queue, 0)


def test_a_queue_shows_both_policies_and_what_they_ask_together(api: ApiClient, amqp, policies, operator_policies,
                                                                 unique, cleanup) -> None:
    queue = cleanup.queue(unique("shown"))
    amqp.channel().queue_declare(queue)
    policy, cap = unique("policy"), unique("cap")
    body = {"pattern": only(queue), "definition": {"max-length": 2, "expires": 100000, "dead-letter-exchange": "dlx"}}
    assert policies.put(policy, body) == 201
    body = {"pattern": only(queue), "definition": {"max-length": 3, "message-ttl": 60000}}
    assert operator_policies.put(cap, body) == 201
    effective = {"dead-letter-exchange": "dlx", "expires": 100000, "max-length": 2, "message-ttl": 60000}

    def check() -> None:
        # RabbitMQ shows a queue's policies from statistics it gathers every few seconds.
        found = api.get(f"/api/queues/%2F/{segment(queue)}").json
        assert (found["policy"], found["operator_policy"], found["effective_policy_definition"]) == (
            policy, cap, effective
        )

    eventually(check)


def test_an_operator_policy_is_a_runtime_parameter(api: ApiClient, operator_policies, unique) -> None:
    name = unique("cap")
    value = {"pattern": "^nothing-matches-this$", "definition": {"max-length": 4}, "priority": 0, "apply-to": "queues"}
    assert operator_policies.put(name, {"pattern": value["pattern"], "definition": value["definition"],
                                        "apply-to": "queues"}) == 201
    parameter = {"value": value, "vhost": "/", "component": "operator_policy", "name": name}
    assert parameter in api.get("/api/parameters").json
    assert api.get(f"/api/parameters/operator_policy/%2F/{segment(name)}").json == parameter
    assert parameter in api.get("/api/definitions").json["parameters"]
    assert name not in [policy["name"] for policy in api.get("/api/definitions").json["policies"]]

    other = unique("cap")
    operator_policies.names.append(other)
    reply = api.put(f"/api/parameters/operator_policy/%2F/{segment(other)}", {"value": {**value, "priority": 2}})
    assert reply.status == 201
    assert api.get(f"{PATH}/%2F/{segment(other)}").json == {"vhost": "/", "name": other, **value, "priority": 2}
    reply = api.put(f"/api/parameters/operator_policy/%2F/{segment(other)}", {"value": {"pattern": "x"}})
    assert (reply.status, reply.json["reason"]) == (
        400, f'Validation failed\n\nKey "definition" not found in {other}\nKey "priority" not found in {other}\n'
    )
    assert api.delete(f"/api/parameters/operator_policy/%2F/{segment(other)}").status == 204
    assert api.get(f"{PATH}/%2F/{segment(other)}").status == 404


def test_an_operator_policy_setting_a_key_the_queue_type_leaves_out_is_passed_over(
        api: ApiClient, amqp, operator_policies, unique, cleanup) -> None:
    # delivery-limit is a quorum queue's: the classic queue takes the next operator policy instead.
    channel = amqp.channel()
    channel.confirm_delivery()
    queue = cleanup.queue(unique("classic"))
    quorum_only, fallback = unique("quorum-only"), unique("fallback")
    body = {"pattern": only(queue), "definition": {"max-length": 1, "delivery-limit": 2}, "priority": 5}
    assert operator_policies.put(quorum_only, body) == 201
    assert operator_policies.put(fallback, {"pattern": only(queue), "definition": {"max-length": 2}}) == 201
    channel.queue_declare(queue)
    for n in range(5):
        channel.basic_publish("", queue, str(n).encode())
    assert depth(channel, queue) == 2

    def check() -> None:
        assert api.get(f"/api/queues/%2F/{segment(queue)}").json["operator_policy"] == fallback

    eventually(check)


@pytest.mark.parametrize(
    "value, reason",
    [
        ("x", "Validation failed\n\n{name} not a list &lt;&lt;\"x\"&gt;&gt;\n"),
        ({"pattern": "x", "definition": {"max-length": 1}, "priority": 0, "zeta": 1},
         "Validation failed\n\nUnrecognised terms [{&lt;&lt;\"zeta\"&gt;&gt;,1}] in {name}\n"),
        ({"priority": "p"},
         'Validation failed\n\nKey "definition" not found in {name}\nKey "pattern" not found in {name}\n'
         "priority should be a number, actually was &lt;&lt;\"p\"&gt;&gt;\n"),
    ],
)
def test_an_invalid_operator_policy_parameter_is_400_with_rabbitmqs_reasons(api: ApiClient, unique, value,
                                                                            reason) -> None:
    name = unique("cap")
    reply = api.put(f"/api/parameters/operator_policy/%2F/{segment(name)}", {"value": value})
    assert (reply.status, reply.json) == (400, {"error": "bad_request", "reason": reason.replace("{name}", name)})
    assert api.get(f"{PATH}/%2F/{segment(name)}").status == 404
