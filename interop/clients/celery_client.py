"""The scenarios with Celery (on kombu and py-amqp).

`rpc` is a task run end to end: a real worker (solo pool, in a child process) consumes it from the
broker, and the result comes back through the `rpc://` backend, which is reply_to plus correlation_id.
The queue-feature scenarios declare the task queue with RabbitMQ arguments in `task_queues`, as a
Celery application does, and Celery declares it; their tasks report what they saw to a queue that
the scenario reads, and a task that raises Reject (with acks_late) makes the worker reject its message.
"""

import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager

import amqp.exceptions
import kombu.exceptions
from celery import Celery
from celery.exceptions import Reject
from kombu import Connection, Exchange, Queue, binding

from interop.clients.common import (
    Names,
    expect,
    expect_dead_lettered,
    expect_topic_refused,
    main,
    nap,
    operator_policy_queue,
    poll,
    topic_keys,
    topic_user,
    wrong_password,
)
from interop.scenarios import (
    DEAD_LETTER_KEY,
    DELIVERY_LIMIT,
    HEARTBEAT,
    MAX_LENGTH,
    MAX_PRIORITY,
    MESSAGE_EXPIRATION,
    OPERATOR_POLICY_ARGUMENT,
    OPERATOR_POLICY_KEPT,
    OPERATOR_POLICY_PUBLISHES,
    PATIENCE,
    PRIORITY_EXPECTED,
    PRIORITY_PUBLISHES,
    QUEUE_TTL,
    QUORUM_REFUSALS,
    TOPIC_EXCHANGE,
)

app = Celery("interop")


@app.task
def shout(text: str) -> str:
    return text.upper()


def _report(task, queue: str, report: object) -> None:
    with task.app.producer_or_acquire() as producer:
        producer.publish(report, exchange="", routing_key=queue, serializer="json")


@app.task(bind=True)
def note(self, report_to: str, label: str) -> None:
    _report(self, report_to, label)


@app.task(bind=True, acks_late=True)  # acks_late: the worker acks after the task, or rejects on Reject
def refuse(self, report_to: str, requeue: bool) -> None:
    """Report how this delivery arrived, then have the worker reject it."""
    _report(self, report_to, [self.request.delivery_info["redelivered"], self.request.get("x-delivery-count")])
    raise Reject(requeue=requeue)


def _configure(url: str, names: Names, *queues: Queue, **options) -> None:
    """Configure the app for one scenario: `queues` (the first is the default) or names("tasks")."""
    # Celery publishes to a direct queue through the default exchange, so x-death names exchange "".
    queues = queues or (Queue(names("tasks")),)
    app.conf.update(
        broker_url=url,
        result_backend="rpc://",
        task_queues=queues,
        task_default_queue=queues[0].name,
        broker_connection_retry_on_startup=False,
        # Broker heartbeats also wake the worker's event loop, so a warm shutdown takes 1 s, not 10.
        broker_heartbeat=HEARTBEAT,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        **options,
    )


@contextmanager
def _worker(names: Names, *queues: str) -> Iterator[None]:
    """A real worker (solo pool) in a child process while the block runs, consuming from `queues`
    (by default from every queue in task_queues)."""
    argv = [
        "worker", "--pool=solo", "--loglevel=WARNING", f"--hostname={names('worker')}@%h",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]
    if queues:
        argv.append(f"--queues={','.join(queues)}")
    worker = multiprocessing.Process(target=app.worker_main, args=(argv,))
    worker.start()
    try:
        yield
    finally:
        worker.terminate()
        worker.join(PATIENCE)


def _reports(connection: Connection, queue: Queue, count: int) -> list:
    """The next `count` reports the tasks sent to `queue`."""
    queue = queue(connection.channel())
    return [poll(lambda: queue.get(no_ack=True), nap, "report").decode() for _ in range(count)]


