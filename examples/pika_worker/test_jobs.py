"""Testing the pika worker through a broker restart with the amqpbroker pytest plugin.

Run with `pytest examples/pika_worker`.
"""

from __future__ import annotations

import threading
import time

import pytest

import jobs


def wait_until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


class Recorder:
    """Records every job it runs; the first run of job-1 is slow."""

    def __init__(self):
        self.runs = []
        self.release = threading.Event()

    def __call__(self, job, redelivered):
        self.runs.append((job, redelivered))
        if job == b"job-1" and not redelivered:
            self.release.wait(5)


@pytest.fixture
def recorder():
    recorder = Recorder()
    yield recorder
    recorder.release.set()


@pytest.fixture
def worker(amqp_url, recorder):
    worker = jobs.Worker(amqp_url, recorder, retry_delay=0.05)
    thread = threading.Thread(target=worker.run)
    thread.start()
    yield worker
    worker.stop()
    thread.join(5)


def test_jobs_run_once_each(worker, recorder, amqp_url, amqp_broker, amqp_vhost):
    recorder.release.set()
    jobs.submit(amqp_url, [b"job-1", b"job-2"])

    wait_until(lambda: len(recorder.runs) == 2)
    assert recorder.runs == [(b"job-1", False), (b"job-2", False)]
    wait_until(lambda: amqp_broker.queue("jobs", amqp_vhost).unacked_count == 0)


def test_a_job_in_progress_during_a_broker_restart_runs_again(worker, recorder, amqp_url, amqp_broker, amqp_vhost):
    jobs.submit(amqp_url, [b"job-1", b"job-2"])
    wait_until(lambda: recorder.runs == [(b"job-1", False)])
    queue = amqp_broker.queue("jobs", amqp_vhost)
    assert (queue.message_count, queue.unacked_count) == (1, 1)

    # Job 1 is still running: the restart takes its delivery, and its acknowledgement, with it.
    amqp_broker.restart()
    recorder.release.set()

    # The worker connects again and gets job 1 again, redelivered, then job 2.
    wait_until(lambda: len(recorder.runs) == 3)
    assert recorder.runs == [(b"job-1", False), (b"job-1", True), (b"job-2", False)]
    wait_until(lambda: amqp_broker.queue("jobs", amqp_vhost).unacked_count == 0)
    assert amqp_broker.queue("jobs", amqp_vhost).message_count == 0
