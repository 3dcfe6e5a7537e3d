"""The durability contract between the broker core and a store.

The core records what must outlive a restart as a list of operations, in order. The server hands
each batch of them to `Store.apply`, which makes the whole batch durable at once (one transaction,
one sync) before it returns: that is what lets a stream of confirmed publishes share one sync.
`Store.recover` gives back the durable state at start, once it has mended what a crash left.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Iterator, NamedTuple, Sequence

log = logging.getLogger("amqpbroker.store")


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
    """When the entry expires, in milliseconds since the epoch; None if it never does. A stream's
    entries never expire: theirs is when they were appended, which the stream's retention by age
    and its timestamp offsets read."""


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


class SetDeliveryCount(NamedTuple):
    """The entry of a quorum queue has been returned `delivery_count` times, counting a delivery
    under way that may end in a crash; an entry no longer stored (acknowledged in the meantime)
    is left alone."""

    vhost: str
    queue: str
    seq: int
    delivery_count: int


class PutRecord(NamedTuple):
    """A piece of broker configuration (a user, a permission, a policy, a runtime parameter),
    kept as JSON-able data under `kind` and a key of names; replaces what was stored there."""

    kind: str
    key: tuple[str, ...]
    value: dict


class DeleteRecord(NamedTuple):
    kind: str
    key: tuple[str, ...]


Op = (
    PutVHost | DeleteVHost | PutExchange | DeleteExchange | PutQueue | DeleteQueue | PutBinding
    | DeleteBinding | PutMessage | DeleteMessage | Enqueue | Dequeue | MarkDelivered | SetDeliveryCount | PutRecord
    | DeleteRecord
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
    records: list[PutRecord] = field(default_factory=list)


@dataclass
class Mended:
    """What `Store.recover` found amiss in the stored state and put right before recovering it."""

    missing: list[tuple[str, str, int, int]] = field(default_factory=list)
    """Entries `(vhost, queue, seq, message_id)` dropped because their message or body is missing."""
    queueless: int = 0
    """Entries dropped because their queue is not stored."""
    unreferenced: int = 0
    """Messages deleted because no entry refers to them (their queue was deleted while they were
    delivered and unacknowledged, and the broker stopped before the acknowledgement)."""
    crashed: bool = False
    """The store was not closed cleanly: every entry was marked as possibly delivered, and each
    entry of a quorum queue that was delivered but never counted got its first return counted."""

    def report(self) -> None:
        for vhost, queue, seq, message_id in self.missing:
            log.warning(
                "queue %r in vhost %r: message %d of entry %d is missing from the store; skipped it",
                queue, vhost, message_id, seq,
            )
        if self.queueless:
            log.warning("dropped %d stored entries of queues that no longer exist", self.queueless)
        if self.unreferenced:
            log.info("deleted %d stored messages that no queue refers to any more", self.unreferenced)
        if self.crashed:
            log.warning(
                "the store was not closed cleanly (a crash, a kill or a failed write): every recovered "
                "message may have been delivered and is marked redelivered"
            )


def counts_deliveries(queue: PutQueue) -> bool:
    """Whether the queue counts its entries' returns (quorum queues do, for their delivery limit).

    After a crash the store counts a return for each entry such a queue had delivered (at or
    below its mark) but never counted: a first delivery is not written, and one under way at a
    crash counts, as it does in RabbitMQ, whose recovery returns what the crashed node's consumers
    held. A later delivery of a counted entry is written ahead (`SetDeliveryCount`)."""
    return queue.arguments.get("x-queue-type") == "quorum"


class StoreError(Exception):
    """The store cannot be opened or written; the message says why, for the operator."""


class Store(ABC):
    @abstractmethod
    def apply(self, ops: Sequence[Op]) -> None:
        """Makes all of `ops` durable, atomically; raises StoreError if it could not."""

    def recover(self) -> Recovered:
        """The durable topology, for a broker starting on this store, before any `apply`.

        The stored state is mended first (see `Mended`): an entry whose message or body is gone is
        logged and dropped, a message no entry refers to is deleted, and after an unclean stop every
        entry is marked delivered, since the marks of deliveries since the last commit may be lost
        (AMQP allows redelivered=true for a message that may have been delivered before).
        """
        mended = self._mend()
        mended.report()
        return self._topology()

    @abstractmethod
    def _mend(self) -> Mended: ...

    @abstractmethod
    def _topology(self) -> Recovered: ...

    @abstractmethod
    def queue_entries(self, vhost: str, queue: str) -> Iterator[tuple[int, int, int | None]]:
        """The queue's `(seq, message_id, expires)` entries in order."""

    @abstractmethod
    def delivery_counts(self, vhost: str, queue: str) -> dict[int, int]:
        """The delivery counts SetDeliveryCount stored for the queue's entries, by seq."""

    @abstractmethod
    def delivered_upto(self, vhost: str, queue: str) -> int:
        """The highest seq recorded by MarkDelivered for the queue, or -1."""

    @abstractmethod
    def load_header(self, message_id: int) -> tuple[str, str, bytes, int]:
        """A stored message's exchange, routing key, properties and body length, without reading
        its body.

        Raises KeyError for a message that is not stored (as `load_body` does)."""

    @abstractmethod
    def load_body(self, message_id: int) -> bytes: ...

    def max_message_id(self) -> int:
        """The highest message id in use, so new ids never collide with recovered ones."""
        return -1

    def size_on_disk(self) -> int | None:
        """Bytes the store's files take on disk; None for a store that keeps nothing on disk. Reads
        the file system: not for the event loop."""
        return None

    @abstractmethod
    def close(self, *, clean: bool = True) -> None:
        """Ends the use of the store. `clean=False` says the broker did not write all it had to
        (it stopped on an error): the next `recover` then treats the store as after a crash."""
