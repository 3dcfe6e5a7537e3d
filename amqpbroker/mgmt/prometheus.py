"""Prometheus metrics in text format 0.0.4, named, typed and described as RabbitMQ's
`rabbitmq_prometheus` plugin does, so dashboards and alerts made for RabbitMQ read them unchanged.

`render` is pure: it reads the broker and a `NodeStatus` the server gathers at each scrape. As
RabbitMQ's `/metrics`, it aggregates per-object series into one sample each; `per_object=True` (its
`/metrics/per-object`) labels the queue series by vhost and queue instead. `exposition` gives the
same text as lines, each per-object sample read as its line is taken, for the server to take in
turns (a thousand queues make five thousand lines). `detailed_exposition` gives, the same way, the
lines of RabbitMQ's `/metrics/detailed`: the families asked for by name, as `rabbitmq_detailed_*`
and `rabbitmq_cluster_*` series, each object its own sample. Series of our own (the store's size on
disk) are named `amqpbroker_*`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from operator import methodcaller
from typing import Callable, Collection, Iterable, Iterator, NamedTuple

from .. import core
from ..core.contents import Contents, QueueContents
from ..core.exchanges import Exchange
from ..core.stats import ChannelStats, QueueStats
from .connections import channel_name

CONTENT_TYPE = "text/plain; version=0.0.4"

_QUEUE_TYPES = {"classic": "rabbit_classic_queue", "quorum": "rabbit_quorum_queue", "stream": "rabbit_stream_queue"}
_AMQP = {"protocol": "amqp091"}
_PREFIX = "rabbitmq_"

Labels = dict[str, str]
Samples = Iterable[tuple[Labels, float]]


@dataclass(frozen=True)
class NodeStatus:
    """What the process and its disk look like at a scrape; the server gathers it."""

    node: str
    """The node's name, as the management API gives it."""
    version: str
    """The RabbitMQ version the broker answers as."""
    product_version: str
    start_time: float
    """When the process started, in seconds since the epoch."""
    resident_memory_bytes: int
    open_fds: int
    max_fds: int
    disk_free_bytes: int | None = None
    """Free space on the data directory's disk; None when the broker keeps nothing on disk."""
    disk_free_limit_bytes: int | None = None
    disk_alarm: bool = False
    store_size_bytes: int | None = None
    """Bytes the store's files take on disk; None for an in-memory store."""


def render(broker: core.Broker, node: NodeStatus, *, per_object: bool = False) -> str:
    return text(exposition(broker, node, per_object=per_object))


def text(lines: Iterable[str]) -> str:
    """The exposition's text from its lines."""
    return "\n".join(lines) + "\n"


def exposition(broker: core.Broker, node: NodeStatus, *, per_object: bool = False) -> Iterator[str]:
    """The lines of `render`'s text."""
    out = _Exposition()
    queues = [queue for vhost in broker.vhosts.values() for queue in vhost.queues.values()]

    out.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
              node.start_time)
    out.untyped("rabbitmq_alarms_free_disk_space_watermark",
                "is 1 if free disk space watermark alarm is in effect", int(node.disk_alarm))
    out.untyped("rabbitmq_alarms_memory_used_watermark", "is 1 if VM memory watermark alarm is in effect",
                int(broker.memory.alarm))
    _churn_series(out, _PREFIX, broker)
    _node_series(out, _PREFIX, node)
    _node_limits(out, _PREFIX, node, broker)

    _queue_gauges(out, _PREFIX, (*_QUEUE_DEPTH, _QUEUE_CONSUMERS), queues, per_object)
    _queue_capacity(out, _PREFIX, queues, per_object)
    _queue_contents(out, _PREFIX, queues, Contents(broker), per_object)
    out.family("rabbitmq_queue_messages_published_total", "counter", "Total number of messages published to queues",
               # RabbitMQ's labels here also name the channel and the exchange, which we do not count by.
               _by_queue(queues, lambda queue: queue.stats.publish, per_object, "queue_vhost"))
    _channel_series(out, broker.channel_stats())

    out.gauge("rabbitmq_connections", "Connections currently open", len(broker.connections))
    out.gauge("rabbitmq_channels", "Channels currently open",
              sum(len(connection.sessions) for connection in broker.connections))
    consumers = sum(len(queue.consumers) for queue in queues)
    out.gauge("rabbitmq_consumers", "Consumers currently connected", consumers)
    out.gauge("rabbitmq_queues", "Queues available", len(queues))
    _identity(out, node)

    out.family("rabbitmq_global_consumers", "gauge", "Current number of consumers", [(_AMQP, consumers)])
    _global_series(out, broker, queues)

    if node.store_size_bytes is not None:
        out.gauge("amqpbroker_store_size_bytes", "Bytes the message store's files take on disk",
                  node.store_size_bytes)
    return out.lines()


