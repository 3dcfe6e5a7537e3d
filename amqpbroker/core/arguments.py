"""Queue, consumer and exchange arguments: which RabbitMQ 3.10 accepts, and the settings they give.

`queue_settings` validates a queue.declare's arguments as RabbitMQ 3.10 does (same checks, same order,
same reply texts, which quote Erlang terms such as `{value_negative,-1}`) and turns them into a
`QueueSettings` that the queue reads. `settings_from_arguments` is the same translation without
the checks, for queues recovered from disk. The argument names map to policy names by dropping
`x-`; `settings_from_arguments` also takes the policy and the operator policy applied to the queue
and combines the three as RabbitMQ 3.10 does.

Field tables reach us as Python values, so an integer's wire type (byte, short, long ...) is gone;
in reply texts an integer is called 'signedint' when it fits 32 bits and 'long' otherwise, which is
what pika and most clients send.
"""

from __future__ import annotations

import datetime
import decimal
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple

from .errors import ChannelException, ConnectionException
from .policies import Policy, effective_definition

# RabbitMQ names queue types after the Erlang modules that implement them.
_TYPE_MODULES = {"classic": "rabbit_classic_queue", "quorum": "rabbit_quorum_queue", "stream": "rabbit_stream_queue"}

MAX_PRIORITY = 255
# rabbit_misc:check_expiry: ten years in milliseconds.
_MAX_EXPIRY = 315_360_000_000
_MAX_STREAM_SEGMENT_SIZE = 3_000_000_000
DEFAULT_STREAM_SEGMENT_SIZE = 500_000_000
_OVERFLOW_MODES = ("drop-head", "reject-publish", "reject-publish-dlx")

# The arguments each queue type knows (RabbitMQ's capabilities/0 of each type). An argument another
# type knows is refused; one no type knows is kept and ignored. These are also the arguments
# compared when a queue of that type is declared again.
QUEUE_TYPE_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "classic": (
        "x-expires", "x-message-ttl", "x-dead-letter-exchange", "x-dead-letter-routing-key",
        "x-max-length", "x-max-length-bytes", "x-max-priority", "x-overflow", "x-queue-mode",
        "x-queue-version", "x-single-active-consumer", "x-queue-type", "x-queue-master-locator",
    ),
    "quorum": (
        "x-dead-letter-exchange", "x-dead-letter-routing-key", "x-dead-letter-strategy", "x-expires",
        "x-max-length", "x-max-length-bytes", "x-max-in-memory-length", "x-max-in-memory-bytes",
        "x-overflow", "x-single-active-consumer", "x-queue-type", "x-quorum-initial-group-size",
        "x-delivery-limit", "x-message-ttl", "x-queue-leader-locator",
    ),
    "stream": (
        "x-max-length-bytes", "x-queue-type", "x-max-age", "x-stream-max-segment-size-bytes",
        "x-initial-cluster-size", "x-queue-leader-locator",
    ),
}
_CONSUMER_TYPE_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "classic": ("x-cancel-on-ha-failover", "x-priority", "x-credit"),
    "quorum": ("x-priority", "x-credit"),
    "stream": ("x-stream-offset", "x-credit"),
}


@dataclass(frozen=True)
class QueueSettings:
    """What a queue's arguments and its policy ask of it, typed and validated."""

    queue_type: str = "classic"  # "classic" | "quorum" | "stream"
    message_ttl: int | None = None  # ms
    expires: int | None = None  # ms
    dead_letter_exchange: str | None = None
    dead_letter_routing_key: str | None = None
    max_length: int | None = None
    max_length_bytes: int | None = None
    overflow: str = "drop-head"  # "drop-head" | "reject-publish" | "reject-publish-dlx"
    max_priority: int | None = None  # 0..255
    single_active_consumer: bool = False
    delivery_limit: int | None = None  # quorum only
    max_age: int | None = None  # ms; stream only
    max_segment_size_bytes: int = DEFAULT_STREAM_SEGMENT_SIZE  # stream only
    deduplication: bool = False  # x-message-deduplication, the plugin's; classic only
    policy: Policy | None = None  # the policy that applies to the queue
    operator_policy: Policy | None = None  # the operator policy that applies to it


