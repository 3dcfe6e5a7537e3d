"""Declare, delete and bind rules, with RabbitMQ's reply codes and texts."""

from __future__ import annotations

import re

import pytest

from amqpbroker import core
from amqpbroker.protocol import spec


def refused(code: int, text: str):
    """Expects the block to raise the AMQP error with exactly this code and text."""
    kind = core.ChannelException if code < 500 else core.ConnectionException
    return pytest.raises(kind, match=f"^{re.escape(text)}$")


def check(raised: pytest.ExceptionInfo, code: int) -> None:
    assert raised.value.reply_code == code


# Exchanges


def test_exchange_declare_replies_declare_ok(broker, peer) -> None:
    peer.exchange("x", "topic", durable=True)
    assert peer.sink.methods() == [spec.ExchangeDeclareOk()]
    exchange = broker.vhosts["/"].exchanges["x"]
    assert (exchange.type, exchange.durable) == ("topic", True)


def test_exchange_declare_no_wait_sends_nothing(broker, peer) -> None:
    peer.exchange("x", "fanout", no_wait=True)
    assert peer.sink.frames == []
    assert "x" in broker.vhosts["/"].exchanges


def test_declaring_the_default_exchange_is_403(peer) -> None:
    for passive in (False, True):
        with refused(403, "ACCESS_REFUSED - operation not permitted on the default exchange") as raised:
            peer.exchange("", "direct", passive=passive)
        check(raised, 403)


def test_new_exchange_with_amq_prefix_is_403(peer) -> None:
    with refused(403, "ACCESS_REFUSED - exchange name 'amq.custom' contains reserved prefix 'amq.*'"):
        peer.exchange("amq.custom", "direct")


def test_existing_amq_exchange_may_be_redeclared_equivalently_or_passively(peer) -> None:
    peer.exchange("amq.direct", "direct", durable=True)
    peer.exchange("amq.topic", "whatever", passive=True)
    assert peer.sink.methods() == [spec.ExchangeDeclareOk()] * 2


def test_passive_declare_of_missing_exchange_is_404(peer) -> None:
    with refused(404, "NOT_FOUND - no exchange 'missing' in vhost '/'"):
        peer.exchange("missing", "direct", passive=True)


def test_passive_declare_of_missing_exchange_is_404_even_with_no_wait(peer) -> None:
    with refused(404, "NOT_FOUND - no exchange 'missing' in vhost '/'"):
        peer.exchange("missing", "direct", passive=True, no_wait=True)


def test_passive_exchange_declare_ignores_type_and_flags(peer) -> None:
    peer.exchange("x", "direct")
    peer.exchange("x", "fanout", passive=True, durable=True, auto_delete=True)
    assert peer.sink.methods() == [spec.ExchangeDeclareOk()] * 2


@pytest.mark.parametrize(
    ("changed", "text"),
    [
        ({"type": "fanout"}, "inequivalent arg 'type' for exchange 'x' in vhost '/': received 'fanout' but current is 'direct'"),
        ({"durable": True}, "inequivalent arg 'durable' for exchange 'x' in vhost '/': received 'true' but current is 'false'"),
        (
            {"auto_delete": True},
            "inequivalent arg 'auto_delete' for exchange 'x' in vhost '/': received 'true' but current is 'false'",
        ),
    ],
)
def test_exchange_redeclare_with_different_flags_is_406(peer, changed: dict, text: str) -> None:
    peer.exchange("x", "direct")
    declared = {"type": "direct", **changed}
    with refused(406, f"PRECONDITION_FAILED - {text}"):
        peer.exchange("x", **declared)


def test_exchange_redeclare_with_same_flags_is_ok(peer) -> None:
    peer.exchange("x", "topic", durable=True, auto_delete=True)
    peer.exchange("x", "topic", durable=True, auto_delete=True)
    assert peer.sink.methods() == [spec.ExchangeDeclareOk()] * 2


@pytest.mark.parametrize("name", ["x", "existing", "", "amq.direct", "amq.custom"])
def test_exchange_declare_with_unknown_type_is_503_whatever_the_name(peer, name) -> None:
    # RabbitMQ checks the type first: a new name, one that exists, the default exchange and a
    # reserved name all meet it (pika's own acceptance tests declare such a type).
    peer.exchange("existing", "direct")
    with refused(503, "COMMAND_INVALID - unknown exchange type 'no-such-type'"):
        peer.exchange(name, "no-such-type")


