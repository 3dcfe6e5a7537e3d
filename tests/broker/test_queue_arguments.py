"""Queue, consumer and exchange arguments: RabbitMQ 3.10.8's validation and the settings they give.

Every reply text here was measured against RabbitMQ 3.10.8 with pika; `decimal.Decimal` and `None`
stand for the decimal and void field types.
"""

from __future__ import annotations

import decimal
import re

import pytest

from amqpbroker import core
from amqpbroker.core.arguments import (
    ConsumerSettings,
    QueueSettings,
    alternate_exchange,
    consumer_settings,
    parse_expiration,
    queue_settings,
    same_argument,
    settings_from_arguments,
)
from amqpbroker.protocol import spec

Q = "queue 'q' in vhost '/'"
CLASSIC = {"durable": False, "exclusive": False, "auto_delete": False}
REPLICATED = {"durable": True, "exclusive": False, "auto_delete": False}
QUORUM = {"x-queue-type": "quorum"}
STREAM = {"x-queue-type": "stream"}


def refused(code: int, text: str):
    kind = core.ChannelException if code < 500 else core.ConnectionException
    return pytest.raises(kind, match=f"^{re.escape(text)}$")


def foreign(argument: str, queue_type: str) -> str:
    """The text for an argument that belongs to another queue type."""
    return f"invalid arg '{argument}' for {Q} of queue type rabbit_{queue_type}_queue"


def declare_refused(arguments: dict, text: str, flags: dict = CLASSIC) -> None:
    with refused(406, f"PRECONDITION_FAILED - {text}") as raised:
        queue_settings(arguments, queue="q", vhost="/", **flags)
    assert raised.value.reply_code == 406


# Settings


def test_no_arguments_give_the_defaults() -> None:
    assert queue_settings({}, **CLASSIC) == QueueSettings()
    assert QueueSettings().overflow == "drop-head"


def test_classic_arguments_give_typed_settings() -> None:
    arguments = {
        "x-message-ttl": 0,
        "x-expires": 60_000,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "dead",
        "x-max-length": 10,
        "x-max-length-bytes": 2**40,
        "x-overflow": "reject-publish-dlx",
        "x-max-priority": 255,
        "x-single-active-consumer": True,
        "x-queue-type": "classic",
        "x-queue-mode": "lazy",
        "x-queue-version": 2,
        "x-anything-else": [1, "kept"],
    }
    assert queue_settings(arguments, **CLASSIC) == QueueSettings(
        queue_type="classic",
        message_ttl=0,
        expires=60_000,
        dead_letter_exchange="",
        dead_letter_routing_key="dead",
        max_length=10,
        max_length_bytes=2**40,
        overflow="reject-publish-dlx",
        max_priority=255,
        single_active_consumer=True,
    )


def test_max_priority_zero_is_accepted() -> None:
    assert queue_settings({"x-max-priority": 0}, **CLASSIC).max_priority == 0


def test_quorum_arguments_give_typed_settings() -> None:
    arguments = {
        **QUORUM,
        "x-delivery-limit": 3,
        "x-message-ttl": 1000,
        "x-overflow": "reject-publish",
        "x-dead-letter-strategy": "at-least-once",
        "x-single-active-consumer": True,
    }
    settings = queue_settings(arguments, **REPLICATED)
    assert (settings.queue_type, settings.delivery_limit, settings.message_ttl, settings.overflow) == (
        "quorum",
        3,
        1000,
        "reject-publish",
    )
    assert settings.single_active_consumer


@pytest.mark.parametrize(("limit", "expected"), [("five", None), (-1, 0), (True, None)])
def test_quorum_delivery_limit_is_not_validated(limit: object, expected: int | None) -> None:
    assert queue_settings({**QUORUM, "x-delivery-limit": limit}, **REPLICATED).delivery_limit == expected


def test_stored_arguments_give_settings_without_validation() -> None:
    settings = settings_from_arguments(
        {"x-max-priority": 300, "x-message-ttl": "1000", "x-overflow": "bogus", "x-queue-type": "bogus"}
    )
    assert settings == QueueSettings(max_priority=255)


