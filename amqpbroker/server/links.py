"""Links to other brokers (shovels, federation links): each runs in a supervisor task of its own,
starts over `reconnect_delay` seconds after any failure, and reports its state as RabbitMQ's
plugins do (`starting`, `running`, `terminated` with the reason). `Links` starts and stops them by key.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field
from typing import Callable, Generic, Hashable, Iterator, TypeVar

import trio

from .client import LinkError

log = logging.getLogger("amqpbroker.links")


@dataclass(frozen=True)
class LinkStatus:
    state: str = "starting"
    reason: str | None = None
    timestamp: datetime.datetime = field(default_factory=datetime.datetime.now)


class Link:
    """One link: `run()` keeps it going until it is cancelled or `_session()` says it is done."""

    def __init__(self, description: str, reconnect_delay: float) -> None:
        self.description = description
        self.reconnect_delay = reconnect_delay
        self.status = LinkStatus()
        self._restart = trio.Event()
        self._session_scope = trio.CancelScope()

    def _set(self, state: str, reason: str | None = None) -> None:
        self.status = LinkStatus(state, reason)

    async def run(self) -> None:
        while True:
            self._set("starting")
            self._restart = trio.Event()
            try:
                with trio.CancelScope() as self._session_scope:
                    if await self._session():
                        return
            except Exception as exc:
                leaf = _leaf(exc)
                reason = str(leaf) or type(leaf).__name__
                if not isinstance(leaf, LinkError):
                    log.exception("%s failed", self.description)
                log.warning("%s terminated: %s", self.description, reason)
                self._set("terminated", reason)
                with trio.move_on_after(self.reconnect_delay):
                    await self._restart.wait()

    def request_restart(self) -> None:
        """Drops the connections and starts over now."""
        self._restart.set()
        self._session_scope.cancel()

    def _running(self) -> None:
        self._set("running")
        log.info("%s running", self.description)

    async def _session(self) -> bool:
        """Connects and moves messages; True when the link is done for good. Raises when it failed."""
        raise NotImplementedError


L = TypeVar("L", bound=Link)


class Links(Generic[L]):
    """The running links by key: started and stopped as their definitions come and go."""

    def __init__(self, on_done: Callable[[Hashable], None] = lambda key: None) -> None:
        self._on_done = on_done
        self._nursery: trio.Nursery | None = None
        self._running: dict[Hashable, tuple[L, trio.CancelScope]] = {}
        self._pending: dict[Hashable, L] = {}

    async def run(self) -> None:
        """Supervises the links until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for key, link in self._pending.items():
                self._start(key, link)
            self._pending.clear()
            await trio.sleep_forever()

    def set(self, key: Hashable, link: L) -> None:
        """Starts `link` under `key`, stopping the one there was."""
        self.delete(key)
        if self._nursery is None:
            self._pending[key] = link
        else:
            self._start(key, link)

    def delete(self, key: Hashable) -> None:
        self._pending.pop(key, None)
        running = self._running.pop(key, None)
        if running is not None:
            running[1].cancel()

    def get(self, key: Hashable) -> L | None:
        running = self._running.get(key)
        return running[0] if running is not None else None

    def keys(self) -> list[Hashable]:
        return [*self._running, *self._pending]

    def __iter__(self) -> Iterator[L]:
        return iter([link for link, _ in self._running.values()])

    def _start(self, key: Hashable, link: L) -> None:
        assert self._nursery is not None
        scope = trio.CancelScope()
        self._running[key] = (link, scope)
        self._nursery.start_soon(self._supervise, key, link, scope)

    async def _supervise(self, key: Hashable, link: L, scope: trio.CancelScope) -> None:
        with scope:
            await link.run()
            log.info("%s is done and deletes itself", link.description)
            if self._running.get(key, (None,))[0] is link:
                del self._running[key]
                self._on_done(key)


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc
