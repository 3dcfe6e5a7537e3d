"""Testing retries through a dead-letter exchange with the amqpbroker pytest plugin and a real worker.

The broker does the retrying here (TTL, dead-lettering, `x-death`), so the tests run the whole loop:
a worker in a thread, a short retry delay, and `amqp_broker` to look into the queues.
Run with `pytest examples/celery_retries`.
"""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager

import pytest
from celery import states
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun, task_prerun

import billing


@pytest.fixture
def celery_app(amqp_url):
    # An app per test: Celery keeps its producer connections, and they belong to the test's vhost.
    with billing.create_app(amqp_url, retry_delay=0.05) as app:
        yield app


@contextmanager
def running_worker(app):
    """A worker in a thread of this process (no ping check: that would need a result backend).

    Tasks run in the worker's thread pool, not in its event loop (`solo`): with kombu 5.7, an
    acknowledgement or rejection made in the event loop's thread can wait there until the loop's
    next timer, up to 10 s, and a retry would wait with it.
    """
    with start_worker(app, perform_ping_check=False, pool="threads") as worker:
        yield worker
        # Wakes the worker to stop at once; left alone, it would notice only at its next timer.
        app.control.shutdown(destination=[worker.hostname])


@pytest.fixture
def celery_worker(celery_app):
    with running_worker(celery_app) as worker:
        yield worker


class FakeGateway:
    """Declines the first `declines` charges, then accepts."""

    def __init__(self, declines):
        self.declines = declines
        self.charged = []
        self.got_one = threading.Event()

    def charge(self, order_id, amount_cents):
        if self.declines:
            self.declines -= 1
            raise billing.GatewayError("card declined")
        self.charged.append((order_id, amount_cents))
        self.got_one.set()


@pytest.fixture
def deaths():
    """The `x-death` header each attempt arrived with, as (queue, reason, count), most recent first."""
    seen = []

    def record(task, **_):
        x_death = (task.request.headers or {}).get("x-death", [])
        seen.append([(death["queue"], death["reason"], death["count"]) for death in x_death])

    task_prerun.connect(record, weak=False)
    yield seen
    task_prerun.disconnect(record)


@pytest.fixture
def gave_up():
    """Set when a task ends in FAILURE (one that rejects its message for a retry ends in REJECTED)."""
    event = threading.Event()

    def record(state, **_):
        if state == states.FAILURE:
            event.set()

    task_postrun.connect(record, weak=False)
    yield event
    task_postrun.disconnect(record)


def test_a_declined_charge_is_retried_after_the_delay(celery_worker, monkeypatch, deaths, amqp_broker, amqp_vhost):
    gateway = FakeGateway(declines=1)
    monkeypatch.setattr(billing, "gateway", gateway)

    billing.bill_order(7, 1999)

    assert gateway.got_one.wait(timeout=10)
    assert gateway.charged == [(7, 1999)]
    assert deaths == [[], [("charges.retry", "expired", 1), ("charges", "rejected", 1)]]
    assert amqp_broker.queue("charges", amqp_vhost).arguments["x-queue-type"] == "quorum"
    assert amqp_broker.messages("charges.parked", amqp_vhost) == []


def test_a_charge_declined_every_time_is_parked(celery_worker, monkeypatch, deaths, gave_up, amqp_broker, amqp_vhost):
    monkeypatch.setattr(billing, "gateway", FakeGateway(declines=billing.MAX_ATTEMPTS))

    billing.bill_order(8, 500)

    assert gave_up.wait(timeout=10)
    assert deaths == [
        [],
        [("charges.retry", "expired", 1), ("charges", "rejected", 1)],
        [("charges.retry", "expired", 2), ("charges", "rejected", 2)],
    ]
    [parked] = amqp_broker.messages("charges.parked", amqp_vhost)
    assert parked.properties.headers["task"] == "billing.charge"
    args, kwargs, _ = json.loads(parked.body)
    assert args == [8, 500]
    assert amqp_broker.messages("charges.retry", amqp_vhost) == []


def test_a_charge_with_a_countdown_waits_in_the_broker(celery_worker, monkeypatch, deaths):
    """Celery's native delayed delivery for quorum queues: the countdown runs out in a queue of the
    broker (`celery_delayed_0`, with a TTL of one second), not in the worker's memory."""
    gateway = FakeGateway(declines=0)
    monkeypatch.setattr(billing, "gateway", gateway)

    billing.charge.apply_async((9, 100), countdown=1)

    assert gateway.got_one.wait(timeout=10)
    assert deaths == [[("celery_delayed_0", "expired", 1)]]


@pytest.fixture
def clock_broker(amqp_broker_factory):
    """A broker of this test's own whose clock moves only when the test says: `advance(seconds)`."""
    return amqp_broker_factory(clock="manual")


def test_a_declined_charge_is_retried_five_minutes_later_without_waiting_for_them(
    clock_broker, monkeypatch, deaths
):
    """The real retry delay (five minutes), no sleeping: the message waits in the retry queue until
    the test moves the broker's clock past its TTL; the broker then dead-letters it back at once."""
    gateway = FakeGateway(declines=1)
    monkeypatch.setattr(billing, "gateway", gateway)
    with billing.create_app(clock_broker.url, retry_delay=300) as app, running_worker(app):
        billing.bill_order(7, 1999)
        clock_broker.wait_for(lambda: clock_broker.queue("charges.retry").message_count == 1)

        clock_broker.advance(299)
        assert clock_broker.queue("charges.retry").message_count == 1
        clock_broker.advance(1)
        clock_broker.wait_acked("charges", 1)

    assert gateway.charged == [(7, 1999)]
    assert deaths == [[], [("charges.retry", "expired", 1), ("charges", "rejected", 1)]]
    retry = [(event.kind, event.at) for event in clock_broker.history() if event.queue == "charges.retry"]
    assert retry == [("routed", 0.0), ("expired", 300.0), ("dead-lettered", 300.0)]
