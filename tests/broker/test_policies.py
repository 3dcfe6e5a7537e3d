"""Policies: validation as RabbitMQ 3.10 validates them, which policy applies to a name, how a policy
combines with a queue's own arguments, and the queue's limits changing at once when policies change.

Each rule here was first checked against RabbitMQ 3.10.8.
"""

from __future__ import annotations

from typing import Any

import pytest

from amqpbroker import core
from amqpbroker.core.arguments import QueueSettings, settings_from_arguments
from amqpbroker.core.policies import (
    OPERATOR_KEYS,
    OPERATOR_POLICY,
    Policies,
    PolicyError,
    check_policy_value,
    effective_definition,
    parse_policy,
)
from amqpbroker.protocol import spec
from amqpbroker.store import MemoryStore, open_store

from .conftest import Peer
from .test_streams import body as stream_body
from .test_streams import consume as consume_stream
from .test_streams import declare as declare_stream
from .test_streams import delivered
from .test_streams import publish as publish_stream
from .test_ttl import dropped, queue  # noqa: F401 (the fixture)


def policy(name: str = "p", pattern: str = "^q", definition: dict | None = None, vhost: str = "/", **body: Any):
    return parse_policy(vhost, name, {"pattern": pattern, "definition": definition or {"max-length": 1}, **body})


def operator_policy(name: str = "op", pattern: str = "^q", definition: dict | None = None, **body: Any):
    return parse_policy("/", name, {"pattern": pattern, "definition": definition or {"max-length": 1}, **body},
                        operator=True)


def bodies(broker: core.Broker, name: str) -> list[bytes]:
    return [entry.message.body for entry in queue(broker, name).peek()]


# Validation


def test_defaults_apply_to_all_with_priority_0() -> None:
    parsed = policy(definition={"message-ttl": 5})
    assert parsed.as_json() == {
        "vhost": "/", "name": "p", "pattern": "^q", "apply-to": "all", "definition": {"message-ttl": 5}, "priority": 0
    }


@pytest.mark.parametrize(
    "body, reason",
    [
        ({"definition": {"max-length": 1}}, "[{key_missing,pattern}]"),
        ({"pattern": "x"}, "[{key_missing,definition}]"),
        ({"pattern": "x", "definition": {"foo": 1}}, '[{<<"foo">>,1}] are not recognised policy settings'),
        ({"pattern": "x", "definition": {"zzz": 1, "aaa": "b"}},
         '[{<<"aaa">>,<<"b">>},{<<"zzz">>,1}] are not recognised policy settings'),
        ({"pattern": "x", "definition": {"max-priority": 5}}, '[{<<"max-priority">>,5}] are not recognised policy settings'),
        ({"pattern": "x", "definition": {"message-ttl": "x"}}, '<<"x">> is not a valid message TTL'),
        ({"pattern": "x", "definition": {"message-ttl": 1.5}}, "1.5 is not a valid message TTL"),
        ({"pattern": "x", "definition": {"message-ttl": True}}, "true is not a valid message TTL"),
        ({"pattern": "x", "definition": {"max-length": -1}}, "-1 is not a valid maximum length"),
        ({"pattern": "x", "definition": {"max-length": {"a": 1}}}, '#{<<"a">> => 1} is not a valid maximum length'),
        ({"pattern": "x", "definition": {"max-length-bytes": -2}}, "-2 is not a valid maximum length in bytes"),
        ({"pattern": "x", "definition": {"expires": 0}}, "0 is not a valid queue expiry"),
        # Known keys are checked in name order, before unknown ones are reported.
        ({"pattern": "x", "definition": {"max-length": -1, "expires": 0, "foo": 1}}, "0 is not a valid queue expiry"),
        ({"pattern": "x", "definition": {"overflow": "foo"}}, '<<"foo">> is not a valid overflow value'),
        ({"pattern": "x", "definition": {"delivery-limit": "a"}}, '<<"a">> is not a valid delivery limit'),
        ({"pattern": "x", "definition": {"dead-letter-exchange": 1}}, "1 is not a valid dead letter exchange name"),
        ({"pattern": "x", "definition": {"dead-letter-routing-key": 1}}, "1 is not a valid dead letter routing key"),
        ({"pattern": "x", "definition": {"alternate-exchange": 1}}, "1 is not a valid alternate exchange name"),
        ({"pattern": "x", "definition": {"queue-version": "2"}}, '<<"2">> is not a valid queue-version value'),
        ({"pattern": "x", "definition": {"ha-mode": "x"}}, '<<"x">> is not a valid ha-mode value'),
        ({"pattern": "x", "definition": {"ha-params": 1}},
         "ha-mode must be specified to specify ha-params, ha-sync-mode or ha-promote-on-shutdown"),
        ({"pattern": "x", "definition": {"ha-mode": "exactly"}}, 'ha-mode="exactly" takes an integer, none given'),
        ({"pattern": "x", "definition": {"ha-mode": "all", "ha-params": 1}}, 'ha-mode="all" does not take parameters'),
        ({"pattern": "x", "definition": {}}, "no policy provided"),
        ({"pattern": 1, "definition": {"max-length": 1}}, "pattern should be a binary but was 1"),
        ({"pattern": "x", "priority": "5", "definition": {"max-length": 1}},
         'priority should be a number, actually was <<"5">>'),
        ({"pattern": "x", "apply-to": "foo", "definition": {"max-length": 1}},
         "apply-to 'foo' unrecognised; should be 'queues', 'exchanges' or 'all'"),
    ],
)
def test_invalid_policies_are_refused_with_rabbitmqs_reason(body: dict, reason: str) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy("/", "p", body)
    expected = reason if reason.startswith("[{key_missing") else f"Validation failed\n\n{reason}\n"
    assert raised.value.reason == expected


