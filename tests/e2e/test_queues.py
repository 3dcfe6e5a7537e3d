"""Queues: naming, exclusivity, auto-delete, bindings, purge and delete, declare-ok
counts, and the equivalence rules for redeclaring."""

from __future__ import annotations

import time

import pytest
from pika.exceptions import ChannelClosedByBroker

from .support import get_within, queue_exists, reply, round_trip, unique

LOCKED = (
    "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{name}' in vhost '/'. "
    "It could be originally declared on another connection or the exclusive property value "
    "does not match that of the original declaration."
)


def _assert_queue_goes_away(connection, name, timeout=5.0):
    deadline = time.monotonic() + timeout
    while queue_exists(connection.channel, name):
        assert time.monotonic() < deadline, f"queue {name!r} still exists after {timeout} s"
        connection.sleep(0.02)


def test_server_named_queues_get_unique_amq_gen_names(channel):
    first = channel.queue_declare("", exclusive=True).method.queue
    second = channel.queue_declare("", exclusive=True).method.queue

    assert first.startswith("amq.gen-")
    assert second.startswith("amq.gen-")
    assert first != second
    channel.queue_declare(first, passive=True)


def test_declaring_an_amq_queue_name_is_access_refused(channel):
    name = "amq." + unique("queue")

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.queue_declare(name)

    assert reply(closed) == (
        403,
        f"ACCESS_REFUSED - queue name '{name}' contains reserved prefix 'amq.*'",
    )


def test_server_named_queue_can_be_redeclared_only_passively(connection):
    name = connection.channel().queue_declare("", exclusive=True).method.queue
    channel = connection.channel()
    channel.queue_declare(name, passive=True)

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.queue_declare(name, exclusive=True)

    assert reply(closed) == (
        403,
        f"ACCESS_REFUSED - queue name '{name}' contains reserved prefix 'amq.*'",
    )


def test_passive_declare_of_missing_queue_is_not_found(channel):
    name = unique("missing")

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.queue_declare(name, passive=True)

    assert reply(closed) == (404, f"NOT_FOUND - no queue '{name}' in vhost '/'")


def test_reply_text_quoting_a_255_byte_name_is_cut_to_fit(connection, channel):
    name = unique("missing").ljust(255, "q")

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.queue_declare(name, passive=True)

    assert reply(closed) == (404, f"NOT_FOUND - no queue '{name}"[:252] + "...")
    assert connection.is_open
    round_trip(connection.channel())


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda channel, name: channel.queue_declare(name, passive=True), id="passive-declare"),
        pytest.param(lambda channel, name: channel.queue_declare(name, exclusive=True), id="declare"),
        pytest.param(lambda channel, name: channel.basic_consume(name, lambda *message: None), id="consume"),
        pytest.param(lambda channel, name: channel.basic_get(name), id="get"),
        pytest.param(lambda channel, name: channel.queue_purge(name), id="purge"),
        pytest.param(lambda channel, name: channel.queue_delete(name), id="delete"),
        pytest.param(lambda channel, name: channel.queue_bind(name, "amq.fanout"), id="bind"),
    ],
)
def test_exclusive_queue_is_locked_to_other_connections(connect, operation):
    name = unique("exclusive")
    connect().channel().queue_declare(name, exclusive=True)
    channel = connect().channel()

    with pytest.raises(ChannelClosedByBroker) as closed:
        operation(channel, name)

    assert reply(closed) == (405, LOCKED.format(name=name))


def test_other_connections_may_publish_to_an_exclusive_queue(connect):
    owner = connect().channel()
    name = unique("exclusive")
    owner.queue_declare(name, exclusive=True)

    other = connect().channel()
    other.basic_publish("", name, b"from outside")
    round_trip(other)

    assert get_within(owner, name, auto_ack=True)[2] == b"from outside"


def test_exclusive_queue_is_deleted_when_its_connection_closes(connect):
    owner = connect()
    name = unique("exclusive")
    owner.channel().queue_declare(name, exclusive=True)
    observer = connect()

    owner.close()

    _assert_queue_goes_away(observer, name)


def test_exclusive_queue_outlives_the_channel_that_declared_it(connection):
    declaring = connection.channel()
    name = unique("exclusive")
    declaring.queue_declare(name, exclusive=True)

    declaring.close()

    assert queue_exists(connection.channel, name)


def test_owner_redeclaring_exclusive_queue_as_shared_is_resource_locked(connection):
    name = unique("exclusive")
    connection.channel().queue_declare(name, exclusive=True)
    channel = connection.channel()

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.queue_declare(name)

    assert reply(closed) == (405, LOCKED.format(name=name))


