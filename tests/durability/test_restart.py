"""What a broker subprocess finds again when it starts on the data directory of one that was
stopped (SIGTERM) or killed (SIGKILL), seen by a pika client as any user would see it."""

from __future__ import annotations

import subprocess
import sys
import time

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel

from amqpbroker.store import StoreError
from amqpbroker.store.base import DeleteMessage
from amqpbroker.store.lmdb_store import LmdbStore
from amqpbroker.testing import Broker

from .conftest import BrokerProcess

HOW = ["sigterm", "kill"]
PERSISTENT = pika.BasicProperties(delivery_mode=2)
TRANSIENT = pika.BasicProperties(delivery_mode=1)
EXCHANGE_TYPES = ["direct", "fanout", "topic", "headers"]


def sync(channel: BlockingChannel) -> None:
    """Returns once everything this channel did before is committed to disk.

    A confirm for a persistent message on a durable queue comes only after the commit of the
    batch holding it, and batches are committed in order: so the declarations, bindings and
    acknowledgements this channel sent earlier are committed too.
    """
    channel.confirm_delivery()
    channel.queue_declare("sync", durable=True)
    channel.basic_publish("", "sync", b"sync", PERSISTENT)


def exists(connection: pika.BlockingConnection, kind: str, name: str) -> bool:
    """A passive declare: True if the exchange or queue exists, False on 404."""
    channel = connection.channel()
    try:
        if kind == "exchange":
            channel.exchange_declare(name, passive=True)
        else:
            channel.queue_declare(name, passive=True)
    except pika.exceptions.ChannelClosedByBroker as closed:
        assert closed.reply_code == 404
        return False
    channel.close()
    return True


def get_all(channel: BlockingChannel, queue: str) -> list[tuple[bytes, bool]]:
    """Every message of the queue as (body, redelivered), acknowledged."""
    found = []
    while True:
        method, _, body = channel.basic_get(queue)
        if method is None:
            return found
        found.append((body, method.redelivered))
        channel.basic_ack(method.delivery_tag)


@pytest.mark.parametrize("how", HOW)
def test_durable_exchanges_queues_and_bindings_come_back(broker_process: BrokerProcess, how: str) -> None:
    connection = broker_process.connect()
    channel = connection.channel()
    for kind in EXCHANGE_TYPES:
        channel.exchange_declare(f"d-{kind}", kind, durable=True)
    channel.exchange_declare("d-with-ae", "direct", durable=True, arguments={"alternate-exchange": "d-fanout"})
    channel.queue_declare("dq", durable=True, arguments={"x-max-length": 1000, "x-custom": "kept"})
    channel.queue_declare("dq-headers", durable=True)
    channel.queue_declare("dq-fanout", durable=True)
    channel.queue_bind("dq", "d-direct", "key")
    channel.queue_bind("dq", "d-topic", "a.*.c")
    channel.queue_bind("dq-fanout", "d-fanout")
    channel.queue_bind("dq-headers", "d-headers", arguments={"x-match": "all", "color": "red"})
    channel.exchange_bind("d-fanout", "d-direct", "to-fanout")
    sync(channel)
    connection.close()

    broker_process.restart(how)

    connection = broker_process.connect()
    for kind in EXCHANGE_TYPES:
        assert exists(connection, "exchange", f"d-{kind}")
    channel = connection.channel()
    # Redeclaring with the same attributes is accepted; with another type or argument it is not,
    # which shows they came back as they were.
    channel.exchange_declare("d-topic", "topic", durable=True)
    channel.exchange_declare("d-with-ae", "direct", durable=True, arguments={"alternate-exchange": "d-fanout"})
    channel.queue_declare("dq", durable=True, arguments={"x-max-length": 1000, "x-custom": "kept"})
    for refused in (
        lambda: channel.exchange_declare("d-topic", "direct", durable=True),
        lambda: channel.exchange_declare("d-with-ae", "direct", durable=True, arguments={"alternate-exchange": "x"}),
        lambda: channel.queue_declare("dq", durable=True, arguments={"x-max-length": 5}),
        lambda: channel.queue_declare("dq", durable=False),
    ):
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
            refused()
        assert closed.value.reply_code == 406
        channel = connection.channel()

    # Every binding routes as before.
    channel.basic_publish("d-direct", "key", b"direct")
    channel.basic_publish("d-topic", "a.b.c", b"topic")
    channel.basic_publish("d-topic", "a.b.d", b"topic, unrouted")
    channel.basic_publish("d-fanout", "whatever", b"fanout")
    channel.basic_publish("d-headers", "", b"headers", pika.BasicProperties(headers={"color": "red"}))
    channel.basic_publish("d-headers", "", b"headers, unrouted", pika.BasicProperties(headers={"color": "blue"}))
    channel.basic_publish("d-direct", "to-fanout", b"exchange to exchange")
    assert [body for body, _ in get_all(channel, "dq")] == [b"direct", b"topic"]
    assert [body for body, _ in get_all(channel, "dq-fanout")] == [b"fanout", b"exchange to exchange"]
    assert [body for body, _ in get_all(channel, "dq-headers")] == [b"headers"]
    connection.close()


