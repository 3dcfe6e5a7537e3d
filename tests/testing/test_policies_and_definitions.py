"""Setting up a test's broker as an operator sets up RabbitMQ: policies, operator policies and
definitions files, without the management API."""

from __future__ import annotations

import pika
import pytest

from amqpbroker.testing import BindingInfo

from .conftest import wait_until


def publish(channel, queue: str, *bodies: bytes) -> None:
    for body in bodies:
        channel.basic_publish("", queue, body)


def bodies(broker, queue: str, vhost: str) -> list[bytes]:
    return [message.body for message in broker.messages(queue, vhost)]


def test_a_policy_applies_at_once_and_clearing_it_lifts_it(amqp_broker, amqp_vhost, amqp_url, connect):
    channel = connect(amqp_url).channel()
    channel.confirm_delivery()
    channel.queue_declare("jobs")
    publish(channel, "jobs", b"1", b"2", b"3")
    amqp_broker.set_policy("cap", "^jobs$", {"max-length": 2}, vhost=amqp_vhost, apply_to="queues")
    assert bodies(amqp_broker, "jobs", amqp_vhost) == [b"2", b"3"]
    amqp_broker.clear_policy("cap", vhost=amqp_vhost)
    publish(channel, "jobs", b"4")
    assert bodies(amqp_broker, "jobs", amqp_vhost) == [b"2", b"3", b"4"]


def test_an_operator_policy_caps_what_the_queue_and_its_policy_ask(amqp_broker, amqp_vhost, amqp_url, connect):
    amqp_broker.set_policy("a-cap", "", {"max-length": 3}, vhost=amqp_vhost)
    amqp_broker.set_policy("ceiling", "", {"max-length": 1}, vhost=amqp_vhost, operator=True)
    channel = connect(amqp_url).channel()
    channel.confirm_delivery()
    channel.queue_declare("jobs", arguments={"x-max-length": 10})
    publish(channel, "jobs", b"1", b"2")
    assert bodies(amqp_broker, "jobs", amqp_vhost) == [b"2"]
    amqp_broker.clear_policy("ceiling", vhost=amqp_vhost, operator=True)
    with pytest.raises(LookupError):
        amqp_broker.clear_policy("ceiling", vhost=amqp_vhost, operator=True)


def test_a_policy_rabbitmq_would_refuse_is_a_value_error_with_its_reason(amqp_broker, amqp_vhost):
    with pytest.raises(ValueError, match="are not recognised policy settings"):
        amqp_broker.set_policy("bad", "", {"alternate-exchange": "x"}, vhost=amqp_vhost, operator=True)
    with pytest.raises(ValueError, match="-1 is not a valid maximum length"):
        amqp_broker.set_policy("bad", "", {"max-length": -1}, vhost=amqp_vhost)
    with pytest.raises(LookupError):
        amqp_broker.set_policy("p", "", {"max-length": 1}, vhost="no-such-vhost")
    with pytest.raises(LookupError):
        amqp_broker.clear_policy("never-set", vhost=amqp_vhost)


DEFINITIONS = {
    "queues": [
        {"name": "orders", "durable": True, "auto_delete": False, "arguments": {"x-queue-type": "quorum"}},
        {"name": "orders.dead", "durable": True, "auto_delete": False, "arguments": {}},
    ],
    "exchanges": [
        {"name": "shop", "type": "topic", "durable": True, "auto_delete": False, "internal": False, "arguments": {}},
    ],
    "bindings": [
        {"source": "shop", "destination": "orders", "destination_type": "queue", "routing_key": "order.*",
         "arguments": {}},
    ],
    "policies": [
        {"name": "dead-letters", "pattern": "^orders$", "apply-to": "queues", "priority": 0,
         "definition": {"dead-letter-exchange": "", "dead-letter-routing-key": "orders.dead"}},
    ],
}


def test_one_vhosts_definitions_import_into_the_tests_vhost(amqp_broker, amqp_vhost, amqp_url, connect):
    amqp_broker.import_definitions(DEFINITIONS, vhost=amqp_vhost)
    assert {queue.name for queue in amqp_broker.queues(amqp_vhost)} == {"orders", "orders.dead"}
    assert amqp_broker.bindings(amqp_vhost) == [BindingInfo("shop", "orders", "queue", "order.*", {})]

    channel = connect(amqp_url).channel()
    channel.basic_publish("shop", "order.new", b"refused")
    method, _, body = channel.basic_get("orders")
    channel.basic_reject(method.delivery_tag, requeue=False)
    assert body == b"refused"
    wait_until(lambda: bodies(amqp_broker, "orders.dead", amqp_vhost) == [b"refused"], "the dead letter")


def test_a_whole_definitions_file_makes_its_vhosts_and_users(amqp_broker_factory):
    broker = amqp_broker_factory()
    document = {
        "vhosts": [{"name": "shop"}],
        "users": [{"name": "clerk", "password": "secret", "tags": ""}],
        "permissions": [{"user": "clerk", "vhost": "shop", "configure": "", "write": "^shop$", "read": ".*"}],
        "queues": [{"name": "orders", "vhost": "shop", "durable": True, "auto_delete": False, "arguments": {}}],
    }
    broker.import_definitions(document)
    assert "shop" in broker.vhosts()
    params = pika.URLParameters(f"amqp://clerk:secret@127.0.0.1:{broker.port}/shop")
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        assert channel.queue_declare("orders", passive=True).method.message_count == 0
    finally:
        connection.close()
    # As with add_vhost, guest may use a vhost the import made.
    connection = pika.BlockingConnection(pika.URLParameters(broker.vhost_url("shop")))
    connection.close()


def test_a_definitions_document_that_cannot_be_imported_says_why(amqp_broker, amqp_vhost):
    bad = {"queues": [{"name": "q", "arguments": {"x-max-priority": "high"}}]}
    with pytest.raises(ValueError, match="x-max-priority"):
        amqp_broker.import_definitions(bad, vhost=amqp_vhost)
    assert amqp_broker.queues(amqp_vhost) == []
    with pytest.raises(LookupError):
        amqp_broker.import_definitions({}, vhost="no-such-vhost")