class StreamOffset(NamedTuple):
    """Where a stream consumer starts (`x-stream-offset`): `kind` is "first", "last" or "next"
    (`value` unused), "offset" (`value` an offset), "timestamp" (`value` ms since the epoch) or
    "interval" (`value` an age in ms, counted back from when the consumer starts)."""

    kind: str
    value: int = 0


@dataclass(frozen=True)
class ConsumerSettings:
    """What a basic.consume's arguments ask: its priority among the queue's consumers, whether it is
    cancelled rather than moved when its (mirrored) queue fails over, which a single node never does,
    and where in a stream it starts reading."""

    priority: int = 0
    cancel_on_ha_failover: bool = False
    stream_offset: StreamOffset = StreamOffset("next")


def type_name(value: Any) -> str:
    """The AMQP field type RabbitMQ would name for a decoded field-table value."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "signedint" if -(2**31) <= value < 2**31 else "long"
    if isinstance(value, str):
        return "longstr"
    if isinstance(value, float):
        return "double"
    if isinstance(value, decimal.Decimal):
        return "decimal"
    if isinstance(value, (bytes, bytearray)):
        return "binary"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, datetime.datetime):
        return "timestamp"
    return "void"


def erlang_text(value: Any) -> str:
    """A field value as RabbitMQ prints it inside quotes: strings bare, booleans in lower case."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    return str(value)


def same_argument(a: Any, b: Any) -> bool:
    """Whether two argument values are equivalent on redeclare. RabbitMQ compares integers of any
    width by value and any two strings by their bytes (a longstr equals a byte array), but a boolean
    never equals an integer, nor an integer a float."""
    return _comparable(a) == _comparable(b)


