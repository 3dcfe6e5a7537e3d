"""Permissions enforced on every AMQP operation, with RabbitMQ 3.10's order of checks and 403 texts.

The expectations were recorded from RabbitMQ 3.10.8 with a user whose permissions are configure
`^(c|cw|cr|cwr)-`, write `^(w|cw|wr|cwr)-`, read `^(r|cr|wr|cwr)-`: a name's prefix says what the
user may do with it.
"""

from __future__ import annotations

from typing import Any

import pytest

from amqpbroker import core
from amqpbroker.protocol import spec

from .conftest import Peer

USER = "pp-user"
NAMES = ("r", "w", "c", "cwr", "x", "cw", "wr")


def refused(kind: str, name: str) -> str:
    return f"ACCESS_REFUSED - access to {kind} '{name}' in vhost '/' refused for user '{USER}'"


@pytest.fixture
def setup(broker: core.Broker, connect) -> Peer:
    """Queues `<p>-q` and exchanges `<p>-e` for every prefix, made by guest; a connection of the user."""
    broker.users.put(core.User(USER, "", []))
    broker.permissions.set("/", USER, "^(c|cw|cr|cwr)-", "^(w|cw|wr|cwr)-", "^(r|cr|wr|cwr)-")
    guest = connect()
    for prefix in NAMES:
        guest.declare(f"{prefix}-q")
        guest.exchange(f"{prefix}-e")
    return connect(user=USER)


CASES: list[tuple[str, Any, str | None]] = [
    ("declare without configure", spec.QueueDeclare(queue="w-q"), refused("queue", "w-q")),
    ("declare a new queue", spec.QueueDeclare(queue="w-new"), refused("queue", "w-new")),
    ("declare passive needs nothing", spec.QueueDeclare(queue="w-q", passive=True), None),
    ("declare exclusive", spec.QueueDeclare(queue="x-ex", exclusive=True), refused("queue", "x-ex")),
    ("reserved prefix first", spec.QueueDeclare(queue="amq.foo"),
     "ACCESS_REFUSED - queue name 'amq.foo' contains reserved prefix 'amq.*'"),
    ("dead-letter queue needs read on itself", spec.QueueDeclare(queue="c-dlx", arguments={"x-dead-letter-exchange": "w-e"}),
     refused("queue", "c-dlx")),
    ("dead-letter queue with write on the exchange", spec.QueueDeclare(queue="cr-dlx", arguments={"x-dead-letter-exchange": "w-e"}), None),
    ("dead-letter exchange needs write", spec.QueueDeclare(queue="cr-dlx", arguments={"x-dead-letter-exchange": "nonexist"}),
     refused("exchange", "nonexist")),
    ("dead-letter to the default exchange", spec.QueueDeclare(queue="cr-dlx", arguments={"x-dead-letter-exchange": ""}),
     refused("exchange", "amq.default")),
    ("delete without configure", spec.QueueDelete(queue="w-q"), refused("queue", "w-q")),
    ("delete a missing queue", spec.QueueDelete(queue="x-none"), refused("queue", "x-none")),
    ("purge needs read", spec.QueuePurge(queue="w-q"), refused("queue", "w-q")),
    ("purge with read", spec.QueuePurge(queue="r-q"), None),
    ("purge a missing queue", spec.QueuePurge(queue="x-none"), refused("queue", "x-none")),
    ("bind needs write on the queue", spec.QueueBind(queue="r-q", exchange="r-e"), refused("queue", "r-q")),
    ("bind needs read on the exchange", spec.QueueBind(queue="w-q", exchange="w-e"), refused("exchange", "w-e")),
    ("bind with both", spec.QueueBind(queue="w-q", exchange="r-e"), None),
    ("bind to the default exchange", spec.QueueBind(queue="w-q", exchange=""),
     "ACCESS_REFUSED - operation not permitted on the default exchange"),
    ("bind to the default exchange, no write", spec.QueueBind(queue="x-q", exchange=""), refused("queue", "x-q")),
    ("bind a missing exchange", spec.QueueBind(queue="w-q", exchange="r-missing"),
     "NOT_FOUND - no exchange 'r-missing' in vhost '/'"),
    ("bind a missing queue", spec.QueueBind(queue="w-missing", exchange="r-e"), "NOT_FOUND - no queue 'w-missing' in vhost '/'"),
    ("unbind needs write on the queue", spec.QueueUnbind(queue="r-q", exchange="r-e"), refused("queue", "r-q")),
    ("unbind needs read on the exchange", spec.QueueUnbind(queue="w-q", exchange="w-e"), refused("exchange", "w-e")),
    ("unbind with both", spec.QueueUnbind(queue="w-q", exchange="r-e"), None),
    ("exchange declare without configure", spec.ExchangeDeclare(exchange="w-e", type="direct"), refused("exchange", "w-e")),
    ("exchange declare passive", spec.ExchangeDeclare(exchange="w-e", type="direct", passive=True), None),
    ("alternate exchange needs read on the new one",
     spec.ExchangeDeclare(exchange="c-ae", type="direct", arguments={"alternate-exchange": "w-e"}), refused("exchange", "c-ae")),
    ("alternate exchange with write on it",
     spec.ExchangeDeclare(exchange="cr-ae", type="direct", arguments={"alternate-exchange": "w-e"}), None),
    ("alternate exchange needs write",
     spec.ExchangeDeclare(exchange="cr-ae", type="direct", arguments={"alternate-exchange": "x-e"}), refused("exchange", "x-e")),
    ("declare amq.direct", spec.ExchangeDeclare(exchange="amq.direct", type="direct"), refused("exchange", "amq.direct")),
    ("declare a new amq. exchange", spec.ExchangeDeclare(exchange="amq.newx", type="direct"), refused("exchange", "amq.newx")),
    ("declare the default exchange", spec.ExchangeDeclare(exchange="", type="direct"),
     "ACCESS_REFUSED - operation not permitted on the default exchange"),
    ("exchange delete without configure", spec.ExchangeDelete(exchange="w-e"), refused("exchange", "w-e")),
    ("exchange delete missing", spec.ExchangeDelete(exchange="x-missing"), refused("exchange", "x-missing")),
    ("delete a system exchange", spec.ExchangeDelete(exchange="amq.direct"),
     "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed"),
    ("exchange bind needs write on the destination", spec.ExchangeBind(destination="r-e", source="r-e"), refused("exchange", "r-e")),
    ("exchange bind needs read on the source", spec.ExchangeBind(destination="w-e", source="w-e"), refused("exchange", "w-e")),
    ("exchange bind with both", spec.ExchangeBind(destination="w-e", source="r-e"), None),
    ("exchange unbind", spec.ExchangeUnbind(destination="x-e", source="x-e"), refused("exchange", "x-e")),
    ("consume needs read", spec.BasicConsume(queue="w-q"), refused("queue", "w-q")),
    ("consume a missing queue", spec.BasicConsume(queue="x-missing"), refused("queue", "x-missing")),
    ("consume with read", spec.BasicConsume(queue="r-q"), None),
    ("get needs read", spec.BasicGet(queue="w-q"), refused("queue", "w-q")),
    ("get with read", spec.BasicGet(queue="r-q"), None),
    ("direct reply-to needs nothing", spec.BasicConsume(queue="amq.rabbitmq.reply-to", no_ack=True), None),
]


