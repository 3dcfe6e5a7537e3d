"""Queue features seen from pika: message TTL, x-expires, length limits and priorities.

TTLs are short; the tests wait for what must eventually happen and assert no timings.
"""

from __future__ import annotations

import time

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker, NackError

from .support import drain, get_within, reply, unique, wait_until


def declared(cleanup, channel, prefix: str, **arguments: object) -> str:
    name = cleanup.queue(unique(prefix))
    channel.queue_declare(name, arguments=arguments)
    return name


def message_count(channel, queue: str) -> int:
    return channel.queue_declare(queue, passive=True).method.message_count


def publish(channel, queue: str, body: bytes, **properties: object) -> None:
    channel.basic_publish("", queue, body, pika.BasicProperties(**properties))


def test_queue_ttl_expires_messages(connection, channel, cleanup) -> None:
    queue = declared(cleanup, channel, "ttl", **{"x-message-ttl": 100})
    channel.confirm_delivery()
    for i in range(3):
        publish(channel, queue, b"%d" % i)
    wait_until(connection, lambda: message_count(channel, queue) == 0, what="the messages to expire")
    assert drain(channel, queue) == []


def test_per_message_expiration(connection, channel, cleanup) -> None:
    queue = declared(cleanup, channel, "expiration")
    channel.confirm_delivery()
    publish(channel, queue, b"short", expiration="50")
    publish(channel, queue, b"kept")
    wait_until(connection, lambda: message_count(channel, queue) == 1, what="the message to expire")
    assert drain(channel, queue) == [b"kept"]


def test_an_expired_message_behind_a_live_one_is_never_delivered(channel, cleanup) -> None:
    queue = declared(cleanup, channel, "behind")
    channel.confirm_delivery()
    publish(channel, queue, b"long", expiration="60000")
    publish(channel, queue, b"short", expiration="50")
    time.sleep(0.3)
    assert drain(channel, queue) == [b"long"]


def test_a_requeued_message_keeps_its_expiry(connection, connect, channel, cleanup) -> None:
    queue = declared(cleanup, channel, "requeued", **{"x-message-ttl": 200})
    channel.confirm_delivery()
    publish(channel, queue, b"m")
    taker = connect().channel()
    method, _, body = taker.basic_get(queue)
    assert body == b"m"
    time.sleep(0.3)
    taker.close()
    wait_until(connection, lambda: message_count(channel, queue) == 0, what="the requeued message to expire")


def test_ttl_zero_reaches_a_waiting_consumer_only(connection, channel, cleanup) -> None:
    queue = declared(cleanup, channel, "ttl0", **{"x-message-ttl": 0})
    channel.confirm_delivery()
    publish(channel, queue, b"nobody")
    assert message_count(channel, queue) == 0
    received: list[bytes] = []
    channel.basic_consume(queue, lambda ch, method, properties, body: received.append(body), auto_ack=True)
    publish(channel, queue, b"now")
    wait_until(connection, lambda: received == [b"now"], what="the delivery")


@pytest.mark.parametrize(
    ("expiration", "error"), [("abc", "no_integer"), ("-1", "{value_negative,-1}"), ("1.5", '{leftover_string,".5"}')]
)
def test_an_invalid_expiration_closes_the_channel(channel, expiration: str, error: str) -> None:
    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.basic_publish("amq.direct", "nowhere", b"m", pika.BasicProperties(expiration=expiration))
        channel.queue_declare("", exclusive=True)
    assert reply(closed) == (406, f"PRECONDITION_FAILED - invalid expiration '{expiration}': {error}")


def test_an_unused_queue_expires(connection, channel, cleanup) -> None:
    queue = declared(cleanup, channel, "expires", **{"x-expires": 200})

    def gone() -> bool:
        probe = connection.channel()
        try:
            probe.queue_declare(queue, passive=True)
        except ChannelClosedByBroker as closed:
            assert closed.reply_code == 404
            return True
        probe.close()
        return False

    deadline = time.monotonic() + 5
    while not gone():
        assert time.monotonic() < deadline, "the queue is still there"
        # Not a passive declare each turn: that would count as use and keep the queue.
        connection.sleep(0.3)


def test_a_consumed_queue_does_not_expire(connection, channel, cleanup) -> None:
    queue = declared(cleanup, channel, "consumed", **{"x-expires": 100})
    channel.basic_consume(queue, lambda *args: None)
    connection.sleep(0.4)
    assert connection.channel().queue_declare(queue, passive=True)