def detailed_exposition(
    broker: core.Broker, node: NodeStatus, families: Collection[str], vhosts: Collection[str] | None = None
) -> Iterator[str]:
    """The lines of RabbitMQ's `/metrics/detailed`: the `families` asked for (RabbitMQ's names of
    them; the others are passed over) in RabbitMQ's order, a sample per object, then build and
    identity info. With `vhosts`, the queue families have only the queues of those vhosts; the
    others are not limited, as in RabbitMQ."""
    out = _Exposition()
    queues = [
        queue for vhost in broker.vhosts.values() if vhosts is None or vhost.name in vhosts
        for queue in vhost.queues.values()
    ]
    at = _Scrape(broker, node, queues)
    # Two families may have the same series: it comes once.
    for serve in dict.fromkeys(serve for family, serves in _DETAILED if family in families for serve in serves):
        serve(out, at)
    _identity(out, node)
    return out.lines()


def _churn_series(out: _Exposition, prefix: str, broker: core.Broker) -> None:
    churn = broker.stats.churn
    out.counter(f"{prefix}connections_opened_total", "Total number of connections opened", churn.connection_created)
    out.counter(f"{prefix}connections_closed_total", "Total number of connections closed or terminated",
                churn.connection_closed)
    out.counter(f"{prefix}channels_opened_total", "Total number of channels opened", churn.channel_created)
    out.counter(f"{prefix}channels_closed_total", "Total number of channels closed", churn.channel_closed)
    out.counter(f"{prefix}queues_declared_total", "Total number of queues declared", churn.queue_declared)
    out.counter(f"{prefix}queues_created_total", "Total number of queues created", churn.queue_created)
    out.counter(f"{prefix}queues_deleted_total", "Total number of queues deleted", churn.queue_deleted)


def _node_series(out: _Exposition, prefix: str, node: NodeStatus) -> None:
    """RabbitMQ's `node_coarse_metrics` but for its sockets and its Erlang VM's."""
    out.gauge(f"{prefix}process_open_fds", "Open file descriptors", node.open_fds)
    out.gauge(f"{prefix}process_resident_memory_bytes", "Memory used in bytes", node.resident_memory_bytes)
    if node.disk_free_bytes is not None:
        out.gauge(f"{prefix}disk_space_available_bytes", "Disk space available in bytes", node.disk_free_bytes)


def _node_limits(out: _Exposition, prefix: str, node: NodeStatus, broker: core.Broker) -> None:
    """RabbitMQ's `node_metrics` but for its sockets and its Erlang VM's."""
    out.gauge(f"{prefix}process_max_fds", "Open file descriptors limit", node.max_fds)
    if broker.memory.limit is not None:
        out.gauge(f"{prefix}resident_memory_limit_bytes", "Memory high watermark in bytes", broker.memory.limit)
    if node.disk_free_limit_bytes is not None:
        out.gauge(f"{prefix}disk_space_available_limit_bytes", "Free disk space low watermark in bytes",
                  node.disk_free_limit_bytes)


# A queue's gauges: (name without prefix, help, value). RabbitMQ's `queue_coarse_metrics` (but for
# its Erlang process's reductions), then the one of its `queue_metrics` we keep.
_QueueGauge = tuple[str, str, Callable[[core.Queue], float]]
_QUEUE_DEPTH: tuple[_QueueGauge, ...] = (
    ("queue_messages_ready", "Messages ready to be delivered to consumers", lambda queue: queue.messages_ready),
    ("queue_messages_unacked", "Messages delivered to consumers but not yet acknowledged",
     lambda queue: queue.unacked_count),
    ("queue_messages", "Sum of ready and unacknowledged messages - total queue depth",
     lambda queue: queue.messages_ready + queue.unacked_count),
)
_QUEUE_CONSUMERS: _QueueGauge = ("queue_consumers", "Consumers on a queue", lambda queue: len(queue.consumers))


def _queue_gauges(
    out: _Exposition, prefix: str, gauges: Iterable[_QueueGauge], queues: list[core.Queue], per_object: bool
) -> None:
    for name, help, value in gauges:
        out.family(f"{prefix}{name}", "gauge", help, _by_queue(queues, value, per_object))