def test_passive_exchange_declare_does_not_look_at_the_type(peer) -> None:
    peer.exchange("amq.direct", "no-such-type", passive=True)
    assert peer.sink.methods() == [spec.ExchangeDeclareOk()]


def test_exchange_delete_replies_and_removes_it(broker, peer) -> None:
    peer.exchange("x", "fanout")
    peer.handle(spec.ExchangeDelete(exchange="x"))
    assert peer.sink.methods()[-1] == spec.ExchangeDeleteOk()
    assert "x" not in broker.vhosts["/"].exchanges


def test_exchange_delete_is_idempotent(peer) -> None:
    peer.exchange("x", "fanout")
    peer.handle(spec.ExchangeDelete(exchange="x"))
    peer.handle(spec.ExchangeDelete(exchange="x"))
    peer.handle(spec.ExchangeDelete(exchange="never-declared"))
    assert peer.sink.methods(spec.ExchangeDeleteOk) == [spec.ExchangeDeleteOk()] * 3


def test_exchange_delete_if_unused_with_bindings_is_406(broker, peer) -> None:
    peer.exchange("x", "fanout")
    peer.declare("q")
    peer.bind("q", "x")
    with refused(406, "PRECONDITION_FAILED - exchange 'x' in vhost '/' in use"):
        peer.handle(spec.ExchangeDelete(exchange="x", if_unused=True))
    assert "x" in broker.vhosts["/"].exchanges


def test_exchange_delete_if_unused_without_bindings_deletes(broker, peer) -> None:
    peer.exchange("x", "fanout")
    peer.declare("q")
    peer.bind("q", "x")
    peer.handle(spec.QueueUnbind(queue="q", exchange="x"))
    peer.handle(spec.ExchangeDelete(exchange="x", if_unused=True))
    assert "x" not in broker.vhosts["/"].exchanges


def test_deleting_the_default_exchange_is_403(peer) -> None:
    with refused(403, "ACCESS_REFUSED - operation not permitted on the default exchange"):
        peer.handle(spec.ExchangeDelete(exchange=""))


def test_deleting_an_amq_exchange_is_403(peer) -> None:
    with refused(403, "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed"):
        peer.handle(spec.ExchangeDelete(exchange="amq.direct"))


# Queues


def test_queue_declare_ok_reports_counts(peer, connect) -> None:
    peer.declare("q")
    peer.publish("", "q", b"1")
    peer.publish("", "q", b"2")
    other = connect()
    other.qos(1)
    other.consume("q", "c")
    peer.declare("q")
    # One message went to the consumer; declare-ok counts ready messages and every consumer.
    assert peer.sink.methods(spec.QueueDeclareOk)[-1] == spec.QueueDeclareOk(
        queue="q", message_count=1, consumer_count=1
    )


def test_queue_declare_no_wait_sends_nothing(broker, peer) -> None:
    peer.handle(spec.QueueDeclare(queue="q", no_wait=True))
    assert peer.sink.frames == []
    assert "q" in broker.vhosts["/"].queues


def test_server_named_queue_gets_amq_gen_name(broker, peer) -> None:
    first = peer.declare("")
    second = peer.declare("", exclusive=True)
    for name in (first, second):
        assert re.fullmatch(r"amq\.gen-[A-Za-z0-9_-]{22}", name)
        assert name in broker.vhosts["/"].queues
    assert first != second


DEFAULT_EXCHANGE = "ACCESS_REFUSED - operation not permitted on the default exchange"


@pytest.mark.parametrize(("method", "code", "text"), [
    (spec.QueueBind(queue="no-q", exchange="no-x"), 404, "NOT_FOUND - no exchange 'no-x' in vhost '/'"),
    (spec.QueueBind(queue="no-q", exchange=""), 403, DEFAULT_EXCHANGE),
    (spec.QueueBind(queue="theirs", exchange="no-x"), 404, "NOT_FOUND - no exchange 'no-x' in vhost '/'"),
    (spec.ExchangeBind(destination="no-d", source="no-s"), 404, "NOT_FOUND - no exchange 'no-s' in vhost '/'"),
    (spec.ExchangeBind(destination="no-d", source=""), 403, DEFAULT_EXCHANGE),
    (spec.ExchangeBind(destination="", source="no-s"), 403, DEFAULT_EXCHANGE),
], ids=["queue-and-exchange-missing", "queue-missing-default-exchange", "exclusive-queue-exchange-missing",
        "both-exchanges-missing", "destination-missing-default-source", "default-destination-source-missing"])