def _dead_letter_queue(connection: Connection, names: Names) -> tuple[Queue, dict]:
    """A DLX with its queue, and the arguments that make a queue dead-letter there."""
    exchange = Exchange(names("dlx"), "direct", auto_delete=True)
    queue = Queue(names("dlq"), exchange, routing_key=DEAD_LETTER_KEY, exclusive=True)
    queue = queue(connection.channel())
    queue.declare()
    return queue, {"x-dead-letter-exchange": names("dlx"), "x-dead-letter-routing-key": DEAD_LETTER_KEY}


def _get_dead_letter(queue: Queue, names: Names):
    message = poll(lambda: queue.get(no_ack=True), nap, "dead letter")
    delivered = (message.delivery_info["exchange"], message.delivery_info["routing_key"])
    expect(delivered, (names("dlx"), DEAD_LETTER_KEY), "dead letter's exchange and key")
    return message


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
    with _worker(names):
        expect(shout.delay("ping").get(timeout=PATIENCE), "PING", "task result")


def dead_letter_ttl(url: str, names: Names) -> None:
    """Celery sends a task's `expires` (in seconds) as the message's expiration."""
    with Connection(url) as connection:
        dead_letters, arguments = _dead_letter_queue(connection, names)
        ttl = Queue(names("ttl"), queue_arguments={**arguments, "x-message-ttl": QUEUE_TTL})
        expiring = Queue(names("expiring"), queue_arguments=arguments)
        _configure(url, names, ttl, expiring)
        expires = int(MESSAGE_EXPIRATION) / 1000
        sent = {
            shout.apply_async(("queue-ttl",), queue=ttl.name).id: "queue-ttl",
            shout.apply_async(("message-ttl",), queue=expiring.name, expires=expires).id: "message-ttl",
        }
        messages = [_get_dead_letter(dead_letters, names) for _ in "12"]
        dead = {sent[message.headers["id"]]: message for message in messages}
        expect(sorted(dead), ["message-ttl", "queue-ttl"], "dead letters")
        expect_dead_lettered(dead["queue-ttl"].headers, "expired", ttl.name)
        expect_dead_lettered(dead["message-ttl"].headers, "expired", expiring.name, MESSAGE_EXPIRATION)
        expect(dead["message-ttl"].properties.get("expiration"), None, "expiration of the dead letter")
        for queue in (ttl, expiring):
            queue(connection.channel()).delete()


def dead_letter_reject(url: str, names: Names) -> None:
    with Connection(url) as connection:
        dead_letters, arguments = _dead_letter_queue(connection, names)
        reports = Queue(names("reports"), exclusive=True, channel=connection.channel())
        reports.declare()
        _configure(url, names, Queue(names("tasks"), queue_arguments=arguments))
        refuse.delay(reports.name, False)
        with _worker(names):
            expect(_reports(connection, reports, 1), [[False, None]], "deliveries (redelivered, x-delivery-count)")
            message = _get_dead_letter(dead_letters, names)
        expect(message.headers["task"], refuse.name, "dead letter's task")
        expect_dead_lettered(message.headers, "rejected", names("tasks"))
        Queue(names("tasks"), channel=connection.channel()).delete()


def max_length(url: str, names: Names) -> None:
    with Connection(url) as connection:
        reports = Queue(names("reports"), exclusive=True, channel=connection.channel())
        reports.declare()
        drop = Queue(names("drop"), queue_arguments={"x-max-length": MAX_LENGTH})
        reject = Queue(names("reject"), queue_arguments={"x-max-length": MAX_LENGTH, "x-overflow": "reject-publish"})
        _configure(url, names, drop, reject, broker_transport_options={"confirm_publish": True})
        for n in range(MAX_LENGTH + 1):  # all queued before the worker starts
            note.apply_async((reports.name, f"m{n}"), queue=drop.name)
        outcomes = []
        for n in range(MAX_LENGTH + 1):
            try:
                note.apply_async((reports.name, f"m{n}"), queue=reject.name)
                outcomes.append("ack")
            except kombu.exceptions.OperationalError as exc:
                expect(type(exc.__cause__), amqp.exceptions.MessageNacked, f"cause of {exc!r}")
                outcomes.append("nack")
        expect(outcomes, ["ack"] * MAX_LENGTH + ["nack"], "confirms")
        with _worker(names, drop.name):
            tasks = _reports(connection, reports, MAX_LENGTH)
        expect(tasks, [f"m{n}" for n in range(1, MAX_LENGTH + 1)], "tasks kept by drop-head")
        for queue in (drop, reject):
            queue(connection.channel()).delete()


