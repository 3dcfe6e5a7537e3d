"""Queues: ready messages in order, their consumers, and round-robin dispatch within credit.

Consumers are served by priority (`x-priority` on basic.consume, highest first), round-robin among
equal priorities; a consumer without credit lets the next one receive. A single-active-consumer
queue (`x-single-active-consumer`) delivers only to its active consumer; when that one goes, the
waiting consumer of highest priority, first registered among equals, takes over, as in RabbitMQ.

Ready messages live in a deque in publish order. A requeued message goes into a small heap keyed
by its original sequence number; every requeued message was taken from the front earlier, so it
precedes everything still in the deque, and taking the heap first keeps the original order.
"""

from __future__ import annotations

import heapq
from collections import deque
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Callable, Iterable

from ..store.base import DeleteMessage, Dequeue, Enqueue
from .arguments import QueueSettings
from .memory import MemoryWatermark
from .message import Message, QueueEntry

if TYPE_CHECKING:
    from .delivery import Delivery
    from .journal import Journal


DeadLetterer = Callable[["Queue", QueueEntry, str], None]
"""Dead-letters an entry leaving its queue for a reason ('rejected', 'expired', 'maxlen', 'delivery_limit')."""


class Consumer:
    """A basic.consume subscription of one channel to one queue."""

    __slots__ = (
        "tag", "queue", "channel", "no_ack", "exclusive", "prefetch_count", "unacked", "arguments", "priority"
    )

    def __init__(
        self,
        tag: str,
        queue: Queue,
        channel: Delivery,
        *,
        no_ack: bool,
        exclusive: bool,
        prefetch_count: int,
        arguments: dict,
        priority: int = 0,
    ) -> None:
        self.tag = tag
        self.queue = queue
        self.channel = channel
        self.no_ack = no_ack
        self.exclusive = exclusive
        self.prefetch_count = prefetch_count
        self.unacked = 0
        self.arguments = arguments
        self.priority = priority

    def has_credit(self) -> bool:
        if not self.no_ack and self.prefetch_count and self.unacked >= self.prefetch_count:
            return False
        return self.channel.can_deliver(self.no_ack)


