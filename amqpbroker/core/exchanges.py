"""Exchanges and their routing: direct, fanout, topic and headers.

An exchange holds its bindings as `(destination, routing_key, arguments)` and a routing table
derived from them. `route()` returns each destination queue at most once.
"""

from __future__ import annotations

from typing import Any, Mapping

from .stats import ExchangeStats
from .topic import TopicTrie

EXCHANGE_TYPES = ("direct", "fanout", "topic", "headers")


def freeze(value: Any) -> Any:
    """A hashable stand-in for a field-table value, so bindings with arguments can be compared."""
    if isinstance(value, dict):
        return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


class Binding:
    __slots__ = ("source", "destination", "routing_key", "arguments", "_key")

    def __init__(self, source: Exchange, destination: Any, routing_key: str, arguments: dict) -> None:
        self.source = source
        self.destination = destination
        self.routing_key = routing_key
        self.arguments = arguments
        self._key = (destination, routing_key, freeze(arguments))

    @property
    def key(self) -> tuple:
        return self._key


class Exchange:
    """Common state of every exchange type; subclasses keep the routing table."""

    type = ""
    reads_headers = False
    """Whether routing reads the message's headers, so a publish decodes them for it."""
    routes_into_store = False
    """Whether what routing decides goes to the store (a deduplication exchange's cache on disk):
    a publisher's confirm then waits for the commit, whatever became of the message."""

    def __init__(
        self,
        name: str,
        *,
        durable: bool = False,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: dict | None = None,
    ) -> None:
        self.name = name
        self.durable = durable
        self.auto_delete = auto_delete
        self.internal = internal
        self.arguments = arguments or {}
        self.alternate_exchange: str | None = None
        """Where messages this exchange routes nowhere go instead, by name: it may be declared later."""
        self.configure({})
        self.bindings: dict[tuple, Binding] = {}
        self.exchange_bindings = 0
        """How many bindings lead to other exchanges; routing follows them only when there are any."""
        self.stats = ExchangeStats()

    def configure(self, policy: Mapping[str, Any]) -> None:
        """Takes the alternate exchange from the `alternate-exchange` argument, else from the
        definition of the exchange's policy: in RabbitMQ the argument wins."""
        alternate = self.arguments.get("alternate-exchange")
        if not isinstance(alternate, str):
            alternate = policy.get("alternate-exchange")
        self.alternate_exchange = alternate

    def bind(self, destination: Any, routing_key: str, arguments: dict) -> Binding | None:
        """Adds a binding and returns it; None if it was already there."""
        binding = Binding(self, destination, routing_key, arguments)
        if binding.key in self.bindings:
            return None
        self.bindings[binding.key] = binding
        self._add_route(binding)
        if isinstance(destination, Exchange):
            self.exchange_bindings += 1
        return binding

    def unbind(self, destination: Any, routing_key: str, arguments: dict) -> Binding | None:
        """Removes a binding and returns it; None if there was none."""
        binding = self.bindings.pop((destination, routing_key, freeze(arguments)), None)
        if binding is not None:
            self._removed(binding)
        return binding

    def unbind_destination(self, destination: Any) -> list[Binding]:
        """Removes and returns every binding to `destination`."""
        removed = [self.bindings.pop(key) for key in [key for key in self.bindings if key[0] is destination]]
        for binding in removed:
            self._removed(binding)
        return removed

    def removed(self) -> None:
        """The exchange was deleted: what it keeps besides its bindings goes with it."""

    def _removed(self, binding: Binding) -> None:
        self._remove_route(binding)
        if isinstance(binding.destination, Exchange):
            self.exchange_bindings -= 1

    def route(self, routing_key: str, headers: dict | None) -> frozenset | set | tuple:
        raise NotImplementedError

    def _add_route(self, binding: Binding) -> None:
        raise NotImplementedError

    def _remove_route(self, binding: Binding) -> None:
        raise NotImplementedError


class DirectExchange(Exchange):
    type = "direct"

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self._table: dict[str, dict[Any, int]] = {}

    def route(self, routing_key: str, headers: dict | None) -> Any:
        found = self._table.get(routing_key)
        return found.keys() if found else ()

    def _add_route(self, binding: Binding) -> None:
        counts = self._table.setdefault(binding.routing_key, {})
        counts[binding.destination] = counts.get(binding.destination, 0) + 1

    def _remove_route(self, binding: Binding) -> None:
        counts = self._table[binding.routing_key]
        if counts[binding.destination] > 1:
            counts[binding.destination] -= 1
        else:
            del counts[binding.destination]
            if not counts:
                del self._table[binding.routing_key]


class FanoutExchange(Exchange):
    type = "fanout"

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self._destinations: dict[Any, int] = {}

    def route(self, routing_key: str, headers: dict | None) -> Any:
        return self._destinations.keys()

    def _add_route(self, binding: Binding) -> None:
        self._destinations[binding.destination] = self._destinations.get(binding.destination, 0) + 1

    def _remove_route(self, binding: Binding) -> None:
        if self._destinations[binding.destination] > 1:
            self._destinations[binding.destination] -= 1
        else:
            del self._destinations[binding.destination]


class TopicExchange(Exchange):
    type = "topic"

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self._trie = TopicTrie()

    def route(self, routing_key: str, headers: dict | None) -> Any:
        return self._trie.match(routing_key)

    def _add_route(self, binding: Binding) -> None:
        self._trie.add(binding.routing_key, binding.destination)

    def _remove_route(self, binding: Binding) -> None:
        self._trie.remove(binding.routing_key, binding.destination)


class HeadersExchange(Exchange):
    """Routes on message headers: `x-match` `all` (default) or `any`; `x-` keys are not matched."""

    type = "headers"
    reads_headers = True

    def route(self, routing_key: str, headers: dict | None) -> Any:
        headers = headers or {}
        return {b.destination for b in self.bindings.values() if _headers_match(b.arguments, headers)}

    def _add_route(self, binding: Binding) -> None:
        pass

    def _remove_route(self, binding: Binding) -> None:
        pass


def _headers_match(arguments: dict, headers: dict) -> bool:
    mode = arguments.get("x-match", "all")
    wanted = [(k, v) for k, v in arguments.items() if not k.startswith("x-")]
    if mode in ("any", "any-with-x"):
        return any(_header_matches(headers, k, v) for k, v in wanted)
    return all(_header_matches(headers, k, v) for k, v in wanted)


def _header_matches(headers: dict, key: str, value: Any) -> bool:
    if key not in headers:
        return False
    # A binding argument without a value (void) matches on presence alone.
    return value is None or headers[key] == value


_TYPES: dict[str, type[Exchange]] = {
    "direct": DirectExchange,
    "fanout": FanoutExchange,
    "topic": TopicExchange,
    "headers": HeadersExchange,
}


def make_exchange(name: str, type: str, **kwargs: Any) -> Exchange:
    return _TYPES[type](name, **kwargs)
