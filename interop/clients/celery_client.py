"""The scenarios with Celery (on kombu and py-amqp).

`rpc` is a task run end to end: a real worker (solo pool, in a child process) consumes it from the
broker, and the result comes back through the `rpc://` backend, which is reply_to plus correlation_id.
"""

import multiprocessing

import amqp.exceptions
from celery import Celery

from interop.clients.common import Names, expect, main, wrong_password
from interop.scenarios import HEARTBEAT, PATIENCE

app = Celery("interop")


@app.task
def shout(text: str) -> str:
    return text.upper()


def _configure(url: str, names: Names) -> None:
    app.conf.update(
        broker_url=url,
        result_backend="rpc://",
        task_default_queue=names("tasks"),
        broker_connection_retry_on_startup=False,
        # Broker heartbeats also wake the worker's event loop, so a warm shutdown takes 1 s, not 10.
        broker_heartbeat=HEARTBEAT,
        worker_hijack_root_logger=False,
    )


def connect(url: str, names: Names) -> None:
    _configure(url, names)
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1)
        expect(connection.connected, True, "connected")


def auth_refused(url: str, names: Names) -> None:
    _configure(wrong_password(url), names)
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1)
    except amqp.exceptions.AccessRefused:
        return
    raise AssertionError("a wrong password was accepted")


def rpc(url: str, names: Names) -> None:
    _configure(url, names)
    worker = multiprocessing.Process(
        target=app.worker_main,
        args=([
            "worker", "--pool=solo", "--loglevel=WARNING", f"--hostname={names('worker')}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ],),
    )
    worker.start()
    try:
        expect(shout.delay("ping").get(timeout=PATIENCE), "PING", "task result")
    finally:
        worker.terminate()
        worker.join(PATIENCE)


if __name__ == "__main__":
    main({scenario.__name__: scenario for scenario in (connect, auth_refused, rpc)})
