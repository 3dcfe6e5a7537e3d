"""The durability contract between the broker core and a store.

The core records what must outlive a restart as a list of operations, in order. The server hands
each batch of them to `Store.apply`, which makes the whole batch durable at once (one transaction,
one sync) before it returns: that is what lets a stream of confirmed publishes share one sync.
`Store.recover` gives back the durable state at start.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Iterator, NamedTuple, Sequence


class PutVHost(NamedTuple):
    name: str


class DeleteVHost(NamedTuple):
    """Removes the vhost; its exchanges, queues and bindings are deleted by their own operations."""

    name: str


class PutExchange(NamedTuple):
    vhost: str
    name: str
    type: str
    auto_delete: bool
    internal: bool
    arguments: dict


class DeleteExchange(NamedTuple):
    vhost: str
    name: str


class PutQueue(NamedTuple):
    vhost: str
    name: str
    auto_delete: bool
    arguments: dict


class DeleteQueue(NamedTuple):
    """Removes the queue together with every message entry it still holds."""

    vhost: str
    name: str


class PutBinding(NamedTuple):
    vhost: str
    exchange: str
    destination: str
    routing_key: str
    arguments: dict
    destination_type: str = "queue"
    """"queue", or "exchange" for an exchange-to-exchange binding."""


class DeleteBinding(NamedTuple):
    vhost: str
    exchange: str
    destination: str
    routing_key: str
    arguments: dict
    destination_type: str = "queue"


class PutMessage(NamedTuple):
    """A persistent message's content, stored once for all the durable queues it went to."""

    message_id: int
    exchange: str
    routing_key: str
    properties: bytes
    body: bytes


class DeleteMessage(NamedTuple):
    message_id: int


class Enqueue(NamedTuple):
    vhost: str
    queue: str
    seq: int
    message_id: int
    expires: int | None = None
    """When the entry expires, in milliseconds since the epoch; None if it never does."""


class Dequeue(NamedTuple):
    """The entry was acknowledged (or dropped): it must never be delivered again."""

    vhost: str
    queue: str
    seq: int


class MarkDelivered(NamedTuple):
    """Every entry of the queue up to `seq` has been delivered at least once."""

    vhost: str
    queue: str
    seq: int


Op = (
    PutVHost | DeleteVHost | PutExchange | DeleteExchange | PutQueue | DeleteQueue | PutBinding
    | DeleteBinding | PutMessage | DeleteMessage | Enqueue | Dequeue | MarkDelivered
)


class StoredMessage(NamedTuple):
    exchange: str
    routing_key: str
    properties: bytes
    body: bytes


@dataclass
class Recovered:
    """The durable topology found at start; messages are read per queue with `Store.queue_entries`."""

    vhosts: list[str] = field(default_factory=list)
    exchanges: list[PutExchange] = field(default_factory=list)
    queues: list[PutQueue] = field(default_factory=list)
    bindings: list[PutBinding] = field(default_factory=list)


class StoreError(Exception):
    """The store cannot be opened or written; the message says why, for the operator."""


class Store(ABC):
    @abstractmethod
    def apply(self, ops: Sequence[Op]) -> None:
        """Makes all of `ops` durable, atomically; raises StoreError if it could not."""

    @abstractmethod
    def recover(self) -> Recovered: ...

    @abstractmethod
    def queue_entries(self, vhost: str, queue: str) -> Iterator[tuple[int, int, int | None]]:
        """The queue's `(seq, message_id, expires)` entries in order."""

    @abstractmethod
    def delivered_upto(self, vhost: str, queue: str) -> int:
        """The highest seq recorded by MarkDelivered for the queue, or -1."""

    @abstractmethod
    def load_header(self, message_id: int) -> tuple[str, str, bytes]:
        """A stored message's exchange, routing key and properties, without reading its body.

        Raises KeyError for a message that is not stored (as `load_body` does)."""

    @abstractmethod
    def load_body(self, message_id: int) -> bytes: ...

    def max_message_id(self) -> int:
        """The highest message id in use, so new ids never collide with recovered ones."""
        return -1

    def close(self) -> None:
        pass
