"""A small Celery app: placing an order queues a task that mails the receipt.

Nothing here knows about tests. The worker runs `celery -A worker worker`, where `worker.py` holds
`app = shop.create_app(os.environ["BROKER_URL"])`; `test_shop.py` makes an app per test instead.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from celery import Celery, shared_task


def create_app(broker_url: str) -> Celery:
    app = Celery("shop", broker=broker_url)
    app.conf.update(task_serializer="json", accept_content=["json"], task_ignore_result=True)
    return app


class Mailer:
    def send(self, to: str, subject: str) -> None:
        message = EmailMessage()
        message["To"] = to
        message["From"] = "shop@example.com"
        message["Subject"] = subject
        with smtplib.SMTP("localhost") as smtp:
            smtp.send_message(message)


mailer = Mailer()


@shared_task(name="shop.send_receipt")
def send_receipt(order_id: int, email: str) -> None:
    mailer.send(email, f"Your receipt for order {order_id}")


def place_order(order_id: int, email: str) -> None:
    # ... store the order, then mail the receipt in the background:
    send_receipt.delay(order_id, email)