def priority(url: str, names: Names) -> None:
    with Connection(url) as connection:
        reports = Queue(names("reports"), exclusive=True, channel=connection.channel())
        reports.declare()
        _configure(url, names, Queue(names("tasks"), queue_arguments={"x-max-priority": MAX_PRIORITY}))
        for level, label in PRIORITY_PUBLISHES:  # all queued before the worker starts
            note.apply_async((reports.name, label), priority=level)
        with _worker(names):
            expect(_reports(connection, reports, len(PRIORITY_EXPECTED)), list(PRIORITY_EXPECTED), "order of tasks")
        Queue(names("tasks"), channel=connection.channel()).delete()


def quorum_queue(url: str, names: Names) -> None:
    with Connection(url) as connection:
        dead_letters, arguments = _dead_letter_queue(connection, names)
        reports = Queue(names("reports"), exclusive=True, channel=connection.channel())
        reports.declare()
        arguments = {"x-queue-type": "quorum", "x-delivery-limit": DELIVERY_LIMIT, **arguments}
        _configure(url, names, Queue(names("tasks"), queue_arguments=arguments))
        refuse.delay(reports.name, True)
        with _worker(names):
            seen = _reports(connection, reports, 2)
            expect(seen[1], [True, 1], "redelivery (redelivered, x-delivery-count)")
            message = _get_dead_letter(dead_letters, names)
        expect_dead_lettered(message.headers, "delivery_limit", names("tasks"))
        Queue(names("tasks"), channel=connection.channel()).delete()


def _publish_outcome(task, queue: str, *args) -> str:
    """'ack' or 'nack': how the broker answered a task published with confirms."""
    try:
        task.apply_async(args, queue=queue)
        return "ack"
    except kombu.exceptions.OperationalError as exc:
        expect(type(exc.__cause__), amqp.exceptions.MessageNacked, f"cause of {exc!r}")
        return "nack"


def reject_publish_dlx(url: str, names: Names) -> None:
    with Connection(url) as connection:
        dead_letters, arguments = _dead_letter_queue(connection, names)
        arguments = {"x-max-length": MAX_LENGTH, "x-overflow": "reject-publish-dlx", **arguments}
        tasks = Queue(names("tasks"), queue_arguments=arguments)
        _configure(url, names, tasks, broker_transport_options={"confirm_publish": True})
        outcomes = [_publish_outcome(shout, tasks.name, f"m{n}") for n in range(MAX_LENGTH + 1)]
        expect(outcomes, ["ack"] * MAX_LENGTH + ["nack"], "confirms")
        message = _get_dead_letter(dead_letters, names)
        expect(message.headers["argsrepr"], repr((f"m{MAX_LENGTH}",)), "dead letter's task arguments")
        expect_dead_lettered(message.headers, "maxlen", tasks.name)
        tasks(connection.channel()).delete()


def quorum_declare_rules(url: str, names: Names) -> None:
    """A task queue declared as an application would, through task_queues; Celery declares it when a
    task is sent. kombu makes an exclusive queue auto-delete too, which RabbitMQ reports first, so the
    exclusive declaration is left out (it would be the auto-delete one again). The app keeps the task
    queues it was first configured with, so they are all configured at once, each under its own name."""
    refusals = [refusal for refusal in QUORUM_REFUSALS if not refusal[0].get("exclusive")]
    queues = [
        Queue(
            names(f"tasks{n}"), **{"durable": True, "auto_delete": False, **flags},
            queue_arguments={"x-queue-type": "quorum", **arguments},
        )
        for n, (flags, arguments, _) in enumerate(refusals)
    ]
    _configure(url, names, *queues)
    for tasks, (flags, arguments, text) in zip(queues, refusals):
        try:
            shout.apply_async(("refused",), queue=tasks.name)
            raise AssertionError(f"declared a quorum queue with {flags} {arguments}")
        except amqp.exceptions.PreconditionFailed as exc:
            refused = exc.reply_text.startswith(f"{text} for queue '{tasks.name}'")
            expect(refused, True, f"reply text {exc.reply_text!r}")


