"""Publishers are blocked while the data directory's disk is low on space, consumers go on, and
the disk and memory alarms are one set: publishers stay blocked until both have cleared."""

from __future__ import annotations

import pika

from amqpbroker.testing import Broker

from .blocking import wait_for, watch_blocking

LIMIT = 50_000_000


class FakeDisk:
    def __init__(self) -> None:
        self.free = LIMIT
        self.asked: list[str] = []

    def free_space(self, path: str) -> int:
        self.asked.append(path)
        return self.free


def until_checked(disk: FakeDisk, connection: pika.BlockingConnection) -> None:
    """Until the monitor has read the free space at least twice more (once may have begun before)."""
    asked = len(disk.asked)
    wait_for(lambda: len(disk.asked) >= asked + 2, connection)


def test_low_disk_blocks_publishers_until_space_returns_and_consumers_go_on(tmp_path) -> None:
    disk = FakeDisk()
    disk.free = LIMIT + 1
    with Broker(port=0, data_dir=str(tmp_path), disk_free_limit=LIMIT, free_space=disk.free_space) as broker:
        params = pika.URLParameters(broker.url)
        publisher = pika.BlockingConnection(params)
        events = watch_blocking(publisher)
        channel = publisher.channel()
        channel.queue_declare("disk")
        channel.basic_publish("", "disk", b"before")
        consumer = pika.BlockingConnection(params)
        consumer_channel = consumer.channel()

        disk.free = LIMIT - 1
        until_checked(disk, publisher)
        channel.basic_publish("", "disk", b"held")
        wait_for(lambda: events == ["low on disk"], publisher)
        publisher.process_data_events(time_limit=0.3)
        assert broker.queue("disk").message_count == 1, "a blocked publisher's message was routed"
        assert consumer_channel.basic_get("disk", auto_ack=True)[2] == b"before", "the consumer was blocked"

        disk.free = LIMIT
        wait_for(lambda: events == ["low on disk", "unblocked"], publisher)
        wait_for(lambda: broker.queue("disk").message_count == 1, publisher)
        assert consumer_channel.basic_get("disk", auto_ack=True)[2] == b"held"
        assert set(disk.asked) == {str(tmp_path)}
        consumer.close()
        publisher.close()


def test_publishers_stay_blocked_until_both_memory_and_disk_alarms_clear(tmp_path) -> None:
    disk = FakeDisk()
    disk.free = LIMIT + 1
    body = b"x" * 10_000
    with Broker(
        port=0, data_dir=str(tmp_path), memory_limit=15_000, disk_free_limit=LIMIT, free_space=disk.free_space
    ) as broker:
        params = pika.URLParameters(broker.url)
        publisher = pika.BlockingConnection(params)
        events = watch_blocking(publisher)
        channel = publisher.channel()
        channel.queue_declare("both")
        channel.basic_publish("", "both", body)
        channel.basic_publish("", "both", body)
        wait_for(lambda: broker.queue("both").message_count == 2, publisher)
        # As in RabbitMQ, a connection is blocked by the first publish that finds an alarm on.
        channel.basic_publish("", "both", b"held")
        wait_for(lambda: events == ["low on memory"], publisher)
        disk.free = 0
        until_checked(disk, publisher)

        consumer = pika.BlockingConnection(params)
        consumer_channel = consumer.channel()
        while consumer_channel.basic_get("both", auto_ack=True)[0] is not None:
            pass
        publisher.process_data_events(time_limit=0.3)
        assert events == ["low on memory"], "unblocked while the disk alarm was still on"
        assert broker.queue("both").message_count == 0

        disk.free = LIMIT
        wait_for(lambda: events == ["low on memory", "unblocked"], publisher)
        wait_for(lambda: broker.queue("both").message_count == 1, publisher)
        consumer.close()
        publisher.close()


def test_blocked_reason_names_every_alarm_that_is_on(tmp_path) -> None:
    disk = FakeDisk()
    disk.free = LIMIT + 1
    with Broker(
        port=0, data_dir=str(tmp_path), memory_limit=15_000, disk_free_limit=LIMIT, free_space=disk.free_space
    ) as broker:
        params = pika.URLParameters(broker.url)
        first = pika.BlockingConnection(params)
        first_channel = first.channel()
        first_channel.queue_declare("reasons")
        first_channel.basic_publish("", "reasons", b"x" * 20_000)
        wait_for(lambda: broker.queue("reasons").message_count == 1, first)
        disk.free = 0
        until_checked(disk, first)

        second = pika.BlockingConnection(params)
        events = watch_blocking(second)
        second.channel().basic_publish("", "reasons", b"x")
        wait_for(lambda: events == ["low on memory & disk"], second)
        # As in RabbitMQ, a blocked publisher's channel.close is answered after its held publish,
        # once the alarms clear.
        disk.free = LIMIT
        first_channel.queue_purge("reasons")
        wait_for(lambda: events == ["low on memory & disk", "unblocked"], second)
        second.close()
        first.close()