def test_max_length_drops_the_oldest(channel, cleanup) -> None:
    queue = declared(cleanup, channel, "maxlen", **{"x-max-length": 2})
    channel.confirm_delivery()
    for i in range(5):
        publish(channel, queue, b"%d" % i)
    assert drain(channel, queue) == [b"3", b"4"]


def test_max_length_bytes_drops_the_oldest(channel, cleanup) -> None:
    queue = declared(cleanup, channel, "maxbytes", **{"x-max-length-bytes": 10})
    channel.confirm_delivery()
    for body in (b"aaaa", b"bbbb", b"cc", b"d"):
        publish(channel, queue, body)
    assert drain(channel, queue) == [b"bbbb", b"cc", b"d"]


def test_messages_returned_over_the_length_limit_are_dropped_from_the_head(connection, channel, cleanup) -> None:
    queue = declared(cleanup, channel, "maxlen-return", **{"x-max-length": 2})
    channel.confirm_delivery()
    publish(channel, queue, b"a0")
    publish(channel, queue, b"a1")
    consumer = connection.channel()
    consumer.basic_qos(prefetch_count=2)
    taken = [get_within(consumer, queue)[2] for _ in range(2)]
    publish(channel, queue, b"b0")
    publish(channel, queue, b"b1")
    consumer.close()  # a0 and a1 come back to the head, and the queue is over its limit
    assert taken == [b"a0", b"a1"]
    wait_until(connection, lambda: message_count(channel, queue) == 2, what="2 messages left")
    assert drain(channel, queue) == [b"b0", b"b1"]


def test_reject_publish_nacks_what_does_not_fit(channel, cleanup) -> None:
    queue = declared(cleanup, channel, "reject", **{"x-max-length": 2, "x-overflow": "reject-publish"})
    channel.confirm_delivery()
    publish(channel, queue, b"1")
    publish(channel, queue, b"2")
    with pytest.raises(NackError):
        publish(channel, queue, b"3")
    assert drain(channel, queue) == [b"1", b"2"]
    publish(channel, queue, b"4")
    assert drain(channel, queue) == [b"4"]


def test_reject_publish_without_confirms_drops_silently(channel, cleanup) -> None:
    queue = declared(cleanup, channel, "reject-silent", **{"x-max-length": 1, "x-overflow": "reject-publish"})
    publish(channel, queue, b"1")
    publish(channel, queue, b"2")
    channel.confirm_delivery()
    assert drain(channel, queue) == [b"1"]


def test_priorities(channel, cleanup) -> None:
    queue = declared(cleanup, channel, "priority", **{"x-max-priority": 5})
    channel.confirm_delivery()
    for body, priority in [(b"p0", 0), (b"p5a", 5), (b"p1", 1), (b"none", None), (b"p5b", 5), (b"p9", 9)]:
        publish(channel, queue, body, priority=priority)
    assert drain(channel, queue) == [b"p5a", b"p5b", b"p9", b"p1", b"p0", b"none"]


def test_a_requeued_message_keeps_its_place_within_its_priority(channel, cleanup) -> None:
    queue = declared(cleanup, channel, "priority-requeue", **{"x-max-priority": 2})
    channel.confirm_delivery()
    for body, priority in [(b"a1", 1), (b"b1", 1), (b"c2", 2), (b"d1", 1)]:
        publish(channel, queue, body, priority=priority)
    taken = [channel.basic_get(queue)[2] for _ in range(3)]
    assert taken == [b"c2", b"a1", b"b1"]
    channel.basic_recover(requeue=True)
    assert drain(channel, queue) == [b"c2", b"a1", b"b1", b"d1"]


def test_a_quorum_queue_takes_reject_publish_dlx_as_drop_head(channel, cleanup):
    queue = cleanup.queue(unique("qq-overflow"))
    channel.queue_declare(queue, durable=True, arguments={
        "x-queue-type": "quorum", "x-max-length": 1, "x-overflow": "reject-publish-dlx",
    })
    channel.confirm_delivery()
    channel.basic_publish("", queue, b"m0")
    channel.basic_publish("", queue, b"m1")  # confirmed: nothing is refused
    _, _, body = get_within(channel, queue, auto_ack=True)
    assert body == b"m1"