@pytest.mark.parametrize(("method", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_operation(setup: Peer, method: Any, expected: str | None) -> None:
    if expected is None:
        setup.handle(method)
        return
    with pytest.raises(core.AMQPException) as raised:
        setup.handle(method)
    assert raised.value.reply_text == expected


@pytest.mark.parametrize(
    ("exchange", "expected"),
    [
        ("x-e", refused("exchange", "x-e")),
        ("", refused("exchange", "amq.default")),
        ("x-missing", refused("exchange", "x-missing")),  # 403 before 404
    ],
)
def test_publish_needs_write_on_the_exchange(setup: Peer, exchange: str, expected: str) -> None:
    with pytest.raises(core.ChannelException) as raised:
        setup.publish(exchange, "r-q", b"x")
    assert raised.value.reply_text == expected


def test_publish_with_write(setup: Peer, connect) -> None:
    setup.bind("w-q", "r-e", "k")  # the user may bind w-q (write) to r-e (read)
    setup.publish("w-e", "k", b"x")
    guest = connect()
    guest.bind("w-q", "w-e", "k")
    setup.publish("w-e", "k", b"routed")
    assert guest.get("w-q") == b"routed"


def test_a_server_named_queue_needs_configure_on_its_name(setup: Peer) -> None:
    with pytest.raises(core.ChannelException) as raised:
        setup.handle(spec.QueueDeclare(queue="", exclusive=True))
    assert raised.value.reply_text.startswith("ACCESS_REFUSED - access to queue 'amq.gen-")
    assert raised.value.reply_text.endswith(f"' in vhost '/' refused for user '{USER}'")


def test_a_permission_change_applies_to_open_connections(broker: core.Broker, setup: Peer) -> None:
    setup.publish("w-e", "k", b"allowed, and remembered")
    broker.permissions.set("/", USER, "", "^r-", "")
    with pytest.raises(core.ChannelException):
        setup.publish("w-e", "k", b"x")
    setup.publish("r-e", "k", b"x", ch=2)


def test_an_unknown_exchange_type_is_503_before_permissions(setup: Peer) -> None:
    with pytest.raises(core.ConnectionException, match="^COMMAND_INVALID - unknown exchange type 'zzz'$"):
        setup.handle(spec.ExchangeDeclare(exchange="w-new", type="zzz"), 1)


def test_empty_expressions_allow_nothing(broker: core.Broker, setup: Peer) -> None:
    broker.permissions.set("/", USER, "", "", "")
    assert broker.can_open_vhost(USER, "/")
    with pytest.raises(core.ChannelException):
        setup.handle(spec.QueueDeclare(queue="c-q"))


def test_a_vhost_opens_only_with_a_permission_in_it(broker: core.Broker) -> None:
    broker.users.put(core.User("other", "", []))
    broker.add_vhost("v")
    assert not broker.can_open_vhost("other", "/")
    assert not broker.can_open_vhost("guest", "v")  # as rabbitmqctl add_vhost: nobody has permissions yet
    broker.permissions.set("v", "other", ".*", ".*", ".*")
    assert broker.can_open_vhost("other", "v")
    assert not broker.can_open_vhost("other", "missing")