def test_an_invalid_pattern_is_refused() -> None:
    with pytest.raises(PolicyError, match="pattern should be regular expression but is invalid"):
        policy(pattern="[")


def test_settings_rabbitmq_knows_but_we_do_not_act_on_are_accepted() -> None:
    definition = {"ha-mode": "all", "queue-mode": "lazy", "federation-upstream-set": "all", "max-age": "1D"}
    assert policy(definition=definition).definition == definition


# Which policy applies


def test_the_highest_priority_applies_and_ties_go_to_the_first_name() -> None:
    policies = Policies()
    policies.put(policy("b", "^q", priority=1))
    policies.put(policy("a", "q", priority=1))
    policies.put(policy("low", "", priority=0))
    assert policies.match("q1", "queues").name == "a"
    policies.put(policy("c", "1$", priority=2))
    assert policies.match("q1", "queues").name == "c"
    assert policies.match("other", "queues").name == "low"


def test_the_pattern_is_searched_case_sensitively_and_apply_to_filters() -> None:
    policies = Policies()
    policies.put(policy("x", "Q", **{"apply-to": "queues"}))
    assert policies.match("aQb", "queues").name == "x"
    assert policies.match("aqb", "queues") is None
    assert policies.match("aQb", "exchanges") is None
    assert policies.definition("aqb", "queues") == {}


# Policy and arguments


