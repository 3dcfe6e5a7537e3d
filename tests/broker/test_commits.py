"""The commit tracker's rules, without sockets or a persister: batch numbers, waiters, failures."""

from __future__ import annotations

from amqpbroker.core.commits import CommitTracker
from amqpbroker.core.journal import Journal
from amqpbroker.core.memory import MemoryWatermark
from amqpbroker.core.message import Message
from amqpbroker.store.base import DeleteRecord, Dequeue, Enqueue, PutQueue


class Recorder:
    def __init__(self) -> None:
        self.outcomes: list[tuple[int, bool]] = []

    def batch_resolved(self, batch: int, ok: bool) -> None:
        self.outcomes.append((batch, ok))


def make() -> tuple[CommitTracker, Journal]:
    journal = Journal()
    return CommitTracker(journal, MemoryWatermark()), journal


def stored(journal: Journal, message_id: int) -> Message:
    message = Message("", "q", b"", b"body")
    journal.next_message_id = message_id
    journal.store_message(message)
    journal.append(Enqueue("/", "q", message_id, message_id))
    message.refs = message.holders = 1
    return message


def test_nothing_journaled_and_nobody_waiting_is_no_batch() -> None:
    tracker, _ = make()
    assert tracker.take() is None


def test_a_change_knows_its_batch_and_a_call_that_journals_nothing_has_none() -> None:
    tracker, journal = make()
    with tracker.change() as nothing:
        pass
    with tracker.change() as something:
        journal.append(PutQueue("/", "q", False, {}))
    assert nothing.batch is None
    assert something.batch == 0
    assert tracker.take().number == 0
    with tracker.change() as later:
        journal.append(PutQueue("/", "r", False, {}))
    assert later.batch == 1


def test_a_batch_emptied_by_cancellation_is_still_taken_for_its_waiter() -> None:
    tracker, journal = make()
    waiter = Recorder()
    journal.append(PutQueue("/", "q", False, {}), key="put")
    assert tracker.wait(waiter) == 0
    assert journal.cancel("put")
    batch = tracker.take()
    assert batch is not None and batch.number == 0 and batch.ops == []
    tracker.resolve(batch, True)
    assert waiter.outcomes == [(0, True)]


def test_waiting_on_an_empty_journal_wakes_the_persister() -> None:
    tracker, journal = make()
    woken = []
    journal.wake = lambda: woken.append(True)
    tracker.wait(Recorder())
    assert woken == [True]


def test_waiters_learn_each_outcome_in_batch_order_and_once() -> None:
    tracker, journal = make()
    waiter, forgotten = Recorder(), Recorder()
    journal.append(PutQueue("/", "a", False, {}))
    tracker.wait(waiter)
    tracker.wait(waiter)
    first = tracker.take()
    journal.append(PutQueue("/", "b", False, {}))
    tracker.wait(waiter)
    tracker.wait(forgotten)
    tracker.forget(forgotten)
    second = tracker.take()
    tracker.resolve(first, False)
    tracker.resolve(second, True)
    assert waiter.outcomes == [(0, False), (1, True)]
    assert forgotten.outcomes == []


def test_a_committed_batch_keeps_bodies_in_memory_while_there_is_room() -> None:
    journal = Journal()
    memory = MemoryWatermark(limit=100)
    tracker = CommitTracker(journal, memory)
    message = stored(journal, 1)
    memory.add(len(message.body))
    tracker.resolve(tracker.take(), True)
    assert message.body == b"body" and memory.used == 4


def test_under_memory_pressure_a_committed_batch_drops_bodies_that_only_durable_queues_hold() -> None:
    journal = Journal()
    memory = MemoryWatermark(limit=10)
    tracker = CommitTracker(journal, memory)
    durable_only = stored(journal, 1)
    also_transient = stored(journal, 2)
    also_transient.holders = 2
    memory.add(8)  # both bodies: past half the limit
    tracker.resolve(tracker.take(), True)
    assert durable_only.body is None
    assert also_transient.body == b"body"
    assert memory.used == 4


def test_a_failed_batch_makes_its_messages_transient_and_retries_everything_else_first() -> None:
    tracker, journal = make()
    journal.append(PutQueue("/", "q", False, {}))
    message = stored(journal, 7)
    journal.append(Dequeue("/", "q", 3))
    failed = tracker.take()
    journal.append(PutQueue("/", "later", False, {}))
    tracker.resolve(failed, False)
    assert message.message_id is None and message.refs == 0
    assert message.body == b"body"
    retried = tracker.take()
    assert retried.ops == [PutQueue("/", "q", False, {}), Dequeue("/", "q", 3), PutQueue("/", "later", False, {})]


def test_the_journal_tells_whether_acks_outran_the_writes_of_the_batch_taken_last() -> None:
    journal = Journal()
    assert not journal.acks_outrun_writes
    for key in ("a", "b", "c"):
        journal.append(DeleteRecord("kind", (key,)), key=key)
    journal.cancel("a")
    journal.cancel("b")
    journal.take()
    assert journal.acks_outrun_writes
    for key in ("d", "e"):
        journal.append(DeleteRecord("kind", (key,)), key=key)
    journal.cancel("d")
    journal.take()
    assert not journal.acks_outrun_writes
