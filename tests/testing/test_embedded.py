"""The embedded broker: in a thread for sync and asyncio code, in the caller's run for trio."""

from __future__ import annotations

import asyncio
import socket

import aio_pika
import pika
import pytest
import trio

import amqpbroker
from amqpbroker.testing import Broker, serve_broker

PERSISTENT = pika.BasicProperties(delivery_mode=2)


def round_trip(url: str) -> bytes:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.queue_declare("hello")
        channel.basic_publish("", "hello", b"hi")
        _, _, body = channel.basic_get("hello", auto_ack=True)
        return body
    finally:
        connection.close()


def test_broker_serves_the_default_vhost_on_a_free_port_until_stopped():
    assert amqpbroker.Broker is Broker
    with Broker(port=0) as broker:
        assert broker.port != 0
        assert broker.url == f"amqp://guest:guest@127.0.0.1:{broker.port}/"
        assert round_trip(broker.url) == b"hi"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", broker.port), timeout=1).close()


def test_start_reports_a_port_in_use():
    with Broker(port=0) as first:
        second = Broker(port=first.port)
        with pytest.raises(OSError):
            second.start()
        with pytest.raises(RuntimeError, match="not running"):
            second.queues()


def test_data_dir_keeps_durable_state_in_lmdb_across_brokers(tmp_path):
    with Broker(data_dir=str(tmp_path)) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        channel.queue_declare("kept", durable=True)
        channel.confirm_delivery()
        channel.basic_publish("", "kept", b"on disk", PERSISTENT)
        connection.close()
    assert (tmp_path / "data.mdb").exists()

    with Broker(data_dir=str(tmp_path)) as broker:
        assert [message.body for message in broker.messages("kept")] == [b"on disk"]


def test_broker_in_memory_by_default_forgets_everything_when_stopped():
    with Broker() as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        connection.channel().queue_declare("kept", durable=True)
        connection.close()
    with Broker() as broker:
        assert broker.queues() == []


def test_async_with_under_asyncio_starts_and_stops_without_blocking_the_loop():
    async def main():
        other_work = asyncio.Event()
        asyncio.get_running_loop().call_soon(other_work.set)
        async with Broker(port=0) as broker:
            # The loop ran other callbacks while the broker was starting in its thread.
            assert other_work.is_set()
            async with await aio_pika.connect(broker.url) as connection:
                channel = await connection.channel()
                queue = await channel.declare_queue("hello")
                await channel.default_exchange.publish(aio_pika.Message(b"from asyncio"), routing_key="hello")
                message = await queue.get(timeout=5)
                await message.ack()
                return message.body

    assert asyncio.run(main()) == b"from asyncio"


async def test_async_with_under_trio_points_at_serve_broker():
    with pytest.raises(RuntimeError, match="serve_broker"):
        async with Broker(port=0):
            pass


async def test_serve_broker_runs_in_the_trio_run_and_restarts_on_the_same_port():
    async with serve_broker() as broker:
        assert broker.url == f"amqp://guest:guest@127.0.0.1:{broker.port}/"

        def publish():
            connection = pika.BlockingConnection(pika.URLParameters(broker.url))
            channel = connection.channel()
            channel.queue_declare("durable", durable=True)
            channel.queue_declare("transient")
            channel.confirm_delivery()
            channel.basic_publish("", "durable", b"kept", PERSISTENT)
            channel.basic_publish("", "transient", b"lost", PERSISTENT)
            connection.close()

        await trio.to_thread.run_sync(publish)
        assert {queue.name for queue in broker.queues()} == {"durable", "transient"}

        port = broker.port
        await broker.restart()
        assert broker.port == port
        assert [queue.name for queue in broker.queues()] == ["durable"]
        assert [message.body for message in broker.messages("durable")] == [b"kept"]
        assert await trio.to_thread.run_sync(round_trip, broker.url) == b"hi"
        broker.add_vhost("other")
        assert await trio.to_thread.run_sync(round_trip, broker.vhost_url("other")) == b"hi"


async def test_a_trio_run_that_ends_in_an_error_leaves_the_data_directory_marked_unclean(tmp_path):
    from amqpbroker import core
    from amqpbroker.store import open_store

    data_dir = str(tmp_path / "data")

    def publish(url: str) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(url))
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare("kept", durable=True)
        channel.basic_publish("", "kept", b"m", PERSISTENT)
        connection.close()

    failed = False
    try:
        async with serve_broker(port=0, data_dir=data_dir) as broker:
            await trio.to_thread.run_sync(publish, broker.url)
            raise RuntimeError("the test failed")
    except* RuntimeError:
        failed = True
    assert failed
    store = open_store(data_dir)
    try:
        # After a stop that may have lost work, recovery takes every message as possibly delivered.
        [entry] = core.Broker(store=store).vhosts["/"].queues["kept"].peek()
        assert entry.redelivered
    finally:
        store.close()
