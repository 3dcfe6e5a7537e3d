"""Exchange-to-exchange bindings: routing follows them, once per queue, without looping."""

from __future__ import annotations

import pytest

from amqpbroker import core
from amqpbroker.protocol import spec


def ready(broker: core.Broker, name: str) -> list[bytes]:
    return [entry.message.body for entry in broker.vhosts["/"].queues[name].peek()]


def bind_exchange(peer, destination: str, source: str, routing_key: str = "") -> None:
    peer.handle(spec.ExchangeBind(destination=destination, source=source, routing_key=routing_key))


def test_message_reaches_queue_through_a_chain_of_exchanges(broker, peer) -> None:
    peer.exchange("front", "topic")
    peer.exchange("back", "fanout", internal=True)
    bind_exchange(peer, "back", "front", "orders.#")
    peer.declare("q")
    peer.bind("q", "back")
    peer.publish("front", "orders.new", b"routed")
    peer.publish("front", "invoices.new", b"not routed")
    assert ready(broker, "q") == [b"routed"]


def test_cycles_and_diamonds_deliver_one_copy(broker, peer) -> None:
    for name in ("a", "b", "c"):
        peer.exchange(name, "fanout")
    bind_exchange(peer, "b", "a")
    bind_exchange(peer, "c", "a")
    bind_exchange(peer, "c", "b")
    bind_exchange(peer, "a", "c")
    peer.declare("q")
    peer.bind("q", "c")
    peer.bind("q", "a")
    peer.publish("a", "", b"once")
    assert ready(broker, "q") == [b"once"]


def test_unbind_stops_routing_and_deleting_destination_removes_binding(broker, peer) -> None:
    peer.exchange("src", "fanout")
    peer.exchange("dst", "fanout")
    bind_exchange(peer, "dst", "src")
    peer.declare("q")
    peer.bind("q", "dst")
    peer.handle(spec.ExchangeUnbind(destination="dst", source="src"))
    peer.publish("src", "", b"lost")
    assert ready(broker, "q") == []
    bind_exchange(peer, "dst", "src")
    peer.handle(spec.ExchangeDelete(exchange="dst"))
    assert broker.vhosts["/"].exchanges["src"].bindings == {}


def test_binding_to_missing_exchange_is_404(peer) -> None:
    peer.exchange("src", "fanout")
    with pytest.raises(core.ChannelException) as raised:
        bind_exchange(peer, "missing", "src")
    assert raised.value.reply_text == "NOT_FOUND - no exchange 'missing' in vhost '/'"


def test_binding_the_default_exchange_is_403(peer) -> None:
    peer.exchange("src", "fanout")
    with pytest.raises(core.ChannelException) as raised:
        bind_exchange(peer, "", "src")
    assert raised.value.reply_code == 403
