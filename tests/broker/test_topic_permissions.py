"""Topic permissions enforced on publish and on bindings, with RabbitMQ 3.10's order of checks and texts.

The expectations were recorded from RabbitMQ 3.10.8 with a user who has every permission on `/` and
topic permissions on `amq.topic` (write `^{username}\\.`, read `^{vhost}\\.`).
"""

from __future__ import annotations

from typing import Any

import pytest

from amqpbroker import core
from amqpbroker.protocol import spec

from .conftest import Peer

USER = "tp-user"


def refused(routing_key: str, exchange: str = "amq.topic") -> str:
    return (f"ACCESS_REFUSED - access to topic '{routing_key}' in exchange '{exchange}' in vhost '/' "
            f"refused for user '{USER}'")


@pytest.fixture
def user(broker: core.Broker, connect) -> Peer:
    """A connection of a user with every permission on `/` and topic permissions on `amq.topic`; guest
    declared queue `q`, topic exchanges `t` and `internal`, and direct exchange `d`."""
    broker.users.put(core.User(USER, "", []))
    broker.permissions.set("/", USER, ".*", ".*", ".*")
    broker.topic_permissions.set("/", USER, "amq.topic", r"^{username}\.", r"^{vhost}\.")
    guest = connect()
    guest.declare("q")
    guest.exchange("t", "topic")
    guest.exchange("internal", "topic", internal=True)
    guest.exchange("d", "direct")
    return connect(user=USER)


def test_a_publish_needs_write_on_its_routing_key(user: Peer) -> None:
    user.publish("amq.topic", f"{USER}.orders", b"allowed")
    for routing_key in ("other.orders", "{username}.orders", ""):
        with pytest.raises(core.ChannelException) as raised:
            user.publish("amq.topic", routing_key, b"refused")
        assert (raised.value.reply_code, raised.value.reply_text) == (403, refused(routing_key))


def test_cc_and_bcc_keys_are_not_checked(user: Peer) -> None:
    user.publish("amq.topic", f"{USER}.x", b"m", headers={"CC": ["other.y"], "BCC": ["other.z"]})


def test_only_topic_exchanges_with_a_topic_permission_are_checked(broker: core.Broker, user: Peer) -> None:
    for exchange in ("d", ""):
        broker.topic_permissions.set("/", USER, exchange, "^nothing$", "^nothing$")
    user.publish("d", "any", b"a direct exchange is not checked")
    user.publish("", "q", b"nor the default exchange")
    user.publish("t", "any", b"a topic exchange without a topic permission allows every key")
    user.bind("q", "d", "any")
    user.bind("q", "t", "any")


@pytest.mark.parametrize(
    ("exchange", "expected"),
    [
        ("missing", "NOT_FOUND - no exchange 'missing' in vhost '/'"),
        ("internal", "ACCESS_REFUSED - cannot publish to internal exchange 'internal' in vhost '/'"),
    ],
)
def test_a_missing_or_internal_exchange_is_refused_first(
    broker: core.Broker, user: Peer, exchange: str, expected: str
) -> None:
    broker.topic_permissions.set("/", USER, exchange, "^nothing$", "^nothing$")
    with pytest.raises(core.ChannelException) as raised:
        user.publish(exchange, "any", b"x")
    assert raised.value.reply_text == expected


BINDINGS: list[tuple[str, Any]] = [
    ("queue.bind", spec.QueueBind(queue="q", exchange="amq.topic", routing_key="zzz.k")),
    ("queue.unbind", spec.QueueUnbind(queue="q", exchange="amq.topic", routing_key="zzz.k")),
    ("exchange.bind from it", spec.ExchangeBind(destination="d", source="amq.topic", routing_key="zzz.k")),
    ("exchange.unbind from it", spec.ExchangeUnbind(destination="d", source="amq.topic", routing_key="zzz.k")),
    ("queue.bind of a missing queue: 403 before 404",
     spec.QueueBind(queue="missing", exchange="amq.topic", routing_key="zzz.k")),
]


@pytest.mark.parametrize("method", [case[1] for case in BINDINGS], ids=[case[0] for case in BINDINGS])
def test_a_binding_needs_read_on_its_key(user: Peer, method: Any) -> None:
    with pytest.raises(core.ChannelException) as raised:
        user.handle(method)
    assert raised.value.reply_text == refused("zzz.k")


