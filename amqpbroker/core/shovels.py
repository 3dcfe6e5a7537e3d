"""Dynamic shovel definitions: the value of a `shovel` runtime parameter, in RabbitMQ's keys, checked
and turned into a `ShovelConfig`; and the `x-shovelled` header a shovel adds to what it forwards.

The shovel itself (connections, forwarding, reconnecting) runs in the server; this module is pure.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

from .policies import erlang_term

ACK_MODES = ("no-ack", "on-publish", "on-confirm")
DEFAULT_PREFETCH_COUNT = 1000
DEFAULT_RECONNECT_DELAY = 5.0


class ShovelDefinitionError(ValueError):
    """The value is not a valid shovel; the message lists every problem, as RabbitMQ's validation does."""


@dataclass(frozen=True)
class ShovelConfig:
    src_uris: tuple[str, ...]
    src_queue: str | None
    src_exchange: str | None
    src_exchange_key: str
    dest_uris: tuple[str, ...]
    dest_queue: str | None
    dest_exchange: str | None
    dest_exchange_key: str | None
    """None: each message keeps its own routing key."""
    ack_mode: str
    src_delete_after: str | int
    """"never", "queue-length" or a number of messages."""
    prefetch_count: int
    reconnect_delay: float
    add_forward_headers: bool

    @classmethod
    def from_value(cls, name: str, value: Any) -> ShovelConfig:
        """The shovel `name` a parameter value describes; ShovelDefinitionError naming every problem.
        RabbitMQ 3.10's older key names are taken too (`prefetch-count` for `src-prefetch-count`,
        `add-forward-headers` for `dest-add-forward-headers`, `delete-after` for `src-delete-after`)."""
        if not isinstance(value, dict):
            raise ShovelDefinitionError("Validation failed\n\nshovel value must be an object\n")
        problems: list[str] = unrecognised_terms(value, _KEYS, name)
        for key in ("src-protocol", "dest-protocol"):
            if value.get(key, "amqp091") != "amqp091":
                problems.append(f"{key}: only amqp091 is supported, actually was {erlang_term(value[key])}")
        src_uris = _uris(value, "src-uri", problems)
        dest_uris = _uris(value, "dest-uri", problems)
        src_queue = _optional_str(value, "src-queue", problems)
        src_exchange = _optional_str(value, "src-exchange", problems)
        dest_queue = _optional_str(value, "dest-queue", problems)
        dest_exchange = _optional_str(value, "dest-exchange", problems)
        if src_queue is not None and src_exchange is not None:
            problems.append("Cannot specify 'src-exchange' and 'src-queue'")
        elif src_queue is None and src_exchange is None:
            problems.append("Must specify 'src-exchange' or 'src-queue'")
        if dest_queue is not None and dest_exchange is not None:
            problems.append("Cannot specify 'dest-exchange' and 'dest-queue'")
        ack_mode = value.get("ack-mode", "on-confirm")
        if ack_mode not in ACK_MODES:
            problems.append(
                f"ack-mode should be one of {erlang_term(list(ACK_MODES))}, actually was {erlang_term(ack_mode)}"
            )
        prefetch_key = _key(value, "src-prefetch-count", "prefetch-count")
        prefetch_count = _number(value, prefetch_key, DEFAULT_PREFETCH_COUNT, problems)
        reconnect_delay = _number(value, "reconnect-delay", DEFAULT_RECONNECT_DELAY, problems)
        delete_key = _key(value, "src-delete-after", "delete-after")
        delete_after = value.get(delete_key, "never")
        if not (delete_after in ("never", "queue-length") or _is_count(delete_after)):
            problems.append(
                f'{delete_key} should be a number greater than or equal to 0, "never" or "queue-length", '
                f"actually was {erlang_term(delete_after)}"
            )
        headers_key = _key(value, "dest-add-forward-headers", "add-forward-headers")
        add_forward_headers = value.get(headers_key, False)
        if not isinstance(add_forward_headers, bool):
            problems.append(f"{headers_key} should be boolean, actually was {erlang_term(add_forward_headers)}")
        if problems:
            raise ShovelDefinitionError("Validation failed\n\n" + "".join(p + "\n" for p in problems))
        return cls(
            src_uris=src_uris,
            src_queue=src_queue,
            src_exchange=src_exchange,
            src_exchange_key=value.get("src-exchange-key", "#"),
            dest_uris=dest_uris,
            dest_queue=dest_queue,
            dest_exchange=dest_exchange,
            dest_exchange_key=value.get("dest-exchange-key"),
            ack_mode=ack_mode,
            src_delete_after=delete_after,
            prefetch_count=int(prefetch_count),
            reconnect_delay=float(reconnect_delay),
            add_forward_headers=add_forward_headers,
        )

    def endpoints(self) -> dict[str, str]:
        """Where it moves messages from and to, in the keys of RabbitMQ's x-shovelled header
        (URIs without credentials)."""
        out = {"src-uri": redact_uri(self.src_uris[0]), "dest-uri": redact_uri(self.dest_uris[0])}
        for key, field in (
            ("src-queue", self.src_queue),
            ("src-exchange", self.src_exchange),
            ("dest-queue", self.dest_queue),
            ("dest-exchange", self.dest_exchange),
        ):
            if field is not None:
                out[key] = field
                if key == "src-exchange":
                    out["src-exchange-key"] = self.src_exchange_key
                elif key == "dest-exchange" and self.dest_exchange_key is not None:
                    out["dest-exchange-key"] = self.dest_exchange_key
        return out

    def forward_header(self, node: str, vhost: str, name: str) -> dict[str, Any]:
        """One entry of the x-shovelled header, laid out as RabbitMQ writes it."""
        return {
            "shovelled-by": node,
            "shovel-type": "dynamic",
            "shovel-name": name,
            "shovel-vhost": vhost,
            **self.endpoints(),
        }