@pytest.mark.parametrize(
    "arguments, definition, expected",
    [
        ({"x-max-length": 10}, {"max-length": 5}, {"max_length": 5}),
        ({"x-max-length": 3}, {"max-length": 5}, {"max_length": 3}),
        ({"x-max-length-bytes": 3}, {"max-length-bytes": 5}, {"max_length_bytes": 3}),
        ({"x-message-ttl": 60000}, {"message-ttl": 500}, {"message_ttl": 500}),
        ({"x-expires": 60000}, {"expires": 800}, {"expires": 800}),
        ({}, {"message-ttl": 500, "expires": 800}, {"message_ttl": 500, "expires": 800}),
        ({"x-overflow": "drop-head"}, {"overflow": "reject-publish"}, {}),
        ({}, {"overflow": "reject-publish"}, {"overflow": "reject-publish"}),
        ({"x-dead-letter-exchange": "arg"}, {"dead-letter-exchange": "pol"}, {"dead_letter_exchange": "arg"}),
        (
            {"x-dead-letter-exchange": "arg"},
            {"dead-letter-exchange": "pol", "dead-letter-routing-key": "rk"},
            {"dead_letter_exchange": "arg", "dead_letter_routing_key": "rk"},
        ),
        ({"x-dead-letter-routing-key": "a"}, {"dead-letter-routing-key": "b"}, {"dead_letter_routing_key": "a"}),
        # A quorum queue takes its overflow from the policy, and its smaller delivery limit.
        ({"x-queue-type": "quorum", "x-overflow": "reject-publish"}, {"overflow": "drop-head"}, {}),
        (
            {"x-queue-type": "quorum", "x-overflow": "drop-head"},
            {"overflow": "reject-publish"},
            {"overflow": "reject-publish"},
        ),
        ({"x-queue-type": "quorum"}, {"overflow": "reject-publish-dlx"}, {}),
        ({"x-queue-type": "quorum", "x-delivery-limit": 3}, {"delivery-limit": 1}, {"delivery_limit": 1}),
        ({"x-queue-type": "quorum", "x-delivery-limit": 1}, {"delivery-limit": 3}, {"delivery_limit": 1}),
    ],
)
def test_how_a_policy_combines_with_arguments(arguments: dict, definition: dict, expected: dict) -> None:
    applied = policy(definition=definition)
    settings = settings_from_arguments(arguments, applied)
    queue_type = arguments.get("x-queue-type", "classic")
    assert settings == QueueSettings(queue_type=queue_type, policy=applied, **expected)


# Policies on a broker


def test_a_new_queue_gets_its_policy_and_redeclares_ignore_it(peer, broker) -> None:
    broker.set_policy(policy(definition={"max-length": 2}))
    peer.declare("q1", arguments={"x-max-length": 5})
    for body in (b"1", b"2", b"3"):
        peer.publish("", "q1", body)
    assert bodies(broker, "q1") == [b"2", b"3"]
    peer.declare("q1", arguments={"x-max-length": 5})
    assert peer.sink.closed_channels == []


def test_a_new_length_limit_drops_the_oldest_at_once(peer, broker, dropped) -> None:
    peer.declare("q1")
    for body in (b"1", b"2", b"3", b"4"):
        peer.publish("", "q1", body)
    broker.set_policy(policy(definition={"max-length": 1}))
    assert bodies(broker, "q1") == [b"4"]
    assert [reason for _, _, reason in dropped] == ["maxlen"] * 3
    broker.set_policy(policy(definition={"max-length-bytes": 3}))
    peer.publish("", "q1", b"55")
    assert bodies(broker, "q1") == [b"4", b"55"]
    peer.publish("", "q1", b"6")
    assert bodies(broker, "q1") == [b"55", b"6"]


def test_reject_publish_keeps_what_is_queued_over_a_new_limit(peer, broker) -> None:
    peer.declare("q1")
    for body in (b"1", b"2", b"3"):
        peer.publish("", "q1", body)
    broker.set_policy(policy(definition={"max-length": 1, "overflow": "reject-publish"}))
    peer.publish("", "q1", b"4")
    assert bodies(broker, "q1") == [b"1", b"2", b"3"]


def test_clearing_a_policy_lifts_its_limit(peer, broker) -> None:
    broker.set_policy(policy(definition={"max-length": 1}))
    peer.declare("q1")
    broker.commit()
    assert broker.clear_policy("/", "p") is True
    assert broker.clear_policy("/", "p") is False
    peer.publish("", "q1", b"1")
    peer.publish("", "q1", b"2")
    assert bodies(broker, "q1") == [b"1", b"2"]


