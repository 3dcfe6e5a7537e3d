"""RabbitMQ's routing extensions: alternate exchanges, and the CC and BCC headers
(sender-selected distribution)."""

from __future__ import annotations

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker, UnroutableError

from .support import reply, unique


def _drain(channel, queue: str) -> list[tuple[bytes, str, str, dict | None]]:
    """Every ready message of `queue`: body, exchange, routing key, headers."""
    taken = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return taken
        taken.append((body, method.exchange, method.routing_key, properties.headers))


@pytest.fixture
def spill(channel, cleanup) -> tuple[str, str]:
    """A fanout exchange with an exclusive queue bound to it: (exchange, queue)."""
    exchange = cleanup.exchange(unique("spill"))
    channel.exchange_declare(exchange, "fanout")
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, exchange)
    return exchange, queue


def _with_alternate(channel, cleanup, alternate: str, type: str = "direct") -> str:
    exchange = cleanup.exchange(unique("x"))
    channel.exchange_declare(exchange, type, arguments={"alternate-exchange": alternate})
    return exchange


# alternate exchanges


def test_an_unroutable_message_goes_to_the_alternate_exchange(channel, cleanup, spill):
    alternate, spilled = spill
    exchange = _with_alternate(channel, cleanup, alternate)
    bound = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(bound, exchange, "k")
    channel.basic_publish(exchange, "other", b"lost")
    channel.basic_publish(exchange, "k", b"routed")
    assert _drain(channel, spilled) == [(b"lost", exchange, "other", None)]
    assert _drain(channel, bound) == [(b"routed", exchange, "k", None)]


def test_a_mandatory_publish_the_alternate_routes_is_confirmed_and_not_returned(channel, cleanup, spill):
    alternate, spilled = spill
    exchange = _with_alternate(channel, cleanup, alternate)
    channel.confirm_delivery()
    channel.basic_publish(exchange, "k", b"m", mandatory=True)
    assert [body for body, *_ in _drain(channel, spilled)] == [b"m"]


def test_a_missing_alternate_exchange_leaves_a_mandatory_publish_unroutable(channel, cleanup):
    exchange = _with_alternate(channel, cleanup, unique("missing"))
    channel.confirm_delivery()
    with pytest.raises(UnroutableError):
        channel.basic_publish(exchange, "k", b"m", mandatory=True)


def test_alternate_exchanges_chain(channel, cleanup, spill):
    alternate, spilled = spill
    second = _with_alternate(channel, cleanup, alternate)
    first = _with_alternate(channel, cleanup, second, "topic")
    channel.confirm_delivery()
    channel.basic_publish(first, "k", b"m", mandatory=True)
    assert _drain(channel, spilled) == [(b"m", first, "k", None)]


def test_alternate_exchanges_in_a_loop_end_unroutable(channel, cleanup):
    one, two = cleanup.exchange(unique("one")), cleanup.exchange(unique("two"))
    channel.exchange_declare(one, "direct", arguments={"alternate-exchange": two})
    channel.exchange_declare(two, "direct", arguments={"alternate-exchange": one})
    channel.confirm_delivery()
    with pytest.raises(UnroutableError):
        channel.basic_publish(one, "k", b"m", mandatory=True)


def test_an_exchange_routing_to_an_exchange_does_not_use_its_alternate(channel, cleanup, spill):
    alternate, spilled = spill
    exchange = _with_alternate(channel, cleanup, alternate)
    dead_end = cleanup.exchange(unique("dead-end"))
    channel.exchange_declare(dead_end, "direct")
    channel.exchange_bind(dead_end, exchange, "k")
    channel.confirm_delivery()
    with pytest.raises(UnroutableError):
        channel.basic_publish(exchange, "k", b"m", mandatory=True)
    assert _drain(channel, spilled) == []


def test_an_exchange_reached_by_a_binding_uses_its_own_alternate(channel, cleanup, spill):
    alternate, spilled = spill
    inner = _with_alternate(channel, cleanup, alternate)
    outer = cleanup.exchange(unique("outer"))
    channel.exchange_declare(outer, "direct")
    channel.exchange_bind(inner, outer, "k")
    channel.basic_publish(outer, "k", b"m")
    assert _drain(channel, spilled) == [(b"m", outer, "k", None)]