# What a queue's messages take up (see `core.contents`), from RabbitMQ's `queue_metrics`: (name
# without prefix, help, value, the queue types that report it, as in the management API). A stream
# reports none.
_BOTH, _CLASSIC = frozenset({"classic", "quorum"}), frozenset({"classic"})
_QUEUE_CONTENTS: tuple[tuple[str, str, Callable[[core.Queue, QueueContents], float], frozenset[str]], ...] = (
    ("queue_messages_ram", "Ready and unacknowledged messages stored in memory",
     lambda queue, found: found.messages_ram, _BOTH),
    ("queue_messages_ram_bytes", "Size of ready and unacknowledged messages stored in memory",
     lambda queue, found: found.message_bytes_ram, _BOTH),
    ("queue_messages_ready_ram", "Ready messages stored in memory",
     lambda queue, found: found.messages_ready_ram, _CLASSIC),
    ("queue_messages_unacked_ram", "Unacknowledged messages stored in memory",
     lambda queue, found: found.messages_unacknowledged_ram, _CLASSIC),
    ("queue_messages_persistent", "Persistent messages", lambda queue, found: queue.persistent_count, _BOTH),
    ("queue_messages_persistent_bytes", "Size in bytes of persistent messages",
     lambda queue, found: queue.persistent_bytes, _BOTH),
    ("queue_messages_bytes", "Size in bytes of ready and unacknowledged messages",
     lambda queue, found: found.message_bytes, _BOTH),
    ("queue_messages_ready_bytes", "Size in bytes of ready messages", lambda queue, found: queue.ready_bytes, _BOTH),
    ("queue_messages_unacked_bytes", "Size in bytes of all unacknowledged messages",
     lambda queue, found: found.message_bytes_unacknowledged, _BOTH),
    ("queue_messages_paged_out", "Messages paged out to disk", lambda queue, found: found.messages_paged_out, _CLASSIC),
    ("queue_messages_paged_out_bytes", "Size in bytes of messages paged out to disk",
     lambda queue, found: found.message_bytes_paged_out, _CLASSIC),
)


def _queue_capacity(out: _Exposition, prefix: str, queues: list[core.Queue], per_object: bool) -> None:
    """The consumers' capacity of each queue but a stream, as RabbitMQ's `queue_metrics` give it:
    aggregated, the capacity has no sample and the utilisation (the same figure) is summed."""
    reporting = [queue for queue in queues if queue.consumer_capacity() is not None]
    capacity = methodcaller("consumer_capacity")
    out.family(f"{prefix}queue_consumer_capacity", "gauge", "Consumer capacity",
               _by_queue(reporting, capacity, True) if per_object else [])
    out.family(f"{prefix}queue_consumer_utilisation", "gauge", "Same as consumer capacity",
               _by_queue(reporting, capacity, per_object))


def _queue_contents(
    out: _Exposition, prefix: str, queues: list[core.Queue], contents: Contents, per_object: bool
) -> None:
    """The `_QUEUE_CONTENTS` series, per queue of a type that reports each or their sum, then the
    head message's timestamp of each classic queue that has one."""
    for name, help, value, types in _QUEUE_CONTENTS:
        reporting = [queue for queue in queues if queue.settings.queue_type in types]
        out.family(f"{prefix}{name}", "gauge", help, _by_queue(reporting, partial(_found, value, contents), per_object))
    # Summed over queues, a timestamp would mean nothing: as in RabbitMQ, the sum has no sample, and
    # a queue whose head has no timestamp has NaN.
    classic = [queue for queue in queues if queue.settings.queue_type == "classic"]
    out.family(f"{prefix}queue_head_message_timestamp", "gauge", "Timestamp of the first message in the queue, if any",
               _by_queue(classic, partial(_head_timestamp, contents), True) if per_object else [])


def _head_timestamp(contents: Contents, queue: core.Queue) -> float:
    stamp = contents.of(queue).head_message_timestamp
    return math.nan if stamp is None else stamp


def _found(value: Callable[[core.Queue, QueueContents], float], contents: Contents, queue: core.Queue) -> float:
    return value(queue, contents.of(queue))


def _by_queue(
    queues: list[core.Queue], value: Callable[[core.Queue], float], per_object: bool, vhost_label: str = "vhost"
) -> Samples:
    """A sample per queue, each read as its line is taken; or, not `per_object`, their sum."""
    if per_object:
        return (({vhost_label: queue.vhost, "queue": queue.name}, value(queue)) for queue in queues)
    return [({}, sum(value(queue) for queue in queues))]


