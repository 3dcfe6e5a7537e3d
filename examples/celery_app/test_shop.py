"""Testing the Celery app with the amqpbroker pytest plugin: no RabbitMQ, no result backend.

`amqp_url` is a vhost of its own for each test; `amqp_broker` shows what is in it.
Run with `pytest examples/celery_app`.
"""

from __future__ import annotations

import json
import threading

import pytest
from celery.contrib.testing.worker import start_worker

import shop


@pytest.fixture
def celery_app(amqp_url):
    # An app per test: Celery keeps its producer connections, and they belong to the test's vhost.
    with shop.create_app(amqp_url) as app:
        yield app


class FakeMailer:
    def __init__(self):
        self.sent = []
        self.got_one = threading.Event()

    def send(self, to, subject):
        self.sent.append((to, subject))
        self.got_one.set()


@pytest.fixture
def mailer(monkeypatch):
    fake = FakeMailer()
    monkeypatch.setattr(shop, "mailer", fake)
    return fake


def test_placing_an_order_queues_the_receipt_task(celery_app, amqp_broker, amqp_vhost):
    shop.place_order(42, "ada@example.com")

    [message] = amqp_broker.messages("celery", amqp_vhost)
    assert message.properties.headers["task"] == "shop.send_receipt"
    assert message.properties.content_type == "application/json"
    args, kwargs, _ = json.loads(message.body)
    assert args == [42, "ada@example.com"]


@pytest.fixture
def celery_worker(celery_app):
    """A worker in a thread of this process (no ping check: that would need a result backend)."""
    with start_worker(celery_app, perform_ping_check=False) as worker:
        yield worker
        # Wakes the worker to stop at once; left alone, it would notice only at its next timer.
        celery_app.control.shutdown()


def test_the_worker_mails_the_receipt(celery_worker, mailer):
    shop.place_order(7, "grace@example.com")

    assert mailer.got_one.wait(timeout=10)
    assert mailer.sent == [("grace@example.com", "Your receipt for order 7")]