def test_a_bind_with_more_than_one_thing_wrong_is_refused_for_the_first_rabbitmq_checks(
        connect, peer, method, code, text) -> None:
    # The default exchange, then the source, then the destination, then exclusive access (as
    # RabbitMQ 3.10.8 answers; aiormq's tests bind a missing queue to a missing exchange).
    other = connect()
    other.channel(1)
    other.declare("theirs", exclusive=True)
    with refused(code, text):
        peer.handle(method)


def test_empty_queue_name_means_last_declared_queue_on_the_channel(broker, peer) -> None:
    name = peer.declare("")
    peer.handle(spec.QueueBind(queue="", exchange="amq.fanout"))
    peer.publish("amq.fanout", "", b"m")
    peer.handle(spec.QueueDeclare(queue="", passive=True))
    assert peer.sink.methods(spec.QueueDeclareOk)[-1] == spec.QueueDeclareOk(queue=name, message_count=1)


def test_empty_queue_name_without_a_declared_queue_is_404(peer) -> None:
    with refused(404, "NOT_FOUND - no previously declared queue"):
        peer.handle(spec.BasicGet(queue=""))


def test_new_queue_with_amq_prefix_is_403(peer) -> None:
    with refused(403, "ACCESS_REFUSED - queue name 'amq.q' contains reserved prefix 'amq.*'"):
        peer.declare("amq.q")


def test_server_named_queue_may_be_declared_passively_but_not_by_name(peer) -> None:
    name = peer.declare("")
    peer.handle(spec.QueueDeclare(queue=name, passive=True))
    # RabbitMQ checks the prefix of every non-passive declare by name, existing queue or not.
    with refused(403, f"ACCESS_REFUSED - queue name '{name}' contains reserved prefix 'amq.*'"):
        peer.declare(name)


def test_passive_declare_of_missing_queue_is_404(peer) -> None:
    with refused(404, "NOT_FOUND - no queue 'missing' in vhost '/'"):
        peer.handle(spec.QueueDeclare(queue="missing", passive=True))
    with refused(404, "NOT_FOUND - no queue 'missing' in vhost '/'"):
        peer.handle(spec.QueueDeclare(queue="missing", passive=True, no_wait=True))


def test_passive_queue_declare_ignores_flags(peer) -> None:
    peer.declare("q")
    peer.handle(spec.QueueDeclare(queue="q", passive=True, durable=True, auto_delete=True))
    assert peer.sink.methods(spec.QueueDeclareOk)[-1].queue == "q"


@pytest.mark.parametrize(
    ("first", "second", "text"),
    [
        (
            {"durable": True},
            {"durable": False},
            "inequivalent arg 'durable' for queue 'q' in vhost '/': received 'false' but current is 'true'",
        ),
        (
            {},
            {"auto_delete": True},
            "inequivalent arg 'auto_delete' for queue 'q' in vhost '/': received 'true' but current is 'false'",
        ),
        (
            {"arguments": {"x-max-length": 10}},
            {"arguments": {"x-max-length": 20}},
            "inequivalent arg 'x-max-length' for queue 'q' in vhost '/': received '20' but current is '10'",
        ),
    ],
)
def test_queue_redeclare_with_different_flags_is_406(peer, first: dict, second: dict, text: str) -> None:
    peer.declare("q", **first)
    with refused(406, f"PRECONDITION_FAILED - {text}"):
        peer.declare("q", **second)


def test_queue_redeclare_with_same_flags_is_ok(peer) -> None:
    peer.declare("q", durable=True, arguments={"x-max-length": 10, "x-unchecked": 1})
    peer.declare("q", durable=True, arguments={"x-max-length": 10})
    assert len(peer.sink.methods(spec.QueueDeclareOk)) == 2


def test_exclusive_durable_queue_is_transient(broker, peer) -> None:
    peer.declare("q", durable=True, exclusive=True)
    assert broker.vhosts["/"].queues["q"].durable is False
    peer.declare("q", durable=False, exclusive=True)