def test_a_headers_alternate_exchange_matches_the_headers(channel, cleanup):
    by_headers = cleanup.exchange(unique("by-headers"))
    channel.exchange_declare(by_headers, "headers")
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, by_headers, arguments={"h": "v"})
    exchange = _with_alternate(channel, cleanup, by_headers)
    channel.basic_publish(exchange, "k", b"no")
    channel.basic_publish(exchange, "k", b"yes", pika.BasicProperties(headers={"h": "v"}))
    assert _drain(channel, queue) == [(b"yes", exchange, "k", {"h": "v"})]


def test_a_non_string_alternate_exchange_is_refused(channel):
    name = unique("bad")
    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.exchange_declare(name, "direct", arguments={"alternate-exchange": 5})
    assert reply(closed) == (
        406,
        f"PRECONDITION_FAILED - invalid type 'signedint' for arg 'alternate-exchange' in exchange '{name}' "
        "in vhost '/'",
    )


# CC and BCC


@pytest.fixture
def direct(channel, cleanup) -> tuple[str, dict[str, str]]:
    """A direct exchange and three exclusive queues bound to it by the keys a, b and c."""
    exchange = cleanup.exchange(unique("d"))
    channel.exchange_declare(exchange, "direct")
    queues = {}
    for key in "abc":
        queues[key] = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queues[key], exchange, key)
    return exchange, queues


def test_cc_and_bcc_route_copies_and_bcc_is_removed(channel, direct):
    exchange, queues = direct
    headers = {"CC": ["b"], "BCC": ["c"], "other": 1}
    channel.basic_publish(exchange, "a", b"m", pika.BasicProperties(headers=headers))
    expected = [(b"m", exchange, "a", {"CC": ["b"], "other": 1})]
    assert [_drain(channel, queues[key]) for key in "abc"] == [expected] * 3


def test_a_queue_reached_by_several_keys_gets_one_copy(channel, direct):
    exchange, queues = direct
    channel.basic_publish(exchange, "a", b"m", pika.BasicProperties(headers={"CC": ["a", "a"], "BCC": ["a"]}))
    assert _drain(channel, queues["a"]) == [(b"m", exchange, "a", {"CC": ["a", "a"]})]


def test_non_string_items_are_ignored(channel, direct):
    exchange, queues = direct
    channel.basic_publish(exchange, "none", b"m", pika.BasicProperties(headers={"CC": ["b", 5, b"c"]}))
    assert [len(_drain(channel, queues[key])) for key in "abc"] == [0, 1, 0]


def test_bcc_alone_leaves_an_empty_headers_table_on_the_default_exchange(channel):
    queue = channel.queue_declare("", exclusive=True).method.queue
    copy = channel.queue_declare("", exclusive=True).method.queue
    channel.basic_publish("", queue, b"m", pika.BasicProperties(headers={"BCC": [copy]}))
    assert _drain(channel, queue) == _drain(channel, copy) == [(b"m", "", queue, {})]


def test_cc_on_a_topic_exchange_matches_patterns(channel, cleanup):
    exchange = cleanup.exchange(unique("t"))
    channel.exchange_declare(exchange, "topic")
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, exchange, "x.*")
    channel.basic_publish(exchange, "nomatch", b"m", pika.BasicProperties(headers={"CC": ["x.y"]}))
    assert _drain(channel, queue) == [(b"m", exchange, "nomatch", {"CC": ["x.y"]})]


def test_an_unroutable_message_is_returned_without_bcc(connection, channel, direct):
    exchange, _ = direct
    returned = []
    channel.add_on_return_callback(lambda ch, method, properties, body: returned.append((method, properties)))
    channel.confirm_delivery()
    with pytest.raises(UnroutableError):
        channel.basic_publish(
            exchange, "x", b"m", pika.BasicProperties(headers={"CC": ["y"], "BCC": ["z"]}), mandatory=True
        )
    connection.process_data_events(0)
    [(method, properties)] = returned
    assert (method.routing_key, properties.headers) == ("x", {"CC": ["y"]})


@pytest.mark.parametrize(
    ("headers", "text"),
    [
        ({"CC": "b"}, 'invalid message: {unacceptable_type_in_header,"CC",longstr}'),
        ({"BCC": "b"}, 'invalid message: {unacceptable_type_in_header,"BCC",longstr}'),
        ({"CC": 5}, 'invalid message: {unacceptable_type_in_header,"CC",signedint}'),
    ],
)
def test_a_cc_or_bcc_that_is_not_an_array_closes_the_channel(channel, direct, headers, text):
    exchange, _ = direct
    channel.basic_publish(exchange, "a", b"m", pika.BasicProperties(headers=headers))
    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.queue_declare("", exclusive=True)
    assert reply(closed) == (406, f"PRECONDITION_FAILED - {text}")
