"""Policies: named sets of queue and exchange settings that apply to the names a pattern matches.

A policy belongs to a vhost and has a pattern (a regular expression searched for anywhere in a
name, case-sensitive), what it applies to (`queues`, `exchanges` or `all`), a priority and a
definition (`{"max-length": 10, ...}`). At most one policy applies to a queue or exchange: the
matching one of highest priority (for a queue, among those whose keys its type supports:
UNSUPPORTED_KEYS); among equal priorities the one whose name sorts first, as RabbitMQ 3.10 picks
(its documentation calls the choice undefined). `parse_policy` validates a policy as
RabbitMQ does, with its error texts; how a definition combines with a queue's own arguments is in
`arguments.settings_from_arguments`.

Operator policies are policies an operator sets to cap what users ask for: they are kept apart from
the others, may only set the limits in OPERATOR_KEYS, and at most one of them applies to a queue
beside its policy. Where both set a limit the smaller wins (`effective_definition`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Iterator, Mapping

APPLY_TO = ("queues", "exchanges", "all")
_FIELDS = ("pattern", "definition", "priority", "apply-to")

POLICY = "policy"
"""The store record kind of a policy, keyed by its vhost and name."""
OPERATOR_POLICY = "operator_policy"
"""The runtime parameter component operator policies are kept as, as RabbitMQ keeps them."""

OPERATOR_KEYS = (
    "delivery-limit", "expires", "max-in-memory-bytes", "max-in-memory-length", "max-length", "max-length-bytes",
    "message-ttl",
)
"""What an operator policy may set (RabbitMQ 3.10's): limits, of which a queue takes the smaller."""


# The policy keys each queue type leaves out (RabbitMQ 3.10's capabilities/0 of each): a policy or
# operator policy that sets any of them does not apply to a queue of that type, which takes the
# next one that matches instead.
UNSUPPORTED_KEYS: dict[str, frozenset[str]] = {
    "classic": frozenset({
        "max-age", "stream-max-segment-size-bytes", "queue-leader-locator", "initial-cluster-size", "delivery-limit",
        "dead-letter-strategy",
    }),
    "quorum": frozenset({
        "max-priority", "queue-mode", "single-active-consumer", "ha-mode", "ha-params", "ha-sync-mode",
        "ha-promote-on-shutdown", "ha-promote-on-failure", "queue-master-locator", "max-age",
        "stream-max-segment-size-bytes", "initial-cluster-size",
    }),
    "stream": frozenset({
        "expires", "message-ttl", "dead-letter-exchange", "dead-letter-routing-key", "max-length",
        "max-in-memory-length", "max-in-memory-bytes", "max-priority", "overflow", "queue-mode",
        "single-active-consumer", "delivery-limit", "ha-mode", "ha-params", "ha-sync-mode", "ha-promote-on-shutdown",
        "ha-promote-on-failure", "queue-master-locator", "dead-letter-strategy",
    }),
}


class PolicyError(ValueError):
    """A policy RabbitMQ would refuse; `reason` is its explanation, word for word."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Policy:
    vhost: str
    name: str
    pattern: str
    apply_to: str
    priority: int | float
    definition: dict[str, Any]
    _regex: re.Pattern = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", re.compile(self.pattern))

    def applies(self, name: str, kind: str) -> bool:
        """Whether the policy applies to the queue (`kind` "queues") or exchange ("exchanges") `name`."""
        return self.apply_to in (kind, "all") and self._regex.search(name) is not None

    def value(self) -> dict[str, Any]:
        """The policy as a runtime parameter's value."""
        return {
            "pattern": self.pattern, "definition": self.definition, "priority": self.priority, "apply-to": self.apply_to
        }

    def as_json(self) -> dict[str, Any]:
        """The policy as RabbitMQ lists it (the HTTP API, definitions, the store)."""
        return {
            "vhost": self.vhost,
            "name": self.name,
            "pattern": self.pattern,
            "apply-to": self.apply_to,
            "definition": self.definition,
            "priority": self.priority,
        }


class Policies:
    """One vhost's policies by name."""

    def __init__(self) -> None:
        self._by_name: dict[str, Policy] = {}

    def put(self, policy: Policy) -> None:
        self._by_name[policy.name] = policy

    def delete(self, name: str) -> Policy | None:
        return self._by_name.pop(name, None)

    def get(self, name: str) -> Policy | None:
        return self._by_name.get(name)

    def __iter__(self) -> Iterator[Policy]:
        """The policies in name order."""
        return iter(sorted(self._by_name.values(), key=lambda policy: policy.name.encode()))

    def __len__(self) -> int:
        return len(self._by_name)

    def match(self, name: str, kind: str, queue_type: str | None = None) -> Policy | None:
        """The policy that applies to the queue or exchange `name` (`kind` "queues" or "exchanges");
        for a queue, of type `queue_type`, one whose definition the type supports."""
        unsupported = UNSUPPORTED_KEYS[queue_type] if queue_type is not None else frozenset()
        best = None
        for policy in self:
            if (
                policy.applies(name, kind)
                and unsupported.isdisjoint(policy.definition)
                and (best is None or policy.priority > best.priority)
            ):
                best = policy
        return best

    def definition(self, name: str, kind: str) -> Mapping[str, Any]:
        """The definition of the policy that applies to `name`, or an empty one."""
        policy = self.match(name, kind)
        return {} if policy is None else policy.definition


def effective_definition(policy: Policy | None, operator_policy: Policy | None) -> dict[str, Any]:
    """What a queue's policy and operator policy ask of it together: every key either sets, and of a
    limit both set, the smaller; in key order, as RabbitMQ shows it."""
    merged = {} if policy is None else dict(policy.definition)
    if operator_policy is not None:
        for key, value in operator_policy.definition.items():
            merged[key] = value if key not in merged else min(merged[key], value)
    return dict(sorted(merged.items()))


def erlang_term(value: Any) -> str:
    """A JSON value as RabbitMQ's error texts print it (Erlang's ~p of the decoded term)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return '<<"' + value.replace("\\", "\\\\").replace('"', '\\"') + '">>'
    if isinstance(value, list):
        return "[" + ",".join(erlang_term(item) for item in value) + "]"
    if isinstance(value, dict):
        return "#{" + ",".join(f"{erlang_term(k)} => {erlang_term(v)}" for k, v in sorted(value.items())) + "}"
    return str(value)


# Each check returns None for an acceptable value, else RabbitMQ's message about it.
Check = Callable[[Any], "str | None"]


def _integer(minimum: int, what: str) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
            return None
        return f"{erlang_term(value)} is not a valid {what}"

    return check


def _string(what: str) -> Check:
    return lambda value: None if isinstance(value, str) else f"{erlang_term(value)} is not a valid {what}"


def _choice(choices: tuple[Any, ...], message: str) -> Check:
    return lambda value: None if value in choices and type(value) is type(choices[0]) else message.format(
        erlang_term(value)
    )


def _max_age(value: Any) -> str | None:
    valid = isinstance(value, str) and re.fullmatch(r"[0-9]+[YMDhms]", value) and int(value[:-1]) > 0
    return None if valid else f"{erlang_term(value)} is not a valid max age"


def _ha_mode(value: Any) -> str | None:
    return None if value in ("all", "exactly", "nodes") else f"{erlang_term(value)} is not a valid ha-mode value"


# The definition keys RabbitMQ 3.10 recognises (its own and those of the plugins a default install
# validates: mirroring, federation), whether or not we act on them: a definitions file exported
# from RabbitMQ must import, and export back the same.
_CHECKS: dict[str, Check] = {
    "alternate-exchange": _string("alternate exchange name"),
    "dead-letter-exchange": _string("dead letter exchange name"),
    "dead-letter-routing-key": _string("dead letter routing key"),
    "dead-letter-strategy": _choice(("at-most-once", "at-least-once"), "{} is not a valid dead letter strategy"),
    "delivery-limit": _integer(0, "delivery limit"),
    "expires": _integer(1, "queue expiry"),
    "federation-upstream": _string("federation upstream name"),
    "federation-upstream-set": _string("federation upstream set name"),
    "ha-mode": _ha_mode,
    "ha-params": lambda value: None,
    "ha-promote-on-failure": lambda value: None,
    "ha-promote-on-shutdown": lambda value: None,
    "ha-sync-batch-size": _integer(1, "ha-sync-batch-size value"),
    "ha-sync-mode": _choice(("manual", "automatic"), 'ha-sync-mode must be "manual" or "automatic", got {}'),
    "initial-cluster-size": _integer(0, "cluster size"),
    "max-age": _max_age,
    "max-in-memory-bytes": _integer(0, "maximum memory in bytes"),
    "max-in-memory-length": _integer(0, "maximum memory in bytes"),
    "max-length": _integer(0, "maximum length"),
    "max-length-bytes": _integer(0, "maximum length in bytes"),
    "message-ttl": _integer(0, "message TTL"),
    "overflow": _choice(("drop-head", "reject-publish", "reject-publish-dlx"), "{} is not a valid overflow value"),
    "queue-leader-locator": _choice(
        ("client-local", "balanced", "random", "least-leaders"), "{} is not a valid queue leader locator value"
    ),
    "queue-master-locator": _choice(("min-masters", "client-local", "random"), "{} invalid queue-master-locator value"),
    "queue-mode": _choice(("default", "lazy"), "{} is not a valid queue-mode value"),
    "queue-version": _choice((1, 2), "{} is not a valid queue-version value"),
    "stream-max-segment-size-bytes": _integer(0, "segment size"),
}
_HA_DEPENDENT = ("ha-params", "ha-sync-mode", "ha-sync-batch-size", "ha-promote-on-shutdown", "ha-promote-on-failure")
_FEDERATION = ("federation-upstream", "federation-upstream-set")


def _combination_error(definition: dict[str, Any]) -> str | None:
    """What RabbitMQ refuses in the keys of a (user's) policy taken together."""
    mode = definition.get("ha-mode")
    if mode is None and any(key in definition for key in _HA_DEPENDENT):
        return "ha-mode must be specified to specify ha-params, ha-sync-mode or ha-promote-on-shutdown"
    if mode == "all" and "ha-params" in definition:
        return 'ha-mode="all" does not take parameters'
    if mode == "exactly" and _integer(1, "")(definition.get("ha-params")) is not None:
        given = erlang_term(definition["ha-params"]) if "ha-params" in definition else "none"
        return f'ha-mode="exactly" takes an integer, {given} given'
    if mode == "nodes" and not isinstance(definition.get("ha-params"), list):
        given = erlang_term(definition["ha-params"]) if "ha-params" in definition else "none"
        return f'ha-mode="nodes" takes a list of strings, {given} given'
    if all(key in definition for key in _FEDERATION):
        return "cannot specify federation-upstream, federation-upstream-set or federation-upstream-pattern together"
    return None


def _definition_error(definition: Any, operator: bool) -> str | None:
    if not isinstance(definition, dict):
        return f"definition must be a dictionary: {erlang_term(definition)}"
    if not definition:
        return "no policy provided"
    known: Collection[str] = OPERATOR_KEYS if operator else _CHECKS
    for key in sorted(definition):
        error = _CHECKS[key](definition[key]) if key in known else None
        if error is not None:
            return error
    error = None if operator else _combination_error(definition)
    if error is not None:
        return error
    unknown = [(key, value) for key, value in sorted(definition.items()) if key not in known]
    if unknown:
        listed = ",".join(f"{{{erlang_term(key)},{erlang_term(value)}}}" for key, value in unknown)
        return f"[{listed}] are not recognised policy settings"
    return None


def _apply_to_error(apply_to: Any) -> str | None:
    if apply_to in APPLY_TO:
        return None
    return f"apply-to '{apply_to}' unrecognised; should be 'queues', 'exchanges' or 'all'"


def _pattern_error(pattern: Any) -> str | None:
    if not isinstance(pattern, str):
        return f"pattern should be a binary but was {erlang_term(pattern)}"
    try:
        re.compile(pattern)
    except re.error as error:
        return f"pattern should be regular expression but is invalid: {error}"
    return None


def _priority_error(priority: Any) -> str | None:
    if isinstance(priority, (int, float)) and not isinstance(priority, bool):
        return None
    return f"priority should be a number, actually was {erlang_term(priority)}"


def _field_errors(fields: Mapping[str, Any], operator: bool, *, name: str | None = None) -> list[str]:
    """What RabbitMQ finds wrong in a policy's fields, each field's first fault, in the order it lists
    them; with `name` (a policy given as a runtime parameter's value) a field left out is one too,
    apply-to excepted."""
    checks: tuple[tuple[str, Check], ...] = (
        ("definition", lambda definition: _definition_error(definition, operator)),
        ("apply-to", _apply_to_error),
        ("pattern", _pattern_error),
        ("priority", _priority_error),
    )
    errors = []
    for key, check in checks:
        if key in fields:
            error = check(fields[key])
        else:
            error = None if name is None or key == "apply-to" else f'Key "{key}" not found in {name}'
        if error is not None:
            errors.append(error)
    return errors


def _refused(errors: list[str]) -> PolicyError:
    return PolicyError("Validation failed\n\n" + "".join(f"{error}\n" for error in errors))


def parse_policy(vhost: str, name: str, body: Mapping[str, Any], *, operator: bool = False) -> Policy:
    """The policy (`operator`: the operator policy) `body` (pattern, definition, and optionally
    apply-to and priority) describes, or the PolicyError RabbitMQ answers it with."""
    missing = [key for key in ("pattern", "definition") if key not in body]
    if missing:
        raise PolicyError("[" + ",".join(f"{{key_missing,{key}}}" for key in missing) + "]")
    fields = {"apply-to": "all", "priority": 0, **{key: body[key] for key in _FIELDS if key in body}}
    errors = _field_errors(fields, operator)
    if errors:
        raise _refused(errors)
    return Policy(vhost, name, fields["pattern"], fields["apply-to"], fields["priority"], dict(fields["definition"]))


def check_policy_value(name: str, value: Any, *, operator: bool) -> None:
    """Raises the PolicyError RabbitMQ answers a policy (`operator`: an operator policy) given as a
    runtime parameter's value with (`PUT /api/parameters/operator_policy/...`, a definitions file's
    parameters): each key but apply-to is needed, and no other."""
    if not isinstance(value, dict):
        raise _refused([f"{name} not a list {erlang_term(value)}"])
    errors = _field_errors(value, operator, name=name)
    unknown = [(key, value[key]) for key in sorted(value) if key not in _FIELDS]
    if unknown:
        listed = ",".join(f"{{{erlang_term(key)},{erlang_term(item)}}}" for key, item in unknown)
        errors.insert(0, f"Unrecognised terms [{listed}] in {name}")
    if errors:
        raise _refused(errors)
