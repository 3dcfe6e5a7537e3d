"""Dead-lettering in the core: where a message goes when it leaves a queue, and its x-death record,
as RabbitMQ 3.10 writes it (checked against it with the same steps in tests/e2e/test_dead_lettering.py)."""

from __future__ import annotations

import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from amqpbroker import core
from amqpbroker.core.deadletter import record_death
from amqpbroker.protocol import BasicProperties, Long, spec

from .conftest import Clock, Peer

DLX = {"x-dead-letter-exchange": "dlx"}


def setup(peer: Peer, arguments: dict, *, source: str = "src", dead: str = "dlq") -> None:
    peer.exchange("dlx", "fanout")
    peer.declare(dead)
    peer.bind(dead, "dlx")
    peer.declare(source, arguments=arguments)


def publish(peer: Peer, queue: str, body: bytes = b"m", **properties) -> None:
    peer.channel().publish(
        spec.BasicPublish(exchange="", routing_key=queue), BasicProperties(**properties).encode(), body
    )


def get(peer: Peer, queue: str) -> tuple[spec.BasicGetOk, BasicProperties, bytes]:
    peer.sink.take()
    peer.handle(spec.BasicGet(queue=queue))
    frame = peer.sink.frames[-1]
    assert type(frame.method) is spec.BasicGetOk, f"{queue} is empty"
    return frame.method, BasicProperties.decode(frame.properties), frame.body


def reject(peer: Peer, queue: str) -> None:
    method, _, _ = get(peer, queue)
    peer.handle(spec.BasicReject(delivery_tag=method.delivery_tag, requeue=False))


def count(broker: core.Broker, queue: str) -> int:
    return broker.vhosts["/"].queues[queue].message_count


def test_a_rejected_message_reaches_the_dead_letter_exchange_with_rabbitmqs_x_death(peer: Peer) -> None:
    setup(peer, DLX)
    publish(peer, "src", b"body", expiration="60000", headers={"CC": ["cc-key"], "mine": 5})
    reject(peer, "src")
    method, properties, body = get(peer, "dlq")
    assert (method.exchange, method.routing_key, body) == ("dlx", "src", b"body")
    assert properties.expiration is None
    headers = properties.headers
    [death] = headers.pop("x-death")
    assert headers == {
        "CC": ["cc-key"],
        "mine": 5,
        "x-first-death-exchange": "",
        "x-first-death-queue": "src",
        "x-first-death-reason": "rejected",
    }
    assert list(death) == ["count", "reason", "queue", "time", "exchange", "routing-keys", "original-expiration"]
    assert type(death["count"]) is Long and death["count"] == 1
    assert isinstance(death["time"], datetime.datetime)
    assert (death["reason"], death["queue"], death["exchange"]) == ("rejected", "src", "")
    assert death["routing-keys"] == ["src", "cc-key"]
    assert death["original-expiration"] == "60000"


def test_dying_again_in_the_same_queue_for_the_same_reason_counts_up_and_moves_the_entry_first(peer: Peer) -> None:
    setup(peer, DLX)
    publish(peer, "src")
    reject(peer, "src")
    _, properties, _ = get(peer, "dlq")
    publish(peer, "src", headers=properties.headers)
    reject(peer, "src")
    _, properties, _ = get(peer, "dlq")
    [death] = properties.headers["x-death"]
    assert death["count"] == 2
    assert list(death) == sorted(death)  # RabbitMQ sorts an entry it has changed


def test_deaths_in_two_queues_are_two_entries_newest_first_and_the_first_death_stays(peer: Peer) -> None:
    peer.declare("dlq")
    peer.declare("b", arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq"})
    peer.declare("a", arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "b"})
    publish(peer, "a", headers={"CC": ["elsewhere"], "zeta": 1, "alpha": 2})
    reject(peer, "a")
    method, properties, _ = get(peer, "b")
    assert (method.exchange, method.routing_key) == ("", "b")
    assert "CC" not in properties.headers  # a dead-letter routing key replaces the CC keys
    peer.handle(spec.BasicReject(delivery_tag=method.delivery_tag, requeue=False))
    _, properties, _ = get(peer, "dlq")
    headers = properties.headers
    assert list(headers) == ["alpha", "x-death", "x-first-death-exchange", "x-first-death-queue",
                             "x-first-death-reason", "zeta"]
    assert [(d["queue"], d["reason"], d["routing-keys"]) for d in headers["x-death"]] == [
        ("b", "rejected", ["b"]),
        ("a", "rejected", ["a", "elsewhere"]),
    ]
    assert headers["x-first-death-queue"] == "a"


def test_ack_requeue_close_and_delete_do_not_dead_letter(broker: core.Broker, peer: Peer) -> None:
    setup(peer, DLX)
    for _ in range(3):
        publish(peer, "src")
    method, _, _ = get(peer, "src")
    peer.handle(spec.BasicAck(delivery_tag=method.delivery_tag))
    method, _, _ = get(peer, "src")
    peer.handle(spec.BasicNack(delivery_tag=method.delivery_tag, requeue=True))
    get(peer, "src")
    peer.client.close_channel(1)
    assert count(broker, "src") == 2
    peer.handle(spec.QueueDelete(queue="src"), ch=2)
    assert count(broker, "dlq") == 0


def test_nack_of_several_dead_letters_each_in_order(peer: Peer) -> None:
    setup(peer, DLX)
    for body in (b"1", b"2", b"3"):
        publish(peer, "src", body)
    peer.consume("src", "c")
    peer.handle(spec.BasicNack(delivery_tag=3, multiple=True, requeue=False))
    assert [get(peer, "dlq")[2] for _ in range(3)] == [b"1", b"2", b"3"]


