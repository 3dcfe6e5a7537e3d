"""Shutdown waits for the store's last writes, but not for ever: a hung disk costs a bounded wait and
a clear log line, not a broker that never exits."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import pytest
import trio

from amqpbroker import core
from amqpbroker.server import Limits, Server
from amqpbroker.store import MemoryStore, StoreError
from amqpbroker.store.base import Op


class HungStore(MemoryStore):
    """Its writes block until `release` is set, as on a disk that stopped answering."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.writing = threading.Event()

    def apply(self, ops: Sequence[Op]) -> None:
        self.writing.set()
        self.release.wait()
        super().apply(ops)


async def test_shutdown_gives_up_on_a_hung_store_write_and_says_so(caplog) -> None:
    store = HungStore()
    server = Server(core.Broker(store=store), host="127.0.0.1", port=0, limits=Limits(shutdown_timeout=0.5))
    try:
        with trio.fail_after(30):  # a guard against the hang under test, not a measured duration
            with pytest.RaisesGroup(pytest.RaisesExc(StoreError, match="did not take the last writes")):
                async with trio.open_nursery() as nursery:
                    await nursery.start(server.serve)
                    await trio.to_thread.run_sync(store.writing.wait)  # the default vhost's write is under way
                    server.shutdown()
        assert server.store_hung
        assert any(
            record.levelno == logging.ERROR and "did not finish writing" in record.getMessage()
            for record in caplog.records
        )
    finally:
        store.release.set()


async def test_shutdown_writes_what_is_pending_when_the_store_answers() -> None:
    store = MemoryStore()
    broker = core.Broker(store=store)
    server = Server(broker, host="127.0.0.1", port=0)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        broker.add_vhost("late")
        server.shutdown()
    assert not server.store_hung
    assert "late" in store.recover().vhosts