def test_durable_declarations_survive_a_kill_right_after_their_replies(broker_process: BrokerProcess) -> None:
    # No sync() here: declare-ok, bind-ok and friends come only once the change is on disk.
    connection = broker_process.connect()
    channel = connection.channel()
    channel.exchange_declare("x", "topic", durable=True)
    channel.queue_declare("q", durable=True)
    channel.queue_bind("q", "x", "a.#")
    channel.exchange_declare("doomed", "direct", durable=True)
    channel.exchange_delete("doomed")
    broker_process.kill()
    broker_process.start()
    connection = broker_process.connect()
    assert exists(connection, "exchange", "x")
    assert not exists(connection, "exchange", "doomed")
    channel = connection.channel()
    channel.basic_publish("x", "a.b", b"routed")
    assert get_all(channel, "q") == [(b"routed", False)]
    connection.close()


def test_a_committed_transaction_survives_a_kill_right_after_commit_ok(broker_process: BrokerProcess) -> None:
    connection = broker_process.connect()
    channel = connection.channel()
    channel.queue_declare("q", durable=True)
    channel.tx_select()
    channel.basic_publish("", "q", b"one", PERSISTENT)
    channel.basic_publish("", "q", b"two", PERSISTENT)
    channel.tx_commit()
    broker_process.kill()
    broker_process.start()
    connection = broker_process.connect()
    # After a kill -9 every recovered message may have been delivered: redelivered=true.
    assert get_all(connection.channel(), "q") == [(b"one", True), (b"two", True)]
    connection.close()


@pytest.mark.parametrize("how", HOW)
def test_transient_entities_do_not_come_back(broker_process: BrokerProcess, how: str) -> None:
    connection = broker_process.connect()
    channel = connection.channel()
    channel.exchange_declare("d-x", "direct", durable=True)
    channel.exchange_declare("t-x", "fanout", durable=False)
    channel.queue_declare("d-q", durable=True)
    channel.queue_declare("t-q", durable=False)
    channel.queue_declare("x-q", durable=True, exclusive=True)  # exclusive queues never outlive their connection
    channel.queue_bind("t-q", "d-x", "to-transient-queue")
    channel.queue_bind("d-q", "t-x")
    channel.exchange_bind("t-x", "d-x", "to-transient-exchange")
    channel.queue_bind("d-q", "d-x", "to-durable-queue")
    sync(channel)

    broker_process.restart(how)

    connection = broker_process.connect()
    assert exists(connection, "exchange", "d-x")
    assert exists(connection, "queue", "d-q")
    assert not exists(connection, "exchange", "t-x")
    assert not exists(connection, "queue", "t-q")
    assert not exists(connection, "queue", "x-q")
    channel = connection.channel()
    for key in ("to-transient-queue", "to-transient-exchange", "to-durable-queue"):
        channel.basic_publish("d-x", key, key.encode())
    # Only the binding between durable ends is left.
    assert get_all(channel, "d-q") == [(b"to-durable-queue", False)]
    connection.close()


@pytest.mark.parametrize("how", HOW)
def test_persistent_messages_come_back_unless_acked(broker_process: BrokerProcess, how: str) -> None:
    connection = broker_process.connect()
    channel = connection.channel()
    channel.confirm_delivery()
    channel.exchange_declare("both", "fanout", durable=True)
    channel.queue_declare("dq", durable=True)
    channel.queue_declare("tq", durable=False)
    channel.queue_bind("dq", "both")
    channel.queue_bind("tq", "both")
    channel.basic_publish("", "dq", b"acked", PERSISTENT)
    channel.basic_publish("", "dq", b"delivered", PERSISTENT)
    channel.basic_publish("", "dq", b"transient", TRANSIENT)
    channel.basic_publish("", "dq", b"no delivery mode")
    channel.basic_publish("", "tq", b"persistent to a transient queue", PERSISTENT)
    channel.basic_publish("both", "", b"to both queues", PERSISTENT)
    channel.basic_publish("", "dq", b"never delivered", PERSISTENT)

    acked, _, body = channel.basic_get("dq")
    assert body == b"acked"
    channel.basic_ack(acked.delivery_tag)
    delivered, _, body = channel.basic_get("dq")
    assert body == b"delivered" and not delivered.redelivered
    sync(channel)  # the ack and the delivery are on disk; the second message stays unacknowledged

    broker_process.restart(how)

    connection = broker_process.connect()
    channel = connection.channel()
    # After a kill -9 any recovered message may have been delivered: all come back redelivered.
    after_kill = how == "kill"
    assert get_all(channel, "dq") == [
        (b"delivered", True), (b"to both queues", after_kill), (b"never delivered", after_kill)
    ]
    assert not exists(connection, "queue", "tq")
    connection.close()