def _comparable(value: Any) -> tuple[str, Any]:
    if isinstance(value, str):
        return "binary", value.encode()
    if isinstance(value, (bytes, bytearray)):
        return "binary", bytes(value)
    if _is_integer(value):
        return "int", value
    return type_name(value), value


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _erlang_string(text: str) -> str:
    """A string as Erlang's ~p prints it."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '"' + escaped.replace("\t", "\\t") + '"'


# Validators return None when the value is acceptable, else the error term RabbitMQ prints.
Validator = Callable[[Any, Mapping[str, Any]], "str | None"]


def _check_int(value: Any, arguments: Mapping[str, Any]) -> str | None:
    if _is_integer(value):
        return None
    return _erlang_string(f"expected integer, got {type_name(value)}")


def _check_bool(value: Any, arguments: Mapping[str, Any]) -> str | None:
    return None if isinstance(value, bool) else f"{{unacceptable_type,{type_name(value)}}}"


def _check_non_negative(value: Any, arguments: Mapping[str, Any]) -> str | None:
    error = _check_int(value, arguments)
    if error is None and value < 0:
        return f"{{value_negative,{value}}}"
    return error


def _check_positive(value: Any, arguments: Mapping[str, Any]) -> str | None:
    error = _check_non_negative(value, arguments)
    if error is None and value == 0:
        return "{value_zero,0}"
    return error


def _expiry_error(value: int) -> str | None:
    if value < 0:
        return f"{{value_negative,{value}}}"
    if value > _MAX_EXPIRY:
        return f"{{value_too_large,{value}}}"
    return None


def _check_expires(value: Any, arguments: Mapping[str, Any]) -> str | None:
    error = _check_int(value, arguments)
    if error is not None:
        return error
    return "{value_zero,0}" if value == 0 else _expiry_error(value)


def _check_message_ttl(value: Any, arguments: Mapping[str, Any]) -> str | None:
    error = _check_int(value, arguments)
    return error if error is not None else _expiry_error(value)


def _check_max_priority(value: Any, arguments: Mapping[str, Any]) -> str | None:
    error = _check_non_negative(value, arguments)
    if error is None and value > MAX_PRIORITY:
        return f"{{max_value_exceeded,{value}}}"
    return error


def _one_of(choices: tuple[str, ...], invalid: Callable[[str], str]) -> Validator:
    """A validator for a string argument that must be one of `choices`."""

    def check(value: Any, arguments: Mapping[str, Any]) -> str | None:
        if not isinstance(value, str):
            return f"{{unacceptable_type,{type_name(value)}}}"
        return None if value in choices else invalid(value)

    return check


def _check_dead_letter_routing_key(value: Any, arguments: Mapping[str, Any]) -> str | None:
    if not isinstance(value, str):
        return f"{{unacceptable_type,{type_name(value)}}}"
    return None if "x-dead-letter-exchange" in arguments else "routing_key_but_no_dlx_defined"


def _check_queue_version(value: Any, arguments: Mapping[str, Any]) -> str | None:
    error = _check_non_negative(value, arguments)
    if error is None and value not in (1, 2):
        return _erlang_string(f"unsupported queue version '{value}'")
    return error


# The units of an age such as x-max-age's "7D", in seconds, as RabbitMQ counts them.
_AGE_UNITS = {"Y": 365 * 86400, "M": 30 * 86400, "D": 86400, "h": 3600, "m": 60, "s": 1}


def _age_seconds(text: str) -> int | None:
    """The seconds an age such as "1h" stands for, or None if it is not one."""
    match = re.fullmatch(r"([0-9]+)(.*)", text, re.DOTALL)
    if match is None or match[2] not in _AGE_UNITS or int(match[1]) == 0:
        return None
    return int(match[1]) * _AGE_UNITS[match[2]]


def _checked_age_seconds(text: str) -> int | None:
    """`_age_seconds` for a value a client sent: text without leading digits crashes RabbitMQ's
    parser, which its clients see as 541 INTERNAL_ERROR; so do they here."""
    if not re.match(r"[0-9]", text):
        raise ConnectionException.internal_error()
    return _age_seconds(text)


def _check_max_age(value: Any, arguments: Mapping[str, Any]) -> str | None:
    if not isinstance(value, str):
        return f"{{unacceptable_type,{type_name(value)}}}"
    return None if _checked_age_seconds(value) is not None else "invalid_max_age"


# RabbitMQ's declare_args(), in its order: the first failing check is the one reported.
# x-dead-letter-exchange is not here: `queue_settings` refuses a non-string one first.
_DECLARE_VALIDATORS: tuple[tuple[str, Validator], ...] = (
    ("x-expires", _check_expires),
    ("x-message-ttl", _check_message_ttl),
    ("x-dead-letter-routing-key", _check_dead_letter_routing_key),
    ("x-dead-letter-strategy", _one_of(("at-most-once", "at-least-once"), lambda value: "invalid_dlx_strategy")),
    ("x-max-length", _check_non_negative),
    ("x-max-length-bytes", _check_non_negative),
    ("x-max-in-memory-length", _check_non_negative),
    ("x-max-in-memory-bytes", _check_non_negative),
    ("x-max-priority", _check_max_priority),
    ("x-overflow", _one_of(_OVERFLOW_MODES, lambda value: "invalid_overflow")),
    ("x-queue-mode", _one_of(("default", "lazy"), lambda value: _erlang_string(f"unsupported queue mode '{value}'"))),
    ("x-queue-version", _check_queue_version),
    ("x-single-active-consumer", _check_bool),
    ("x-quorum-initial-group-size", _check_positive),
    ("x-max-age", _check_max_age),
    ("x-stream-max-segment-size-bytes", _check_non_negative),
    ("x-initial-cluster-size", _check_positive),
    (
        "x-queue-leader-locator",
        _one_of(("client-local", "balanced", "random", "least-leaders"), lambda value: "invalid_queue_locator_arg"),
    ),
)
_CHECK_QUEUE_TYPE = _one_of(tuple(_TYPE_MODULES), lambda value: _erlang_string(f"unsupported queue type '{value}'"))
_STREAM_OFFSET_WORDS = ("first", "last", "next")


def _stream_offset(value: Any) -> StreamOffset | None:
    """The start an `x-stream-offset` value asks for, or None if RabbitMQ refuses it."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    if _is_integer(value):
        return StreamOffset("offset", value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return StreamOffset("timestamp", int(value.timestamp() * 1000))
    if isinstance(value, str):
        if value in _STREAM_OFFSET_WORDS:
            return StreamOffset(value)
        seconds = _checked_age_seconds(value)
        return None if seconds is None else StreamOffset("interval", seconds * 1000)
    # RabbitMQ crashes on other types (a boolean, a table ...): 541 INTERNAL_ERROR.
    raise ConnectionException.internal_error()


def _check_stream_offset(value: Any, arguments: Mapping[str, Any]) -> str | None:
    if _stream_offset(value) is not None:
        return None
    return f"{{invalid_stream_offset_arg,{{{type_name(value)},<<{_erlang_string(erlang_text(value))}>>}}}}"


_CONSUME_VALIDATORS: tuple[tuple[str, Validator], ...] = (
    ("x-priority", _check_int),
    ("x-cancel-on-ha-failover", _check_bool),
    ("x-stream-offset", _check_stream_offset),
)


def _describe(queue: str, vhost: str) -> str:
    return f"queue '{queue}' in vhost '{vhost}'"


def _validate(
    arguments: Mapping[str, Any],
    validators: tuple[tuple[str, Validator], ...],
    known: tuple[str, ...],
    refused: set[str],
    queue_type: str,
    what: str,
) -> None:
    """Checks the known arguments' values in validator order, then refuses other types' arguments in
    the table's order, as rabbit_amqqueue does."""
    for key, check in validators:
        if key in known and key in arguments:
            error = check(arguments[key], arguments)
            if error is not None:
                raise ChannelException.precondition_failed(f"invalid arg '{key}' for {what}: {error}")
    for key in arguments:
        if key in refused:
            raise ChannelException.precondition_failed(
                f"invalid arg '{key}' for {what} of queue type {_TYPE_MODULES[queue_type]}"
            )


def _others(table: dict[str, tuple[str, ...]], queue_type: str) -> set[str]:
    return {key for keys in table.values() for key in keys} - set(table[queue_type])


def check_server_named(arguments: Mapping[str, Any]) -> None:
    """Refuses an empty queue name for the types whose queues RabbitMQ never names itself."""
    queue_type = arguments.get("x-queue-type")
    if queue_type in ("quorum", "stream"):
        raise ChannelException.precondition_failed(
            f"Cannot declare a server-named queue for type {_TYPE_MODULES[queue_type]}"
        )


def queue_settings(
    arguments: Mapping[str, Any],
    *,
    durable: bool,
    exclusive: bool,
    auto_delete: bool,
    queue: str = "",
    vhost: str = "/",
    policy: Policy | None = None,
    operator_policy: Policy | None = None,
) -> QueueSettings:
    """The settings of a new queue, with those of its `policy` and `operator_policy`, or the 406
    RabbitMQ answers to its declaration.

    `queue` and `vhost` only name the queue in reply texts. A durable exclusive queue is not durable,
    as in RabbitMQ.
    """
    what = _describe(queue, vhost)
    dead_letter_exchange = arguments.get("x-dead-letter-exchange", "")
    if not isinstance(dead_letter_exchange, str):
        # rabbit_channel checks this before the queue type's own checks, with other wording.
        raise ChannelException.precondition_failed(
            f"invalid type '{type_name(dead_letter_exchange)}' for arg 'x-dead-letter-exchange' in {what}"
        )
    if "x-queue-type" in arguments:
        error = _CHECK_QUEUE_TYPE(arguments["x-queue-type"], arguments)
        if error is not None:
            raise ChannelException.precondition_failed(f"invalid arg 'x-queue-type' for {what}: {error}")
    queue_type = arguments.get("x-queue-type", "classic")
    _validate(
        arguments,
        _DECLARE_VALIDATORS,
        QUEUE_TYPE_ARGUMENTS[queue_type],
        _others(QUEUE_TYPE_ARGUMENTS, queue_type),
        queue_type,
        what,
    )
    if queue_type != "classic":
        # Replicated queues outlive their declaring connection and the node's restarts.
        checks = ((auto_delete, "auto-delete"), (exclusive, "exclusive-owner"), (not durable, "non-durable"))
        for refused, flag in checks:
            if refused:
                raise ChannelException.precondition_failed(f"invalid property '{flag}' for {what}")
    if queue_type == "stream" and arguments.get("x-stream-max-segment-size-bytes", 0) > _MAX_STREAM_SEGMENT_SIZE:
        raise ChannelException.precondition_failed("Exceeded max value for x-stream-max-segment-size-bytes")
    return settings_from_arguments(arguments, policy, operator_policy)


def queue_type_of(arguments: Mapping[str, Any]) -> str:
    """The type of the queue `arguments` declare: its `x-queue-type`, classic by default (and for a
    value that names no type, which only a queue recovered from before it was checked can have)."""
    queue_type = arguments.get("x-queue-type")
    return queue_type if queue_type in _TYPE_MODULES else "classic"


def settings_from_arguments(
    arguments: Mapping[str, Any], applied: Policy | None = None, operator_policy: Policy | None = None
) -> QueueSettings:
    """The settings stored arguments give, with those of the policy `applied` to the queue and of its
    `operator_policy`, without validating the arguments: a value of the wrong type is ignored, as
    RabbitMQ's queues ignore one they find in a queue declared before it was checked.

    Where more than one set a limit (a TTL, an expiry, a length, a delivery limit) the smallest
    wins; for the dead-letter exchange and routing key the argument wins; `overflow` comes from the
    argument in a classic queue and from the policy in a quorum queue. That is RabbitMQ 3.10's
    behaviour, checked against it.
    """
    policy = effective_definition(applied, operator_policy)
    queue_type = arguments.get("x-queue-type")
    if queue_type == "quorum":
        overflow = policy.get("overflow", arguments.get("x-overflow"))
    else:
        overflow = _argument_first(arguments, policy, "overflow")
    if overflow not in _OVERFLOW_MODES or (overflow == "reject-publish-dlx" and queue_type == "quorum"):
        # RabbitMQ 3.10's quorum queues take reject-publish-dlx (and anything they do not know) as drop-head.
        overflow = "drop-head"
    max_priority = _integer(arguments, "x-max-priority")
    delivery_limit = _smallest(arguments, policy, "delivery-limit")
    max_age = _string(arguments, "x-max-age")
    max_age_seconds = None if max_age is None else _age_seconds(max_age)
    segment_size = _integer(arguments, "x-stream-max-segment-size-bytes")
    return QueueSettings(
        queue_type=queue_type_of(arguments),
        message_ttl=_smallest(arguments, policy, "message-ttl"),
        expires=_smallest(arguments, policy, "expires"),
        dead_letter_exchange=_argument_first(arguments, policy, "dead-letter-exchange"),
        dead_letter_routing_key=_argument_first(arguments, policy, "dead-letter-routing-key"),
        max_length=_smallest(arguments, policy, "max-length"),
        max_length_bytes=_smallest(arguments, policy, "max-length-bytes"),
        overflow=overflow,
        max_priority=None if max_priority is None or max_priority < 0 else min(max_priority, MAX_PRIORITY),
        single_active_consumer=arguments.get("x-single-active-consumer") is True,
        # Not validated by RabbitMQ 3.10; a negative limit dead-letters on the first return, like 0.
        delivery_limit=None if delivery_limit is None else max(delivery_limit, 0),
        max_age=None if max_age_seconds is None else max_age_seconds * 1000,
        max_segment_size_bytes=DEFAULT_STREAM_SEGMENT_SIZE if segment_size is None else segment_size,
        # The plugin checks nothing: only true enables it, and it does not serve quorum queues.
        deduplication=arguments.get("x-message-deduplication") is True and queue_type in (None, "classic"),
        policy=applied,
        operator_policy=operator_policy,
    )


def _argument_first(arguments: Mapping[str, Any], policy: Mapping[str, Any], key: str) -> str | None:
    """The argument `x-<key>` if it is set, else the policy's `key`."""
    value = _string(arguments, "x-" + key)
    return policy.get(key) if value is None else value


def _smallest(arguments: Mapping[str, Any], policy: Mapping[str, Any], key: str) -> int | None:
    """The smaller of the argument `x-<key>` and the policy's `key`, or whichever is set."""
    values = [value for value in (_integer(arguments, "x-" + key), policy.get(key)) if value is not None]
    return min(values) if values else None


def _integer(arguments: Mapping[str, Any], key: str) -> int | None:
    value = arguments.get(key)
    return value if _is_integer(value) else None


def _string(arguments: Mapping[str, Any], key: str) -> str | None:
    value = arguments.get(key)
    return value if isinstance(value, str) else None


def consumer_settings(arguments: Mapping[str, Any], queue_type: str, *, queue: str, vhost: str) -> ConsumerSettings:
    """The settings of a basic.consume on a queue of `queue_type`, or the 406 RabbitMQ answers."""
    _validate(
        arguments,
        _CONSUME_VALIDATORS,
        _CONSUMER_TYPE_ARGUMENTS[queue_type],
        _others(_CONSUMER_TYPE_ARGUMENTS, queue_type),
        queue_type,
        _describe(queue, vhost),
    )
    offset = arguments.get("x-stream-offset")
    return ConsumerSettings(
        priority=arguments.get("x-priority", 0),
        cancel_on_ha_failover=arguments.get("x-cancel-on-ha-failover", False),
        stream_offset=StreamOffset("next") if offset is None else _stream_offset(offset),
    )


def alternate_exchange(arguments: Mapping[str, Any], *, exchange: str, vhost: str) -> str | None:
    """The alternate exchange a new exchange's arguments name, or the 406 for one that is not a string.
    The exchange need not exist, as in RabbitMQ."""
    if "alternate-exchange" not in arguments:
        return None
    name = arguments["alternate-exchange"]
    if not isinstance(name, str):
        raise ChannelException.precondition_failed(
            f"invalid type '{type_name(name)}' for arg 'alternate-exchange' in exchange '{exchange}' in vhost '{vhost}'"
        )
    return name


def cache_argument(arguments: Mapping[str, Any], key: str) -> int | None:
    """A deduplication exchange's `x-cache-size` or `x-cache-ttl`: an integer, or a string of one,
    as the plugin takes them; None when absent or neither."""
    value = arguments.get(key)
    if _is_integer(value):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def check_exchange_type_arguments(type: str, arguments: Mapping[str, Any], exchange_types: tuple[str, ...]) -> None:
    """The 406 the deduplication and delayed-message plugins answer to a new exchange of their
    types whose arguments they refuse, in their words; `exchange_types` are those a delayed
    exchange may route as."""
    if type == "x-message-deduplication":
        size = cache_argument(arguments, "x-cache-size")
        if size is None or size <= 0:
            raise ChannelException.precondition_failed(
                "Missing or invalid argument, 'x-cache-size' must be an integer greater than 0"
            )
        ttl = cache_argument(arguments, "x-cache-ttl")
        if "x-cache-ttl" in arguments and (ttl is None or ttl <= 0):
            raise ChannelException.precondition_failed(
                "Invalid argument, 'x-cache-ttl' must be an integer greater than 0"
            )
        if arguments.get("x-cache-persistence", "memory") not in ("disk", "memory"):
            raise ChannelException.precondition_failed(
                "Invalid argument, 'x-cache-persistence' must be either 'disk' or 'memory'"
            )
    elif type == "x-delayed-message":
        delayed_type = arguments.get("x-delayed-type")
        if delayed_type == "x-delayed-message":
            raise ChannelException.precondition_failed(
                "Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'"
            )
        if not isinstance(delayed_type, str):
            raise ChannelException.precondition_failed(
                "Invalid argument, 'x-delayed-type' must be an existing exchange type"
            )
        if delayed_type not in exchange_types:
            raise ConnectionException.command_invalid(f"unknown exchange type '{delayed_type}'")


_EXPIRATION = re.compile(r"([+-]?[0-9]+)(.*)", re.DOTALL)


def parse_expiration(value: str) -> int:
    """The per-message TTL in ms from the `expiration` property, or RabbitMQ's 406 for a bad one."""
    match = _EXPIRATION.match(value)
    if match is None:
        error = "no_integer"
    elif match[2]:
        error = f"{{leftover_string,{_erlang_string(match[2])}}}"
    else:
        error = _expiry_error(int(match[1]))
    if error is not None:
        raise ChannelException.precondition_failed(f"invalid expiration '{value}': {error}")
    return int(match[1])