def test_a_new_ttl_applies_to_messages_arriving_from_now(peer, broker, clock) -> None:
    peer.declare("q1")
    peer.publish("", "q1", b"old")
    broker.set_policy(policy(definition={"message-ttl": 1000}))
    peer.publish("", "q1", b"new")
    clock.advance(2)
    broker.expire()
    # As in RabbitMQ: the old message has no expiry and, at the head, holds the new one back.
    assert bodies(broker, "q1") == [b"old", b"new"]
    assert peer.get("q1") == b"old"
    assert peer.get("q1") is None


def test_a_message_keeps_its_ttl_when_the_policy_goes(peer, broker, clock) -> None:
    broker.set_policy(policy(definition={"message-ttl": 1000}))
    peer.declare("q1")
    peer.publish("", "q1", b"a")
    broker.clear_policy("/", "p")
    clock.advance(1)
    broker.expire()
    assert bodies(broker, "q1") == []


def test_a_policy_expires_an_unused_queue_counting_from_when_it_applies(peer, broker, clock) -> None:
    peer.declare("q1")
    clock.advance(10)
    broker.set_policy(policy(definition={"expires": 1000}))
    clock.advance(0.9)
    broker.expire()
    assert "q1" in broker.vhosts["/"].queues
    clock.advance(0.1)
    broker.expire()
    assert "q1" not in broker.vhosts["/"].queues


def test_a_policy_dead_letter_exchange_applies_to_existing_queues(peer, broker) -> None:
    peer.declare("q1")
    peer.declare("dead")
    peer.exchange("dlx", "fanout")
    peer.bind("dead", "dlx")
    broker.set_policy(policy(definition={"dead-letter-exchange": "dlx"}, **{"apply-to": "queues"}))
    peer.publish("", "q1", b"a")
    peer.handle(spec.BasicGet(queue="q1", no_ack=False))
    tag = peer.sink.methods(spec.BasicGetOk)[-1].delivery_tag
    peer.handle(spec.BasicReject(delivery_tag=tag, requeue=False))
    assert bodies(broker, "dead") == [b"a"]


def test_a_quorum_queue_takes_the_smaller_delivery_limit(peer, broker) -> None:
    peer.declare("q1", durable=True, arguments={"x-queue-type": "quorum", "x-delivery-limit": 3})
    broker.set_policy(policy(definition={"delivery-limit": 1}))
    assert queue(broker, "q1").settings.delivery_limit == 1


def test_alternate_exchange_from_a_policy_unless_the_argument_names_one(peer, broker) -> None:
    peer.declare("ae-q")
    peer.exchange("ae", "fanout")
    peer.bind("ae-q", "ae")
    peer.exchange("x1")
    peer.exchange("x2", arguments={"alternate-exchange": "elsewhere"})
    broker.set_policy(policy(pattern="^x", definition={"alternate-exchange": "ae"}, **{"apply-to": "exchanges"}))
    peer.publish("x1", "nowhere", b"1")
    peer.publish("x2", "nowhere", b"2")
    assert bodies(broker, "ae-q") == [b"1"]
    broker.clear_policy("/", "p")
    peer.publish("x1", "nowhere", b"3")
    assert bodies(broker, "ae-q") == [b"1"]


