"""What every shop service shares: the topology, a connection to the broker that is made again when
it drops, publishing with confirms, consuming with manual acknowledgements, and the ledger (a small
SQLite file) that makes a consumer idempotent.

A service is a set of handlers, one per queue it consumes. A handler takes the message's routing
key and its event (a dict) and returns the events to publish because of it; `serve` publishes
them, waits for the broker's confirms, and only then acknowledges the message. A handler that
raises has its message returned to the queue; the queue counts the failure, and the third one
dead-letters the message.
"""

from __future__ import annotations

import argparse
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pika
import pika.exceptions

EXCHANGE = "shop"
DEAD_LETTER_EXCHANGE = "shop.dead-letters"
DEAD_LETTER_QUEUE = "shop.dead"
# Quorum queues count a message's failed deliveries (x-delivery-count): one returned more often
# than the limit is dead-lettered, so with 2 the third failure is the last.
DELIVERY_LIMIT = 2
QUEUE_ARGUMENTS = {
    "x-queue-type": "quorum",
    "x-delivery-limit": DELIVERY_LIMIT,
    "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
}
# Each queue and the routing keys bound to it on the `shop` topic exchange.
QUEUES = {
    "inventory": ["order.placed"],
    "payment": ["order.placed"],
    "email": ["payment.succeeded"],
    "shipping": ["stock.reserved", "payment.succeeded"],
    "orders": ["order.shipped", "payment.failed"],
}

Event = dict
Handler = Callable[[str, Event], list[tuple[str, Event]]]
log = logging.getLogger(__name__)


def declare_topology(channel) -> None:
    """Declares every exchange, queue and binding of the shop: each service does it when it
    connects, so none depends on another having started first, and none publishes to a queue
    that does not exist yet. Declaring what exists already changes nothing."""
    channel.exchange_declare(EXCHANGE, "topic", durable=True)
    channel.exchange_declare(DEAD_LETTER_EXCHANGE, "fanout", durable=True)
    channel.queue_declare(DEAD_LETTER_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_bind(DEAD_LETTER_QUEUE, DEAD_LETTER_EXCHANGE)
    for queue, routing_keys in QUEUES.items():
        channel.queue_declare(queue, durable=True, arguments=QUEUE_ARGUMENTS)
        for routing_key in routing_keys:
            channel.queue_bind(queue, EXCHANGE, routing_key)


def publish(channel, routing_key: str, event: Event) -> None:
    """Publishes a persistent message and returns once the broker has confirmed it: it is then on
    disk in every queue it was routed to. Raises if the broker refuses it or the connection drops,
    and the caller publishes it again (a duplicate its consumers must tolerate)."""
    properties = pika.BasicProperties(
        delivery_mode=pika.DeliveryMode.Persistent,
        content_type="application/json",
        message_id=f"{routing_key}:{event['order_id']}",
    )
    channel.basic_publish(EXCHANGE, routing_key, json.dumps(event).encode(), properties, mandatory=True)


def serve(
    url: str,
    handlers: dict[str, Handler],
    *,
    prefetch: int = 10,
    auto_ack: bool = False,
    idle: Callable[[Callable[[str, Event], None]], None] | None = None,
    retry_delay: float = 0.2,
) -> None:
    """Consumes the handlers' queues forever, connecting again whenever the connection is lost.

    `idle(publish)`, if given, is called between rounds of deliveries, for a service that
    publishes on its own (the order service placing orders)."""
    while True:
        try:
            _session(url, handlers, prefetch, auto_ack, idle)
        except pika.exceptions.AMQPError as exc:
            log.warning("connection lost (%r); connecting again in %s s", exc, retry_delay)
            time.sleep(retry_delay)


def _session(url: str, handlers: dict[str, Handler], prefetch: int, auto_ack: bool, idle) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        _consume(connection, handlers, prefetch, auto_ack, idle)
    finally:
        # After a channel error (a publish refused), the connection is still open, holding the
        # unacknowledged messages: closing it returns them to their queues.
        if connection.is_open:
            connection.close()


def _consume(connection, handlers: dict[str, Handler], prefetch: int, auto_ack: bool, idle) -> None:
    channel = connection.channel()
    channel.confirm_delivery()
    declare_topology(channel)
    channel.basic_qos(prefetch_count=prefetch)
    log.info("connected")

    def send(routing_key: str, event: Event) -> None:
        publish(channel, routing_key, event)

    for queue, handler in handlers.items():
        on_message = _on_message(handler, send, auto_ack)
        channel.basic_consume(queue, on_message, auto_ack=auto_ack)
    while True:
        connection.process_data_events(time_limit=0.05)
        if idle is not None:
            idle(send)


def _on_message(handler: Handler, send: Callable[[str, Event], None], auto_ack: bool):
    def on_message(channel, method, properties, body: bytes) -> None:
        try:
            events = handler(method.routing_key, json.loads(body))
        except Exception:
            log.exception("failed on %s (redelivered=%s)", properties.message_id, method.redelivered)
            if not auto_ack:
                channel.basic_nack(method.delivery_tag, requeue=True)
            return
        for routing_key, event in events:
            send(routing_key, event)
        if not auto_ack:
            channel.basic_ack(method.delivery_tag)

    return on_message


class Ledger:
    """A service's SQLite file: what it has done, written in the same transaction as the doing, so
    that a message delivered again finds its work done and only repeats its answer."""

    def __init__(self, path: Path, schema: str) -> None:
        # Several processes (competing consumers) may share one ledger; SQLite's lock orders them.
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(schema)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


def service_arguments(description: str) -> argparse.ArgumentParser:
    """The flags every service takes; each adds its own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--url", required=True, help="the broker, e.g. amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--state", type=Path, required=True, help="the directory of the services' SQLite files")
    return parser


def log_to_stderr(name: str) -> None:
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name}: %(message)s")
    logging.getLogger("pika").setLevel(logging.WARNING)