class Queue:
    def __init__(
        self,
        name: str,
        vhost: str,
        *,
        durable: bool = False,
        exclusive_owner: Any = None,
        auto_delete: bool = False,
        arguments: dict | None = None,
        settings: QueueSettings = QueueSettings(),  # frozen, so one default is safe to share
        journal: Journal | None = None,
        memory: MemoryWatermark | None = None,
        dead_letters: DeadLetterer | None = None,
    ) -> None:
        self.name = name
        self.vhost = vhost
        self.durable = durable
        self.exclusive_owner = exclusive_owner
        self.auto_delete = auto_delete
        self.arguments = arguments or {}
        # What the arguments ask of this queue, validated; the arguments are kept as declared.
        self.settings = settings
        self.consumers: list[Consumer] = []
        """In registration order."""
        self._rings: list[tuple[int, deque[Consumer]]] = []
        """The consumers by priority, highest first, each priority's rotated round-robin."""
        self._active: Consumer | None = None
        """The consumer a single-active-consumer queue delivers to."""
        self.had_consumers = False
        self.deleted = False
        self.paused = False
        self._ready: deque[QueueEntry] = deque()
        self._requeued: list[QueueEntry] = []
        self._next_seq = 0
        self.unacked_count = 0
        # Durable queues record their persistent messages here; transient ones have no journal.
        self.journal = journal if durable else None
        self.delivered_seq = -1
        self.memory = memory if memory is not None else MemoryWatermark()
        self._dead_letters = dead_letters

    def __repr__(self) -> str:
        return f"<Queue {self.name!r} in {self.vhost!r}>"

    @property
    def exclusive(self) -> bool:
        return self.exclusive_owner is not None

    @property
    def message_count(self) -> int:
        return len(self._ready) + len(self._requeued)

    def push(self, message: Message) -> QueueEntry:
        entry = QueueEntry(self._next_seq, message)
        self._next_seq += 1
        self._ready.append(entry)
        message.holders += 1
        if message.holders == 1:
            self.memory.add(len(message.body))
        if message.message_id is not None and self.journal is not None:
            message.refs += 1
            self.journal.append(Enqueue(self.vhost, self.name, entry.seq, message.message_id), key=entry)
        return entry

    def restore(self, entry: QueueEntry) -> None:
        """Appends an entry recovered from the store, keeping its sequence number."""
        entry.message.refs += 1
        entry.message.holders += 1
        self._ready.append(entry)
        self._next_seq = max(self._next_seq, entry.seq + 1)

    def restore_delivered(self, seq: int) -> None:
        """Takes the store's mark: every entry up to `seq` was delivered before the restart.

        New entries are numbered above the mark, or a message never delivered would come back
        from the next restart marked redelivered.
        """
        self.delivered_seq = seq
        self._next_seq = max(self._next_seq, seq + 1)

    def forget(self, entry: QueueEntry) -> None:
        """The entry is done with (acknowledged, or dropped): the store must not bring it back."""
        message = entry.message
        message.holders -= 1
        if message.holders == 0 and message.body is not None:
            self.memory.release(len(message.body))
        journal = self.journal
        if message.message_id is not None and journal is not None:
            message.refs -= 1
            # Every Enqueue of a message is in the batch of its PutMessage: if this one was not
            # written yet, neither was the message, and both can be cancelled instead.
            if journal.cancel(entry):
                if message.refs == 0:
                    journal.cancel(message)
            else:
                journal.append(Dequeue(self.vhost, self.name, entry.seq))
                if message.refs == 0:
                    journal.append(DeleteMessage(message.message_id))

    def take(self) -> QueueEntry | None:
        """The next ready message, or None."""
        if self._requeued:
            return heapq.heappop(self._requeued)
        if self._ready:
            return self._ready.popleft()
        return None

    def put_back(self, entry: QueueEntry) -> None:
        """Returns an entry taken but not delivered to where it was, as it was."""
        heapq.heappush(self._requeued, entry)

    def requeue(self, entries: Iterable[QueueEntry]) -> None:
        """Puts delivered-but-unacked messages back where they were, marked redelivered.

        A quorum queue counts every return; one returned more often than its delivery limit
        allows is dead-lettered instead.
        """
        settings = self.settings
        counted = settings.queue_type == "quorum"
        limit = settings.delivery_limit
        for entry in entries:
            if counted:
                entry.delivery_count += 1
                if limit is not None and entry.delivery_count > limit:
                    self.drop(entry, "delivery_limit")
                    continue
            entry.redelivered = True
            heapq.heappush(self._requeued, entry)

    def drop(self, entry: QueueEntry, reason: str) -> None:
        """The entry leaves the queue for `reason`: dead-lettered if the queue has a dead-letter
        exchange, then forgotten (in the same batch, so a durable move is all or nothing)."""
        if self._dead_letters is not None and self.settings.dead_letter_exchange is not None:
            self._dead_letters(self, entry, reason)
        self.forget(entry)

    def purge(self) -> int:
        count = self.message_count
        for entry in self._requeued:
            self.forget(entry)
        for entry in self._ready:
            self.forget(entry)
        self._ready.clear()
        self._requeued.clear()
        return count

    def peek(self) -> list[QueueEntry]:
        """The ready messages in delivery order, without taking them."""
        return sorted(self._requeued) + list(self._ready)

    def add_consumer(self, consumer: Consumer) -> None:
        self.consumers.append(consumer)
        self.had_consumers = True
        if self.settings.single_active_consumer:
            if self._active is None:
                self._active = consumer
            return
        rings = self._rings
        for index, (priority, ring) in enumerate(rings):
            if priority == consumer.priority:
                ring.append(consumer)
                return
            if priority < consumer.priority:
                rings.insert(index, (consumer.priority, deque((consumer,))))
                return
        rings.append((consumer.priority, deque((consumer,))))

    def remove_consumer(self, consumer: Consumer) -> None:
        try:
            self.consumers.remove(consumer)
        except ValueError:
            return
        if self.settings.single_active_consumer:
            if self._active is consumer:
                # max() keeps the first of equals: registration order among the same priority.
                self._active = max(self.consumers, key=attrgetter("priority"), default=None)
            return
        for index, (priority, ring) in enumerate(self._rings):
            if priority == consumer.priority:
                ring.remove(consumer)
                if not ring:
                    del self._rings[index]
                return

    def dispatch(self) -> None:
        """Delivers ready messages to consumers that have credit, by priority and round-robin."""
        if self.paused or self.deleted:
            return
        active = self._active
        if active is not None:
            # A single-active-consumer queue: its consumers are not in the rings.
            while (self._requeued or self._ready) and active.has_credit():
                if not active.channel.deliver(active, self, self.take()):
                    return
            return
        rings = self._rings
        while self._requeued or self._ready:
            for _, ring in rings:
                for _ in range(len(ring)):
                    consumer = ring[0]
                    ring.rotate(-1)
                    if consumer.has_credit():
                        break
                else:
                    continue  # nobody of this priority has credit: try the next one down
                break
            else:
                return
            if not consumer.channel.deliver(consumer, self, self.take()):
                return