LOCKED = (
    "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'q' in vhost '/'. It could be originally "
    "declared on another connection or the exclusive property value does not match that of the original "
    "declaration."
)


@pytest.mark.parametrize(
    "method",
    [
        spec.QueueDeclare(queue="q"),
        spec.QueueDeclare(queue="q", exclusive=True),
        spec.QueueDeclare(queue="q", passive=True),
        spec.QueueBind(queue="q", exchange="amq.direct", routing_key="k"),
        spec.QueueUnbind(queue="q", exchange="amq.direct", routing_key="k"),
        spec.QueuePurge(queue="q"),
        spec.QueueDelete(queue="q"),
        spec.BasicGet(queue="q"),
        spec.BasicConsume(queue="q"),
    ],
    ids=lambda m: m.NAME,
)
def test_exclusive_queue_of_another_connection_is_405(peer, connect, method) -> None:
    peer.declare("q", exclusive=True)
    other = connect()
    with refused(405, LOCKED):
        other.handle(method)


def test_exclusive_queue_redeclared_without_exclusive_by_its_owner_is_405(peer) -> None:
    peer.declare("q", exclusive=True)
    with refused(405, LOCKED):
        peer.declare("q")


def test_exclusive_queue_may_be_published_to_from_another_connection(broker, peer, connect) -> None:
    peer.declare("q", exclusive=True)
    connect().publish("", "q", b"m")
    assert broker.vhosts["/"].queues["q"].message_count == 1


def test_exclusive_queue_is_usable_from_every_channel_of_its_connection(peer) -> None:
    peer.declare("q", exclusive=True)
    peer.declare("q", ch=2, exclusive=True)
    peer.consume("q", "c", ch=3)


def test_queue_delete_reports_ready_message_count(broker, peer) -> None:
    peer.declare("q")
    for body in (b"1", b"2", b"3"):
        peer.publish("", "q", body)
    peer.handle(spec.QueueDelete(queue="q"))
    assert peer.sink.methods()[-1] == spec.QueueDeleteOk(message_count=3)
    assert "q" not in broker.vhosts["/"].queues


def test_queue_delete_is_idempotent(peer) -> None:
    peer.declare("q")
    peer.handle(spec.QueueDelete(queue="q"))
    peer.handle(spec.QueueDelete(queue="q"))
    peer.handle(spec.QueueDelete(queue="never-declared"))
    assert peer.sink.methods(spec.QueueDeleteOk) == [spec.QueueDeleteOk(message_count=0)] * 3


def test_queue_delete_if_unused_with_consumer_is_406(broker, peer) -> None:
    peer.declare("q")
    peer.consume("q", "c")
    with refused(406, "PRECONDITION_FAILED - queue 'q' in vhost '/' in use"):
        peer.handle(spec.QueueDelete(queue="q", if_unused=True))
    assert "q" in broker.vhosts["/"].queues


def test_queue_delete_if_empty_with_messages_is_406(broker, peer) -> None:
    peer.declare("q")
    peer.publish("", "q", b"m")
    with refused(406, "PRECONDITION_FAILED - queue 'q' in vhost '/' not empty"):
        peer.handle(spec.QueueDelete(queue="q", if_empty=True))
    assert "q" in broker.vhosts["/"].queues


def test_queue_delete_if_unused_and_if_empty_deletes_an_idle_queue(broker, peer) -> None:
    peer.declare("q")
    peer.handle(spec.QueueDelete(queue="q", if_unused=True, if_empty=True))
    assert "q" not in broker.vhosts["/"].queues


def test_queue_purge_drops_ready_messages_and_reports_them(broker, peer) -> None:
    peer.declare("q")
    peer.publish("", "q", b"1")
    peer.publish("", "q", b"2")
    peer.handle(spec.QueuePurge(queue="q"))
    assert peer.sink.methods()[-1] == spec.QueuePurgeOk(message_count=2)
    assert broker.vhosts["/"].queues["q"].message_count == 0


def test_operations_on_missing_queue_are_404(peer) -> None:
    for method in (spec.QueuePurge(queue="nq"), spec.BasicGet(queue="nq"), spec.BasicConsume(queue="nq")):
        with refused(404, "NOT_FOUND - no queue 'nq' in vhost '/'"):
            peer.handle(method)
