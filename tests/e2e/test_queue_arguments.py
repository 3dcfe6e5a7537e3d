"""Queue-declare arguments as RabbitMQ 3.10 validates them: wrong types and ranges, arguments of
another queue type, quorum and stream declaration rules, redeclare equivalence, and the exchange's
alternate-exchange. The reply texts were measured against RabbitMQ 3.10.8."""

from __future__ import annotations

import pytest
from pika.exceptions import ChannelClosedByBroker

from .support import reply, unique

QUORUM = {"x-queue-type": "quorum"}
STREAM = {"x-queue-type": "stream"}


def _refused(channel, name: str, **declare) -> tuple[int, str]:
    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.queue_declare(name, **declare)
    return reply(closed)


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"x-message-ttl": "1000"}, "'x-message-ttl' for {q}: \"expected integer, got longstr\""),
        ({"x-message-ttl": -1}, "'x-message-ttl' for {q}: {{value_negative,-1}}"),
        ({"x-message-ttl": True}, "'x-message-ttl' for {q}: \"expected integer, got bool\""),
        ({"x-message-ttl": 315360000001}, "'x-message-ttl' for {q}: {{value_too_large,315360000001}}"),
        ({"x-expires": 0}, "'x-expires' for {q}: {{value_zero,0}}"),
        ({"x-max-length": -1}, "'x-max-length' for {q}: {{value_negative,-1}}"),
        ({"x-max-length-bytes": "a"}, "'x-max-length-bytes' for {q}: \"expected integer, got longstr\""),
        ({"x-max-priority": 256}, "'x-max-priority' for {q}: {{max_value_exceeded,256}}"),
        ({"x-max-priority": 300}, "'x-max-priority' for {q}: {{max_value_exceeded,300}}"),
        ({"x-overflow": "bogus"}, "'x-overflow' for {q}: invalid_overflow"),
        ({"x-overflow": 1}, "'x-overflow' for {q}: {{unacceptable_type,signedint}}"),
        ({"x-queue-type": "bogus"}, "'x-queue-type' for {q}: \"unsupported queue type 'bogus'\""),
        ({"x-dead-letter-routing-key": "rk"}, "'x-dead-letter-routing-key' for {q}: routing_key_but_no_dlx_defined"),
        ({"x-single-active-consumer": "true"}, "'x-single-active-consumer' for {q}: {{unacceptable_type,longstr}}"),
        ({"x-queue-mode": "bogus"}, "'x-queue-mode' for {q}: \"unsupported queue mode 'bogus'\""),
        ({"x-delivery-limit": 5}, "'x-delivery-limit' for {q} of queue type rabbit_classic_queue"),
        ({"x-max-length": -1, "x-message-ttl": -1}, "'x-message-ttl' for {q}: {{value_negative,-1}}"),
    ],
)
def test_invalid_classic_argument_is_precondition_failed(channel, arguments, error):
    name = unique("args")

    code, text = _refused(channel, name, arguments=arguments)

    assert (code, text) == (406, "PRECONDITION_FAILED - invalid arg " + error.format(q=f"queue '{name}' in vhost '/'"))


def test_dead_letter_exchange_of_another_type_is_refused_first(channel):
    name = unique("args")

    code, text = _refused(channel, name, arguments={"x-message-ttl": -1, "x-dead-letter-exchange": 1})

    assert (code, text) == (
        406,
        f"PRECONDITION_FAILED - invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue '{name}' in vhost '/'",
    )


def test_valid_classic_arguments_are_accepted(channel):
    name = unique("args")
    arguments = {
        "x-queue-type": "classic",
        "x-max-priority": 0,
        "x-message-ttl": 315360000000,
        "x-expires": 1_800_000,
        "x-max-length": 0,
        "x-max-length-bytes": 2**40,
        "x-overflow": "reject-publish",
        "x-dead-letter-exchange": "amq.direct",
        "x-dead-letter-routing-key": "",
        "x-single-active-consumer": False,
        "x-queue-mode": "lazy",
        "x-queue-version": 1,
    }

    channel.queue_declare(name, exclusive=True, arguments=arguments)
    channel.queue_declare(name, exclusive=True, arguments=arguments)


@pytest.mark.parametrize(
    ("queue_type", "declare", "error"),
    [
        (queue_type, declare, error)
        for queue_type in ("quorum", "stream")
        for declare, error in [
            ({"durable": False}, "invalid property 'non-durable' for {q}"),
            ({"durable": True, "exclusive": True}, "invalid property 'exclusive-owner' for {q}"),
            ({"durable": True, "auto_delete": True}, "invalid property 'auto-delete' for {q}"),
        ]
    ]
    + [
        ("quorum", {"durable": True, "arguments": {"x-max-priority": 5}}, "invalid arg 'x-max-priority' for {q} of queue type rabbit_quorum_queue"),
        (
            "quorum",
            {"durable": True, "exclusive": True, "arguments": {"x-max-priority": 5}},
            "invalid arg 'x-max-priority' for {q} of queue type rabbit_quorum_queue",
        ),
        ("quorum", {"durable": True, "arguments": {"x-queue-mode": "lazy"}}, "invalid arg 'x-queue-mode' for {q} of queue type rabbit_quorum_queue"),
        ("quorum", {"durable": True, "arguments": {"x-dead-letter-strategy": "bogus"}}, "invalid arg 'x-dead-letter-strategy' for {q}: invalid_dlx_strategy"),
        ("stream", {"durable": True, "arguments": {"x-message-ttl": 1000}}, "invalid arg 'x-message-ttl' for {q} of queue type rabbit_stream_queue"),
        ("stream", {"durable": True, "arguments": {"x-max-age": "1x"}}, "invalid arg 'x-max-age' for {q}: invalid_max_age"),
    ],
)
def test_invalid_replicated_declaration_is_precondition_failed(channel, queue_type, declare, error):
    name = unique(queue_type)
    declare["arguments"] = {"x-queue-type": queue_type, **declare.get("arguments", {})}

    code, text = _refused(channel, name, **declare)

    assert (code, text) == (406, "PRECONDITION_FAILED - " + error.format(q=f"queue '{name}' in vhost '/'"))