def topic_permissions(url: str, names: Names) -> None:
    """Tasks routed through amq.topic, by an application logged in as a user with topic permissions
    there: Celery declares the task queue and its bindings when it sends a task to it."""
    allowed, readable, refused = topic_keys(names)
    url = topic_user(url)
    with Connection(url) as connection:
        reports = Queue(names("reports"), exclusive=True, channel=connection.channel())
        reports.declare()
        exchange = Exchange(TOPIC_EXCHANGE, "topic")
        tasks = Queue(names("tasks"), bindings=[binding(exchange, routing_key=key) for key in (allowed, readable)])
        unbindable = Queue(names("unbindable"), exchange, routing_key=refused)
        # With confirms, a publish waits for the broker's answer: a refused one's is the channel's close.
        _configure(url, names, tasks, unbindable, broker_transport_options={"confirm_publish": True})
        note.apply_async((reports.name, "allowed"), queue=tasks, exchange=TOPIC_EXCHANGE, routing_key=allowed)
        try:
            note.apply_async((reports.name, "refused"), queue=tasks, exchange=TOPIC_EXCHANGE, routing_key=readable)
            raise AssertionError(f"a task sent with the key {readable!r} was accepted")
        except amqp.exceptions.AccessRefused as exc:
            expect_topic_refused(exc.reply_code, exc.reply_text, readable)
        try:
            shout.apply_async(("refused",), queue=unbindable)
            raise AssertionError(f"a task queue bound with the key {refused!r} was declared")
        except amqp.exceptions.AccessRefused as exc:
            expect_topic_refused(exc.reply_code, exc.reply_text, refused)
        expect(tasks(connection.channel()).queue_declare(passive=True).message_count, 1, "tasks queued")
        with _worker(names, tasks.name):
            expect(_reports(connection, reports, 1), ["allowed"], "tasks run")
        for queue in (tasks, unbindable):
            queue(connection.channel()).delete()


def operator_policy(url: str, names: Names) -> None:
    """The task queue is declared with x-max-length in task_queues, as an application would; the
    operator policy caps it lower, so of the tasks sent before a worker starts only the newest run."""
    with Connection(url) as connection:
        reports = Queue(names("reports"), exclusive=True, channel=connection.channel())
        reports.declare()
        tasks = Queue(operator_policy_queue(names), queue_arguments={"x-max-length": OPERATOR_POLICY_ARGUMENT})
        _configure(url, names, tasks, broker_transport_options={"confirm_publish": True})
        for label in OPERATOR_POLICY_PUBLISHES:  # each confirmed, all queued before the worker starts
            note.apply_async((reports.name, label), queue=tasks.name)
        queued = tasks(connection.channel()).queue_declare(passive=True).message_count
        expect(queued, len(OPERATOR_POLICY_KEPT), "tasks queued")
        with _worker(names, tasks.name):
            expect(_reports(connection, reports, len(OPERATOR_POLICY_KEPT)), list(OPERATOR_POLICY_KEPT), "tasks run")
        expect(tasks(connection.channel()).delete(), 0, "tasks left")


if __name__ == "__main__":
    main({scenario.__name__: scenario for scenario in (
        connect, auth_refused, rpc, dead_letter_ttl, dead_letter_reject, max_length, priority, quorum_queue,
        reject_publish_dlx, quorum_declare_rules, topic_permissions, operator_policy,
    )})
