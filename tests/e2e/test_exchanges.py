"""Exchanges: the default and amq.* exchanges, declare/delete rules, flags and
direct, fanout and topic routing."""

from __future__ import annotations

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

from .support import drain, exchange_exists, reply, round_trip, unique

DEFAULT_EXCHANGE_REFUSED = "ACCESS_REFUSED - operation not permitted on the default exchange"


def _bound_queue(channel, exchange, routing_key=""):
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, exchange, routing_key)
    return queue


def test_default_exchange_routes_by_queue_name(channel):
    first = channel.queue_declare("", exclusive=True).method.queue
    second = channel.queue_declare("", exclusive=True).method.queue

    channel.basic_publish("", first, b"to first")
    channel.basic_publish("", second, b"to second")

    assert drain(channel, first) == [b"to first"]
    assert drain(channel, second) == [b"to second"]


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda channel, queue: channel.exchange_declare("", "direct"), id="declare"),
        pytest.param(lambda channel, queue: channel.exchange_declare("", "direct", passive=True), id="passive-declare"),
        pytest.param(lambda channel, queue: channel.exchange_delete(""), id="delete"),
        pytest.param(lambda channel, queue: channel.queue_bind(queue, "", "key"), id="bind"),
        pytest.param(lambda channel, queue: channel.queue_unbind(queue, "", "key"), id="unbind"),
    ],
)
def test_default_exchange_cannot_be_declared_deleted_or_bound(connection, operation):
    queue = connection.channel().queue_declare("", exclusive=True).method.queue
    channel = connection.channel()

    with pytest.raises(ChannelClosedByBroker) as closed:
        operation(channel, queue)

    assert reply(closed) == (403, DEFAULT_EXCHANGE_REFUSED)
    assert connection.is_open


def test_declaring_a_new_amq_exchange_is_access_refused(channel):
    name = "amq." + unique("custom")

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.exchange_declare(name, "direct")

    assert reply(closed) == (
        403,
        f"ACCESS_REFUSED - exchange name '{name}' contains reserved prefix 'amq.*'",
    )


def test_deleting_a_system_exchange_is_access_refused(channel):
    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.exchange_delete("amq.direct")

    assert reply(closed) == (
        403,
        "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed",
    )


@pytest.mark.parametrize(
    ("name", "exchange_type"),
    [
        ("amq.direct", "direct"),
        ("amq.fanout", "fanout"),
        ("amq.topic", "topic"),
    ],
)
def test_standard_amq_exchanges_exist_and_can_be_redeclared_equivalently(channel, name, exchange_type):
    channel.exchange_declare(name, passive=True)
    channel.exchange_declare(name, exchange_type, durable=True)


def test_amq_direct_routes_like_any_direct_exchange(channel):
    key = unique("key")
    queue = _bound_queue(channel, "amq.direct", key)

    channel.basic_publish("amq.direct", key, b"via amq.direct")

    assert drain(channel, queue) == [b"via amq.direct"]


def test_passive_declare_of_missing_exchange_is_not_found(channel):
    name = unique("missing")

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.exchange_declare(name, passive=True)

    assert reply(closed) == (404, f"NOT_FOUND - no exchange '{name}' in vhost '/'")


def test_declare_then_passive_declare_finds_exchange(channel, cleanup):
    name = cleanup.exchange(unique("exchange"))

    channel.exchange_declare(name, "direct")
    channel.exchange_declare(name, passive=True)


def test_durable_exchange_can_be_redeclared_with_same_flags(channel, cleanup):
    name = cleanup.exchange(unique("durable"))

    channel.exchange_declare(name, "topic", durable=True)
    channel.exchange_declare(name, "topic", durable=True)
    channel.exchange_declare(name, passive=True)


@pytest.mark.parametrize(
    ("first", "second", "argument", "received", "current"),
    [
        ({"exchange_type": "direct"}, {"exchange_type": "fanout"}, "type", "fanout", "direct"),
        ({"exchange_type": "direct"}, {"exchange_type": "direct", "durable": True}, "durable", "true", "false"),
        ({"exchange_type": "direct", "durable": True}, {"exchange_type": "direct"}, "durable", "false", "true"),
        ({"exchange_type": "direct"}, {"exchange_type": "direct", "auto_delete": True}, "auto_delete", "true", "false"),
        ({"exchange_type": "direct"}, {"exchange_type": "direct", "internal": True}, "internal", "true", "false"),
    ],
    ids=["type", "durable", "not-durable", "auto-delete", "internal"],
)
def test_redeclare_with_different_properties_is_precondition_failed(
    connection, cleanup, first, second, argument, received, current
):
    name = cleanup.exchange(unique("exchange"))
    connection.channel().exchange_declare(name, **first)
    channel = connection.channel()

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.exchange_declare(name, **second)

    assert reply(closed) == (
        406,
        f"PRECONDITION_FAILED - inequivalent arg '{argument}' for exchange '{name}' in vhost '/': "
        f"received '{received}' but current is '{current}'",
    )


