"""An embedded broker in a background thread, for tests and scripts.

    with Broker(port=0) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
"""

from __future__ import annotations

import threading
from typing import Any

import trio

from .. import core
from ..server import Server


class Broker:
    """A broker serving on `host:port` in its own thread while the context is open."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, heartbeat: int = 60) -> None:
        self.host = host
        self.server = Server(core.Broker(), host=host, port=port, heartbeat=heartbeat)
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{self.host}:{self.port}/"

    def start(self) -> Broker:
        self._thread = threading.Thread(target=self._run, name="amqpbroker", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        try:
            trio.from_thread.run_sync(self.server.shutdown, trio_token=self._token)
        except trio.RunFinishedError:
            pass
        self._thread.join()
        self._thread = None

    def call(self, fn: Any, *args: Any) -> Any:
        """Runs `fn(*args)` in the broker's thread, where the broker's state may be touched."""
        return trio.from_thread.run_sync(fn, *args, trio_token=self._token)

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:
            self._error = exc
            self._started.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            await nursery.start(self.server.serve)
            self._started.set()

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
