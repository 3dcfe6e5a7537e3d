"""What a restart keeps of deduplication and of delayed messages, in the core over both stores,
with clocks the test drives."""

from __future__ import annotations

from amqpbroker.protocol import BasicProperties, spec

from .core_support import Client
from .test_queue_features import Host, host  # noqa: F401  (the fixture)

DEDUP = "x-deduplication-header"


def publish(client: Client, exchange: str, routing_key: str, body: bytes, *, persistent: bool = True,
            **headers: object) -> None:
    properties = BasicProperties(delivery_mode=2 if persistent else 1, headers=headers or None).encode()
    session = client.connection.sessions.get(1) or client.connection.open_channel(1)
    session.publish(spec.BasicPublish(exchange=exchange, routing_key=routing_key), properties, body)
    client.connection.flush_confirms()


def bodies(client: Client, queue: str) -> list[bytes]:
    return [body for body, _ in client.drain(queue)]


def test_a_deduplication_queue_knows_its_values_again_after_a_restart(host: Host) -> None:
    client = host.client()
    client.send(spec.QueueDeclare(queue="q", durable=True, arguments={"x-message-deduplication": True}))
    publish(client, "", "q", b"kept", **{DEDUP: "a"})
    publish(client, "", "q", b"transient", persistent=False, **{DEDUP: "b"})
    host.restart()
    client = host.client()
    publish(client, "", "q", b"dup", **{DEDUP: "a"})
    publish(client, "", "q", b"b-again", **{DEDUP: "b"})  # its first message did not survive
    assert bodies(client, "q") == [b"kept", b"b-again"]


def test_a_disk_cache_of_a_durable_exchange_survives_a_restart_a_memory_one_does_not(host: Host) -> None:
    client = host.client()
    for name, persistence in (("disk", "disk"), ("memory", "memory")):
        client.send(spec.ExchangeDeclare(
            exchange=name, type="x-message-deduplication", durable=True,
            arguments={"x-cache-size": 2, "x-cache-ttl": 10_000, "x-cache-persistence": persistence},
        ))
        client.send(spec.QueueDeclare(queue=name, durable=True))
        client.send(spec.QueueBind(queue=name, exchange=name))
    for name in ("disk", "memory"):
        for value in ("pushed-out", "a", "b"):
            publish(client, name, "", value.encode(), **{DEDUP: value})
    host.advance(5)
    host.restart(down_for=4)
    client = host.client()
    for name in ("disk", "memory"):
        for value in ("a", "b", "pushed-out"):
            publish(client, name, "", b"again-" + value.encode(), **{DEDUP: value})
    assert bodies(client, "disk") == [b"pushed-out", b"a", b"b", b"again-pushed-out"]
    assert bodies(client, "memory") == [b"pushed-out", b"a", b"b", b"again-a", b"again-b", b"again-pushed-out"]
    # The cache's window goes on in time of day across the restart: 10 s from the first publish.
    host.advance(1)
    publish(client, "disk", "", b"expired-b", **{DEDUP: "b"})
    assert bodies(client, "disk") == [b"expired-b"]


def test_a_recovered_cache_still_forgets_its_oldest_value_first(host: Host) -> None:
    client = host.client()
    client.send(spec.ExchangeDeclare(
        exchange="x", type="x-message-deduplication", durable=True,
        arguments={"x-cache-size": 8, "x-cache-persistence": "disk"},
    ))
    values = [f"v{n}" for n in range(8, 0, -1)]
    for value in values:
        publish(client, "x", "", b"m", **{DEDUP: value})
    host.restart()
    cache = host.broker.vhosts["/"].exchanges["x"].cache
    assert cache.keys() == [repr(value) for value in values]
    publish(host.client(), "x", "", b"m", **{DEDUP: "new"})
    assert cache.keys() == [repr(value) for value in values[1:]] + ["'new'"]


def test_a_deleted_deduplication_exchange_leaves_no_cache_behind(host: Host) -> None:
    client = host.client()
    declare = spec.ExchangeDeclare(
        exchange="x", type="x-message-deduplication", durable=True,
        arguments={"x-cache-size": 5, "x-cache-persistence": "disk"},
    )
    client.send(declare)
    publish(client, "x", "", b"m", **{DEDUP: "a"})
    client.send(spec.ExchangeDelete(exchange="x"))
    client.send(declare)
    client.send(spec.QueueDeclare(queue="q", durable=True))
    client.send(spec.QueueBind(queue="q", exchange="x"))
    host.restart()
    client = host.client()
    publish(client, "x", "", b"new", **{DEDUP: "a"})
    assert bodies(client, "q") == [b"new"]


def delayed_setup(client: Client) -> None:
    client.send(spec.ExchangeDeclare(
        exchange="x", type="x-delayed-message", durable=True, arguments={"x-delayed-type": "direct"}
    ))
    client.send(spec.QueueDeclare(queue="q", durable=True))
    client.send(spec.QueueBind(queue="q", exchange="x", routing_key="k"))


def test_persistent_held_messages_survive_a_restart_and_keep_their_time(host: Host) -> None:
    client = host.client()
    delayed_setup(client)
    publish(client, "x", "k", b"persistent-1s", **{"x-delay": 1000})
    publish(client, "x", "k", b"persistent-3s", **{"x-delay": 3000})
    publish(client, "x", "k", b"transient", persistent=False, **{"x-delay": 1000})
    host.advance(0.5)
    host.restart(down_for=1)  # the first is due while the broker is down
    client = host.client()
    host.broker.expire()
    assert bodies(client, "q") == [b"persistent-1s"]
    host.advance(1.4)
    host.broker.expire()
    assert bodies(client, "q") == []
    host.advance(0.1)
    host.broker.expire()
    assert bodies(client, "q") == [b"persistent-3s"]


def test_a_routed_held_message_is_not_routed_again_after_a_restart(host: Host) -> None:
    client = host.client()
    delayed_setup(client)
    publish(client, "x", "k", b"m", **{"x-delay": 100})
    host.broker.commit()
    host.advance(0.1)
    host.broker.expire()
    host.restart()
    client = host.client()
    host.advance(1)
    host.broker.expire()
    assert bodies(client, "q") == [b"m"]
    host.restart()
    host.broker.expire()
    assert bodies(host.client(), "q") == []


def test_a_deleted_delayed_exchange_leaves_nothing_to_route(host: Host) -> None:
    client = host.client()
    delayed_setup(client)
    publish(client, "x", "k", b"m", **{"x-delay": 100})
    client.send(spec.ExchangeDelete(exchange="x"))
    delayed_setup(client)
    host.restart(down_for=1)
    host.broker.expire()
    assert bodies(host.client(), "q") == []
