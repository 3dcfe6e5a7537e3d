"""`message_stats` as RabbitMQ's management API gives it: each count `N` with `N_details: {rate}`,
messages per second over the last statistics interval.

The overview always has it; a queue, an exchange or a channel only once it counted anything, as
with RabbitMQ (`of`). The churn of connections, channels and queues comes in the same shape
(`churn`).
"""

from __future__ import annotations

import datetime
from typing import Any

from .. import core
from ..core.stats import Counters
from ..core.timers import Timers

_DELIVER_GET = ("deliver", "deliver_no_ack", "get", "get_no_ack")


def message_stats(stats: Counters) -> dict[str, Any]:
    """The counts of `stats` in RabbitMQ's shape, with `deliver_get` (every delivery and get with
    a message) where deliveries are counted."""
    report: dict[str, Any] = {}
    rates = {}
    for name, count, rate in stats.items():
        report[name] = count
        report[f"{name}_details"] = {"rate": round(rate, 1)}
        rates[name] = rate
    if "deliver" in rates:
        report["deliver_get"] = sum(report[name] for name in _DELIVER_GET)
        report["deliver_get_details"] = {"rate": round(sum(rates[name] for name in _DELIVER_GET), 1)}
    return report


def of(stats: Counters) -> dict[str, Any]:
    """`{"message_stats": ...}` for an object that counted anything, else nothing: merge it into
    the object's JSON."""
    return {"message_stats": message_stats(stats)} if stats.active() else {}


def idle_since(stats: Counters, timers: Timers) -> dict[str, Any]:
    """`{"idle_since": ...}` for a queue or a channel whose last sample found nothing counted since
    the one before, else nothing: merge it into the object's JSON. RabbitMQ gives the time the
    object went idle; ours is the time of the sample that last found it busy (it has been idle
    since then at least, and went idle at most one sample interval before), in RabbitMQ's format."""
    since = stats.rates.idle_since
    if since is None:
        return {}
    when = datetime.datetime.fromtimestamp(timers.to_wall_ms(since) / 1000, datetime.timezone.utc)
    return {"idle_since": when.isoformat(timespec="milliseconds")}


def overview(broker: core.Broker) -> dict[str, Any]:
    """The overview's: every channel's counts since the broker started."""
    return message_stats(broker.message_totals())


def churn(broker: core.Broker) -> dict[str, Any]:
    """Connections, channels and queues opened and closed since the broker started: the overview's
    `churn_rates`, and the node's counts."""
    return message_stats(broker.stats.churn)
