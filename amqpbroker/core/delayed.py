"""Delayed delivery as the rabbitmq-delayed-message-exchange plugin defines it.

An exchange of type `x-delayed-message` routes as its `x-delayed-type` (direct, fanout, topic or
headers). A message published to it with an `x-delay` header of 1 to 2^32-1 ms is held in the
exchange until it is due, then routed, with `x-delay` set to minus the delay as the plugin does;
any other `x-delay` (absent, zero, negative, too large, not a number) routes it at once. Held
messages are kept in a heap by due time, and the exchange asks the broker's timers for a turn
at the earliest one, so that nothing scans them.

A persistent message held by a durable exchange is stored as a record of its own until it is
routed; routing it stores it again for its durable queues, and its record is deleted in the
same batch. At start, the broker gives the exchange its records back; those due while the broker
was down are routed at the first turn.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Any, NamedTuple

from ..protocol import set_header
from ..store.base import DeleteRecord, PutRecord
from .exchanges import Exchange, make_exchange
from .journal import Journal
from .memory import MemoryWatermark
from .message import Message
from .timers import Timers

DELAY_HEADER = "x-delay"
_MAX_DELAY = 2**32 - 1
"""The longest delay the plugin holds a message for (Erlang's longest timer); a longer one is not held."""
RECORD_KIND = "delayed"
"""The store records of held messages: key (vhost, exchange, number), the message as the value."""


def delay_of(headers: dict | None) -> int | None:
    """The milliseconds a message asks to be held for, or None if it is to be routed now.

    As in the plugin: integers count, strings are read as integers, floats are truncated, and
    anything else, or a delay outside 1 to 2^32-1, is no delay.
    """
    if not headers:
        return None
    value = headers.get(DELAY_HEADER)
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = int(value)
    elif isinstance(value, (str, bytes)):
        try:
            value = int(value)
        except ValueError:
            return None
    if isinstance(value, int) and 0 < value <= _MAX_DELAY:
        return value
    return None


class Held(NamedTuple):
    """A message held until `due` (on the broker's clock), and what routes it then."""

    due: float
    number: int
    message: Message
    delay: int
    cc: tuple[str, ...]
    stored: bool


class DelayedExchange(Exchange):
    """`x-delayed-message`: routes as its `x-delayed-type`, and holds what asks to be delayed."""

    type = "x-delayed-message"
    reads_headers = True

    def __init__(
        self,
        name: str,
        *,
        vhost: str,
        journal: Journal,
        timers: Timers,
        memory: MemoryWatermark,
        arguments: dict,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, arguments=arguments, **kwargs)
        self.vhost = vhost
        self._journal = journal
        self._timers = timers
        self._memory = memory
        # The routing table of the delayed type; it reads the bindings from this exchange.
        self._routes = make_exchange(name, arguments["x-delayed-type"])
        self._routes.bindings = self.bindings
        self._held: list[tuple[float, int, Held]] = []
        self._numbers = itertools.count()
        self.deadline: float | None = None
        """When this exchange has its next turn on the timers, if it asked for one."""
        self.deleted = False

    def held_count(self) -> int:
        return len(self._held)

    def route(self, routing_key: str, headers: dict | None) -> Any:
        return self._routes.route(routing_key, headers)

    def _add_route(self, binding: Any) -> None:
        self._routes._add_route(binding)

    def _remove_route(self, binding: Any) -> None:
        self._routes._remove_route(binding)

    def hold(self, message: Message, delay: int, cc: tuple[str, ...]) -> bool:
        """Holds `message` for `delay` ms; returns whether it was stored (its confirm then waits
        for the commit): a persistent message on a durable exchange is."""
        stored = self.durable and message.persistent
        number = next(self._numbers)
        if stored:
            due_ms = round(self._timers.wall_clock() * 1000) + delay
            self._journal.append(PutRecord(RECORD_KIND, self._key(number), _record(message, delay, cc, due_ms)))
        self._add(Held(self._timers.clock() + delay / 1000, number, message, delay, cc, stored))
        return stored

    def restore(self, key: tuple[str, ...], value: dict) -> None:
        """A held message recovered from its record."""
        number = int(key[2])
        message = Message(self.name, value["routing_key"], value["properties"], value["body"])
        due = self._timers.from_wall_ms(value["due"])
        self._add(Held(due, number, message, value["delay"], tuple(value["cc"]), True))
        self._numbers = itertools.count(max(number + 1, next(self._numbers)))

    def _add(self, held: Held) -> None:
        self._memory.add(held.message.size)
        heapq.heappush(self._held, (held.due, held.number, held))
        self._want()

    def _want(self) -> None:
        """Asks the timers for a turn when the earliest held message is due, unless it has one as early."""
        if self._held:
            due = self._held[0][0]
            if self.deadline is None or due < self.deadline:
                self.deadline = due
                self._timers.schedule(self, due)

    def take_due(self, now: float, budget: int) -> list[Held]:
        """Up to `budget` held messages due at `now`, earliest first, each as it is to be routed
        (with `x-delay` set to minus its delay) and its record deleted; asks for the next turn."""
        heap = self._held
        due: list[Held] = []
        while heap and len(due) < budget and heap[0][0] <= now:
            held = heapq.heappop(heap)[2]
            self._memory.release(held.message.size)
            if held.stored:
                self._journal.append(DeleteRecord(RECORD_KIND, self._key(held.number)))
            message = held.message
            properties = set_header(message.properties, DELAY_HEADER, -held.delay)
            due.append(held._replace(message=Message(self.name, message.routing_key, properties, message.body)))
        self._want()
        return due

    def removed(self) -> None:
        """The exchange was deleted: its held messages go with it."""
        self.deleted = True
        for _, number, held in self._held:
            self._memory.release(held.message.size)
            if held.stored:
                self._journal.append(DeleteRecord(RECORD_KIND, self._key(number)))
        self._held.clear()

    def _key(self, number: int) -> tuple[str, ...]:
        return (self.vhost, self.name, str(number))


def _record(message: Message, delay: int, cc: tuple[str, ...], due_ms: int) -> dict:
    return {
        "routing_key": message.routing_key,
        "properties": message.properties,
        "body": message.body,
        "delay": delay,
        "cc": list(cc),
        "due": due_ms,
    }