def test_quorum_queue_with_its_arguments_is_declared(channel, cleanup):
    name = cleanup.queue(unique("quorum"))
    arguments = {
        **QUORUM,
        "x-delivery-limit": 3,
        "x-message-ttl": 1000,
        "x-overflow": "reject-publish",
        "x-dead-letter-exchange": "",
        "x-dead-letter-strategy": "at-least-once",
        "x-single-active-consumer": True,
    }

    ok = channel.queue_declare(name, durable=True, arguments=arguments)
    channel.queue_declare(name, durable=True, arguments=arguments)

    assert ok.method.queue == name


def test_server_named_quorum_queue_is_precondition_failed(channel):
    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.queue_declare("", durable=True, arguments=QUORUM)

    assert reply(closed) == (406, "PRECONDITION_FAILED - Cannot declare a server-named queue for type rabbit_quorum_queue")


@pytest.mark.parametrize(
    ("first", "second", "mismatch"),
    [
        ({"x-message-ttl": 1000}, {"x-message-ttl": "1000"}, "'x-message-ttl' for {q}: received '1000' but current is '1000'"),
        ({"x-message-ttl": 1}, {"x-message-ttl": True}, "'x-message-ttl' for {q}: received 'true' but current is '1'"),
        ({"x-message-ttl": 1000}, {"x-message-ttl": "abc"}, "'x-message-ttl' for {q}: received 'abc' but current is '1000'"),
        (
            {"x-single-active-consumer": True},
            {},
            "'x-single-active-consumer' for {q}: received none but current is the value 'true' of type 'bool'",
        ),
        (
            {},
            QUORUM,
            "'x-queue-type' for {q}: received the value 'quorum' of type 'longstr' but current is none",
        ),
        ({"x-queue-type": "classic"}, STREAM, "'x-queue-type' for {q}: received 'stream' but current is 'classic'"),
        ({"x-queue-version": 1}, {"x-queue-version": 2}, "'x-queue-version' for {q}: received '2' but current is '1'"),
        (
            {**QUORUM, "x-delivery-limit": 5},
            {},
            "'x-queue-type' for {q}: received none but current is the value 'quorum' of type 'longstr'",
        ),
        (
            {**QUORUM, "x-delivery-limit": 5},
            {**QUORUM, "x-delivery-limit": 6},
            "'x-delivery-limit' for {q}: received '6' but current is '5'",
        ),
    ],
)
def test_redeclare_with_other_argument_is_precondition_failed(connection, cleanup, first, second, mismatch):
    name = cleanup.queue(unique("args"))
    connection.channel().queue_declare(name, durable=True, arguments=first)

    code, text = _refused(connection.channel(), name, durable=True, arguments=second)

    assert (code, text) == (
        406,
        "PRECONDITION_FAILED - inequivalent arg " + mismatch.format(q=f"queue '{name}' in vhost '/'"),
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({}, {"x-queue-type": "classic"}),
        ({"x-queue-type": "classic"}, {}),
        ({"x-dead-letter-exchange": "a"}, {"x-dead-letter-exchange": b"a"}),
        ({}, {"x-delivery-limit": 6}),
    ],
)
def test_equivalent_classic_redeclare_succeeds(channel, first, second):
    name = unique("args")
    channel.queue_declare(name, exclusive=True, arguments=first)

    channel.queue_declare(name, exclusive=True, arguments=second)


def test_quorum_redeclare_does_not_compare_classic_arguments(channel, cleanup):
    name = cleanup.queue(unique("quorum"))
    channel.queue_declare(name, durable=True, arguments=QUORUM)

    channel.queue_declare(name, durable=True, arguments={**QUORUM, "x-max-priority": 3})


def test_passive_declare_does_not_validate_arguments(channel):
    name = unique("args")
    channel.queue_declare(name, exclusive=True)

    channel.queue_declare(name, passive=True, arguments={"x-max-length": -1})


@pytest.mark.parametrize(("value", "type_name"), [(1, "signedint"), (True, "bool")])
def test_alternate_exchange_of_another_type_is_precondition_failed(channel, value, type_name):
    name = unique("exchange")

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.exchange_declare(name, "direct", arguments={"alternate-exchange": value})

    assert reply(closed) == (
        406,
        f"PRECONDITION_FAILED - invalid type '{type_name}' for arg 'alternate-exchange' in exchange '{name}' in vhost '/'",
    )


def test_alternate_exchange_need_not_exist(channel, cleanup):
    name = cleanup.exchange(unique("exchange"))

    channel.exchange_declare(name, "direct", arguments={"alternate-exchange": unique("missing")})
