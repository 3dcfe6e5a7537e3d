"""Routing through each exchange type, and through the default exchange by queue name."""

from __future__ import annotations

import pytest

from amqpbroker import core
from amqpbroker.protocol import spec


def queues(peer, *names: str) -> None:
    for name in names:
        peer.declare(name)


def ready(broker: core.Broker, name: str) -> list[bytes]:
    """The bodies waiting in a queue, in delivery order."""
    return [entry.message.body for entry in broker.vhosts["/"].queues[name].peek()]


def test_default_exchange_routes_by_queue_name(broker, peer) -> None:
    queues(peer, "q1", "q2")
    peer.publish("", "q1", b"one")
    peer.publish("", "q2", b"two")
    peer.publish("", "missing", b"lost")
    assert ready(broker, "q1") == [b"one"]
    assert ready(broker, "q2") == [b"two"]


def test_default_exchange_routes_to_server_named_queue(broker, peer) -> None:
    name = peer.declare("")
    peer.publish("", name, b"m")
    assert ready(broker, name) == [b"m"]


def test_direct_exchange_routes_on_exact_key(broker, peer) -> None:
    queues(peer, "info", "errors")
    peer.exchange("logs", "direct")
    peer.bind("info", "logs", "info")
    peer.bind("errors", "logs", "error")
    peer.bind("errors", "logs", "fatal")
    for key in ("info", "error", "fatal", "debug", "info.x", ""):
        peer.publish("logs", key, key.encode())
    assert ready(broker, "info") == [b"info"]
    assert ready(broker, "errors") == [b"error", b"fatal"]


def test_direct_exchange_delivers_one_copy_to_a_queue_bound_twice(broker, peer) -> None:
    queues(peer, "q")
    peer.bind("q", "amq.direct", "k")
    peer.bind("q", "amq.direct", "k", {"x-other": 1})
    peer.publish("amq.direct", "k", b"m")
    assert ready(broker, "q") == [b"m"]


def test_fanout_exchange_ignores_routing_key(broker, peer) -> None:
    queues(peer, "q1", "q2", "unbound")
    peer.exchange("news", "fanout")
    peer.bind("q1", "news", "")
    peer.bind("q2", "news", "anything")
    peer.bind("q2", "news", "twice")
    peer.publish("news", "whatever", b"m")
    assert ready(broker, "q1") == [b"m"]
    assert ready(broker, "q2") == [b"m"]
    assert ready(broker, "unbound") == []


def test_topic_exchange_routes_by_pattern(broker, peer) -> None:
    queues(peer, "kern", "crit", "all")
    peer.exchange("t", "topic")
    peer.bind("kern", "t", "kern.*")
    peer.bind("crit", "t", "*.critical")
    peer.bind("all", "t", "#")
    for key in ("kern.critical", "kern.info", "user.critical", "kern", "a.b.c"):
        peer.publish("t", key, key.encode())
    assert ready(broker, "kern") == [b"kern.critical", b"kern.info"]
    assert ready(broker, "crit") == [b"kern.critical", b"user.critical"]
    assert ready(broker, "all") == [b"kern.critical", b"kern.info", b"user.critical", b"kern", b"a.b.c"]


def test_topic_exchange_delivers_one_copy_when_several_bindings_match(broker, peer) -> None:
    queues(peer, "q")
    for pattern in ("a.*", "#", "a.b", "*.b", "a.#"):
        peer.bind("q", "amq.topic", pattern)
    peer.publish("amq.topic", "a.b", b"m")
    assert ready(broker, "q") == [b"m"]


def test_headers_exchange_all_needs_every_header(broker, peer) -> None:
    queues(peer, "q")
    peer.bind("q", "amq.headers", "", {"x-match": "all", "format": "pdf", "type": "report"})
    peer.publish("amq.headers", "", b"both", headers={"format": "pdf", "type": "report", "extra": 1})
    peer.publish("amq.headers", "", b"one", headers={"format": "pdf"})
    peer.publish("amq.headers", "", b"wrong", headers={"format": "zip", "type": "report"})
    peer.publish("amq.headers", "", b"none")
    assert ready(broker, "q") == [b"both"]


def test_headers_exchange_any_needs_one_header(broker, peer) -> None:
    queues(peer, "q")
    peer.bind("q", "amq.headers", "", {"x-match": "any", "format": "pdf", "type": "report"})
    peer.publish("amq.headers", "", b"both", headers={"format": "pdf", "type": "report"})
    peer.publish("amq.headers", "", b"one", headers={"type": "report"})
    peer.publish("amq.headers", "", b"wrong", headers={"format": "zip", "type": "log"})
    peer.publish("amq.headers", "", b"none")
    assert ready(broker, "q") == [b"both", b"one"]


def test_headers_exchange_defaults_to_all(broker, peer) -> None:
    queues(peer, "q")
    peer.bind("q", "amq.headers", "", {"a": 1, "b": 2})
    peer.publish("amq.headers", "", b"one", headers={"a": 1})
    peer.publish("amq.headers", "", b"both", headers={"a": 1, "b": 2})
    assert ready(broker, "q") == [b"both"]


def test_headers_exchange_ignores_routing_key_and_x_arguments(broker, peer) -> None:
    queues(peer, "q")
    peer.bind("q", "amq.headers", "some-key", {"x-match": "all", "x-custom": "v", "a": "1"})
    peer.publish("amq.headers", "other-key", b"m", headers={"a": "1"})
    assert ready(broker, "q") == [b"m"]


