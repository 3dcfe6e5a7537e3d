"""A pika job queue with at-least-once delivery that survives broker restarts.

`submit` publishes jobs as persistent messages to a durable queue and waits for the broker's
confirms, so a submitted job is on disk. `Worker` consumes them, runs each job in a thread of its
own (so the connection keeps answering heartbeats and the broker while a job runs) and acknowledges
it when done. When the connection drops, the worker connects again; a job whose acknowledgement
was lost with the old connection is delivered again, marked redelivered, so jobs must be idempotent.
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import Callable

import pika
import pika.exceptions

QUEUE = "jobs"
log = logging.getLogger(__name__)


def submit(url: str, jobs: list[bytes]) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.queue_declare(QUEUE, durable=True)
        channel.confirm_delivery()
        for job in jobs:
            channel.basic_publish("", QUEUE, job, pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent))
    finally:
        connection.close()


class Worker:
    def __init__(self, url: str, handle: Callable[[bytes, bool], None], *, retry_delay: float = 0.2) -> None:
        """`handle(job, redelivered)` does the work; it runs in a thread of its own."""
        self.params = pika.URLParameters(url)
        self.handle = handle
        self.retry_delay = retry_delay
        self._stopping = threading.Event()

    def run(self) -> None:
        """Consumes until `stop()`, connecting again whenever the connection is lost."""
        while not self._stopping.is_set():
            try:
                self._consume()
            except pika.exceptions.AMQPConnectionError as exc:
                log.warning("connection lost (%r); connecting again in %s s", exc, self.retry_delay)
                self._stopping.wait(self.retry_delay)

    def stop(self) -> None:
        self._stopping.set()

    def _consume(self) -> None:
        connection = pika.BlockingConnection(self.params)
        channel = connection.channel()
        channel.queue_declare(QUEUE, durable=True)
        channel.basic_qos(prefetch_count=1)

        def on_message(channel, method, properties, body):
            job = threading.Thread(target=self._work, args=(connection, channel, method, body))
            job.start()

        channel.basic_consume(QUEUE, on_message)
        while not self._stopping.is_set():
            connection.process_data_events(time_limit=0.1)
        connection.close()

    def _work(self, connection, channel, method, body: bytes) -> None:
        self.handle(body, method.redelivered)
        ack = functools.partial(self._ack, channel, method.delivery_tag)
        try:
            connection.add_callback_threadsafe(ack)
        except pika.exceptions.ConnectionWrongStateError:
            log.info("connection gone before job %r was acknowledged; it will be delivered again", body)

    @staticmethod
    def _ack(channel, delivery_tag: int) -> None:
        # Runs in the connection's thread, maybe after the channel was closed under it.
        if channel.is_open:
            channel.basic_ack(delivery_tag)
