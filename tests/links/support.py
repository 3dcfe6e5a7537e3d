"""Publishers and drains for the link tests: a publisher with confirms that survives its broker's
restarts, and the at-least-once, in-order check of what arrived."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import pika
import pika.exceptions

DEADLINE_SECONDS = 90


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def api(http_url: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """A management API request as guest: the status and the JSON answer (None without a body)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(http_url + path, method=method, data=data)
    request.add_header("authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            answer = reply.read()
            return reply.status, json.loads(answer) if answer else None
    except urllib.error.HTTPError as error:
        answer = error.read()
        return error.code, json.loads(answer) if answer else None


def wait_for(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def shovel_uri(url: str) -> str:
    """`url` as a shovel URI for the vhost "/": RabbitMQ's URI spec reads a bare trailing "/" as the
    vhost "" (its shovels do too), so the path is left out."""
    return url.rstrip("/")


def persistent(i: int) -> pika.BasicProperties:
    return pika.BasicProperties(delivery_mode=2, message_id=str(i))


class Publisher(threading.Thread):
    """Publishes 0..count-1 as persistent messages with confirms to `queue` (declared durable), or
    to `exchange` with the routing key `queue`, reconnecting when the broker goes away and
    publishing again what was not confirmed. `confirmed` lists what the broker confirmed, in order."""

    def __init__(self, url: str, queue: str, count: int, exchange: str = "") -> None:
        super().__init__(daemon=True)
        self.url = url
        self.queue = queue
        self.exchange = exchange
        self.count = count
        self.confirmed: list[int] = []
        self.reconnects = 0
        self.error: BaseException | None = None

    def wait_for(self, confirmed: int) -> None:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while len(self.confirmed) < confirmed and self.is_alive():
            assert time.monotonic() < deadline, f"only {len(self.confirmed)} confirmed"
            time.sleep(0.01)

    def run(self) -> None:
        deadline = time.monotonic() + DEADLINE_SECONDS
        try:
            while len(self.confirmed) < self.count and time.monotonic() < deadline:
                try:
                    self._publish()
                except (pika.exceptions.AMQPError, OSError):
                    self.reconnects += 1
                    time.sleep(0.2)
        except BaseException as exc:  # reported by finish()
            self.error = exc

    def _publish(self) -> None:
        params = pika.URLParameters(self.url)
        params.socket_timeout = 5
        params.blocked_connection_timeout = 5
        connection = pika.BlockingConnection(params)
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            if not self.exchange:
                channel.queue_declare(self.queue, durable=True)
            while len(self.confirmed) < self.count:
                i = len(self.confirmed)
                channel.basic_publish(self.exchange, self.queue, str(i).encode(), persistent(i))
                self.confirmed.append(i)
        finally:
            if connection.is_open:
                connection.close()

    def finish(self) -> list[int]:
        self.join(DEADLINE_SECONDS)
        assert self.error is None, self.error
        assert len(self.confirmed) == self.count, f"only {len(self.confirmed)} of {self.count} confirmed"
        return self.confirmed


def drain(url: str, queue: str, expected: set[int]) -> list[int]:
    """Consumes `queue` until every expected message has arrived (or the deadline passes); returns
    what arrived, in order, duplicates included."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.queue_declare(queue, durable=True)
        received: list[int] = []
        missing = set(expected)
        deadline = time.monotonic() + DEADLINE_SECONDS
        while missing and time.monotonic() < deadline:
            method, _, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                connection.sleep(0.05)
                continue
            received.append(int(body))
            missing.discard(int(body))
        return received
    finally:
        connection.close()


def check_at_least_once_in_order(received: list[int], confirmed: list[int]) -> None:
    """Every confirmed message arrived; first arrivals keep the publisher's order (a message may
    come again after a failure: at-least-once)."""
    missing = sorted(set(confirmed) - set(received))
    assert not missing, f"{len(missing)} confirmed messages lost, e.g. {missing[:10]}"
    firsts: list[int] = []
    seen: set[int] = set()
    for i in received:
        if i not in seen:
            seen.add(i)
            firsts.append(i)
    assert firsts == sorted(firsts), "first arrivals out of publish order"
