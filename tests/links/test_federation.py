"""Exchange federation from a RabbitMQ node started by the tests (the upstream) into amqpbroker: an
upstream parameter and a policy federate an exchange here, which then receives what is published
to the upstream exchange for the binding keys it has here, following its bindings, and survives
the upstream being killed (SIGKILL) and restarted. And a broker federating from itself, whose
messages come back once and stop there."""

from __future__ import annotations

import time

import pika
import pytest

from amqpbroker.testing import Broker
from amqpbroker.testing.rabbitmq import RabbitMQNode

from .support import Publisher, api, check_at_least_once_in_order, drain, shovel_uri, unique, wait_for


def federate(broker: Broker, remote: RabbitMQNode, exchange: str, upstream_exchange: str, **settings: object) -> str:
    """An upstream (the remote's `upstream_exchange`) and a policy federating `exchange` with it."""
    upstream = unique("upstream")
    value = {"uri": shovel_uri(remote.url), "exchange": upstream_exchange, "reconnect-delay": 0.5, **settings}
    assert api(broker.http_url, "PUT", f"/api/parameters/federation-upstream/%2F/{upstream}", {"value": value})[0] == 201
    policy = {"pattern": f"^{exchange}$", "apply-to": "exchanges", "definition": {"federation-upstream": upstream}}
    assert api(broker.http_url, "PUT", f"/api/policies/%2F/{unique('federate')}", policy)[0] == 201
    return upstream


def link_state(broker: Broker, exchange: str, upstream: str) -> str | None:
    def read() -> str | None:
        link = broker.server.links.federation.get(("/", exchange, upstream))
        return None if link is None else link.status.state

    return broker.call(read)


def declare(broker: Broker, remote: RabbitMQNode, exchange_type: str, binding_key: str | None = None
            ) -> tuple[str, str, str, pika.BlockingConnection]:
    """An exchange upstream, an exchange here of the same type with a queue bound to it (with
    `binding_key`, by default the queue's name): their names and a connection here."""
    upstream_exchange, exchange, queue = unique("up"), unique("fed"), unique("q")
    theirs = pika.BlockingConnection(pika.URLParameters(remote.url))
    theirs.channel().exchange_declare(upstream_exchange, exchange_type, durable=True)
    theirs.close()
    mine = pika.BlockingConnection(pika.URLParameters(broker.url))
    channel = mine.channel()
    channel.exchange_declare(exchange, exchange_type, durable=True)
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, exchange, binding_key)
    return upstream_exchange, exchange, queue, mine


def test_messages_published_upstream_arrive_for_the_bindings_here(broker: Broker, remote: RabbitMQNode) -> None:
    upstream_exchange, exchange, queue, mine = declare(broker, remote, "topic", "a.*")
    channel = mine.channel()
    upstream = federate(broker, remote, exchange, upstream_exchange)
    wait_for(lambda: link_state(broker, exchange, upstream) == "running", "the link to run")

    theirs = pika.BlockingConnection(pika.URLParameters(remote.url))
    publisher = theirs.channel()
    publisher.confirm_delivery()
    for key in ("a.1", "c.1", "a.2"):
        publisher.basic_publish(upstream_exchange, key, key.encode(), pika.BasicProperties(headers={"h": 1}))
    arrived = next_messages(mine, channel, queue, 2)
    assert [body for _, body in arrived] == [b"a.1", b"a.2"]
    [hop] = arrived[0][0].headers.pop("x-received-from")
    assert arrived[0][0].headers == {"h": 1}
    # The cluster name is the upstream's own: RabbitMQ's is its node name with the machine's host name.
    assert hop.pop("cluster-name").startswith(remote.name.partition("@")[0] + "@")
    assert hop == {"uri": shovel_uri(remote.url).replace("guest:guest@", ""), "exchange": exchange,
                   "redelivered": False, "vhost": "/"}

    # A binding made here is made upstream (c.2 comes once it is), and one removed here is removed
    # upstream: once c.3 stops coming, a c.4 sent before the marker a.3 does not come before it.
    channel.queue_bind(queue, exchange, "c.*")
    wait_for(lambda: published_and_came(mine, publisher, channel, upstream_exchange, queue, "c.2"), "c.2")
    channel.queue_unbind(queue, exchange, "c.*")
    wait_for(lambda: not published_and_came(mine, publisher, channel, upstream_exchange, queue, "c.3"), "no c.3")
    publisher.basic_publish(upstream_exchange, "c.4", b"c.4")
    publisher.basic_publish(upstream_exchange, "a.3", b"a.3")
    assert [body for _, body in next_messages(mine, channel, queue, 1)] == [b"a.3"]
    theirs.close()
    mine.close()