@pytest.mark.parametrize("lmdb", [False, True], ids=["memory", "lmdb"])
def test_policies_and_operator_policies_are_durable_and_apply_at_recovery(tmp_path, lmdb: bool) -> None:
    store = open_store(str(tmp_path) if lmdb else None)
    broker = core.Broker(store=store)
    broker.set_policy(policy(definition={"max-length": 1}, priority=3))
    broker.set_policy(policy("ae", "^x", {"alternate-exchange": "ae"}))
    broker.set_policy(policy("gone", "^q", {"max-length": 9}))
    broker.clear_policy("/", "gone")
    broker.set_policy(operator_policy(definition={"message-ttl": 5}), operator=True)
    broker.set_policy(operator_policy("gone", definition={"message-ttl": 1}, priority=5), operator=True)
    broker.clear_policy("/", "gone", operator=True)
    peer = Peer(broker)
    peer.declare("q1", durable=True)
    peer.exchange("x1", durable=True)
    broker.commit()
    if lmdb:
        store.close()
        store = open_store(str(tmp_path))
    recovered = core.Broker(store=store)
    vhost = recovered.vhosts["/"]
    assert [p.as_json() for p in vhost.policies] == [
        policy("ae", "^x", {"alternate-exchange": "ae"}).as_json(),
        policy(definition={"max-length": 1}, priority=3).as_json(),
    ]
    assert [p.as_json() for p in vhost.operator_policies] == [operator_policy(definition={"message-ttl": 5}).as_json()]
    assert (vhost.queues["q1"].settings.max_length, vhost.queues["q1"].settings.message_ttl) == (1, 5)
    assert vhost.exchanges["x1"].alternate_exchange == "ae"
    store.close()


class BodylessStore(MemoryStore):
    """A MemoryStore that fails the test if a body is read back."""

    def load_body(self, message_id: int) -> bytes:
        raise AssertionError(f"body {message_id} read")


@pytest.mark.parametrize("limited", ["by the policy", "by its argument"])
def test_a_byte_limit_counts_bodies_left_on_disk_at_recovery_without_reading_them(limited: str) -> None:
    store = BodylessStore()
    broker = core.Broker(store=store)
    peer = Peer(broker)
    arguments = {"x-max-length-bytes": 8} if limited == "by its argument" else {}
    peer.declare("q1", durable=True, arguments=arguments)
    for body in (b"aaaa", b"bbbb"):
        peer.publish("", "q1", body, delivery_mode=2)
    broker.commit()
    recovered = core.Broker(store=store)
    if limited == "by the policy":
        recovered.set_policy(policy(definition={"max-length-bytes": 8}))
    Peer(recovered).publish("", "q1", b"cccc", delivery_mode=2)
    assert recovered.vhosts["/"].queues["q1"].message_count == 2


def test_deleting_a_vhost_deletes_its_policies() -> None:
    store = MemoryStore()
    broker = core.Broker(store=store)
    broker.add_vhost("v")
    broker.set_policy(policy(vhost="v"))
    broker.commit()
    broker.delete_vhost("v")
    broker.commit()
    assert [record for record in store.recover().records if record.kind == "policy"] == []


def test_a_stream_takes_its_retention_in_bytes_from_a_policy(peer, broker) -> None:
    declare_stream(peer, **{"x-stream-max-segment-size-bytes": 300})
    broker.set_policy(policy(pattern="^s$", definition={"max-length-bytes": 700}))
    publish_stream(peer, *[stream_body(100)] * 20)
    consume_stream(peer, "first")
    # As with the argument (test_streams): segments of 3 messages, at most 7 messages' worth.
    assert [offset for _, offset in delivered(peer)] == [12, 13, 14, 15, 16, 17, 18, 19]


# Operator policies


@pytest.mark.parametrize(
    "definition, reason",
    [
        ({"alternate-exchange": "x"}, '[{<<"alternate-exchange">>,<<"x">>}] are not recognised policy settings'),
        ({"overflow": "reject-publish"}, '[{<<"overflow">>,<<"reject-publish">>}] are not recognised policy settings'),
        ({"ha-params": 2}, "[{<<\"ha-params\">>,2}] are not recognised policy settings"),
        ({"delivery-limit": -1, "expires": 0}, "-1 is not a valid delivery limit"),
        ({"max-length": "x"}, '<<"x">> is not a valid maximum length'),
    ],
)
def test_an_operator_policy_sets_limits_only(definition: dict, reason: str) -> None:
    with pytest.raises(PolicyError) as raised:
        operator_policy(definition=definition)
    assert raised.value.reason == f"Validation failed\n\n{reason}\n"