def _identity(out: _Exposition, node: NodeStatus) -> None:
    out.untyped("rabbitmq_build_info", "RabbitMQ & Erlang/OTP version info", 1, {
        "rabbitmq_version": node.version,
        "prometheus_plugin_version": node.version,
        "amqpbroker_version": node.product_version,
    })
    out.untyped("rabbitmq_identity_info", "RabbitMQ node & cluster identity info", 1, {
        "rabbitmq_node": node.node,
        "rabbitmq_cluster": node.node,
    })


_DETAILED_PREFIX = "rabbitmq_detailed_"
_CLUSTER_PREFIX = "rabbitmq_cluster_"


class _Scrape(NamedTuple):
    broker: core.Broker
    node: NodeStatus
    queues: list[core.Queue]
    """The queues of the vhosts asked for."""


# RabbitMQ's `channel_metrics`.
_CHANNEL_GAUGES: tuple[tuple[str, str, Callable[[core.Session], float]], ...] = (
    ("channel_consumers", "Consumers on a channel", lambda session: len(session.delivery.consumers)),
    ("channel_messages_unacked", "Delivered but not yet acknowledged messages",
     lambda session: session.delivery.unacked_count),
    ("channel_messages_unconfirmed", "Published but not yet confirmed messages",
     lambda session: session.confirms.unconfirmed),
    ("channel_messages_uncommitted", "Messages received in a transaction but not yet committed",
     lambda session: session.uncommitted[0]),
    ("channel_acks_uncommitted", "Message acknowledgements in a transaction not yet committed",
     lambda session: session.uncommitted[1]),
    ("consumer_prefetch", "Limit of unacknowledged messages for each consumer",
     lambda session: session.delivery.prefetch_count),
    ("channel_prefetch", "Total limit of unacknowledged messages for all consumers on a channel",
     lambda session: session.delivery.global_prefetch_count),
)


def _channel_gauges(out: _Exposition, broker: core.Broker) -> None:
    # RabbitMQ labels a channel by its Erlang process id; ours has the name the HTTP API gives it.
    sessions = [session for connection in _connections(broker)
                for session in sorted(connection.sessions.values(), key=lambda session: session.channel)]
    for name, help, value in _CHANNEL_GAUGES:
        out.family(f"{_DETAILED_PREFIX}{name}", "gauge", help, _by_channel(sessions, value))


def _by_channel(sessions: list[core.Session], value: Callable[[core.Session], float]) -> Samples:
    """A sample per channel, each read as its line is taken."""
    return (({"channel": channel_name(session)}, value(session)) for session in sessions)


def _connection_gauges(out: _Exposition, broker: core.Broker) -> None:
    """RabbitMQ's `connection_metrics` but for the socket's packet counts, which we do not keep."""
    # RabbitMQ labels a connection `channel` too, by its process id; ours has the name the HTTP API gives it.
    out.family(f"{_DETAILED_PREFIX}connection_channels", "gauge", "Channels on a connection",
               (({"channel": connection.info.name}, len(connection.sessions)) for connection in _connections(broker)))


def _connections(broker: core.Broker) -> list[core.ClientConnection]:
    return sorted(broker.connections, key=lambda connection: connection.info.name)


def _vhost_status(out: _Exposition, broker: core.Broker) -> None:
    # A vhost of ours has no process of its own to be down: each one there is running.
    out.family(f"{_CLUSTER_PREFIX}vhost_status", "gauge", "Whether a given vhost is running",
               [({"vhost": name}, 1) for name in sorted(broker.vhosts)])


def _exchange_bindings(out: _Exposition, broker: core.Broker) -> None:
    out.family(f"{_CLUSTER_PREFIX}exchange_bindings", "gauge",
               "Number of bindings for an exchange. This value is cluster-wide.",
               ((labels, len(exchange.bindings)) for labels, exchange in _exchanges(broker)))


def _exchange_names(out: _Exposition, broker: core.Broker) -> None:
    out.family(f"{_CLUSTER_PREFIX}exchange_name", "gauge",
               "Enumerates exchanges without any additional info. This value is cluster-wide. A cheaper "
               "alternative to `exchange_bindings`", ((labels, 1) for labels, _ in _exchanges(broker)))