def test_shared_queue_redeclared_as_exclusive_is_resource_locked(connection, cleanup):
    name = cleanup.queue(unique("shared"))
    connection.channel().queue_declare(name)
    channel = connection.channel()

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.queue_declare(name, exclusive=True)

    assert reply(closed) == (405, LOCKED.format(name=name))


def test_auto_delete_queue_is_deleted_after_its_last_consumer_is_cancelled(connection, cleanup):
    name = cleanup.queue(unique("auto-delete"))
    channel = connection.channel()
    channel.queue_declare(name, auto_delete=True)
    first = channel.basic_consume(name, lambda *message: None)
    second = channel.basic_consume(name, lambda *message: None)

    channel.basic_cancel(first)
    assert queue_exists(connection.channel, name)
    channel.basic_cancel(second)

    _assert_queue_goes_away(connection, name)


def test_auto_delete_queue_that_never_had_a_consumer_stays(connection, cleanup):
    name = cleanup.queue(unique("auto-delete"))
    channel = connection.channel()
    channel.queue_declare(name, auto_delete=True)
    channel.basic_publish("", name, b"fetched, not consumed")

    assert channel.basic_get(name, auto_ack=True)[2] == b"fetched, not consumed"
    connection.sleep(0.1)

    assert queue_exists(connection.channel, name)


def test_auto_delete_queue_is_deleted_when_its_consumers_channel_closes(connection, cleanup):
    name = cleanup.queue(unique("auto-delete"))
    connection.channel().queue_declare(name, auto_delete=True)
    consuming = connection.channel()
    consuming.basic_consume(name, lambda *message: None)

    consuming.close()

    _assert_queue_goes_away(connection, name)


def test_bind_routes_and_unbind_stops_routing(channel, cleanup):
    exchange = cleanup.exchange(unique("direct"))
    channel.exchange_declare(exchange, "direct")
    queue = channel.queue_declare("", exclusive=True).method.queue

    channel.queue_bind(queue, exchange, "key")
    channel.basic_publish(exchange, "key", b"bound")
    channel.queue_unbind(queue, exchange, "key")
    channel.basic_publish(exchange, "key", b"unbound")

    assert channel.basic_get(queue, auto_ack=True)[2] == b"bound"
    assert channel.basic_get(queue, auto_ack=True)[0] is None


def test_unbind_of_missing_binding_succeeds(channel):
    queue = channel.queue_declare("", exclusive=True).method.queue

    channel.queue_unbind(queue, "amq.direct", unique("never-bound"))

    round_trip(channel)