def test_auto_delete_exchange_is_deleted_when_its_last_binding_goes(connection, cleanup):
    channel = connection.channel()
    name = cleanup.exchange(unique("auto-delete"))
    channel.exchange_declare(name, "direct", auto_delete=True)
    first = _bound_queue(channel, name, "a")
    second = _bound_queue(channel, name, "b")

    channel.queue_unbind(first, name, "a")
    assert exchange_exists(connection.channel, name)
    channel.queue_unbind(second, name, "b")

    assert not exchange_exists(connection.channel, name)


def test_auto_delete_exchange_without_bindings_stays(connection, cleanup):
    name = cleanup.exchange(unique("auto-delete"))

    connection.channel().exchange_declare(name, "direct", auto_delete=True)

    assert exchange_exists(connection.channel, name)


def test_publishing_to_an_internal_exchange_is_access_refused(connection, cleanup):
    name = cleanup.exchange(unique("internal"))
    connection.channel().exchange_declare(name, "fanout", internal=True)
    channel = connection.channel()

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.basic_publish(name, "", b"not allowed")
        round_trip(channel)

    assert reply(closed) == (
        403,
        f"ACCESS_REFUSED - cannot publish to internal exchange '{name}' in vhost '/'",
    )


def test_internal_exchange_receives_through_an_exchange_binding(channel, cleanup):
    front = cleanup.exchange(unique("front"))
    internal = cleanup.exchange(unique("internal"))
    channel.exchange_declare(front, "fanout")
    channel.exchange_declare(internal, "fanout", internal=True)
    channel.exchange_bind(destination=internal, source=front)
    queue = _bound_queue(channel, internal)

    channel.basic_publish(front, "", b"through the front")

    assert drain(channel, queue) == [b"through the front"]


def test_publishing_to_a_missing_exchange_is_not_found(channel):
    name = unique("missing")

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.basic_publish(name, "key", b"lost")
        round_trip(channel)

    assert reply(closed) == (404, f"NOT_FOUND - no exchange '{name}' in vhost '/'")


def test_delete_if_unused_with_bindings_is_precondition_failed(connection, cleanup):
    name = cleanup.exchange(unique("used"))
    setup = connection.channel()
    setup.exchange_declare(name, "direct")
    _bound_queue(setup, name, "key")
    channel = connection.channel()

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.exchange_delete(name, if_unused=True)

    assert reply(closed) == (
        406,
        f"PRECONDITION_FAILED - exchange '{name}' in vhost '/' in use",
    )
    assert exchange_exists(connection.channel, name)


def test_delete_if_unused_without_bindings_deletes(connection, cleanup):
    name = cleanup.exchange(unique("unused"))
    channel = connection.channel()
    channel.exchange_declare(name, "direct")

    channel.exchange_delete(name, if_unused=True)

    assert not exchange_exists(connection.channel, name)


def test_delete_removes_bindings_and_exchange(connection, cleanup):
    name = cleanup.exchange(unique("doomed"))
    channel = connection.channel()
    channel.exchange_declare(name, "direct")
    _bound_queue(channel, name, "key")

    channel.exchange_delete(name)

    assert not exchange_exists(connection.channel, name)


def test_delete_of_missing_exchange_succeeds(channel):
    channel.exchange_delete(unique("never-declared"))

    round_trip(channel)


def test_direct_exchange_routes_on_exact_key(channel, cleanup):
    name = cleanup.exchange(unique("direct"))
    channel.exchange_declare(name, "direct")
    orange = _bound_queue(channel, name, "orange")
    black = _bound_queue(channel, name, "black")
    also_black = _bound_queue(channel, name, "black")
    channel.queue_bind(also_black, name, "green")

    for key in ("orange", "black", "green", "blue", "Orange", "orange.x"):
        channel.basic_publish(name, key, key.encode())

    assert drain(channel, orange) == [b"orange"]
    assert drain(channel, black) == [b"black"]
    assert drain(channel, also_black) == [b"black", b"green"]


