"""Network faults, each observed by a real client: latency, a stalled socket, a cut mid-frame, refusals."""

from __future__ import annotations

import asyncio
import os

import aio_pika
import pika
import pika.exceptions
import pytest
import trio

from amqpbroker.testing import serve_broker

from .conftest import WAIT_SECONDS


def named(url: str, name: str) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.client_properties = {"connection_name": name}
    params.socket_timeout = params.stack_timeout = WAIT_SECONDS
    return params


def test_connections_are_listed_with_the_name_the_client_gave(amqp_broker, amqp_vhost, amqp_url):
    connection = pika.BlockingConnection(named(amqp_url, "billing"))
    try:
        [info] = amqp_broker.connections(amqp_vhost)
        assert (info.vhost, info.user, info.name) == (amqp_vhost, "guest", "billing")
        host, port = connection._impl._transport._sock.getsockname()[:2]
        assert info.peer == f"{host}:{port}"
    finally:
        connection.close()


def test_a_large_body_passes_the_wrapped_stream_intact_and_is_inspected_as_bytes(
    amqp_broker, amqp_vhost, amqp_url, connect
):
    # The wrapped stream is no plain socket: the body is copied into its buffer frame by frame.
    channel = connect(amqp_url).channel()
    channel.queue_declare("large")
    body = os.urandom(3 * 1024 * 1024 + 17)
    channel.basic_publish("", "large", body)
    amqp_broker.wait_for(lambda: amqp_broker.queue("large", amqp_vhost).message_count == 1)
    [message] = amqp_broker.messages("large", amqp_vhost)
    assert type(message.body) is bytes and message.body == body
    [published] = [event for event in amqp_broker.history(amqp_vhost) if event.kind == "published"]
    assert type(published.body) is bytes and published.body == body
    _, _, received = channel.basic_get("large", auto_ack=True)
    assert received == body


def test_a_cut_mid_frame_drops_the_client_and_requeues_what_it_held(amqp_broker, amqp_vhost, amqp_url, connect):
    channel = connect(amqp_url).channel()
    channel.queue_declare("work")
    channel.basic_publish("", "work", b"job")
    worker = pika.BlockingConnection(named(amqp_url, "worker"))
    method, _, _ = worker.channel().basic_get("work")
    assert method is not None

    assert amqp_broker.cut(connection="worker") == 1
    with pytest.raises(pika.exceptions.StreamLostError):
        worker.process_data_events(time_limit=WAIT_SECONDS)
    amqp_broker.wait_for(lambda: amqp_broker.queue("work", amqp_vhost).message_count == 1)
    assert amqp_broker.history(amqp_vhost)[-1].kind == "requeued"
    assert channel.connection.is_open  # only the worker's connection was cut


def test_refused_connections_fail_to_connect_until_accepted_again(amqp_broker, amqp_url):
    amqp_broker.refuse_connections()
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(named(amqp_url, "refused"))

    amqp_broker.accept_connections()
    connection = pika.BlockingConnection(named(amqp_url, "accepted"))
    connection.close()


def test_refusals_end_by_themselves_after_the_time_given(amqp_broker, amqp_url):
    amqp_broker.refuse_connections(0.2)
    attempts = 0
    while True:
        attempts += 1
        try:
            connection = pika.BlockingConnection(named(amqp_url, "retrying"))
        except pika.exceptions.AMQPConnectionError:
            continue
        break
    connection.close()
    assert attempts > 1


def test_latency_makes_a_client_time_out_until_healed(amqp_broker, amqp_vhost, amqp_url):
    async def main():
        connection = await aio_pika.connect(amqp_url, client_properties={"connection_name": "slow"})
        async with connection:
            channel = await connection.channel()
            amqp_broker.set_latency(WAIT_SECONDS, connection="slow")
            with pytest.raises(asyncio.TimeoutError):
                await channel.declare_queue("late", timeout=0.05)
            amqp_broker.heal()
            channel = await connection.channel()  # aio-pika closes a channel whose call timed out
            await channel.declare_queue("on-time")
        return [queue.name for queue in amqp_broker.queues(amqp_vhost)]

    assert "on-time" in asyncio.run(main())


def test_broker_wide_latency_reaches_new_connections(amqp_broker, amqp_url):
    amqp_broker.set_latency(WAIT_SECONDS)

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await aio_pika.connect(amqp_url, timeout=0.05)

    asyncio.run(main())


def test_a_stalled_vhost_passes_nothing_until_unstalled(amqp_broker, amqp_vhost, amqp_url):
    async def main():
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            assert amqp_broker.stall(vhost=amqp_vhost) == 1
            with pytest.raises(asyncio.TimeoutError):
                await channel.declare_queue("held", timeout=0.05)
            amqp_broker.unstall(vhost=amqp_vhost)
            channel = await connection.channel()
            await channel.declare_queue("flowing")
        return [queue.name for queue in amqp_broker.queues(amqp_vhost)]

    # The declare that timed out was held, not lost: it reached the broker once unstalled.
    assert sorted(asyncio.run(main())) == ["flowing", "held"]


@pytest.mark.slow
def test_a_stalled_connection_is_noticed_by_pika_heartbeats_and_the_worker_reconnects(
    amqp_broker, amqp_vhost, amqp_url, connect
):
    """A pika worker that reconnects when its connection is lost: stalled, its heartbeats time out
    (pika checks every heartbeat + 5 s), and the new connection, not stalled, gets the job."""
    channel = connect(amqp_url).channel()
    channel.queue_declare("jobs")
    params = named(amqp_url, "worker")
    params.heartbeat = 1
    done = []
    attempts = 0
    while not done:
        attempts += 1
        worker = pika.BlockingConnection(params)
        try:
            if attempts == 1:
                assert amqp_broker.stall(connection="worker") == 1
                channel.basic_publish("", "jobs", b"job")
            for method, _, body in worker.channel().consume("jobs", inactivity_timeout=30):
                done.append(body)
                break
            worker.close()
        except pika.exceptions.AMQPConnectionError:
            continue
    assert attempts == 2 and done == [b"job"]


async def test_a_trio_broker_cuts_a_connection_mid_frame():
    async with serve_broker() as broker:
        connection = await trio.to_thread.run_sync(pika.BlockingConnection, named(broker.url, "client"))
        assert await broker.cut(connection="client") == 1
        with pytest.raises(pika.exceptions.StreamLostError):
            await trio.to_thread.run_sync(lambda: connection.process_data_events(time_limit=WAIT_SECONDS))
