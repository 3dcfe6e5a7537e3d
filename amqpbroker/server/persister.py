"""The single task that writes the core's journal to the store, one batch per transaction.

While one batch is being written in the store's thread, new operations gather in the journal;
they become the next batch. So publishes that arrive together share one transaction and one sync,
and the confirms waiting for them go out together when it returns. While consumers acknowledge
most messages before their batch is taken, a batch gathers for `GATHER` after its first operation
before it is taken: the messages acknowledged meanwhile are never written, and their confirms do
not wait for the store anyway (see `core.confirms`).

At shutdown the writes still due get until a deadline: a hung disk must not keep the broker from
exiting, so a write still running then is abandoned (its thread is left behind) and reported.
"""

from __future__ import annotations

import logging
import math

import trio

from .. import core
from ..core.commits import Batch, CommitTracker
from ..store import StoreError

log = logging.getLogger("amqpbroker.store")

# After a failed write the store is given this long before the failed batch is tried again.
RETRY_DELAY = 1.0
# How long a batch gathers, while acknowledgements outrun the writes: about a delivery's round trip
# to a consumer that keeps up. It measured best between 1 and 2 ms (durable-confirms: a fifth less
# broker CPU per message).
GATHER = 0.002


class Persister:
    def __init__(self, broker: core.Broker) -> None:
        self._broker = broker
        self._limiter = trio.CapacityLimiter(1)
        self._deadline = math.inf
        self._writing: trio.CancelScope | None = None
        self.hung = False
        """A write did not finish by the deadline: the store is still busy in a thread left behind."""

    async def run(self) -> None:
        """Writes each batch the journal gathers, until cancelled."""
        broker = self._broker
        journal = broker.journal
        wake = trio.Event()
        # Whatever the core journaled before this task started (recovery, the default vhost) is due now.
        wake.set()
        gathering_since = -math.inf

        def wake_up() -> None:
            nonlocal gathering_since
            if not wake.is_set():
                gathering_since = trio.current_time()
                wake.set()

        journal.wake = wake_up
        try:
            while not self.hung:
                await wake.wait()
                if journal.acks_outrun_writes:
                    await trio.sleep_until(gathering_since + GATHER)
                # What woke this task meanwhile is in the batch taken now.
                wake = trio.Event()
                batch = broker.take_batch()
                if batch is not None and not await self._write(batch):
                    # What failed, less its messages, is at the front of the next batch: try it again later.
                    await trio.sleep(RETRY_DELAY)
                    wake.set()
        finally:
            journal.wake = None

    def give_up_at(self, deadline: float) -> None:
        """Abandons the write in progress, and any later one, that has not finished by `deadline`."""
        self._deadline = deadline
        if self._writing is not None:
            self._writing.deadline = deadline

    async def flush(self) -> bool:
        """Writes everything still in the journal (at shutdown, after `give_up_at`); whether all of it
        reached the store."""
        while (batch := self._broker.take_batch()) is not None:
            if not await self._write(batch):
                return False
        return not self.hung

    async def _write(self, batch: Batch) -> bool:
        """Writes one batch and resolves it; whether the store has it."""
        broker = self._broker
        if not batch.ops:
            # Cancellation emptied it, but someone waits for it: there is nothing to write.
            broker.batch_done(batch, ok=True)
            return True
        if self.hung:
            return False
        # Shielded: a batch taken from the journal is written even if shutdown cancels the caller now,
        # or its operations would be lost; only the deadline ends the wait.
        with trio.CancelScope(shield=True, deadline=self._deadline) as writing:
            self._writing = writing
            try:
                await trio.to_thread.run_sync(
                    broker.store.apply, batch.ops, limiter=self._limiter, abandon_on_cancel=True
                )
            except Exception as exc:
                if isinstance(exc, StoreError):
                    log.error("store write failed, %d operations not durable yet: %s", len(batch.ops), exc)
                else:
                    # A bug in the store must cost this batch (its publishers get basic.nack), not the broker.
                    log.exception("store write failed, %d operations not durable yet", len(batch.ops))
                ok = False
            else:
                ok = True
            broker.batch_done(batch, ok=ok)
        self._writing = None
        if writing.cancelled_caught:
            self.hung = True
            log.error("the store did not finish writing by the shutdown deadline: exiting without waiting; "
                      "its last %d operations, and any after them, may not be durable", len(batch.ops))
            return False
        return ok



class _Commit:
    def __init__(self) -> None:
        self.done = trio.Event()
        self.ok = False

    def batch_resolved(self, batch: int, ok: bool) -> None:
        self.ok = ok
        self.done.set()


async def committed(tracker: CommitTracker, batch: int) -> bool:
    """Waits until the store wrote `batch`: True, or failed to: False (for what answers only
    once a change is durable, outside a channel: the management API, federation links)."""
    commit = _Commit()
    tracker.wait(commit, batch)
    try:
        await commit.done.wait()
    finally:
        tracker.forget(commit)
    return commit.ok