def next_messages(connection: pika.BlockingConnection, channel, queue: str, count: int) -> list:
    """The next `count` messages of `queue`: (properties, body) each."""
    messages: list = []
    def more() -> bool:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            connection.sleep(0.05)
        else:
            messages.append((properties, body))
        return len(messages) == count
    wait_for(more, f"{count} messages")
    return messages


def published_and_came(connection: pika.BlockingConnection, publisher, channel, exchange: str, queue: str,
                       key: str) -> bool:
    """Publishes `key` upstream; whether it came here within a while (the queue is emptied)."""
    publisher.basic_publish(exchange, key, key.encode())
    connection.sleep(0.5)
    came = False
    while (message := channel.basic_get(queue, auto_ack=True))[0] is not None:
        came = came or message[2] == key.encode()
    return came


def test_hops_beyond_max_hops_are_not_forwarded(broker: Broker, remote: RabbitMQNode) -> None:
    upstream_exchange, exchange, queue, mine = declare(broker, remote, "fanout")
    channel = mine.channel()
    upstream = federate(broker, remote, exchange, upstream_exchange, **{"max-hops": 1})
    wait_for(lambda: link_state(broker, exchange, upstream) == "running", "the link to run")
    theirs = pika.BlockingConnection(pika.URLParameters(remote.url))
    publisher = theirs.channel()
    publisher.confirm_delivery()
    hopped = {"x-received-from": [{"uri": "amqp://elsewhere", "exchange": "x", "redelivered": False,
                                   "cluster-name": "elsewhere", "vhost": "/"}]}
    publisher.basic_publish(upstream_exchange, "", b"hopped", pika.BasicProperties(headers=hopped))
    publisher.basic_publish(upstream_exchange, "", b"fresh")
    theirs.close()
    assert [body for _, body in next_messages(mine, channel, queue, 1)] == [b"fresh"]
    mine.close()


@pytest.mark.slow
def test_upstream_killed_and_restarted_mid_stream(broker: Broker, remote: RabbitMQNode) -> None:
    """SIGKILL to the upstream while a publisher there feeds the federated exchange: every message
    the upstream confirmed to it arrives here, at least once, first arrivals in publish order."""
    upstream_exchange, exchange, queue, mine = declare(broker, remote, "topic")
    mine.close()
    upstream = federate(broker, remote, exchange, upstream_exchange, **{"prefetch-count": 100})
    wait_for(lambda: link_state(broker, exchange, upstream) == "running", "the link to run")
    publisher = Publisher(remote.url, queue, 2000, exchange=upstream_exchange)
    publisher.start()
    publisher.wait_for(700)
    remote.kill()
    remote.start()
    confirmed = publisher.finish()
    check_at_least_once_in_order(drain(broker.url, queue, set(confirmed)), confirmed)
    assert publisher.reconnects


@pytest.mark.parametrize("cluster_name", [None, "named-cluster"])
def test_a_message_back_at_its_broker_goes_no_further(broker: Broker, cluster_name: str | None) -> None:
    # The broker federates an exchange from itself: each message comes back once, marked with the
    # name the broker advertises (its cluster's, once one is set), and is not forwarded again,
    # however many hops are allowed.
    if cluster_name is not None:
        assert api(broker.http_url, "PUT", "/api/cluster-name", {"name": cluster_name})[0] == 204
    exchange, queue = unique("looped"), unique("q")
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    channel = connection.channel()
    channel.exchange_declare(exchange, "fanout")
    channel.queue_declare(queue)
    channel.queue_bind(queue, exchange)
    upstream = unique("self")
    value = {"uri": shovel_uri(broker.url), "max-hops": 5, "reconnect-delay": 0.5}
    assert api(broker.http_url, "PUT", f"/api/parameters/federation-upstream/%2F/{upstream}", {"value": value})[0] == 201
    policy = {"pattern": f"^{exchange}$", "apply-to": "exchanges", "definition": {"federation-upstream": upstream}}
    assert api(broker.http_url, "PUT", f"/api/policies/%2F/{unique('federate')}", policy)[0] == 201
    wait_for(lambda: link_state(broker, exchange, upstream) == "running", "the link")
    channel.basic_publish(exchange, "", b"once")
    wait_for(lambda: channel.queue_declare(queue, passive=True).method.message_count >= 2, "the copy")
    time.sleep(0.5)  # time for any further (wrong) hop
    hops = []
    while (got := channel.basic_get(queue, auto_ack=True))[0] is not None:
        hops.append([hop["cluster-name"] for hop in (got[1].headers or {}).get("x-received-from", [])])
    connection.close()
    assert hops == [[], [cluster_name or broker.call(lambda: broker.server.links.node)]]
