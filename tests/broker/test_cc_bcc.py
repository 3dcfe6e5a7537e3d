"""Sender-selected distribution: the `CC` and `BCC` headers route a message with more routing keys
on the same exchange; `BCC` is removed from every copy, stored and delivered."""

from __future__ import annotations

import pytest

from amqpbroker import core
from amqpbroker.protocol import BasicProperties, spec


def messages(peer, queue: str) -> list[tuple[bytes, str, dict | None]]:
    return [
        (entry.message.body, entry.message.routing_key, BasicProperties.decode(entry.message.properties).headers)
        for entry in peer.client.vhost.queues[queue].peek()
    ]


@pytest.fixture
def direct(peer) -> str:
    """A direct exchange `d` with queues `a`, `b` and `c` bound by their own names."""
    peer.exchange("d", "direct")
    for name in "abc":
        peer.declare(name)
        peer.bind(name, "d", name)
    return "d"


def test_cc_and_bcc_add_routing_keys_and_bcc_is_removed(peer, direct) -> None:
    peer.publish(direct, "a", b"m", headers={"CC": ["b"], "BCC": ["c"], "other": 1})
    expected = [(b"m", "a", {"CC": ["b"], "other": 1})]
    assert [messages(peer, name) for name in "abc"] == [expected] * 3


def test_a_queue_reached_by_several_keys_gets_one_copy(peer, direct) -> None:
    peer.publish(direct, "a", b"m", headers={"CC": ["a", "a"], "BCC": ["a"]})
    assert messages(peer, "a") == [(b"m", "a", {"CC": ["a", "a"]})]


def test_items_that_are_not_strings_are_ignored(peer, direct) -> None:
    peer.publish(direct, "none", b"m", headers={"CC": ["b", 5, b"c"]})
    assert [len(messages(peer, name)) for name in "abc"] == [0, 1, 0]


def test_only_bcc_leaves_an_empty_headers_table(peer) -> None:
    peer.declare("q")
    peer.declare("copy")
    peer.publish("", "q", b"m", headers={"BCC": ["copy"]})
    assert messages(peer, "q") == messages(peer, "copy") == [(b"m", "q", {})]


def test_cc_on_a_topic_exchange_matches_patterns(peer) -> None:
    peer.exchange("t", "topic")
    peer.declare("q")
    peer.bind("q", "t", "x.*")
    peer.publish("t", "nomatch", b"m", headers={"CC": ["x.y"]})
    assert messages(peer, "q") == [(b"m", "nomatch", {"CC": ["x.y"]})]


def test_a_routed_cc_keeps_the_alternate_exchange_unused(peer) -> None:
    peer.exchange("spill", "fanout")
    peer.declare("spilled")
    peer.bind("spilled", "spill")
    peer.exchange("x", arguments={"alternate-exchange": "spill"})
    peer.declare("k")
    peer.bind("k", "x", "k")
    peer.publish("x", "nomatch", b"m", headers={"CC": ["k"]})
    assert (len(messages(peer, "k")), len(messages(peer, "spilled"))) == (1, 0)


def test_an_unroutable_message_is_returned_without_bcc(peer, direct) -> None:
    peer.publish(direct, "x", b"m", mandatory=True, headers={"CC": ["y"], "BCC": ["z"]})
    [returned] = [frame for frame in peer.sink.frames if type(frame.method) is spec.BasicReturn]
    assert returned.method.routing_key == "x"
    assert BasicProperties.decode(returned.properties).headers == {"CC": ["y"]}


def test_other_headers_keep_their_encoding_when_bcc_is_removed(peer) -> None:
    peer.declare("q")
    # A short int ('s') that decoding and encoding again would turn into a long ('I').
    table = b"\x05short" + b"s\x00\x07" + b"\x03BCC" + b"A\x00\x00\x00\x00"
    properties = b"\x20\x00" + len(table).to_bytes(4, "big") + table
    peer.channel(1).publish(spec.BasicPublish(exchange="", routing_key="q"), properties, b"m")
    [entry] = peer.client.vhost.queues["q"].peek()
    kept = b"\x05short" + b"s\x00\x07"
    assert entry.message.properties == b"\x20\x00" + len(kept).to_bytes(4, "big") + kept


@pytest.mark.parametrize(
    ("headers", "text"),
    [
        ({"CC": "b"}, 'invalid message: {unacceptable_type_in_header,"CC",longstr}'),
        ({"BCC": "b"}, 'invalid message: {unacceptable_type_in_header,"BCC",longstr}'),
        ({"CC": 5}, 'invalid message: {unacceptable_type_in_header,"CC",signedint}'),
        ({"CC": {"a": 1}}, 'invalid message: {unacceptable_type_in_header,"CC",table}'),
    ],
)
def test_a_cc_or_bcc_that_is_not_an_array_is_refused_with_406(peer, direct, headers, text) -> None:
    with pytest.raises(core.ChannelException) as raised:
        peer.publish(direct, "a", b"m", headers=headers)
    assert (raised.value.reply_code, raised.value.reply_text) == (406, f"PRECONDITION_FAILED - {text}")


def test_a_transactional_publish_is_checked_at_once(peer, direct) -> None:
    peer.handle(spec.TxSelect())
    with pytest.raises(core.ChannelException):
        peer.publish(direct, "a", b"m", headers={"CC": "b"})


def test_headers_without_cc_or_bcc_are_not_decoded(peer, direct, monkeypatch) -> None:
    def refuse(properties: bytes) -> None:
        raise AssertionError("decoded")

    monkeypatch.setattr(BasicProperties, "decode", refuse)
    peer.publish(direct, "a", b"m", headers={"Cc": ["b"], "x-BCC": 1})
    assert [len(peer.client.vhost.queues[name].peek()) for name in "abc"] == [1, 0, 0]
