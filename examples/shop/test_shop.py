"""The whole shop, end to end: every order ends, as its card says it must, exactly once in effect,
across a broker killed with SIGKILL and services killed while they work.

Each test runs the services as processes, as `python -m examples.shop` does. The first runs the
broker as a process too (the `amqpbroker` command), so it can be killed as a crash would; the
second runs on the plugin's embedded broker, restarts it and kills the payment service, then
looks at the topology the services declared. Run with `pytest examples/shop`.
"""

from __future__ import annotations

import io

from . import bus, runner
from .orders import expected_outcome

ORDERS = 80


def assert_every_order_ended_once(report: runner.Report) -> None:
    snapshot = report.snapshot
    assert report.complete, "\n".join(report.events)
    assert snapshot.outcomes == {order: expected_outcome(order) for order in range(1, ORDERS + 1)}
    assert snapshot.reserved == ORDERS
    assert snapshot.stock_consistent
    assert snapshot.extra_charges == 0
    assert snapshot.paid == snapshot.emailed == snapshot.count("shipped")


def test_every_order_ends_once_across_a_broker_crash_and_consumer_crashes(tmp_path):
    options = runner.Options(
        orders=ORDERS, rate=80, kill_email=True, kill_payment=True, kill_broker=True, directory=tmp_path
    )

    report = runner.run(options, out=io.StringIO())

    assert_every_order_ended_once(report)
    happened = " | ".join(report.events)
    for event in ("kill -9 email", "email started again", "kill -9 payment", "payment started again", "broker killed"):
        assert event in happened
    assert len(report.broker_back_seconds) == len(report.flowing_again_seconds) == 1


class EmbeddedBroker:
    """The plugin's broker, for the runner: a restart stands for the crash."""

    def __init__(self, broker, url: str) -> None:
        self.broker = broker
        self.url = url

    def crash(self) -> None:
        # The services' connections are reset at once, with their unacknowledged messages requeued.
        self.broker.restart(close_timeout=0)


def test_the_shop_on_the_embedded_broker_through_a_restart_and_a_consumer_crash(amqp_broker, amqp_url, amqp_vhost, tmp_path):
    options = runner.Options(
        orders=ORDERS, rate=80, inventory_workers=2, kill_payment=True, kill_broker=True, directory=tmp_path
    )

    report = runner.run(options, EmbeddedBroker(amqp_broker, amqp_url), out=io.StringIO())

    assert_every_order_ended_once(report)
    assert set(report.snapshot.reservations_by_worker) == {1, 2}
    queues = {queue.name: queue for queue in amqp_broker.queues(amqp_vhost)}
    assert set(queues) == {*bus.QUEUES, bus.DEAD_LETTER_QUEUE}
    assert all(queues[name].durable and queues[name].arguments == bus.QUEUE_ARGUMENTS for name in bus.QUEUES)
    bindings = {(b.destination, b.routing_key) for b in amqp_broker.bindings(amqp_vhost) if b.source == bus.EXCHANGE}
    assert bindings == {(queue, key) for queue, keys in bus.QUEUES.items() for key in keys}