_KEYS = frozenset((
    "src-uri", "src-queue", "src-exchange", "src-exchange-key", "src-prefetch-count", "prefetch-count",
    "src-delete-after", "delete-after", "src-protocol", "dest-uri", "dest-queue", "dest-exchange",
    "dest-exchange-key", "dest-add-forward-headers", "add-forward-headers", "dest-protocol", "ack-mode",
    "reconnect-delay",
))
"""The keys we act on. RabbitMQ 3.10 knows a few more (queue and consumer arguments, publish
properties, timestamp headers): they are refused as unrecognised rather than ignored."""


def unrecognised_terms(value: dict, known: frozenset[str], name: str) -> list[str]:
    """RabbitMQ's complaint about keys it does not know in a parameter's value, if there are any."""
    unknown = [(key, field) for key, field in value.items() if key not in known]
    if not unknown:
        return []
    terms = ",".join(f"{{{erlang_term(key)},{erlang_term(field)}}}" for key, field in unknown)
    return [f"Unrecognised terms [{terms}] in {name}"]


def _key(value: dict, key: str, older: str) -> str:
    """`key`, or the older name RabbitMQ 3.10 still takes for it if only that is given."""
    return older if older in value and key not in value else key


def redact_uri(uri: str) -> str:
    """The URI without user and password, as RabbitMQ shows it."""
    parts = urllib.parse.urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=host))


def _uris(value: dict, key: str, problems: list[str]) -> tuple[str, ...]:
    uris = value.get(key)
    if isinstance(uris, str):
        uris = [uris]
    if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
        problems.append(f'Key "{key}" not found' if uris is None else f"{key} should be a URI or a list of URIs")
        return ()
    for uri in uris:
        if not uri.startswith("amqp://"):
            problems.append(f"{key}: {uri!r} is not an amqp:// URI")
    return tuple(uris)


def _optional_str(value: dict, key: str, problems: list[str]) -> str | None:
    field = value.get(key)
    if field is not None and not isinstance(field, str):
        problems.append(f"{key} should be binary, actually was {erlang_term(field)}")
        return None
    return field


def _number(value: dict, key: str, default: float, problems: list[str]) -> float:
    number = value.get(key, default)
    if isinstance(number, bool) or not isinstance(number, (int, float)) or number < 0:
        problems.append(f"{key} should be a number, actually was {erlang_term(number)}")
        return default
    return number


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
