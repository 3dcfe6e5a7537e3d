"""Queues: ready messages, their consumers, round-robin dispatch within credit, and the queue's
limits in time and size (`x-message-ttl` and per-message expiration, `x-expires`, `x-max-length`,
`x-max-length-bytes` with `x-overflow`).

The ready messages themselves are a `backlog` (one FIFO lane, or one per priority). Every message
that leaves the queue other than by delivery (it expired, or a length limit pushed it out) goes
through `drop`, with the reason.

Messages expire from the head only, as in RabbitMQ's classic queues (the head of the highest
priority, in a priority queue): a message that expired behind one that has not is dropped, never
delivered, when it is taken; the timer drops it once it is at the head.

Consumers are served by priority (`x-priority` on basic.consume, highest first), round-robin among
equal priorities; a consumer without credit lets the next one receive. A single-active-consumer
queue (`x-single-active-consumer`) delivers only to its active consumer; when that one goes, the
waiting consumer of highest priority, first registered among equals, takes over, as in RabbitMQ.
"""

from __future__ import annotations

from collections import deque
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from ..protocol import BasicProperties
from ..store.base import DeleteMessage, Dequeue, Enqueue, SetDeliveryCount
from .arguments import QueueSettings
from .backlog import Lane, PriorityLanes
from .credit import FLOW_HIGH, FLOW_HIGH_BYTES, FLOW_LOW, QueueFlow
from .dedup import dedup_key
from .memory import MemoryWatermark
from .message import Message, QueueEntry
from .stats import QueueStats
from .timers import Timers

if TYPE_CHECKING:
    from .delivery import Delivery
    from .journal import Journal

_DEFAULT_SETTINGS = QueueSettings()


DeadLetterer = Callable[["Queue", QueueEntry, str], bool]
"""Told of every entry that leaves its queue for a reason ('rejected', 'expired', 'maxlen',
'delivery_limit'): dead-letters it if the queue has a dead-letter exchange. True if it takes the
entry to forget once it is dead-lettered (its body is being read back from the store)."""


class Consumer:
    """A basic.consume subscription of one channel to one queue."""

    __slots__ = (
        "tag", "queue", "channel", "no_ack", "exclusive", "prefetch_count", "unacked", "priority", "arguments"
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
        priority: int = 0,
        arguments: dict | None = None,
    ) -> None:
        self.tag = tag
        self.queue = queue
        self.channel = channel
        self.no_ack = no_ack
        self.exclusive = exclusive
        self.prefetch_count = prefetch_count
        self.unacked = 0
        self.priority = priority
        self.arguments = arguments or {}
        """As basic.consume gave them, for the management API."""

    def has_credit(self) -> bool:
        if not self.no_ack and self.prefetch_count and self.unacked >= self.prefetch_count:
            return False
        return self.channel.can_deliver(self.no_ack)