def test_direct_exchange_delivers_once_per_queue_despite_duplicate_matching_bindings(channel, cleanup):
    name = cleanup.exchange(unique("direct"))
    channel.exchange_declare(name, "direct")
    queue = _bound_queue(channel, name, "key")
    channel.queue_bind(queue, name, "key")

    channel.basic_publish(name, "key", b"once")

    assert drain(channel, queue) == [b"once"]


def test_fanout_exchange_ignores_routing_key(channel, cleanup):
    name = cleanup.exchange(unique("fanout"))
    channel.exchange_declare(name, "fanout")
    queues = [_bound_queue(channel, name, key) for key in ("a", "b", "")]

    channel.basic_publish(name, "whatever", b"to all")

    assert [drain(channel, queue) for queue in queues] == [[b"to all"]] * 3


def test_unbind_stops_routing(channel, cleanup):
    name = cleanup.exchange(unique("direct"))
    channel.exchange_declare(name, "direct")
    queue = _bound_queue(channel, name, "key")
    channel.basic_publish(name, "key", b"before")

    channel.queue_unbind(queue, name, "key")
    channel.basic_publish(name, "key", b"after")

    assert drain(channel, queue) == [b"before"]


TOPIC_CASES = [
    ("a.b", "a.b", True),
    ("a.b", "a.bb", False),
    ("a.*", "a.b", True),
    ("a.*", "a", False),
    ("a.*", "a.b.c", False),
    ("*", "a", True),
    ("*", "a.b", False),
    ("*", "", False),
    ("*.*", "a.b", True),
    ("*.*", "a", False),
    ("*.*", ".", True),
    ("#", "", True),
    ("#", "a", True),
    ("#", "a.b.c", True),
    ("#", ".", True),
    ("a.#", "a", True),
    ("a.#", "a.", True),
    ("a.#", "a.b.c", True),
    ("a.#", "b.a", False),
    ("#.a", "a", True),
    ("#.a", "x.y.a", True),
    ("#.a", "a.x", False),
    ("a.#.b", "a.b", True),
    ("a.#.b", "a.x.y.b", True),
    ("a.#.#.b", "a.b", True),
    ("a.*.#", "a", False),
    ("a.*.#", "a.b", True),
    ("a.*.#", "a.b.c.d", True),
    ("*.#", "", False),
    ("*.#", "a", True),
    ("#.*", "a", True),
    ("#.*.#", "a", True),
    ("#.*.#", "", False),
    ("*.#.*", "a", False),
    ("*.#.*", "a.b", True),
    ("#.#", "", True),
    ("#.#", "a", True),
    ("#.#", "a.b", True),
    ("a.*.b", "a..b", True),
    ("a..b", "a..b", True),
    ("a..b", "a.b", False),
    ("*.", "a.", True),
    ("*.", "a", False),
    (".", ".", True),
    (".", "", False),
    ("", "", True),
    ("", "a", False),
    ("a.#.j", "a.b.c.d.e.f.g.h.i.j", True),
    ("#.j", "a.b.c.d.e.f.g.h.i.j", True),
    ("a.*.*.*.*.*.*.*.*.j", "a.b.c.d.e.f.g.h.i.j", True),
    ("a.*.*.*.*.*.*.*.j", "a.b.c.d.e.f.g.h.i.j", False),
]


@pytest.mark.parametrize(("pattern", "routing_key", "matches"), TOPIC_CASES)
def test_topic_binding_pattern(channel, cleanup, pattern, routing_key, matches):
    name = cleanup.exchange(unique("topic"))
    channel.exchange_declare(name, "topic")
    queue = _bound_queue(channel, name, pattern)

    channel.basic_publish(name, routing_key, b"probe")

    assert drain(channel, queue) == ([b"probe"] if matches else [])


def test_topic_exchange_delivers_once_per_queue_when_several_patterns_match(channel, cleanup):
    name = cleanup.exchange(unique("topic"))
    channel.exchange_declare(name, "topic")
    queue = _bound_queue(channel, name, "a.*")
    channel.queue_bind(queue, name, "#")
    channel.queue_bind(queue, name, "a.b")
    other = _bound_queue(channel, name, "*.b")

    channel.basic_publish(name, "a.b", b"once each")

    assert drain(channel, queue) == [b"once each"]
    assert drain(channel, other) == [b"once each"]


def test_exchange_declare_ok_for_each_type(channel, cleanup):
    for exchange_type in ("direct", "fanout", "topic", "headers"):
        name = cleanup.exchange(unique(exchange_type))
        assert isinstance(channel.exchange_declare(name, exchange_type).method, pika.spec.Exchange.DeclareOk)