def test_a_missing_dead_letter_exchange_drops_the_message(broker: core.Broker, peer: Peer) -> None:
    peer.declare("src", arguments={"x-dead-letter-exchange": "nowhere"})
    publish(peer, "src")
    reject(peer, "src")
    assert count(broker, "src") == 0


def test_a_cycle_without_rejection_is_dropped_and_one_with_a_rejection_goes_round(broker: core.Broker, peer: Peer) -> None:
    peer.declare("loop", arguments={"x-dead-letter-exchange": ""})
    publish(peer, "loop")
    loop = broker.vhosts["/"].queues["loop"]
    loop.drop(loop.take(), "expired")  # back to itself, automatically: a cycle
    assert count(broker, "loop") == 0

    peer.declare("a", arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "b"})
    peer.declare("b", arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "a"})
    publish(peer, "a")
    a = broker.vhosts["/"].queues["a"]
    a.drop(a.take(), "expired")
    reject(peer, "b")  # a client's rejection is in the cycle a -> b -> a
    a.drop(a.take(), "expired")
    _, properties, _ = get(peer, "b")
    assert [(d["queue"], d["reason"], d["count"]) for d in properties.headers["x-death"]] == [
        ("a", "expired", 2),
        ("b", "rejected", 1),
    ]


def test_a_quorum_queue_counts_returns_and_dead_letters_past_its_delivery_limit(broker: core.Broker, peer: Peer) -> None:
    peer.declare("dlq")
    peer.declare("qq", durable=True, arguments={
        "x-queue-type": "quorum", "x-delivery-limit": 1, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq",
    })
    publish(peer, "qq", headers={"h": 1})
    seen = []
    for _ in range(2):
        method, properties, _ = get(peer, "qq")
        seen.append((method.redelivered, properties.headers))
        peer.handle(spec.BasicNack(delivery_tag=method.delivery_tag, requeue=True))
    assert seen == [(False, {"h": 1, "x-delivery-count": 0}), (True, {"h": 1, "x-delivery-count": 1})]
    assert count(broker, "qq") == 0
    _, properties, _ = get(peer, "dlq")
    assert "x-delivery-count" not in properties.headers
    assert [(d["queue"], d["reason"]) for d in properties.headers["x-death"]] == [("qq", "delivery_limit")]


def test_malformed_properties_cost_their_message_not_the_one_who_makes_it_die(broker: core.Broker, peer: Peer) -> None:
    setup(peer, {**DLX, "x-message-ttl": 10})
    truncated_headers = b"\x20\x00\x00\x00\x00\x10ab"  # headers flag, then a table cut short
    peer.channel().publish(spec.BasicPublish(exchange="", routing_key="src"), truncated_headers, b"m")
    queue = broker.vhosts["/"].queues["src"]
    queue.timers.clock = lambda: float("inf")  # long past every expiry
    broker.expire()
    assert (count(broker, "src"), count(broker, "dlq")) == (0, 0)
    assert broker.memory.used == 0


_header_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=6) | st.binary(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
_headers = st.dictionaries(
    st.sampled_from(["a", "x-first-death-queue", "x-first-death-reason", "zz", "\u00e9"])
    | st.text(min_size=1, max_size=6).filter(lambda key: key not in ("CC", "BCC", "x-death")),
    _header_values,
    max_size=5,
)
_cc_keys = st.none() | st.lists(st.text(max_size=4), max_size=2)


@settings(max_examples=150, deadline=None)
@given(
    headers=_headers, cc=_cc_keys, expiration=st.none() | st.just("60000"), dead_letter_key=st.none() | st.just("dlq")
)
def test_a_first_death_is_written_as_record_death_writes_it_whatever_the_other_headers(
    headers: dict, cc: list[str] | None, expiration: str | None, dead_letter_key: str | None
) -> None:
    """A first death's record is built once per queue, reason, keys and second, and spliced into each
    message's own headers: the bytes must be those of the headers re-encoded with `record_death`."""
    clock = Clock()
    broker = core.Broker(clock=clock, wall_clock=clock.wall)
    peer = Peer(broker)
    arguments = {**DLX, **({"x-dead-letter-routing-key": dead_letter_key} if dead_letter_key else {})}
    setup(peer, arguments)
    if cc is not None:
        headers = {**headers, "CC": cc}
    sent = BasicProperties(headers=headers, expiration=expiration, delivery_mode=2, app_id="app").encode()
    for _ in range(2):  # the second dies with the record the first left for its second
        peer.channel().publish(spec.BasicPublish(exchange="", routing_key="src"), sent, b"m")
        reject(peer, "src")
        peer.sink.take()
        peer.handle(spec.BasicGet(queue="dlq", no_ack=True))
        got = peer.sink.frames[-1].properties
        published = BasicProperties.decode(sent)
        own = published.headers or {}
        expected = record_death(own, "rejected", "src", "", ["src", *(cc or [])], expiration, clock.wall())
        if dead_letter_key is not None:
            expected.pop("CC", None)
        published.headers, published.expiration = expected, None
        assert got == published.encode()


def test_a_death_a_second_later_records_its_own_time(clock: Clock, peer: Peer) -> None:
    setup(peer, DLX)
    times = []
    for _ in range(2):
        publish(peer, "src")
        reject(peer, "src")
        _, properties, _ = get(peer, "dlq")
        times.append(properties.headers["x-death"][0]["time"])
        clock.now += 1
    assert times[1] - times[0] == datetime.timedelta(seconds=1)