class Consumers(list):
    """A queue's consumers in registration order, and whose turn it is to receive.

    Consumers receive by priority, highest first, round-robin among equals; one without credit lets
    the next receive. In a single-active-consumer queue only the active one receives; when it goes,
    the waiting consumer of highest priority, first registered among equals, takes over. While they
    are behind, `flow` is the queue's credit flow state (see `credit`): only a queue with consumers
    has one. `stats` are the queue's statistics, here for the same reason.
    A list, so that a queue's attribute count stays where CPython reads attributes fastest.

    They also keep RabbitMQ's *consumer capacity*: the share of time the queue could hand a message
    to a consumer at once. The queue marks them `blocked_since` when it has a message and none of
    them can take it (each at its prefetch limit, or its channel's, or its connection not taking
    what is sent to it), and unblocks them when one can again: two clock reads for each time that
    changes, none while it does not. An empty queue is not blocked, however it was emptied. The
    share is that of the last sampling interval (see `stats`), or, before one has passed with
    consumers, of the time since the first came.
    """

    __slots__ = ("_rings", "_single_active", "flow", "stats", "blocked_since", "blocked_time", "_since", "_sampled")

    def __init__(self, single_active: bool) -> None:
        super().__init__()
        self._rings: list[tuple[int, deque[Consumer]]] = []
        """The consumers that may receive, by priority, highest first, each priority's rotated
        round-robin. In a single-active-consumer queue, only the active consumer."""
        self._single_active = single_active
        self.flow: QueueFlow | None = None
        self.stats = QueueStats()
        self.blocked_since: float | None = None
        """On the broker's clock, since when a ready message has found no consumer to take it;
        None while one could."""
        self.blocked_time = 0.0
        """Seconds blocked since `_since`, before `blocked_since`."""
        self._since = 0.0
        """When the current interval began: the last sample, or the first consumer's coming."""
        self._sampled: float | None = None
        """The share of the last interval sampled with consumers; None before one."""

    def add(self, consumer: Consumer, now: float) -> None:
        if not self:
            self.blocked_since, self.blocked_time, self._since, self._sampled = None, 0.0, now, None
        self.append(consumer)
        if not self._single_active or len(self) == 1:
            self._may_receive(consumer)

    def discard(self, consumer: Consumer) -> bool:
        """Removes `consumer`; False if it was not here."""
        try:
            self.remove(consumer)
        except ValueError:
            return False
        for index, (priority, ring) in enumerate(self._rings):
            if priority == consumer.priority and consumer in ring:
                ring.remove(consumer)
                if not ring:
                    del self._rings[index]
                if self._single_active and self:
                    # max() keeps the first of equals: registration order among one priority.
                    self._may_receive(max(self, key=attrgetter("priority")))
                break
        return True

    @property
    def single_active(self) -> Consumer | None:
        """The one consumer that receives, in a single-active-consumer queue; None in another queue."""
        if not self._single_active or not self._rings:
            return None
        return self._rings[0][1][0]

    def ready(self) -> Consumer | None:
        """The next in turn of the highest priority that has a consumer with credit, or None."""
        for _, ring in self._rings:
            if len(ring) == 1:
                # A lone consumer in its priority: nothing to rotate.
                consumer = ring[0]
                if consumer.has_credit():
                    return consumer
                continue
            for _ in range(len(ring)):
                consumer = ring[0]
                ring.rotate(-1)
                if consumer.has_credit():
                    return consumer
        return None

    def unblocked(self, now: float) -> None:
        self.blocked_time += now - self.blocked_since
        self.blocked_since = None

    def capacity(self, now: float) -> float:
        """The share of time a message could go to a consumer at once: 0 without consumers."""
        if not self:
            return 0.0
        if self._sampled is not None:
            return self._sampled
        return self._share(now)

    def sample_capacity(self, now: float) -> None:
        """Ends the interval: its share is what `capacity` gives until the next sample."""
        if not self:
            return
        self._sampled = self._share(now)
        self.blocked_time, self._since = 0.0, now
        if self.blocked_since is not None:
            self.blocked_since = now

    def _share(self, now: float) -> float:
        elapsed = now - self._since
        if elapsed <= 0:
            return 0.0 if self.blocked_since is not None else 1.0
        blocked = self.blocked_time + (0.0 if self.blocked_since is None else now - self.blocked_since)
        return min(1.0, max(0.0, 1.0 - blocked / elapsed))

    def _may_receive(self, consumer: Consumer) -> None:
        """Puts `consumer` last in its priority's turn."""
        rings = self._rings
        for index, (priority, ring) in enumerate(rings):
            if priority == consumer.priority:
                ring.append(consumer)
                return
            if priority < consumer.priority:
                rings.insert(index, (consumer.priority, deque((consumer,))))
                return
        rings.append((consumer.priority, deque((consumer,))))


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
        settings: QueueSettings = _DEFAULT_SETTINGS,
        journal: Journal | None = None,
        memory: MemoryWatermark | None = None,
        dead_letters: DeadLetterer | None = None,
        timers: Timers | None = None,
    ) -> None:
        self.name = name
        self.vhost = vhost
        self.durable = durable
        self.exclusive_owner = exclusive_owner
        self.auto_delete = auto_delete
        # The arguments are kept as declared; `settings` is what they ask of the queue, validated.
        self.arguments = arguments or {}
        self.consumers = Consumers(settings.single_active_consumer)
        self.deleted = False
        self.paused = False
        self._backlog: Lane | PriorityLanes = Lane()
        self.message_count = 0
        """How many messages are ready (in the backlog)."""
        self._next_seq = 0
        self.unacked_count = 0
        self.ready_bytes = 0
        """Bytes of the bodies of the ready messages."""
        self.persistent_count = 0
        """How many of the messages (ready or unacknowledged) are persistent, as RabbitMQ counts
        them: those the queue keeps in the store (see `stores_all`), or would have kept had the
        store not failed to write them."""
        self.persistent_bytes = 0
        # Durable queues record their persistent messages here; transient ones have no journal.
        self.journal = journal if durable else None
        self.stores_all = settings.queue_type == "quorum"
        """Whether the queue keeps every message it holds in the store, persistent or not, as
        RabbitMQ's quorum queues and streams do; other durable queues keep the persistent ones."""
        self._counts_persistent = durable
        """Whether the queue counts its persistent messages: a durable one does (a stream keeps
        its log apart, and counts none)."""
        self.delivered_seq = -1
        self.memory = memory if memory is not None else MemoryWatermark()
        self._dead_letters = dead_letters
        self.timers = timers if timers is not None else Timers()
        self.deadline: float | None = None
        """When this queue has its next turn on the timers, if it asked for one."""
        self._idle_since = 0.0
        self._idle_expires: float | None = None
        self._limited = False
        # Set once anything makes taking slower than popping the backlog: an expiry, a limit.
        self._checked = False
        self.configure(settings)
        if settings.max_priority:
            self._backlog = PriorityLanes(settings.max_priority)
        self._dedup: dict[str, int] | None = {} if settings.deduplication else None
        """With `x-message-deduplication`: the deduplication value of each message in the queue
        (ready or unacknowledged), with its entry's seq."""
        self._dedup_seqs: dict[int, str] = {}

    def __repr__(self) -> str:
        return f"<Queue {self.name!r} in {self.vhost!r}>"

    @property
    def exclusive(self) -> bool:
        return self.exclusive_owner is not None

    def configure(self, settings: QueueSettings) -> None:
        """Takes what the arguments and the policy ask of the queue: at creation, and again whenever
        its policy changes, when the new limits act at once as RabbitMQ's do: a length limit with
        drop-head drops the oldest messages over it, and a new `expires` counts from now. A new
        message TTL applies to messages that arrive from now on; those already queued keep the
        expiry they got on arrival, as in RabbitMQ. The type, priorities and single active consumer
        never change: no policy sets them."""
        self.settings = settings
        self._ttl = None if settings.message_ttl is None else settings.message_ttl / 1000
        idle_expires = None if settings.expires is None else settings.expires / 1000
        self._max_length = settings.max_length
        self._max_bytes = settings.max_length_bytes
        self._limited = limited = self._max_length is not None or self._max_bytes is not None
        self._checked = self._checked or limited or idle_expires is not None
        if idle_expires != self._idle_expires:
            self._idle_expires = idle_expires
            self._used()
        if limited and settings.overflow == "drop-head":
            self._drop_over_limits()

    def declared(self, timers: Timers) -> None:
        """Declared (again), or recovered: the queue keeps its deadlines on the broker's `timers`,
        and it counts as used now."""
        if timers is not self.timers:
            self.timers = timers
            self.deadline = None
            self._schedule_expiry()
        self._used()

    def push(self, message: Message) -> bool:
        """Adds a message at the end; False if the queue refuses it (`x-overflow` reject-publish).

        A deduplication queue drops a duplicate of a message it holds, and counts it as taken.
        """
        entry = QueueEntry(self._next_seq, message)
        if self._dedup is not None and not self._deduplicate(self._dedup, entry):
            if self.journal is not None:
                # The message it holds may not be written yet: a confirm must not run ahead of it.
                message.needs_commit = True
            return True
        self._next_seq += 1
        self.consumers.stats.publish += 1
        if self._ttl is not None or message.expiration is not None:
            entry.expires = self._expiry(message)
        message.holders += 1
        if message.holders == 1:
            self.memory.add(message.size)
        if self._counts_persistent and (self.stores_all or message.persistent):
            self.persistent_count += 1
            self.persistent_bytes += message.size
            # A durable queue stores its persistent messages (a transient one may have a store id
            # too: a quorum queue or a stream it was routed to keeps every message).
            if message.message_id is not None and self.journal is not None:
                message.refs += 1
                expires = None if entry.expires is None else self.timers.to_wall_ms(entry.expires)
                self.journal.append(Enqueue(self.vhost, self.name, entry.seq, message.message_id, expires), key=entry)
        if self._checked or entry.expires is not None:
            return self._admit(entry)
        self._backlog.append(entry)
        self.message_count += 1
        self.ready_bytes += message.size
        if self.message_count > FLOW_HIGH or self.message_count * message.size > FLOW_HIGH_BYTES:
            self._press()
        return True

    def _deduplicate(self, dedup: dict[str, int], entry: QueueEntry) -> bool:
        """Whether `entry` may join a deduplication queue, whose values are `dedup` (no message it
        holds has its value); the queue then knows its value until it leaves (`forget`)."""
        key = dedup_key(BasicProperties.decode(entry.message.properties).headers)
        if key is None:
            return True
        if key in dedup:
            return False
        dedup[key] = entry.seq
        self._dedup_seqs[entry.seq] = key
        return True

    def _admit(self, entry: QueueEntry) -> bool:
        """The rest of `push` for a queue with limits, or for an entry that expires."""
        message = entry.message
        limited = self._limited
        if limited and self.settings.overflow != "drop-head" and self._would_overflow(message):
            # Refused: the entry never joins the queue, and only reject-publish-dlx dead-letters it.
            if self.settings.overflow == "reject-publish-dlx":
                self.drop(entry, "maxlen")
            else:
                self.forget(entry)
            return False
        if entry.expires is not None:
            self._checked = True
            if entry.expires <= self.timers.clock():
                self._deliver_or_expire(entry)
                return True
            self._want(entry.expires)
        self._backlog.append(entry)
        self.message_count += 1
        self.ready_bytes += message.size
        if limited:
            self._drop_over_limits()
        if self.message_count > FLOW_HIGH or self.message_count * message.size > FLOW_HIGH_BYTES:
            self._press()
        return True

    def _expiry(self, message: Message) -> float:
        """When `message` expires in this queue: the shorter of the queue's TTL and its own."""
        ttl = self._ttl
        expiration = message.expiration
        if expiration is not None and (ttl is None or expiration / 1000 < ttl):
            ttl = expiration / 1000
        return self.timers.clock() + ttl

    def _deliver_or_expire(self, entry: QueueEntry) -> None:
        """An entry that expires as it arrives (a TTL of 0) goes to a consumer ready for it now, or
        nowhere: RabbitMQ's way, which lets a TTL of 0 mean "deliver now or never"."""
        consumer = None
        if not self.message_count and not self.paused and not self.deleted:
            consumer = self.consumers.ready()
        if consumer is None:
            self.drop(entry, "expired")
        else:
            consumer.channel.deliver(consumer, self, entry)

    def _would_overflow(self, message: Message) -> bool:
        return (self._max_length is not None and self.message_count >= self._max_length) or (
            self._max_bytes is not None and self.ready_bytes + message.size > self._max_bytes
        )

    def _drop_over_limits(self) -> None:
        """`x-overflow` drop-head: the oldest ready messages leave until the queue is within its limits."""
        backlog = self._backlog
        max_length, max_bytes = self._max_length, self._max_bytes
        while (max_length is not None and self.message_count > max_length) or (
            max_bytes is not None and self.ready_bytes > max_bytes
        ):
            entry = backlog.take()
            self.message_count -= 1
            self.ready_bytes -= entry.message.size
            self.drop(entry, "maxlen")

    def restore(self, entry: QueueEntry) -> None:
        """Appends an entry recovered from the store, keeping its sequence number and expiry."""
        if self._dedup is not None:
            self._deduplicate(self._dedup, entry)
        self._hold_recovered(entry.message)
        self._backlog.append(entry)
        self.message_count += 1
        self.ready_bytes += entry.message.size
        self._next_seq = max(self._next_seq, entry.seq + 1)
        if entry.expires is not None:
            self._checked = True
            self._want(entry.expires)

    def drop_recovered(self, entry: QueueEntry, reason: str) -> None:
        """Drops an entry recovered from the store instead of restoring it: a quorum entry that
        came back past its delivery limit (its last deliveries ended in crashes, which count)."""
        self._hold_recovered(entry.message)
        self.drop(entry, reason)

    def _hold_recovered(self, message: Message) -> None:
        message.refs += 1
        message.holders += 1
        if self._counts_persistent and (self.stores_all or message.persistent):
            self.persistent_count += 1
            self.persistent_bytes += message.size

    def restore_delivered(self, seq: int) -> None:
        """Takes the store's mark: every entry up to `seq` was delivered before the restart.

        New entries are numbered above the mark, or a message never delivered would come back
        from the next restart marked redelivered.
        """
        self.delivered_seq = seq
        self._next_seq = max(self._next_seq, seq + 1)

    def forget(self, entry: QueueEntry) -> None:
        """The entry is done with (acknowledged, or dropped): the store must not bring it back."""
        if self._dedup is not None and entry.seq in self._dedup_seqs:
            del self._dedup[self._dedup_seqs.pop(entry.seq)]
        message = entry.message
        message.holders -= 1
        if message.holders == 0:
            if message.body is not None:
                self.memory.release(message.size)
            else:
                self.memory.paged_out -= 1
        if self._counts_persistent and (self.stores_all or message.persistent):
            self.persistent_count -= 1
            self.persistent_bytes -= message.size
            if message.message_id is not None and self.journal is not None:
                self._unstore(entry)

    def _unstore(self, entry: QueueEntry) -> None:
        """The store must not bring the entry back, nor its message once no entry refers to it."""
        message = entry.message
        journal = self.journal
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
        if message.refs == 0 and message.confirms is not None and not message.needs_commit:
            # No durable queue holds it any more: its publisher need not wait for the store.
            message.confirms.settled(message)

    def take(self) -> QueueEntry | None:
        """The next ready message, or None; one that expired on the way is dropped instead."""
        if self._checked:
            entry = self._take_checked()
        else:
            entry = self._backlog.take()
            if entry is not None:
                self.message_count -= 1
                self.ready_bytes -= entry.message.size
        self._drained()
        return entry

    def _take_checked(self) -> QueueEntry | None:
        if self._idle_expires is not None:
            # A basic.get uses the queue as much as a consumer does.
            self._used()
        backlog = self._backlog
        now = None
        while (entry := backlog.take()) is not None:
            self.message_count -= 1
            self.ready_bytes -= entry.message.size
            if entry.expires is None:
                break
            if now is None:
                now = self.timers.clock()
            if entry.expires > now:
                break
            self.drop(entry, "expired")
        # The next entry is now the head: if it expires, the timer must know when.
        self._schedule_expiry()
        return entry

    def put_back(self, entry: QueueEntry) -> None:
        """Returns an entry taken but not delivered to where it was, as it was."""
        self._backlog.put_back(entry)
        self.message_count += 1
        self.ready_bytes += entry.message.size
        if entry.expires is not None:
            self._want(entry.expires)

    def give_back(self, entries: Iterable[QueueEntry]) -> None:
        """Entries taken and held a while (for a body read back from the store) that no one got:
        back where they were, as they were, and delivered on; forgotten if the queue is gone."""
        if self.deleted:
            for entry in entries:
                self.forget(entry)
            return
        for entry in entries:
            self.put_back(entry)
        self.dispatch()

    def requeue(self, entries: Iterable[QueueEntry]) -> None:
        """Puts delivered-but-unacked messages back where they were, marked redelivered; they keep
        their expiry.

        A quorum queue counts every return, durably for a stored message, so that a restart does
        not give a message its delivery limit afresh; one returned more often than the limit
        allows is dead-lettered instead. As in RabbitMQ, a queue over its length limit with
        drop-head then drops from its head, returned messages first.
        """
        backlog = self._backlog
        settings = self.settings
        counted = settings.queue_type == "quorum"
        limit = settings.delivery_limit
        for entry in entries:
            if counted:
                entry.delivery_count += 1
                if limit is not None and entry.delivery_count > limit:
                    self.drop(entry, "delivery_limit")
                    continue
                self._store_delivery_count(entry, entry.delivery_count)
            entry.redelivered = True
            backlog.put_back(entry)
            self.message_count += 1
            self.ready_bytes += entry.message.size
            if entry.expires is not None:
                self._want(entry.expires)
        if self._limited and settings.overflow == "drop-head":
            self._drop_over_limits()

    def redelivering(self, entry: QueueEntry) -> None:
        """A quorum entry returned before goes out again: the store counts this delivery as a
        return already, so that a crash before it is settled counts it, as RabbitMQ's log does
        (its recovery returns what the consumers of the crashed node had). A first delivery is
        not written: the store counts it from the delivered mark after a crash."""
        self._store_delivery_count(entry, entry.delivery_count + 1)

    def _store_delivery_count(self, entry: QueueEntry, delivery_count: int) -> None:
        if entry.message.message_id is not None and self.journal is not None:
            self.journal.append(SetDeliveryCount(self.vhost, self.name, entry.seq, delivery_count))

    def drop(self, entry: QueueEntry, reason: str) -> None:
        """The entry leaves the queue for `reason`: dead-lettered if the queue has a dead-letter
        exchange, then forgotten (in the same batch, so a durable move is all or nothing).

        It is out of the backlog already (or, refused by reject-publish-dlx, never joined it).
        """
        dead_letters = self._dead_letters
        if dead_letters is not None and dead_letters(self, entry, reason):
            return  # forgotten once dead-lettered: its body is being read back from the store
        self.forget(entry)

    def purge(self) -> int:
        count = self.message_count
        for entry in self._backlog.entries():
            self.forget(entry)
        self._backlog.clear()
        self.message_count = 0
        self.ready_bytes = 0
        self._drained()
        return count

    @property
    def messages_ready(self) -> int:
        """The ready messages RabbitMQ's management API and metrics report: the backlog's."""
        return self.message_count

    def counts(self) -> tuple[int, int]:
        """The message and consumer counts queue.declare-ok reports."""
        return self.message_count, len(self.consumers)

    def peek(self) -> list[QueueEntry]:
        """The ready messages in delivery order, without taking them."""
        return list(self._backlog.entries())

    def ready(self) -> Iterator[QueueEntry]:
        """The ready messages in delivery order, without taking them, one at a time."""
        return self._backlog.entries()

    def head(self) -> QueueEntry | None:
        """The ready message `take` would return next, left in place."""
        return self._backlog.head()

    # timers

    def _want(self, when: float) -> None:
        """Asks the timers for a turn at `when`, unless the queue has one at that time or earlier."""
        if self.deadline is None or when < self.deadline:
            self.deadline = when
            self.timers.schedule(self, when)

    def _schedule_expiry(self) -> None:
        head = self._backlog.head()
        if head is not None and head.expires is not None:
            self._want(head.expires)

    def _used(self) -> None:
        if self._idle_expires is not None:
            self._idle_since = self.timers.clock()
            if not self.consumers:
                self._want(self._idle_since + self._idle_expires)

    def idle(self, now: float) -> bool:
        """True once the queue has gone unused for its `x-expires`: no consumer, no basic.get, no declare."""
        return (
            self._idle_expires is not None and not self.consumers and self._idle_since + self._idle_expires <= now
        )

    def expire(self, now: float, budget: int) -> int:
        """The queue's turn on the timers: drops up to `budget` messages expired at `now` from the
        head, asks for its next turn, and returns how many it dropped."""
        backlog = self._backlog
        dropped = 0
        while dropped < budget and (head := backlog.head()) is not None and head.expires is not None:
            if head.expires > now:
                break
            entry = backlog.take()
            self.message_count -= 1
            self.ready_bytes -= entry.message.size
            self.drop(entry, "expired")
            dropped += 1
        self._schedule_expiry()
        if self._idle_expires is not None and not self.consumers:
            self._want(self._idle_since + self._idle_expires)
        self._drained()
        return dropped

    # consumers

    def add_consumer(self, consumer: Consumer) -> None:
        self.consumers.add(consumer, self.timers.clock())

    def remove_consumer(self, consumer: Consumer) -> None:
        if self.consumers.discard(consumer) and not self.consumers:
            self.consumers.blocked_since = None
            self._used()
            if self.consumers.flow is not None:
                # Without consumers the queue is not behind anyone: its length is the memory alarm's.
                self._relieve()

    def dispatch(self) -> None:
        """Delivers ready messages to consumers that have credit, by priority and round-robin."""
        if self.paused or self.deleted:
            return
        backlog = self._backlog
        consumers = self.consumers
        while consumers and self.message_count:
            consumer = consumers.ready()
            if consumer is None:
                if consumers.blocked_since is None:
                    consumers.blocked_since = self.timers.clock()
                break
            if consumers.blocked_since is not None:
                consumers.unblocked(self.timers.clock())
            if self._checked:
                entry = self._take_checked()
                if entry is None:
                    break
            else:
                # Not empty, and nothing to check: the next entry is the one.
                entry = backlog.take()
                self.message_count -= 1
                self.ready_bytes -= entry.message.size
            if not consumer.channel.deliver(consumer, self, entry):
                break
        if consumers.blocked_since is not None or consumers.flow is not None:
            self._drained()

    def _drained(self) -> None:
        """Ready messages left (delivered, taken, expired, purged): credit flow, and the
        consumers' capacity once nothing waits, see the new length."""
        consumers = self.consumers
        if consumers.blocked_since is not None and not self.message_count:
            consumers.unblocked(self.timers.clock())
        flow = consumers.flow
        if flow is not None and self.message_count <= flow.low:
            self._relieve()

    def sample_capacity(self, now: float) -> None:
        """Ends the consumers' capacity interval (see `Consumers`)."""
        self.consumers.sample_capacity(now)

    def consumer_capacity(self) -> float | None:
        """The consumers' capacity now (see `Consumers`); None where RabbitMQ reports none."""
        return self.consumers.capacity(self.timers.clock())

    def body_read(self, message: Message, body: bytes | None) -> None:
        """The body of a message this queue was due to deliver is back from the store (see
        `bodies`): delivery goes on. One the store could not give waits for the next dispatch."""
        if body is not None:
            self.dispatch()

    # credit flow (see `credit`)

    @property
    def stats(self) -> QueueStats:
        """What the queue counted (kept by `consumers`: the hot paths reach it there directly)."""
        return self.consumers.stats

    @property
    def flow(self) -> QueueFlow | None:
        """Set while the queue presses its publishers, or is left slack."""
        return self.consumers.flow

    @property
    def pressing(self) -> bool:
        """True while the connections publishing into the queue wait for it to drain."""
        flow = self.consumers.flow
        return flow is not None and not flow.slack

    def _press(self) -> None:
        """Over FLOW_HIGH (or FLOW_HIGH_BYTES): a queue with consumers presses its publishers,
        unless left slack, until back at FLOW_LOW (or half its length now, if that is less)."""
        consumers = self.consumers
        if consumers.flow is None and consumers:
            consumers.flow = QueueFlow(min(FLOW_LOW, self.message_count // 2))

    def _relieve(self) -> None:
        """Back at its low mark, or without consumers: the queue presses nobody, and is slack no more."""
        consumers = self.consumers
        flow, consumers.flow = consumers.flow, None
        flow.release(self)

    def slacken(self) -> None:
        """A publisher waited too long for the queue to drain: its consumers are slow, not busy.
        It presses nobody until it is back at its low mark."""
        flow = self.consumers.flow
        flow.slack = True
        flow.release(self)
