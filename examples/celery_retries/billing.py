"""Charging orders with Celery on quorum queues, retrying failed charges through a dead-letter exchange.

The charge task runs with `acks_late`. When the payment gateway fails, the task rejects its message
(`Reject(requeue=False)`) and the broker dead-letters it to `charges.retry`. It waits there for the
retry delay (the queue's `x-message-ttl`), then expires and is dead-lettered back to `charges`, where
the worker runs it again. The broker counts each trip in the message's `x-death` header: the attempt
that fails for the MAX_ATTEMPTS-th time parks the charge in `charges.parked`, for a person to look at.

Nothing here knows about tests. The worker runs `celery -A worker worker`, where `worker.py` holds
`app = billing.create_app(os.environ["BROKER_URL"])`; `test_billing.py` makes an app per test instead.
"""

from __future__ import annotations

from celery import Celery, bootsteps, shared_task
from celery.exceptions import Reject
from kombu import Exchange, Queue

MAX_ATTEMPTS = 3
QUORUM = {"x-queue-type": "quorum"}

# A topic exchange, as Celery 5.5 wants for quorum queues: tasks sent with a countdown or an ETA then
# wait in the broker (Celery's "native delayed delivery") instead of in the worker's memory.
CHARGES = Queue(
    "charges",
    Exchange("billing", type="topic"),
    routing_key="charges",
    queue_arguments={**QUORUM, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "charges.retry"},
)
PARKED = Queue("charges.parked", Exchange(""), routing_key="charges.parked", queue_arguments=QUORUM)


def retry_queue(delay: float) -> Queue:
    """Where a rejected charge waits `delay` seconds before the broker sends it back to `charges`."""
    arguments = {
        **QUORUM,
        "x-message-ttl": round(delay * 1000),
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": CHARGES.name,
    }
    return Queue("charges.retry", Exchange(""), routing_key="charges.retry", queue_arguments=arguments)


class DeclareRetryQueues(bootsteps.StartStopStep):
    """Declares the retry and parking-lot queues, which no worker consumes, before the first task runs."""

    requires = {"celery.worker.consumer.connection:Connection"}

    def start(self, consumer) -> None:
        channel = consumer.connection.default_channel
        for queue in (retry_queue(consumer.app.conf.billing_retry_delay), PARKED):
            queue.bind(channel).declare()


def create_app(broker_url: str, retry_delay: float = 60.0) -> Celery:
    app = Celery("billing", broker=broker_url)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_queues=[CHARGES],
        task_default_queue=CHARGES.name,
        # Publisher confirms: sending a task (or parking one) returns once the broker has it.
        broker_transport_options={"confirm_publish": True},
        billing_retry_delay=retry_delay,
    )
    app.steps["consumer"].add(DeclareRetryQueues)
    return app


class GatewayError(Exception):
    pass


class Gateway:
    def charge(self, order_id: int, amount_cents: int) -> None:
        raise GatewayError("no payment gateway configured")


gateway = Gateway()


def failures(request) -> int:
    """How often this message has failed before: the broker's count of its rejections from `charges`."""
    deaths = (request.headers or {}).get("x-death", [])
    return next((d["count"] for d in deaths if d["queue"] == CHARGES.name and d["reason"] == "rejected"), 0)


@shared_task(bind=True, acks_late=True, name="billing.charge")
def charge(self, order_id: int, amount_cents: int) -> None:
    try:
        gateway.charge(order_id, amount_cents)
    except GatewayError as exc:
        if failures(self.request) + 1 < MAX_ATTEMPTS:
            raise Reject(exc, requeue=False) from exc
        # The same task message (id, arguments) goes to the parking lot; this one fails and is acked.
        self.signature_from_request(queue=PARKED).apply_async()
        raise


def bill_order(order_id: int, amount_cents: int) -> None:
    # ... store the order, then charge it in the background:
    charge.delay(order_id, amount_cents)
