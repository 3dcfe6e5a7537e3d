"""The plugin's fixtures and waits in async tests: pytest-asyncio, anyio (both backends) and pytest-trio.

Each runs a test file of its own through pytester, as a user's suite would run, with only the
framework's own plugin in charge of the test functions.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

ASYNCIO_TEST = """
import aio_pika
import pytest

@pytest.mark.asyncio
async def test_an_aio_pika_consumer_acks(amqp_broker, amqp_vhost, amqp_url):
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue("jobs")
        await channel.default_exchange.publish(aio_pika.Message(b"job"), "jobs")
        await queue.consume(lambda message: message.ack())
        await amqp_broker.async_wait_acked("jobs", 1, amqp_vhost)
    assert [event.kind for event in amqp_broker.history(amqp_vhost)][-1] == "acked"

@pytest.mark.asyncio
async def test_a_manual_clock_from_the_factory(amqp_broker_factory):
    broker = amqp_broker_factory(clock="manual")
    connection = await aio_pika.connect(broker.url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue("parked")
        await channel.declare_queue("retry", arguments={
            "x-message-ttl": 60_000, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "parked"})
        await channel.default_exchange.publish(aio_pika.Message(b"again"), "retry")
        broker.advance(60)
        parked = await channel.get_queue("parked")
        message = await parked.get()
        assert message.body == b"again"
"""

ANYIO_TEST = """
import anyio
import pika
import pytest

@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param

def consume_one(url):
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare("jobs")
    channel.basic_publish("", "jobs", b"job")
    for method, _, _ in channel.consume("jobs"):
        channel.basic_ack(method.delivery_tag)
        break
    connection.close()

@pytest.mark.anyio
async def test_a_pika_worker_in_a_thread_acks(amqp_broker, amqp_vhost, amqp_url):
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(anyio.to_thread.run_sync, consume_one, amqp_url)
        await amqp_broker.async_wait_acked("jobs", 1, amqp_vhost)
"""

TRIO_TEST = """
import pika
import pika.exceptions
import pytest
import trio

from amqpbroker.testing import serve_broker

def publish(url, queue, body):
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.basic_publish("", queue, body)
    connection.close()

@pytest.mark.trio
async def test_the_session_broker_waits_without_blocking_the_run(amqp_broker, amqp_vhost, amqp_url):
    amqp_broker.add_vhost(amqp_vhost + "-x")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, publish, amqp_url, "amq.rabbitmq.none", b"lost")
        await amqp_broker.async_wait_for(lambda: any(e.kind == "published" for e in amqp_broker.history(amqp_vhost)))

@pytest.mark.trio
async def test_a_broker_in_the_test_s_own_run_with_a_manual_clock():
    async with serve_broker(clock="manual") as broker:
        connection = await trio.to_thread.run_sync(pika.BlockingConnection, pika.URLParameters(broker.url))
        channel = await trio.to_thread.run_sync(connection.channel)
        await trio.to_thread.run_sync(lambda: channel.queue_declare("later", arguments={"x-expires": 1000}))
        broker.advance(1)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="NOT_FOUND"):
            await trio.to_thread.run_sync(lambda: channel.queue_declare("later", passive=True))
        await trio.to_thread.run_sync(connection.close)
"""


@pytest.mark.parametrize(
    ("framework", "source", "tests"),
    [("asyncio", ASYNCIO_TEST, 2), ("anyio", ANYIO_TEST, 2), ("trio", TRIO_TEST, 2)],
)
def test_the_fixtures_in_async_tests(pytester, framework, source, tests):
    pytest.importorskip({"asyncio": "pytest_asyncio", "anyio": "anyio", "trio": "pytest_trio"}[framework])
    pytester.makepyfile(source)
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=tests)
