"""Group commit as a publisher sees it: 1,000 persistent publishes with confirms outstanding are
confirmed by a few basic.ack frames with multiple=True, one per shared commit, not one each."""

from __future__ import annotations

import pika
from pika.adapters.select_connection import SelectConnection

from .conftest import BrokerProcess

COUNT = 1000


def publish_with_confirms_outstanding(params: pika.ConnectionParameters, count: int) -> list[tuple[str, int, bool]]:
    """Publishes `count` persistent messages without waiting, and returns the confirm frames."""
    confirms: list[tuple[str, int, bool]] = []
    problems: list[str] = []

    def confirmed_upto() -> int:
        return max((tag for _, tag, _ in confirms), default=0)

    def on_open(connection: SelectConnection) -> None:
        connection.channel(on_open_callback=on_channel)

    def on_channel(channel: pika.channel.Channel) -> None:
        channel.confirm_delivery(on_confirm, callback=lambda _: declare(channel))

    def declare(channel: pika.channel.Channel) -> None:
        channel.queue_declare("group-commit", durable=True, callback=lambda _: publish(channel))

    def publish(channel: pika.channel.Channel) -> None:
        properties = pika.BasicProperties(delivery_mode=2)
        for i in range(count):
            channel.basic_publish("", "group-commit", b"message %d" % i, properties)

    def on_confirm(frame: pika.frame.Method) -> None:
        method = frame.method
        confirms.append((type(method).__name__, method.delivery_tag, method.multiple))
        if confirmed_upto() == count:
            connection.close()

    def on_failed(_connection: SelectConnection, error: BaseException) -> None:
        problems.append(repr(error))
        connection.ioloop.stop()

    def give_up() -> None:
        problems.append(f"only {confirmed_upto()} of {count} confirmed in time")
        connection.close()

    connection = SelectConnection(params, on_open_callback=on_open, on_open_error_callback=on_failed,
                                  on_close_callback=lambda *_: connection.ioloop.stop())
    connection.ioloop.call_later(30, give_up)
    connection.ioloop.start()
    assert problems == []
    return confirms


def test_confirms_for_many_outstanding_publishes_come_as_few_multiple_acks(broker_process: BrokerProcess) -> None:
    confirms = publish_with_confirms_outstanding(broker_process.params(), COUNT)

    assert {kind for kind, _, _ in confirms} == {"Ack"}
    tags = [tag for _, tag, _ in confirms]
    assert tags == sorted(tags) and tags[-1] == COUNT
    # Each ack frame covers the tags since the one before: together, every publish exactly once.
    covered = [tag - previous for previous, tag in zip([0, *tags], tags)]
    assert all(multiple == (n > 1) for (_, _, multiple), n in zip(confirms, covered))
    print(f"\n{COUNT} publishes confirmed by {len(confirms)} ack frames; largest covers {max(covered)} tags")
    assert len(confirms) <= COUNT // 10
    assert max(covered) >= 50

    # And they are on disk: a crash right now loses none of them.
    broker_process.restart("kill")
    connection = broker_process.connect()
    declared = connection.channel().queue_declare("group-commit", passive=True)
    assert declared.method.message_count == COUNT
    connection.close()