def _exchanges(broker: core.Broker) -> Iterator[tuple[Labels, Exchange]]:
    """The exchanges RabbitMQ's cluster families list (not the default one, nor an internal one),
    with their labels."""
    # Each list taken at once: between two of its samples, vhosts and exchanges may come and go.
    for vhost_name, vhost in sorted(broker.vhosts.items()):
        for name, exchange in sorted(vhost.exchanges.items()):
            if name and not exchange.internal:
                yield {"vhost": vhost_name, "exchange": name, "type": exchange.type}, exchange


def _queue_consumers(out: _Exposition, at: _Scrape) -> None:
    _queue_gauges(out, _DETAILED_PREFIX, (_QUEUE_CONSUMERS,), at.queues, True)


def _queue_metrics_detailed(out: _Exposition, at: _Scrape) -> None:
    _queue_capacity(out, _DETAILED_PREFIX, at.queues, True)
    _queue_contents(out, _DETAILED_PREFIX, at.queues, Contents(at.broker), True)


# RabbitMQ's families of /metrics/detailed, in its order, that we keep the figures of. Asked for
# together, `queue_consumer_count` and `queue_metrics` give their one series once. Not served, for
# want of the figures: `node_persister_metrics` (I/O counts), `ra_metrics` (Raft),
# `auth_attempt_metrics` and `auth_attempt_detailed_metrics`, `channel_process_metrics` (Erlang
# reductions), `connection_coarse_metrics` (bytes in and out), and, counted by channel and exchange
# or queue, `channel_exchange_metrics`, `channel_queue_metrics` and `channel_queue_exchange_metrics`.
_DETAILED: tuple[tuple[str, tuple[Callable[[_Exposition, _Scrape], None], ...]], ...] = (
    ("connection_churn_metrics", (lambda out, at: _churn_series(out, _DETAILED_PREFIX, at.broker),)),
    ("node_coarse_metrics", (lambda out, at: _node_series(out, _DETAILED_PREFIX, at.node),)),
    ("node_metrics", (lambda out, at: _node_limits(out, _DETAILED_PREFIX, at.node, at.broker),)),
    ("queue_coarse_metrics", (lambda out, at: _queue_gauges(out, _DETAILED_PREFIX, _QUEUE_DEPTH, at.queues, True),)),
    ("queue_consumer_count", (_queue_consumers,)),
    ("queue_metrics", (_queue_consumers, _queue_metrics_detailed)),
    ("channel_metrics", (lambda out, at: _channel_gauges(out, at.broker),)),
    ("connection_metrics", (lambda out, at: _connection_gauges(out, at.broker),)),
    ("vhost_status", (lambda out, at: _vhost_status(out, at.broker),)),
    ("exchange_bindings", (lambda out, at: _exchange_bindings(out, at.broker),)),
    ("exchange_names", (lambda out, at: _exchange_names(out, at.broker),)),
)


# Channel counters as RabbitMQ's aggregated endpoint sums them: over the channels open now.
_CHANNEL_COUNTERS = (
    ("rabbitmq_channel_messages_published_total", "publish",
     "Total number of messages published into an exchange on a channel"),
    ("rabbitmq_channel_messages_confirmed_total", "confirm",
     "Total number of messages published into an exchange and confirmed on the channel"),
    ("rabbitmq_channel_messages_unroutable_returned_total", "return_unroutable",
     "Total number of messages published as mandatory into an exchange and returned to the publisher as "
     "unroutable"),
    ("rabbitmq_channel_messages_unroutable_dropped_total", "drop_unroutable",
     "Total number of messages published as non-mandatory into an exchange and dropped as unroutable"),
    ("rabbitmq_channel_get_ack_total", "get",
     "Total number of messages fetched with basic.get in manual acknowledgement mode"),
    ("rabbitmq_channel_get_total", "get_no_ack",
     "Total number of messages fetched with basic.get in automatic acknowledgement mode"),
    ("rabbitmq_channel_messages_delivered_ack_total", "deliver",
     "Total number of messages delivered to consumers in manual acknowledgement mode"),
    ("rabbitmq_channel_messages_delivered_total", "deliver_no_ack",
     "Total number of messages delivered to consumers in automatic acknowledgement mode"),
    ("rabbitmq_channel_messages_redelivered_total", "redeliver",
     "Total number of messages redelivered to consumers"),
    ("rabbitmq_channel_messages_acked_total", "ack", "Total number of messages acknowledged by consumers"),
    ("rabbitmq_channel_get_empty_total", "get_empty",
     "Total number of times basic.get operations fetched no message"),
)


def _channel_series(out: _Exposition, channels: list[ChannelStats]) -> None:
    for name, counter, help in _CHANNEL_COUNTERS:
        out.counter(name, help, sum(getattr(stats, counter) for stats in channels))