def test_a_clean_shutdown_marks_what_its_consumers_had_not_acked(broker_process: BrokerProcess) -> None:
    connection = broker_process.connect()
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare("q", durable=True)
    for i in range(5):
        channel.basic_publish("", "q", b"%d" % i, PERSISTENT)
    consumer = broker_process.connect()
    consumer_channel = consumer.channel()
    consumer_channel.basic_qos(prefetch_count=2)
    received: list[bytes] = []
    consumer_channel.basic_consume("q", lambda ch, method, props, body: received.append(body))
    deadline = time.monotonic() + 5
    while len(received) < 2:
        assert time.monotonic() < deadline, "no deliveries"
        consumer.process_data_events(time_limit=0.05)

    broker_process.restart("sigterm")  # the consumer is still connected, its two messages unacked

    connection = broker_process.connect()
    assert get_all(connection.channel(), "q") == [
        (b"0", True), (b"1", True), (b"2", False), (b"3", False), (b"4", False)
    ]
    connection.close()


def test_messages_survive_restart_after_restart(broker_process: BrokerProcess) -> None:
    connection = broker_process.connect()
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare("q", durable=True)
    bodies = [b"message %d " % i + bytes(range(256)) * 40 for i in range(20)]
    for body in bodies:
        channel.basic_publish("", "q", body, PERSISTENT)
    connection.close()
    for how in ("sigterm", "kill", "kill", "sigterm"):
        broker_process.restart(how)
    connection = broker_process.connect()
    channel = connection.channel()
    method, _, body = channel.basic_get("q")
    assert body == bodies[0]
    channel.basic_ack(method.delivery_tag)
    channel.basic_get("q")  # delivered, not acknowledged: requeued when the broker stops
    connection.close()
    broker_process.restart("sigterm")
    connection = broker_process.connect()
    found = get_all(connection.channel(), "q")
    assert [body for body, _ in found] == bodies[1:]
    # The kills above left every message marked as possibly delivered.
    assert all(redelivered for _, redelivered in found)
    connection.close()


def test_a_second_broker_on_the_same_data_directory_is_refused(broker_process: BrokerProcess) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "amqpbroker", "--no-http", "--no-metrics", "--host", "127.0.0.1", "--port", "0",
         "--data-dir", str(broker_process.data_dir)],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"amqpbroker: data directory {broker_process.data_dir} is in use by another broker "
        f"(process {broker_process.pid}); stop it first, or use another data directory\n"
    )
    with pytest.raises(StoreError, match=r"is in use by another broker \(process \d+\)"):
        Broker(data_dir=str(broker_process.data_dir)).start()
    # The first broker goes on undisturbed.
    connection = broker_process.connect()
    connection.channel().queue_declare("still-served", durable=True)
    connection.close()


@pytest.mark.parametrize("how", HOW)
def test_the_data_directory_is_free_again_once_its_broker_is_gone(broker_process: BrokerProcess, how: str) -> None:
    if how == "kill":
        broker_process.kill()  # the kernel drops the lock of a killed process
    else:
        broker_process.stop()
    with Broker(data_dir=str(broker_process.data_dir)) as broker:
        assert broker.queues() == []
    broker_process.start()


def test_messages_delivered_before_a_kill_come_back_redelivered(broker_process: BrokerProcess) -> None:
    connection = broker_process.connect()
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare("q", durable=True)
    for i in range(4):
        channel.basic_publish("", "q", b"%d" % i, PERSISTENT)
    for _ in range(2):
        channel.basic_get("q")  # delivered, unacknowledged; the kill comes before the mark can be written
    broker_process.restart("kill")
    connection = broker_process.connect()
    assert get_all(connection.channel(), "q") == [(b"0", True), (b"1", True), (b"2", True), (b"3", True)]
    connection.close()


def test_messages_of_a_queue_deleted_while_unacked_are_collected_after_a_kill(broker_process: BrokerProcess) -> None:
    connection = broker_process.connect()
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare("q", durable=True)
    channel.basic_publish("", "q", b"delivered, then its queue deleted", PERSISTENT)
    channel.basic_get("q")
    channel.queue_delete("q")  # delete-ok comes after the commit; the message waits for its ack
    broker_process.restart("kill")
    broker_process.stop()
    store = LmdbStore(str(broker_process.data_dir))
    try:
        assert store.max_message_id() == -1
    finally:
        store.close()


def test_an_entry_whose_message_is_missing_is_skipped_at_start(broker_process: BrokerProcess) -> None:
    connection = broker_process.connect()
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare("q", durable=True)
    for i in range(3):
        channel.basic_publish("", "q", b"%d" % i, PERSISTENT)
    broker_process.stop()
    store = LmdbStore(str(broker_process.data_dir))
    _, (seq, lost, _), _ = store.queue_entries("/", "q")
    store.apply([DeleteMessage(lost)])  # as a damaged disk might lose it
    store.close()

    broker_process.start()
    assert f"queue 'q' in vhost '/': message {lost} of entry {seq} is missing from the store; skipped it" in (
        broker_process.log()
    )
    connection = broker_process.connect()
    assert get_all(connection.channel(), "q") == [(b"0", False), (b"2", False)]
    connection.close()
