"""The single task that writes the core's journal to the store, one batch per transaction.

While one batch is being written in the store's thread, new operations gather in the journal;
they become the next batch. So publishes that arrive together share one transaction and one sync,
and the confirms waiting for them go out together when it returns.
"""

from __future__ import annotations

import logging

import trio

from .. import core
from ..store import StoreError

log = logging.getLogger("amqpbroker.store")

# After a failed write the store is given this long before the failed batch is tried again.
RETRY_DELAY = 1.0


async def run_persister(broker: core.Broker) -> None:
    wake = trio.Event()
    # Whatever the core journaled before this task started (recovery, the default vhost) is due now.
    wake.set()

    def wake_up() -> None:
        wake.set()

    broker.journal.wake = wake_up
    limiter = trio.CapacityLimiter(1)
    try:
        while True:
            await wake.wait()
            wake = trio.Event()
            batch = broker.take_batch()
            if batch is None:
                continue
            if not batch.ops:
                # Cancellation emptied it, but someone waits for it: there is nothing to write.
                broker.batch_done(batch, ok=True)
                continue
            try:
                # Shielded: a batch taken from the journal is written even if shutdown cancels this
                # task now, or its operations would be lost (the final commit no longer sees them).
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(broker.store.apply, batch.ops, limiter=limiter)
            except Exception as exc:
                if isinstance(exc, StoreError):
                    log.error("store write failed, %d operations not durable yet: %s", len(batch.ops), exc)
                else:
                    # A bug in the store must cost this batch (its publishers get basic.nack), not the broker.
                    log.exception("store write failed, %d operations not durable yet", len(batch.ops))
                broker.batch_done(batch, ok=False)
                # What failed, less its messages, is at the front of the next batch: try it again later.
                await trio.sleep(RETRY_DELAY)
                wake.set()
            else:
                broker.batch_done(batch, ok=True)
    finally:
        broker.journal.wake = None