def test_bind_to_missing_exchange_is_not_found(channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    exchange = unique("missing")

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.queue_bind(queue, exchange, "key")

    assert reply(closed) == (
        404,
        f"NOT_FOUND - no exchange '{exchange}' in vhost '/'",
    )


def test_bind_of_missing_queue_is_not_found(channel):
    queue = unique("missing")

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.queue_bind(queue, "amq.direct", "key")

    assert reply(closed) == (404, f"NOT_FOUND - no queue '{queue}' in vhost '/'")


def test_purge_returns_number_of_messages_removed(channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    for number in range(4):
        channel.basic_publish("", queue, str(number).encode())

    assert channel.queue_purge(queue).method.message_count == 4
    assert channel.queue_purge(queue).method.message_count == 0
    assert channel.basic_get(queue)[0] is None


def test_delete_returns_number_of_messages_deleted(connection):
    channel = connection.channel()
    name = unique("doomed")
    channel.queue_declare(name, exclusive=True)
    channel.basic_publish("", name, b"1")
    channel.basic_publish("", name, b"2")

    assert channel.queue_delete(name).method.message_count == 2
    assert not queue_exists(connection.channel, name)


def test_delete_if_unused_with_consumer_is_precondition_failed(connection):
    name = unique("used")
    setup = connection.channel()
    setup.queue_declare(name, exclusive=True)
    setup.basic_consume(name, lambda *message: None)
    channel = connection.channel()

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.queue_delete(name, if_unused=True)

    assert reply(closed) == (
        406,
        f"PRECONDITION_FAILED - queue '{name}' in vhost '/' in use",
    )
    assert queue_exists(connection.channel, name)


def test_delete_if_empty_with_messages_is_precondition_failed(connection):
    name = unique("full")
    setup = connection.channel()
    setup.queue_declare(name, exclusive=True)
    setup.basic_publish("", name, b"still here")
    round_trip(setup)
    channel = connection.channel()

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.queue_delete(name, if_empty=True)

    assert reply(closed) == (
        406,
        f"PRECONDITION_FAILED - queue '{name}' in vhost '/' not empty",
    )
    assert queue_exists(connection.channel, name)


def test_delete_if_unused_and_if_empty_deletes_idle_empty_queue(connection):
    channel = connection.channel()
    name = unique("idle")
    channel.queue_declare(name, exclusive=True)

    channel.queue_delete(name, if_unused=True, if_empty=True)

    assert not queue_exists(connection.channel, name)


def test_delete_of_missing_queue_succeeds(channel):
    assert channel.queue_delete(unique("never-declared")).method.message_count == 0


def test_declare_ok_reports_ready_messages_and_consumers(connection):
    channel = connection.channel()
    name = unique("counted")
    first = channel.queue_declare(name, exclusive=True).method
    for number in range(3):
        channel.basic_publish("", name, str(number).encode())

    # RabbitMQ may answer a declare before it has counted publishes that preceded it
    # on the same channel, so poll.
    deadline = time.monotonic() + 5
    while (after_publish := channel.queue_declare(name, exclusive=True).method).message_count != 3:
        assert time.monotonic() < deadline, after_publish
        connection.sleep(0.01)
    channel.basic_consume(name, lambda *message: None)
    connection.channel().basic_consume(name, lambda *message: None)
    with_consumers = channel.queue_declare(name, passive=True).method

    assert (first.queue, first.message_count, first.consumer_count) == (name, 0, 0)
    assert after_publish.consumer_count == 0
    assert (with_consumers.message_count, with_consumers.consumer_count) == (0, 2)


@pytest.mark.parametrize(
    ("first", "second", "mismatch"),
    [
        ({}, {"durable": True}, "'durable' for queue '{name}' in vhost '/': received 'true' but current is 'false'"),
        ({"durable": True}, {}, "'durable' for queue '{name}' in vhost '/': received 'false' but current is 'true'"),
        (
            {"auto_delete": True},
            {},
            "'auto_delete' for queue '{name}' in vhost '/': received 'false' but current is 'true'",
        ),
        (
            {},
            {"auto_delete": True},
            "'auto_delete' for queue '{name}' in vhost '/': received 'true' but current is 'false'",
        ),
        (
            {},
            {"arguments": {"x-max-length": 10}},
            "'x-max-length' for queue '{name}' in vhost '/': received the value '10' of type 'signedint' "
            "but current is none",
        ),
        (
            {"arguments": {"x-message-ttl": 1000}},
            {},
            "'x-message-ttl' for queue '{name}' in vhost '/': received none but current is the value '1000' "
            "of type 'signedint'",
        ),
        (
            {"arguments": {"x-max-length": 10}},
            {"arguments": {"x-max-length": 11}},
            "'x-max-length' for queue '{name}' in vhost '/': received '11' but current is '10'",
        ),
    ],
    ids=["durable", "not-durable", "not-auto-delete", "auto-delete", "added-arg", "missing-arg", "changed-arg"],
)
def test_redeclare_with_different_properties_is_precondition_failed(connection, cleanup, first, second, mismatch):
    name = cleanup.queue(unique("queue"))
    connection.channel().queue_declare(name, **first)
    channel = connection.channel()

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.queue_declare(name, **second)

    assert reply(closed) == (
        406,
        "PRECONDITION_FAILED - inequivalent arg " + mismatch.format(name=name),
    )


def test_redeclare_ignores_differences_in_arguments_the_broker_does_not_know(channel):
    name = unique("queue")
    channel.queue_declare(name, exclusive=True, arguments={"x-our-own": "a"})

    channel.queue_declare(name, exclusive=True, arguments={"x-our-own": "b"})


def test_redeclare_with_same_properties_succeeds(channel, cleanup):
    name = cleanup.queue(unique("queue"))
    arguments = {"x-max-length": 10, "x-message-ttl": 60000}

    channel.queue_declare(name, durable=True, arguments=arguments)
    channel.queue_declare(name, durable=True, arguments=arguments)


def test_transient_shared_queue_is_accepted(channel, cleanup):
    name = cleanup.queue(unique("transient"))

    ok = channel.queue_declare(name, durable=False, exclusive=False, auto_delete=False).method

    assert ok.queue == name


def test_durable_exclusive_queue_is_accepted(channel):
    name = unique("durable-exclusive")

    assert channel.queue_declare(name, durable=True, exclusive=True).method.queue == name