def test_every_limit_an_operator_policy_may_set_is_accepted() -> None:
    limits = {key: 1 for key in OPERATOR_KEYS}
    assert operator_policy(definition=limits).definition == limits


def test_the_smallest_of_argument_policy_and_operator_policy_wins() -> None:
    applied = policy(definition={"max-length": 4, "message-ttl": 100, "dead-letter-exchange": "dlx"})
    capped = operator_policy(definition={"max-length": 2, "message-ttl": 500, "expires": 1000})
    settings = settings_from_arguments({"x-max-length": 10, "x-message-ttl": 50}, applied, capped)
    assert (settings.max_length, settings.message_ttl, settings.expires) == (2, 50, 1000)
    assert settings.dead_letter_exchange == "dlx"
    assert effective_definition(applied, capped) == {
        "dead-letter-exchange": "dlx", "expires": 1000, "max-length": 2, "message-ttl": 100,
    }


def test_an_operator_policy_caps_new_and_existing_queues_until_cleared(peer, broker) -> None:
    peer.declare("q1", arguments={"x-max-length": 10})
    for body in (b"1", b"2", b"3"):
        peer.publish("", "q1", body)
    broker.set_policy(operator_policy(definition={"max-length": 2}), operator=True)
    assert bodies(broker, "q1") == [b"2", b"3"]
    peer.declare("q2", arguments={"x-max-length": 10})
    for body in (b"1", b"2", b"3"):
        peer.publish("", "q2", body)
    assert bodies(broker, "q2") == [b"2", b"3"]
    assert broker.clear_policy("/", "op", operator=True) is True
    assert broker.clear_policy("/", "op", operator=True) is False
    peer.publish("", "q2", b"4")
    assert bodies(broker, "q2") == [b"2", b"3", b"4"]


def test_one_operator_policy_applies_beside_one_policy(peer, broker) -> None:
    broker.set_policy(policy(definition={"max-length": 3}))
    broker.set_policy(operator_policy("low", definition={"max-length": 1}), operator=True)
    broker.set_policy(operator_policy("high", definition={"max-length": 2}, priority=1), operator=True)
    peer.declare("q1")
    settings = queue(broker, "q1").settings
    assert (settings.policy.name, settings.operator_policy.name, settings.max_length) == ("p", "high", 2)


def test_an_operator_policy_is_a_runtime_parameter(peer, broker) -> None:
    broker.set_policy(operator_policy(definition={"max-length": 2}, **{"apply-to": "queues"}), operator=True)
    assert broker.parameters.of(OPERATOR_POLICY) == {
        ("/", "op"): {"pattern": "^q", "definition": {"max-length": 2}, "priority": 0, "apply-to": "queues"}
    }
    broker.parameters.set("/", OPERATOR_POLICY, "op", {"pattern": "^q", "definition": {"max-length": 1}, "priority": 0})
    peer.declare("q1")
    assert queue(broker, "q1").settings.max_length == 1
    broker.parameters.delete("/", OPERATOR_POLICY, "op")
    assert queue(broker, "q1").settings.max_length is None


def test_deleting_a_vhost_deletes_its_operator_policies() -> None:
    store = MemoryStore()
    broker = core.Broker(store=store)
    broker.add_vhost("v")
    broker.set_policy(parse_policy("v", "op", {"pattern": "", "definition": {"max-length": 1}}, operator=True),
                      operator=True)
    broker.commit()
    broker.delete_vhost("v")
    broker.commit()
    assert broker.parameters.of(OPERATOR_POLICY) == {}
    assert [record for record in store.recover().records if record.kind == "parameter"] == []


