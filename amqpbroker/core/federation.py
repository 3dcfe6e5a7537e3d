"""Exchange federation, the pure part: `federation-upstream` parameter values in RabbitMQ's keys,
which upstreams a policy gives an exchange, the names a link uses on the upstream, and the
`x-received-from` header that counts hops.

A federated exchange here receives what is published to its upstream exchange, for the binding
keys it has here: a link (run by the server) keeps a queue on the upstream bound to the upstream
exchange with those keys, consumes it, and publishes what arrives into the exchange here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .policies import erlang_term
from .shovels import ACK_MODES, redact_uri, unrecognised_terms

UPSTREAM = "federation-upstream"
UPSTREAM_SET = "federation-upstream-set"
DEFAULT_PREFETCH_COUNT = 1000
DEFAULT_RECONNECT_DELAY = 5.0
DEFAULT_MAX_HOPS = 1


_KEYS = frozenset(("uri", "exchange", "prefetch-count", "reconnect-delay", "ack-mode", "max-hops", "expires",
                   "message-ttl"))
"""The keys we act on. RabbitMQ 3.10 knows a few more (trust-user-id, queue federation's): they are
refused as unrecognised rather than ignored."""


class UpstreamDefinitionError(ValueError):
    """The value is not a valid upstream; the message lists every problem, as RabbitMQ's validation does."""


@dataclass(frozen=True)
class UpstreamConfig:
    uris: tuple[str, ...]
    exchange: str | None
    """The upstream exchange's name; None: the federated exchange's own name."""
    prefetch_count: int
    reconnect_delay: float
    ack_mode: str
    max_hops: int
    expires: int | None
    """x-expires of the queue on the upstream, in milliseconds."""
    message_ttl: int | None
    """x-message-ttl of the queue on the upstream, in milliseconds."""

    @classmethod
    def from_value(cls, name: str, value: Any) -> UpstreamConfig:
        if not isinstance(value, dict):
            raise UpstreamDefinitionError("Validation failed\n\nupstream value must be an object\n")
        problems = unrecognised_terms(value, _KEYS, name)
        uris = value.get("uri")
        if isinstance(uris, str):
            uris = [uris]
        if uris is None:
            problems.append(f'Key "uri" not found in {name}')
        elif not isinstance(uris, list) or not uris or not all(isinstance(u, str) and u.startswith("amqp://")
                                                                for u in uris):
            problems.append(f"uri should be an amqp:// URI or a list of them, actually was {erlang_term(uris)}")
        exchange = value.get("exchange")
        if exchange is not None and not isinstance(exchange, str):
            problems.append(f"exchange should be binary, actually was {erlang_term(exchange)}")
        ack_mode = value.get("ack-mode", "on-confirm")
        if ack_mode not in ACK_MODES:
            problems.append(
                f"ack-mode should be one of {erlang_term(list(ACK_MODES))}, actually was {erlang_term(ack_mode)}"
            )
        numbers = {}
        for key, default, minimum in (
            ("prefetch-count", DEFAULT_PREFETCH_COUNT, 0),
            ("reconnect-delay", DEFAULT_RECONNECT_DELAY, 0),
            ("max-hops", DEFAULT_MAX_HOPS, 1),
            ("expires", None, 1),
            ("message-ttl", None, 0),
        ):
            number = value.get(key, default)
            if number is not None and (isinstance(number, bool) or not isinstance(number, (int, float))
                                       or number < minimum):
                problems.append(f"{key} should be a number, actually was {erlang_term(number)}")
            numbers[key] = number
        if problems:
            raise UpstreamDefinitionError("Validation failed\n\n" + "".join(p + "\n" for p in problems))
        return cls(
            uris=tuple(uris),
            exchange=exchange,
            prefetch_count=int(numbers["prefetch-count"]),
            reconnect_delay=float(numbers["reconnect-delay"]),
            ack_mode=ack_mode,
            max_hops=int(numbers["max-hops"]),
            expires=None if numbers["expires"] is None else int(numbers["expires"]),
            message_ttl=None if numbers["message-ttl"] is None else int(numbers["message-ttl"]),
        )

    def queue_arguments(self) -> dict[str, Any]:
        arguments: dict[str, Any] = {"x-internal-purpose": "federation"}
        if self.expires is not None:
            arguments["x-expires"] = self.expires
        if self.message_ttl is not None:
            arguments["x-message-ttl"] = self.message_ttl
        return arguments


def check_upstream_set(value: Any) -> None:
    """A `federation-upstream-set` value: a list of {"upstream": name}."""
    if not isinstance(value, list) or not all(
        isinstance(item, dict) and isinstance(item.get("upstream"), str) for item in value
    ):
        raise UpstreamDefinitionError(
            "Validation failed\n\nupstream set should be a list of objects with an upstream name, "
            f"actually was {erlang_term(value)}\n"
        )


def upstream_names(
    definition: Mapping[str, Any], upstreams: Mapping[str, Any], sets: Mapping[str, Any]
) -> list[str]:
    """The upstreams a policy definition federates an exchange with, of those defined in its vhost:
    `federation-upstream` names one, `federation-upstream-set` a set (or "all")."""
    if isinstance(name := definition.get(UPSTREAM), str):
        return [name] if name in upstreams else []
    set_name = definition.get(UPSTREAM_SET)
    if set_name == "all":
        return sorted(upstreams)
    members = sets.get(set_name) if isinstance(set_name, str) else None
    if not isinstance(members, list):
        return []
    return [item["upstream"] for item in members
            if isinstance(item, dict) and item.get("upstream") in upstreams]


def link_queue_name(upstream_exchange: str, node: str, vhost: str, exchange: str) -> str:
    """The queue a link consumes on the upstream, named as RabbitMQ names it."""
    where = node if vhost == "/" else f"{node}:{vhost}"
    return f"federation: {upstream_exchange} -> {where}:{exchange}"


def received_from(headers: Mapping[str, Any] | None) -> list[Any]:
    """The hops a message has made so far: its x-received-from entries."""
    hops = (headers or {}).get("x-received-from")
    return hops if isinstance(hops, list) else []


def should_forward(hops: list[Any], max_hops: int, node: str) -> bool:
    """Whether a message that made `hops` may come here: fewer than max-hops, and never back to a
    broker it passed (a cycle), as the upstream's federation exchange decides in RabbitMQ."""
    if len(hops) >= max_hops:
        return False
    return not any(isinstance(hop, dict) and hop.get("cluster-name") == node for hop in hops)


def hop_entry(uri: str, exchange: str, redelivered: bool, cluster_name: str, vhost: str) -> dict[str, Any]:
    """This hop's x-received-from entry, as RabbitMQ 3.10 writes it."""
    return {
        "uri": redact_uri(uri),
        "exchange": exchange,
        "redelivered": redelivered,
        "cluster-name": cluster_name,
        "vhost": vhost,
    }
