"""Statistics: what the broker counts as it works, and the rates sampled from those counts.

Each event is one integer add on the object it concerns: a channel (`ChannelStats`: publishes,
confirms, unroutable messages, deliveries, acks), a queue (`QueueStats`: messages routed to it,
its deliveries and acks) or an exchange (`ExchangeStats`: messages in, and copies routed out).
Nothing on the publish or delivery path looks a counter up by name. Broker-wide totals are sums
taken when someone asks for them (`BrokerStats`), plus what closed channels and deleted queues had
counted, so they never go backwards.

Rates are those of RabbitMQ's `message_stats`: per second over the last sampling interval. The
server's sampler calls `Broker.sample_stats` every `SAMPLE_INTERVAL` seconds of the broker's clock;
nothing is sampled per message.
"""

from __future__ import annotations

from typing import Iterable, Iterator

SAMPLE_INTERVAL = 5.0
"""Seconds between two samples: RabbitMQ's default `collect_statistics_interval`."""


class Rates:
    """Per-second rates of a tuple of counts, over the interval between its last two samples."""

    __slots__ = ("_previous", "_sampled_at", "_changed_at", "values", "idle_since")

    def __init__(self, size: int) -> None:
        self._previous: tuple[int, ...] = (0,) * size
        self._sampled_at: float | None = None
        self._changed_at = 0.0
        self.values: tuple[float, ...] = (0.0,) * size
        self.idle_since: float | None = None
        """Set while the last sample found nothing counted since the one before: when a sample
        last found something counted (or the first sample), on the broker's clock. Nothing was
        counted since then at least."""

    def sample(self, counts: tuple[int, ...], now: float) -> None:
        """Takes the counts at `now`; the first sample only sets the start, with no rate yet."""
        if self._sampled_at is None or counts != self._previous:
            self._changed_at = now
            self.idle_since = None
        else:
            self.idle_since = self._changed_at
        if self._sampled_at is not None and now > self._sampled_at:
            elapsed = now - self._sampled_at
            self.values = tuple((count - before) / elapsed for count, before in zip(counts, self._previous))
        self._previous = counts
        self._sampled_at = now


class Counters:
    """Counts named by `NAMES` (the slots of a subclass), and their rates."""

    __slots__ = ("rates",)
    NAMES: tuple[str, ...] = ()

    def __init__(self) -> None:
        for name in self.NAMES:
            setattr(self, name, 0)
        self.rates = Rates(len(self.NAMES))

    def counts(self) -> tuple[int, ...]:
        return tuple([getattr(self, name) for name in self.NAMES])

    def sample(self, now: float) -> None:
        self.rates.sample(self.counts(), now)

    def active(self) -> bool:
        """True once anything was counted: RabbitMQ reports no `message_stats` for an object before."""
        return any(self.counts())

    def items(self) -> Iterator[tuple[str, int, float]]:
        """(name, count, rate) of every counter."""
        return zip(self.NAMES, self.counts(), self.rates.values)

    def add(self, other: Counters) -> None:
        """Adds the counts of `other`, of the same kind, to these."""
        for name in self.NAMES:
            setattr(self, name, getattr(self, name) + getattr(other, name))


_DELIVERIES = ("deliver", "deliver_no_ack", "get", "get_no_ack", "get_empty", "redeliver", "ack")


class _Deliveries(Counters):
    """The counts channels and queues both keep: messages published, delivered and acknowledged."""

    __slots__ = ()
    publish: int
    deliver: int
    """Deliveries to consumers that acknowledge; `deliver_no_ack` to those that do not."""
    deliver_no_ack: int
    get: int
    """basic.get answered with a message to acknowledge; `get_no_ack` with one that needs none."""
    get_no_ack: int
    get_empty: int
    redeliver: int
    """Deliveries and gets of a message flagged redelivered (also counted as one of the above)."""
    ack: int
    """Messages acknowledged (one basic.ack with multiple counts each message it settles)."""


class ChannelStats(_Deliveries):
    """What one channel did: publishes received and what became of them, deliveries and acks."""

    NAMES = ("publish", "confirm", "return_unroutable", "drop_unroutable", *_DELIVERIES)
    __slots__ = NAMES
    confirm: int
    return_unroutable: int
    drop_unroutable: int


class QueueStats(_Deliveries):
    """What one queue did: messages routed to it, and its deliveries and acks."""

    NAMES = ("publish", *_DELIVERIES)
    __slots__ = NAMES


class ExchangeStats(Counters):
    """Messages published to one exchange, and the copies it routed to queues."""

    NAMES = ("publish_in", "publish_out")
    __slots__ = NAMES
    publish_in: int
    publish_out: int


class ChurnStats(Counters):
    """Connections, channels and queues opened and closed: RabbitMQ's `churn_rates`.
    `queue_declared` counts non-passive declarations, new queue or not."""

    NAMES = ("channel_closed", "channel_created", "connection_closed", "connection_created",
             "queue_created", "queue_declared", "queue_deleted")
    __slots__ = NAMES
    channel_closed: int
    channel_created: int
    connection_closed: int
    connection_created: int
    queue_created: int
    queue_declared: int
    queue_deleted: int


class BrokerStats:
    """Broker-wide counts of objects opened and closed (`churn`), and what channels and queues that
    are gone had counted; the totals of messages add the live ones to those."""

    def __init__(self) -> None:
        self.churn = ChurnStats()
        self._closed_channels = ChannelStats()
        self._deleted_queues: dict[str, QueueStats] = {}
        """What deleted queues had counted, by queue type."""
        self.overview_rates = Rates(len(ChannelStats.NAMES))

    def channel_closed(self, stats: ChannelStats) -> None:
        self.churn.channel_closed += 1
        self._closed_channels.add(stats)

    def queue_deleted(self, queue_type: str, stats: QueueStats) -> None:
        self.churn.queue_deleted += 1
        kept = self._deleted_queues.get(queue_type)
        if kept is None:
            kept = self._deleted_queues[queue_type] = QueueStats()
        kept.add(stats)

    def message_totals(self, channels: Iterable[ChannelStats]) -> ChannelStats:
        """The broker's message counts, since it started: every channel's, open or closed."""
        totals = ChannelStats()
        totals.add(self._closed_channels)
        for stats in channels:
            totals.add(stats)
        totals.rates = self.overview_rates
        return totals

    def queue_totals(self, queues: Iterable[tuple[str, QueueStats]]) -> dict[str, QueueStats]:
        """The counts of every queue, live or deleted, summed by queue type."""
        totals: dict[str, QueueStats] = {}
        for queue_type, stats in [*self._deleted_queues.items(), *queues]:
            total = totals.get(queue_type)
            if total is None:
                total = totals[queue_type] = QueueStats()
            total.add(stats)
        return totals