def test_a_policy_setting_a_key_the_queue_type_leaves_out_does_not_apply_to_it(peer, broker) -> None:
    # As RabbitMQ 3.10 matches: the policy is passed over whole, and the next one that matches applies.
    broker.set_policy(policy("quorum-only", "^q", {"max-length": 1, "delivery-limit": 2}, priority=5))
    broker.set_policy(policy("fallback", "^q", {"max-length": 3}))
    broker.set_policy(operator_policy("quorum-cap", "^q", {"max-length": 2, "delivery-limit": 1}), operator=True)
    peer.declare("q-classic")
    peer.declare("q-quorum", durable=True, arguments={"x-queue-type": "quorum"})
    peer.declare("q-stream", durable=True, arguments={"x-queue-type": "stream"})
    classic, quorum, stream = (queue(broker, name).settings for name in ("q-classic", "q-quorum", "q-stream"))
    assert (classic.policy.name, classic.operator_policy, classic.max_length) == ("fallback", None, 3)
    assert (quorum.policy.name, quorum.operator_policy.name, quorum.max_length, quorum.delivery_limit) == (
        "quorum-only", "quorum-cap", 1, 1
    )
    # A stream takes neither max-length nor delivery-limit: no policy here applies to it.
    assert (stream.policy, stream.operator_policy) == (None, None)


def test_an_operator_policy_stored_unchecked_applies_nowhere_and_the_broker_starts(tmp_path) -> None:
    # A definitions import before operator policies were checked could store one RabbitMQ refuses.
    store = open_store(str(tmp_path))
    broker = core.Broker(store=store)
    Peer(broker).declare("q1", durable=True)
    unchecked = {"pattern": "^q", "definition": {"max-length": 1, "queue-mode": "lazy"}, "priority": 0}
    broker.parameters.set("/", OPERATOR_POLICY, "unchecked", unchecked)
    assert (len(broker.vhosts["/"].operator_policies), queue(broker, "q1").settings.max_length) == (0, None)
    broker.commit()
    store.close()
    store = open_store(str(tmp_path))
    recovered = core.Broker(store=store)
    assert len(recovered.vhosts["/"].operator_policies) == 0
    assert recovered.vhosts["/"].queues["q1"].settings.max_length is None
    assert recovered.parameters.of(OPERATOR_POLICY) == {("/", "unchecked"): unchecked}
    store.close()


def test_an_operator_policy_in_a_missing_vhost_is_refused(broker) -> None:
    with pytest.raises(KeyError):
        broker.set_policy(parse_policy("nowhere", "op", {"pattern": "", "definition": {"max-length": 1}},
                                       operator=True), operator=True)
    assert broker.parameters.of(OPERATOR_POLICY) == {}


@pytest.mark.parametrize(
    "value, reason",
    [
        ("x", 'op not a list <<"x">>'),
        ({"pattern": "", "definition": {"max-length": 1}, "priority": 0, "zeta": 1, "alpha": "a"},
         'Unrecognised terms [{<<"alpha">>,<<"a">>},{<<"zeta">>,1}] in op'),
        ({"priority": "p", "foo": 1},
         'Unrecognised terms [{<<"foo">>,1}] in op\nKey "definition" not found in op\nKey "pattern" not found in op\n'
         'priority should be a number, actually was <<"p">>'),
    ],
)
def test_an_operator_policy_as_a_parameter_is_checked_as_rabbitmq_checks_it(value, reason: str) -> None:
    with pytest.raises(PolicyError) as raised:
        check_policy_value("op", value, operator=True)
    assert raised.value.reason == f"Validation failed\n\n{reason}\n"


def test_every_fault_of_a_policy_is_named_in_rabbitmqs_order() -> None:
    body = {"pattern": "(", "priority": "x", "apply-to": "foo", "definition": {"foo": 1}}
    with pytest.raises(PolicyError) as raised:
        parse_policy("/", "p", body)
    assert raised.value.reason.split("\n")[2:-1] == [
        '[{<<"foo">>,1}] are not recognised policy settings',
        "apply-to 'foo' unrecognised; should be 'queues', 'exchanges' or 'all'",
        "pattern should be regular expression but is invalid: missing ), unterminated subpattern at position 0",
        'priority should be a number, actually was <<"x">>',
    ]
