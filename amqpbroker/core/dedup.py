"""Deduplication as the community plugin rabbitmq-message-deduplication defines it, both levels.

A message names itself with its `x-deduplication-header` header; one without it is never a
duplicate.

- Exchange level: an exchange of type `x-message-deduplication` routes like a fanout exchange, and
  routes nowhere a message whose header value it has seen within its cache window: a cache of at
  most `x-cache-size` values, each kept for `x-cache-ttl` ms (the exchange's argument, or the
  message's own `x-cache-ttl` header; without either, until it is pushed out). A full cache makes
  room by forgetting its oldest value. With `x-cache-persistence` `disk`, a durable exchange's
  cache is stored as records and survives a restart.
- Queue level (`x-message-deduplication: true`, in `queue.py`): a message whose header value is
  that of a message still in the queue is dropped. The queue's set is rebuilt from the recovered
  messages at start, so it needs no storage of its own.

A duplicate is dropped silently, and its publish is confirmed: a publisher's retry succeeds.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

from ..store.base import DeleteRecord, PutRecord
from .arguments import cache_argument
from .exchanges import FanoutExchange, freeze
from .journal import Journal

DEDUP_HEADER = "x-deduplication-header"
_TTL_HEADER = "x-cache-ttl"
RECORD_KIND = "dedup"
"""The store records of exchange caches: key (vhost, exchange, value), value {"expires": ms or None,
"added": how many values the cache had taken before}, which orders them again at start."""


def dedup_key(headers: dict | None) -> str | None:
    """The message's deduplication value as a key, or None if it has none.

    A string and the same bytes are one value, as the plugin compares them; an integer and the
    string of its digits are two.
    """
    if not headers:
        return None
    value = headers.get(DEDUP_HEADER)
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "surrogateescape")
    return repr(freeze(value))


class DeduplicationCache:
    """Values seen, with when each stops counting (ms since the epoch, or None: never), oldest first."""

    def __init__(self, size: int, ttl: int | None, wall_clock: Callable[[], float]) -> None:
        self.size = size
        self.ttl = ttl
        self._wall_clock = wall_clock
        self._entries: OrderedDict[str, int | None] = OrderedDict()
        self.added = 0
        """How many values the cache has taken: each one's number orders it among the others."""

    def seen(self, key: str) -> bool:
        """Whether `key` is in the cache and has not expired; an expired one is forgotten."""
        if key not in self._entries:
            return False
        expires = self._entries[key]
        if expires is not None and expires <= self._wall_clock() * 1000:
            del self._entries[key]
            return False
        return True

    def add(self, key: str, ttl: int | None) -> tuple[int | None, list[str]]:
        """Remembers `key` for `ttl` ms (None: the cache's own); returns its expiry and the keys
        pushed out to make room for it."""
        if ttl is None:
            ttl = self.ttl
        expires = None if ttl is None else round(self._wall_clock() * 1000) + ttl
        evicted = []
        while len(self._entries) >= self.size:
            evicted.append(self._entries.popitem(last=False)[0])
        self._entries[key] = expires
        self.added += 1
        return expires, evicted

    def restore(self, key: str, expires: int | None, added: int) -> None:
        """An entry recovered from the store; entries are restored oldest first."""
        self._entries[key] = expires
        self.added = max(self.added, added + 1)

    def keys(self) -> list[str]:
        return list(self._entries)


class DeduplicationExchange(FanoutExchange):
    """`x-message-deduplication`: a fanout exchange that routes a duplicate nowhere."""

    type = "x-message-deduplication"
    reads_headers = True

    def __init__(
        self,
        name: str,
        *,
        vhost: str,
        journal: Journal,
        wall_clock: Callable[[], float],
        arguments: dict,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, arguments=arguments, **kwargs)
        self._vhost = vhost
        self._journal = journal
        self.cache = DeduplicationCache(
            cache_argument(arguments, "x-cache-size") or 1, cache_argument(arguments, "x-cache-ttl"), wall_clock
        )
        self.routes_into_store = self.durable and arguments.get("x-cache-persistence") == "disk"
        """Whether the cache is stored: a durable exchange asked for `disk`. A duplicate's confirm
        then waits too, for the first's cache entry may not be written yet."""

    def route(self, routing_key: str, headers: dict | None) -> Any:
        key = dedup_key(headers)
        if key is not None:
            if self.cache.seen(key):
                return ()
            ttl = headers.get(_TTL_HEADER) if headers else None
            added = self.cache.added
            expires, evicted = self.cache.add(key, ttl if _is_ttl(ttl) else None)
            if self.routes_into_store:
                for old in evicted:
                    self._journal.append(DeleteRecord(RECORD_KIND, (self._vhost, self.name, old)))
                record = {"expires": expires, "added": added}
                self._journal.append(PutRecord(RECORD_KIND, (self._vhost, self.name, key), record))
        return super().route(routing_key, headers)

    def restore(self, key: str, value: dict) -> None:
        """A cache entry recovered from its record; records are restored oldest first."""
        self.cache.restore(key, value["expires"], value["added"])

    def removed(self) -> None:
        """The exchange was deleted: so is its stored cache."""
        if self.routes_into_store:
            for key in self.cache.keys():
                self._journal.append(DeleteRecord(RECORD_KIND, (self._vhost, self.name, key)))


def _is_ttl(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