def test_a_binding_with_read_on_its_key(user: Peer) -> None:
    user.bind("q", "amq.topic", "/.k")
    user.handle(spec.QueueUnbind(queue="q", exchange="amq.topic", routing_key="/.k"))
    # An exchange binding's destination is not checked: only its source is.
    user.handle(spec.ExchangeBind(destination="amq.topic", source="d", routing_key="zzz.k"))


def test_an_empty_expression_allows_only_the_empty_key(broker: core.Broker, user: Peer) -> None:
    broker.topic_permissions.set("/", USER, "t", "", "")
    user.publish("t", "", b"the empty key")
    user.bind("q", "t", "")
    with pytest.raises(core.ChannelException) as raised:
        user.publish("t", "x", b"x")
    assert raised.value.reply_text == refused("x", "t")


def test_client_id_is_not_expanded_for_amqp_clients(broker: core.Broker, connect) -> None:
    broker.users.put(core.User(USER, "", []))
    broker.permissions.set("/", USER, ".*", ".*", ".*")
    broker.topic_permissions.set("/", USER, "amq.topic", r"^{client_id}\.", "")
    peer = connect(user=USER)
    peer.publish("amq.topic", "{client_id}.x", b"matched as written, as RabbitMQ 3.10 matches it")


def test_a_name_that_makes_the_expression_malformed_is_an_internal_error(broker: core.Broker, connect) -> None:
    # As RabbitMQ 3.10.8, whose channel crashes on the expression `^a(b`.
    broker.users.put(core.User("a(b", "", []))
    broker.permissions.set("/", "a(b", ".*", ".*", ".*")
    broker.topic_permissions.set("/", "a(b", "amq.topic", "^{username}", ".*")
    peer = connect(user="a(b")
    with pytest.raises(core.ConnectionException) as raised:
        peer.publish("amq.topic", "a(b.x", b"x")
    assert (raised.value.reply_code, raised.value.reply_text) == (541, "INTERNAL_ERROR")
    # The read expression, well-formed, still applies.
    peer.declare("q", ch=2)
    peer.bind("q", "amq.topic", "any", ch=2)


def test_a_change_applies_to_open_connections(broker: core.Broker, user: Peer) -> None:
    user.publish("amq.topic", f"{USER}.x", b"allowed")
    broker.topic_permissions.set("/", USER, "amq.topic", "^nothing$", "")
    with pytest.raises(core.ChannelException):
        user.publish("amq.topic", f"{USER}.x", b"refused now")
    assert broker.topic_permissions.clear("/", USER)
    user.publish("amq.topic", "anything", b"no topic permission: allowed", ch=2)


def test_clear_takes_one_exchange_or_all(broker: core.Broker, user: Peer) -> None:
    topics = broker.topic_permissions
    topics.set("/", USER, "t", "a", "b")
    assert not topics.clear("/", USER, "missing")
    assert topics.clear("/", USER, "t")
    assert [p.exchange for p in topics.of("/", USER)] == ["amq.topic"]
    assert topics.clear("/", USER)
    assert not topics.clear("/", USER)
    assert topics.of("/", USER) == []


def test_deleting_a_user_or_a_vhost_takes_their_topic_permissions(broker: core.Broker) -> None:
    topics = broker.topic_permissions
    broker.users.put(core.User("a", "", []))
    broker.users.put(core.User("b", "", []))
    broker.add_vhost("v")
    for vhost in ("/", "v"):
        for name in ("a", "b"):
            topics.set(vhost, name, "amq.topic", "w", "r")
    broker.delete_user("a")
    assert [(p.vhost, p.user) for p in topics] == [("/", "b"), ("v", "b")]
    broker.delete_vhost("v")
    assert [(p.vhost, p.user) for p in topics] == [("/", "b")]


def test_a_malformed_expression_is_refused_before_anything_is_stored(broker: core.Broker) -> None:
    with pytest.raises(Exception, match="missing \\)"):
        broker.topic_permissions.set("/", "guest", "amq.topic", "(", "")
    assert list(broker.topic_permissions) == []