def test_headers_exchange_with_several_matching_bindings_delivers_one_copy(broker, peer) -> None:
    queues(peer, "q")
    peer.bind("q", "amq.headers", "", {"x-match": "any", "a": 1})
    peer.bind("q", "amq.headers", "", {"x-match": "any", "b": 2})
    peer.publish("amq.headers", "", b"m", headers={"a": 1, "b": 2})
    assert ready(broker, "q") == [b"m"]


def test_one_message_routed_to_many_queues_is_stored_once(broker, peer) -> None:
    queues(peer, "q1", "q2")
    peer.bind("q1", "amq.fanout")
    peer.bind("q2", "amq.fanout")
    peer.publish("amq.fanout", "", b"m")
    q1, q2 = (broker.vhosts["/"].queues[n].peek()[0] for n in ("q1", "q2"))
    assert q1.message is q2.message


def test_unbind_stops_routing(broker, peer) -> None:
    queues(peer, "q")
    peer.bind("q", "amq.topic", "a.*")
    peer.handle(spec.QueueUnbind(queue="q", exchange="amq.topic", routing_key="a.*"))
    assert isinstance(peer.sink.methods()[-1], spec.QueueUnbindOk)
    peer.publish("amq.topic", "a.b", b"m")
    assert ready(broker, "q") == []


def test_unbind_must_name_the_binding_arguments(broker, peer) -> None:
    queues(peer, "q")
    peer.bind("q", "amq.direct", "k", {"x-tag": 1})
    peer.handle(spec.QueueUnbind(queue="q", exchange="amq.direct", routing_key="k"))
    peer.publish("amq.direct", "k", b"still bound")
    peer.handle(spec.QueueUnbind(queue="q", exchange="amq.direct", routing_key="k", arguments={"x-tag": 1}))
    peer.publish("amq.direct", "k", b"unbound")
    assert ready(broker, "q") == [b"still bound"]


def test_unbind_of_missing_binding_queue_or_exchange_succeeds(peer) -> None:
    queues(peer, "q")
    peer.handle(spec.QueueUnbind(queue="q", exchange="amq.direct", routing_key="never"))
    peer.handle(spec.QueueUnbind(queue="missing", exchange="amq.direct", routing_key="k"))
    peer.handle(spec.QueueUnbind(queue="q", exchange="missing", routing_key="k"))
    assert peer.sink.methods(spec.QueueUnbindOk) == [spec.QueueUnbindOk()] * 3


def test_bind_to_missing_queue_or_exchange_is_404(peer) -> None:
    queues(peer, "q")
    with pytest.raises(core.ChannelException) as raised:
        peer.bind("missing", "amq.direct", "k")
    assert (raised.value.reply_code, raised.value.reply_text) == (404, "NOT_FOUND - no queue 'missing' in vhost '/'")
    with pytest.raises(core.ChannelException) as raised:
        peer.bind("q", "missing", "k")
    assert (raised.value.reply_code, raised.value.reply_text) == (
        404,
        "NOT_FOUND - no exchange 'missing' in vhost '/'",
    )


def test_bind_to_default_exchange_is_403(peer) -> None:
    queues(peer, "q")
    with pytest.raises(core.ChannelException) as raised:
        peer.bind("q", "", "q")
    assert (raised.value.reply_code, raised.value.reply_text) == (
        403,
        "ACCESS_REFUSED - operation not permitted on the default exchange",
    )


def test_publish_to_missing_exchange_is_404(peer) -> None:
    with pytest.raises(core.ChannelException) as raised:
        peer.publish("missing", "k", b"m")
    assert (raised.value.reply_code, raised.value.reply_text) == (
        404,
        "NOT_FOUND - no exchange 'missing' in vhost '/'",
    )


def test_publish_to_internal_exchange_is_403(peer) -> None:
    peer.exchange("inner", "fanout", internal=True)
    with pytest.raises(core.ChannelException) as raised:
        peer.publish("inner", "", b"m")
    assert (raised.value.reply_code, raised.value.reply_text) == (
        403,
        "ACCESS_REFUSED - cannot publish to internal exchange 'inner' in vhost '/'",
    )


def test_deleted_queue_is_no_longer_routed_to(broker, peer) -> None:
    queues(peer, "q")
    peer.bind("q", "amq.fanout")
    peer.handle(spec.QueueDelete(queue="q"))
    peer.declare("q")
    peer.publish("amq.fanout", "", b"m")
    assert ready(broker, "q") == []


def test_auto_delete_exchange_goes_with_its_last_binding(broker, peer) -> None:
    queues(peer, "q1", "q2")
    peer.exchange("ad", "fanout", auto_delete=True)
    peer.bind("q1", "ad")
    peer.bind("q2", "ad")
    peer.handle(spec.QueueUnbind(queue="q1", exchange="ad"))
    assert "ad" in broker.vhosts["/"].exchanges
    peer.handle(spec.QueueDelete(queue="q2"))
    assert "ad" not in broker.vhosts["/"].exchanges


def test_auto_delete_exchange_without_bindings_survives_unrelated_changes(broker, peer) -> None:
    peer.exchange("ad", "fanout", auto_delete=True)
    peer.declare("q")
    peer.bind("q", "amq.direct", "k")
    peer.handle(spec.QueueUnbind(queue="q", exchange="ad"))
    peer.handle(spec.QueueDelete(queue="q"))
    assert "ad" in broker.vhosts["/"].exchanges