# Refused values, in RabbitMQ's words


@pytest.mark.parametrize(
    ("arguments", "text"),
    [
        ({"x-message-ttl": "1000"}, f"invalid arg 'x-message-ttl' for {Q}: \"expected integer, got longstr\""),
        ({"x-message-ttl": -1}, f"invalid arg 'x-message-ttl' for {Q}: {{value_negative,-1}}"),
        ({"x-message-ttl": True}, f"invalid arg 'x-message-ttl' for {Q}: \"expected integer, got bool\""),
        (
            {"x-message-ttl": 315360000001},
            f"invalid arg 'x-message-ttl' for {Q}: {{value_too_large,315360000001}}",
        ),
        (
            {"x-message-ttl": decimal.Decimal("1.5")},
            f"invalid arg 'x-message-ttl' for {Q}: \"expected integer, got decimal\"",
        ),
        ({"x-message-ttl": {"a": 1}}, f"invalid arg 'x-message-ttl' for {Q}: \"expected integer, got table\""),
        ({"x-message-ttl": [1]}, f"invalid arg 'x-message-ttl' for {Q}: \"expected integer, got array\""),
        ({"x-message-ttl": None}, f"invalid arg 'x-message-ttl' for {Q}: \"expected integer, got void\""),
        ({"x-message-ttl": b"\xff"}, f"invalid arg 'x-message-ttl' for {Q}: \"expected integer, got binary\""),
        ({"x-expires": 0}, f"invalid arg 'x-expires' for {Q}: {{value_zero,0}}"),
        ({"x-expires": -5}, f"invalid arg 'x-expires' for {Q}: {{value_negative,-5}}"),
        ({"x-expires": "x"}, f"invalid arg 'x-expires' for {Q}: \"expected integer, got longstr\""),
        ({"x-expires": 315360000001}, f"invalid arg 'x-expires' for {Q}: {{value_too_large,315360000001}}"),
        ({"x-max-length": -1}, f"invalid arg 'x-max-length' for {Q}: {{value_negative,-1}}"),
        ({"x-max-length": "a"}, f"invalid arg 'x-max-length' for {Q}: \"expected integer, got longstr\""),
        ({"x-max-length-bytes": -1}, f"invalid arg 'x-max-length-bytes' for {Q}: {{value_negative,-1}}"),
        ({"x-max-priority": 256}, f"invalid arg 'x-max-priority' for {Q}: {{max_value_exceeded,256}}"),
        ({"x-max-priority": 300}, f"invalid arg 'x-max-priority' for {Q}: {{max_value_exceeded,300}}"),
        ({"x-max-priority": -1}, f"invalid arg 'x-max-priority' for {Q}: {{value_negative,-1}}"),
        ({"x-max-priority": "10"}, f"invalid arg 'x-max-priority' for {Q}: \"expected integer, got longstr\""),
        ({"x-overflow": "bogus"}, f"invalid arg 'x-overflow' for {Q}: invalid_overflow"),
        ({"x-overflow": 1}, f"invalid arg 'x-overflow' for {Q}: {{unacceptable_type,signedint}}"),
        ({"x-queue-type": "bogus"}, f"invalid arg 'x-queue-type' for {Q}: \"unsupported queue type 'bogus'\""),
        ({"x-queue-type": 1}, f"invalid arg 'x-queue-type' for {Q}: {{unacceptable_type,signedint}}"),
        ({"x-dead-letter-exchange": 1}, f"invalid type 'signedint' for arg 'x-dead-letter-exchange' in {Q}"),
        (
            {"x-dead-letter-routing-key": "rk"},
            f"invalid arg 'x-dead-letter-routing-key' for {Q}: routing_key_but_no_dlx_defined",
        ),
        (
            {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": 5},
            f"invalid arg 'x-dead-letter-routing-key' for {Q}: {{unacceptable_type,signedint}}",
        ),
        (
            {"x-single-active-consumer": "true"},
            f"invalid arg 'x-single-active-consumer' for {Q}: {{unacceptable_type,longstr}}",
        ),
        (
            {"x-single-active-consumer": 1},
            f"invalid arg 'x-single-active-consumer' for {Q}: {{unacceptable_type,signedint}}",
        ),
        ({"x-queue-mode": "bogus"}, f"invalid arg 'x-queue-mode' for {Q}: \"unsupported queue mode 'bogus'\""),
        ({"x-queue-mode": 1}, f"invalid arg 'x-queue-mode' for {Q}: {{unacceptable_type,signedint}}"),
        ({"x-queue-version": 3}, f"invalid arg 'x-queue-version' for {Q}: \"unsupported queue version '3'\""),
        ({"x-queue-version": "2"}, f"invalid arg 'x-queue-version' for {Q}: \"expected integer, got longstr\""),
        # Arguments of other queue types.
        ({"x-dead-letter-strategy": "at-least-once"}, foreign("x-dead-letter-strategy", "classic")),
        ({"x-delivery-limit": 5}, foreign("x-delivery-limit", "classic")),
        ({"x-max-age": "1D"}, foreign("x-max-age", "classic")),
        ({"x-max-in-memory-length": 5}, foreign("x-max-in-memory-length", "classic")),
        ({"x-queue-leader-locator": "balanced"}, foreign("x-queue-leader-locator", "classic")),
        # Several wrong: the first in RabbitMQ's order of checks, not the table's.
        ({"x-max-length": -1, "x-message-ttl": -1}, f"invalid arg 'x-message-ttl' for {Q}: {{value_negative,-1}}"),
        ({"x-message-ttl": "a", "x-expires": "b"}, f"invalid arg 'x-expires' for {Q}: \"expected integer, got longstr\""),
        ({"x-message-ttl": -1, "x-dead-letter-exchange": 1}, f"invalid type 'signedint' for arg 'x-dead-letter-exchange' in {Q}"),
    ],
)
def test_classic_argument_refused(arguments: dict, text: str) -> None:
    declare_refused(arguments, text)


@pytest.mark.parametrize(
    ("flags", "arguments", "text"),
    [
        ({"durable": False}, {}, f"invalid property 'non-durable' for {Q}"),
        ({"exclusive": True}, {}, f"invalid property 'exclusive-owner' for {Q}"),
        ({"auto_delete": True}, {}, f"invalid property 'auto-delete' for {Q}"),
        (
            {"durable": False, "exclusive": True, "auto_delete": True},
            {},
            f"invalid property 'auto-delete' for {Q}",
        ),
        ({"durable": False, "exclusive": True}, {}, f"invalid property 'exclusive-owner' for {Q}"),
        ({}, {"x-max-priority": 5}, foreign("x-max-priority", "quorum")),
        ({}, {"x-max-priority": "x"}, foreign("x-max-priority", "quorum")),
        ({}, {"x-queue-mode": "lazy"}, foreign("x-queue-mode", "quorum")),
        ({}, {"x-queue-version": 2}, foreign("x-queue-version", "quorum")),
        ({}, {"x-dead-letter-strategy": "bogus"}, f"invalid arg 'x-dead-letter-strategy' for {Q}: invalid_dlx_strategy"),
        ({}, {"x-quorum-initial-group-size": 0}, f"invalid arg 'x-quorum-initial-group-size' for {Q}: {{value_zero,0}}"),
        # Values before foreign arguments, arguments before flags.
        ({}, {"x-max-priority": 5, "x-message-ttl": -1}, f"invalid arg 'x-message-ttl' for {Q}: {{value_negative,-1}}"),
        (
            {"exclusive": True},
            {"x-max-priority": 5},
            foreign("x-max-priority", "quorum"),
        ),
    ],
)
def test_quorum_declaration_refused(flags: dict, arguments: dict, text: str) -> None:
    declare_refused({**QUORUM, **arguments}, text, {**REPLICATED, **flags})


@pytest.mark.parametrize(
    ("flags", "arguments", "text"),
    [
        ({"durable": False}, {}, f"invalid property 'non-durable' for {Q}"),
        ({"exclusive": True}, {}, f"invalid property 'exclusive-owner' for {Q}"),
        ({"auto_delete": True}, {}, f"invalid property 'auto-delete' for {Q}"),
        ({}, {"x-message-ttl": 1000}, foreign("x-message-ttl", "stream")),
        ({}, {"x-max-length": 10}, foreign("x-max-length", "stream")),
        ({}, {"x-dead-letter-exchange": "x"}, foreign("x-dead-letter-exchange", "stream")),
        ({}, {"x-dead-letter-exchange": 1}, f"invalid type 'signedint' for arg 'x-dead-letter-exchange' in {Q}"),
        ({}, {"x-max-age": "1x"}, f"invalid arg 'x-max-age' for {Q}: invalid_max_age"),
        ({}, {"x-max-age": 5}, f"invalid arg 'x-max-age' for {Q}: {{unacceptable_type,signedint}}"),
        ({}, {"x-stream-max-segment-size-bytes": 3_000_000_001}, "Exceeded max value for x-stream-max-segment-size-bytes"),
    ],
)
def test_stream_declaration_refused(flags: dict, arguments: dict, text: str) -> None:
    declare_refused({**STREAM, **arguments}, text, {**REPLICATED, **flags})


def test_valid_stream_arguments_give_stream_settings() -> None:
    arguments = {**STREAM, "x-max-age": "1D", "x-max-length-bytes": 10, "x-stream-max-segment-size-bytes": 3_000_000_000}
    assert queue_settings(arguments, **REPLICATED) == QueueSettings(
        queue_type="stream", max_length_bytes=10, max_age=86_400_000, max_segment_size_bytes=3_000_000_000
    )


# Through the vhost: new queues validate, passive ones do not, redeclares compare


def test_declared_queue_carries_its_settings(broker, peer) -> None:
    peer.declare("q", durable=True, arguments={**QUORUM, "x-delivery-limit": 2})
    assert broker.vhosts["/"].queues["q"].settings == QueueSettings(queue_type="quorum", delivery_limit=2)


def test_invalid_arguments_declare_no_queue(broker, peer) -> None:
    with refused(406, f"PRECONDITION_FAILED - invalid arg 'x-max-length' for {Q}: {{value_negative,-1}}"):
        peer.declare("q", arguments={"x-max-length": -1})
    assert "q" not in broker.vhosts["/"].queues


def test_passive_declare_does_not_validate(peer) -> None:
    peer.declare("q")
    peer.handle(spec.QueueDeclare(queue="q", passive=True, arguments={"x-max-length": -1}))
    assert peer.sink.methods(spec.QueueDeclareOk)[-1].queue == "q"


@pytest.mark.parametrize("queue_type", ["quorum", "stream"])
def test_server_named_replicated_queue_is_refused(peer, queue_type: str) -> None:
    with refused(406, f"PRECONDITION_FAILED - Cannot declare a server-named queue for type rabbit_{queue_type}_queue"):
        peer.declare("", durable=True, arguments={"x-queue-type": queue_type})


def test_server_named_queue_is_named_in_argument_errors(peer) -> None:
    with pytest.raises(core.ChannelException, match=r"^PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'amq\.gen-"):
        peer.declare("", arguments={"x-message-ttl": -1})


def test_valid_stream_declaration_declares_a_stream(broker, peer) -> None:
    peer.declare("q", durable=True, arguments=STREAM)
    assert broker.vhosts["/"].queues["q"].settings.queue_type == "stream"


@pytest.mark.parametrize(
    ("first", "second", "text"),
    [
        ({"x-message-ttl": 1000}, {"x-message-ttl": 2**40}, "received '1099511627776' but current is '1000'"),
        ({"x-message-ttl": 1000}, {}, "received none but current is the value '1000' of type 'signedint'"),
        ({}, {"x-message-ttl": 1000}, "received the value '1000' of type 'signedint' but current is none"),
        ({"x-message-ttl": 1000}, {"x-message-ttl": "1000"}, "received '1000' but current is '1000'"),
        ({"x-message-ttl": 1}, {"x-message-ttl": True}, "received 'true' but current is '1'"),
        # A redeclare compares without validating.
        ({"x-message-ttl": 1000}, {"x-message-ttl": "abc"}, "received 'abc' but current is '1000'"),
        ({}, {"x-message-ttl": -1}, "received the value '-1' of type 'signedint' but current is none"),
        (
            {"x-single-active-consumer": True},
            {"x-single-active-consumer": False},
            "received 'false' but current is 'true'",
        ),
        (
            {"x-single-active-consumer": True},
            {},
            "received none but current is the value 'true' of type 'bool'",
        ),
        ({}, QUORUM, "received the value 'quorum' of type 'longstr' but current is none"),
        ({"x-queue-type": "classic"}, STREAM, "received 'stream' but current is 'classic'"),
        ({"x-queue-version": 1}, {"x-queue-version": 2}, "received '2' but current is '1'"),
        (
            {"x-queue-master-locator": "min-masters"},
            {},
            "received none but current is the value 'min-masters' of type 'longstr'",
        ),
    ],
)
def test_classic_redeclare_with_other_arguments_is_406(peer, first: dict, second: dict, text: str) -> None:
    peer.declare("q", durable=True, arguments=first)
    arg = next(iter(first or second))
    with refused(406, f"PRECONDITION_FAILED - inequivalent arg '{arg}' for {Q}: {text}"):
        peer.declare("q", durable=True, arguments=second)


@pytest.mark.parametrize(
    ("first", "second", "text"),
    [
        ({}, {}, "inequivalent arg 'x-queue-type' for {Q}: received none but current is the value 'quorum' of type 'longstr'"),
        (
            {"x-delivery-limit": 5},
            {**QUORUM, "x-delivery-limit": 6},
            "inequivalent arg 'x-delivery-limit' for {Q}: received '6' but current is '5'",
        ),
        (
            {"x-delivery-limit": 5},
            QUORUM,
            "inequivalent arg 'x-delivery-limit' for {Q}: received none but current is the value '5' of type 'signedint'",
        ),
    ],
)
def test_quorum_redeclare_with_other_arguments_is_406(peer, first: dict, second: dict, text: str) -> None:
    peer.declare("q", durable=True, arguments={**QUORUM, **first})
    with refused(406, f"PRECONDITION_FAILED - {text.format(Q=Q)}"):
        peer.declare("q", durable=True, arguments=second)


@pytest.mark.parametrize(
    ("first", "second", "durable"),
    [
        ({}, {"x-queue-type": "classic"}, False),
        ({"x-queue-type": "classic"}, {}, False),
        ({"x-max-priority": 5}, {"x-max-priority": 5}, False),
        ({"x-dead-letter-exchange": "a"}, {"x-dead-letter-exchange": b"a"}, False),
        ({"x-unchecked": 1}, {"x-unchecked": 2}, False),
        # Only the existing queue type's arguments are compared.
        ({}, {"x-delivery-limit": 6}, False),
        (QUORUM, {**QUORUM, "x-max-priority": 3}, True),
    ],
)
def test_equivalent_redeclare_is_ok(peer, first: dict, second: dict, durable: bool) -> None:
    peer.declare("q", durable=durable, arguments=first)
    peer.declare("q", durable=durable, arguments=second)
    assert len(peer.sink.methods(spec.QueueDeclareOk)) == 2


def test_integers_of_any_width_are_the_same_argument() -> None:
    assert same_argument(1000, 1000)
    assert not same_argument(1, True)
    assert not same_argument(1, 1.0)
    assert same_argument("a", b"a")


# Exchanges: alternate-exchange


@pytest.mark.parametrize(("value", "type_name"), [(1, "signedint"), (True, "bool")])
def test_alternate_exchange_must_be_a_string(peer, value: object, type_name: str) -> None:
    text = f"invalid type '{type_name}' for arg 'alternate-exchange' in exchange 'x' in vhost '/'"
    with refused(406, f"PRECONDITION_FAILED - {text}"):
        peer.exchange("x", arguments={"alternate-exchange": value})


def test_alternate_exchange_need_not_exist() -> None:
    assert alternate_exchange({"alternate-exchange": "missing"}, exchange="x", vhost="/") == "missing"
    assert alternate_exchange({}, exchange="x", vhost="/") is None


def test_alternate_exchange_is_compared_on_redeclare(peer) -> None:
    peer.exchange("x", arguments={"alternate-exchange": "a"})
    text = "inequivalent arg 'alternate-exchange' for exchange 'x' in vhost '/': received none but current is the value 'a' of type 'longstr'"
    with refused(406, f"PRECONDITION_FAILED - {text}"):
        peer.exchange("x")


# Consumers


def test_consumer_arguments_give_settings() -> None:
    assert consumer_settings({}, "classic", queue="q", vhost="/") == ConsumerSettings()
    assert consumer_settings(
        {"x-priority": -5, "x-cancel-on-ha-failover": True, "x-credit": {"credit": 5}}, "classic", queue="q", vhost="/"
    ) == ConsumerSettings(priority=-5, cancel_on_ha_failover=True)
    assert consumer_settings({"x-priority": 2**40, "x-other": 1}, "quorum", queue="q", vhost="/").priority == 2**40


@pytest.mark.parametrize(
    ("queue_type", "arguments", "text"),
    [
        ("classic", {"x-priority": "5"}, f"invalid arg 'x-priority' for {Q}: \"expected integer, got longstr\""),
        ("classic", {"x-priority": True}, f"invalid arg 'x-priority' for {Q}: \"expected integer, got bool\""),
        (
            "classic",
            {"x-priority": decimal.Decimal("1.5")},
            f"invalid arg 'x-priority' for {Q}: \"expected integer, got decimal\"",
        ),
        (
            "classic",
            {"x-cancel-on-ha-failover": "yes"},
            f"invalid arg 'x-cancel-on-ha-failover' for {Q}: {{unacceptable_type,longstr}}",
        ),
        (
            "classic",
            {"x-cancel-on-ha-failover": 1},
            f"invalid arg 'x-cancel-on-ha-failover' for {Q}: {{unacceptable_type,signedint}}",
        ),
        ("classic", {"x-stream-offset": "first"}, foreign("x-stream-offset", "classic")),
        (
            "classic",
            {"x-stream-offset": "first", "x-priority": "5"},
            f"invalid arg 'x-priority' for {Q}: \"expected integer, got longstr\"",
        ),
        (
            "quorum",
            {"x-cancel-on-ha-failover": True},
            foreign("x-cancel-on-ha-failover", "quorum"),
        ),
        ("quorum", {"x-priority": "a"}, f"invalid arg 'x-priority' for {Q}: \"expected integer, got longstr\""),
        ("quorum", {"x-stream-offset": "first"}, foreign("x-stream-offset", "quorum")),
    ],
)
def test_consumer_argument_refused(queue_type: str, arguments: dict, text: str) -> None:
    with refused(406, f"PRECONDITION_FAILED - {text}"):
        consumer_settings(arguments, queue_type, queue="q", vhost="/")


# Per-message expiration


@pytest.mark.parametrize(
    ("value", "ttl"), [("0", 0), ("+10", 10), ("007", 7), ("-0", 0), ("315360000000", 315360000000)]
)
def test_expiration_parses_as_rabbitmq_does(value: str, ttl: int) -> None:
    assert parse_expiration(value) == ttl


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("-1", "{value_negative,-1}"),
        ("abc", "no_integer"),
        ("10abc", '{leftover_string,"abc"}'),
        ("", "no_integer"),
        (" 10", "no_integer"),
        ("10 ", '{leftover_string," "}'),
        ("1.5", '{leftover_string,".5"}'),
        ("315360000001", "{value_too_large,315360000001}"),
        ("1e3", '{leftover_string,"e3"}'),
        ("\u0663", "no_integer"),
    ],
)
def test_invalid_expiration_is_406(value: str, error: str) -> None:
    with refused(406, f"PRECONDITION_FAILED - invalid expiration '{value}': {error}"):
        parse_expiration(value)