# Counted by queue type, from every queue's counts, those of deleted queues included.
_DELIVERED = ("deliver", "deliver_no_ack", "get", "get_no_ack")
_GLOBAL_BY_QUEUE_TYPE = (
    ("rabbitmq_global_messages_acknowledged_total", ("ack",), "Total number of messages acknowledged by consumers"),
    ("rabbitmq_global_messages_delivered_consume_auto_ack_total", ("deliver_no_ack",),
     "Total number of messages delivered to consumers using basic.consume with automatic acknowledgment"),
    ("rabbitmq_global_messages_delivered_consume_manual_ack_total", ("deliver",),
     "Total number of messages delivered to consumers using basic.consume with manual acknowledgment"),
    ("rabbitmq_global_messages_delivered_get_auto_ack_total", ("get_no_ack",),
     "Total number of messages delivered to consumers using basic.get with automatic acknowledgment"),
    ("rabbitmq_global_messages_delivered_get_manual_ack_total", ("get",),
     "Total number of messages delivered to consumers using basic.get with manual acknowledgment"),
    ("rabbitmq_global_messages_delivered_total", _DELIVERED, "Total number of messages delivered to consumers"),
    ("rabbitmq_global_messages_get_empty_total", ("get_empty",),
     "Total number of times basic.get operations fetched no message"),
    ("rabbitmq_global_messages_redelivered_total", ("redeliver",), "Total number of messages redelivered to consumers"),
)


def _global_series(out: _Exposition, broker: core.Broker, queues: list[core.Queue]) -> None:
    by_type = broker.stats.queue_totals((queue.settings.queue_type, queue.stats) for queue in queues)
    families = [
        (name, help, [({**_AMQP, "queue_type": label}, _sum(by_type.get(kind), counters))
                      for kind, label in _QUEUE_TYPES.items()])
        for name, counters, help in _GLOBAL_BY_QUEUE_TYPE
    ]
    totals = broker.message_totals()
    routed = totals.publish - totals.return_unroutable - totals.drop_unroutable
    families += [
        ("rabbitmq_global_messages_confirmed_total", "Total number of messages confirmed to publishers",
         [(_AMQP, totals.confirm)]),
        ("rabbitmq_global_messages_received_total", "Total number of messages received from publishers",
         [(_AMQP, totals.publish)]),
        ("rabbitmq_global_messages_routed_total", "Total number of messages routed to queues or streams",
         [(_AMQP, routed)]),
        ("rabbitmq_global_messages_unroutable_dropped_total",
         "Total number of messages published as non-mandatory into an exchange and dropped as unroutable",
         [(_AMQP, totals.drop_unroutable)]),
        ("rabbitmq_global_messages_unroutable_returned_total",
         "Total number of messages published as mandatory into an exchange and returned to the publisher as "
         "unroutable", [(_AMQP, totals.return_unroutable)]),
    ]
    # In RabbitMQ's order: by name.
    for name, help, samples in sorted(families, key=lambda family: family[0]):
        out.family(name, "counter", help, samples)


def _sum(stats: QueueStats | None, counters: tuple[str, ...]) -> int:
    return 0 if stats is None else sum(getattr(stats, counter) for counter in counters)


class _Exposition:
    """Text format 0.0.4: per family a TYPE and a HELP line, then its samples."""

    def __init__(self) -> None:
        self._families: list[tuple[str, str, str, Samples]] = []

    def family(self, name: str, kind: str, help: str, samples: Samples) -> None:
        self._families.append((name, kind, help, samples))

    def gauge(self, name: str, help: str, value: float) -> None:
        self.family(name, "gauge", help, [({}, value)])

    def counter(self, name: str, help: str, value: float) -> None:
        self.family(name, "counter", help, [({}, value)])

    def untyped(self, name: str, help: str, value: float, labels: Labels | None = None) -> None:
        self.family(name, "untyped", help, [(labels or {}, value)])

    def lines(self) -> Iterator[str]:
        for name, kind, help, samples in self._families:
            yield f"# TYPE {name} {kind}"
            yield f"# HELP {name} {_escape_help(help)}"
            for labels, value in samples:
                if labels:
                    pairs = ",".join(f'{key}="{_escape_label(text)}"' for key, text in labels.items())
                    yield f"{name}{{{pairs}}} {_number(value)}"
                else:
                    yield f"{name} {_number(value)}"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return "NaN" if math.isnan(value) else repr(float(value))
