"""Definitions: the broker's setup in RabbitMQ's definitions format, exported and imported.

A definitions document lists users, vhosts, permissions, topic permissions, runtime parameters,
policies, queues, exchanges and bindings, as RabbitMQ's management API and `load_definitions` read
and write it (users, vhosts and both kinds of permissions through `access_definitions`). The export
leaves out what a broker makes for itself (the default exchange, the `amq.*` exchanges, the default
exchange's implicit bindings) and what lives only as long as a connection (exclusive queues and
their bindings). One vhost's export (`vhost=`) has no users, vhosts or permissions of either kind,
and its queues, exchanges and bindings name no vhost, as RabbitMQ's has none; one vhost's import
ignores them, as RabbitMQ's does.

An import checks every item's fields, names, arguments and policy before it changes anything;
what exists already stays as it is (a queue of that name keeps its own arguments), and a binding
whose source or destination is missing is skipped, as RabbitMQ does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from .access_definitions import InvalidDefinitions, export_access, import_access
from .arguments import alternate_exchange, check_exchange_type_arguments, queue_settings
from .errors import AMQPException
from .exchanges import EXCHANGE_TYPES
from .limits import VHOST_LIMITS
from .parameters import check_value
from .policies import OPERATOR_POLICY, Policy, PolicyError, parse_policy
from .queue import Queue
from .vhost import PLUGIN_EXCHANGE_TYPES

if TYPE_CHECKING:
    from .broker import Broker
    from .vhost import VHost

_SECTIONS = (
    "users", "vhosts", "permissions", "topic_permissions", "parameters", "global_parameters", "policies", "queues",
    "exchanges", "bindings",
)


class DefinitionsError(ValueError):
    """A definitions document that cannot be imported; `reason` says what in it is wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Export


def export_definitions(broker: Broker, vhost: str | None = None) -> dict[str, Any]:
    """Everything (or one vhost's part) as RabbitMQ 3.10 exports it, but for the versions at its head,
    which are the API's to say. Arguments are as AMQP gave them (byte strings, timestamps): JSON is
    the API's business too."""
    if vhost is not None:
        return _export_vhosts(broker, [broker.vhosts[vhost]], scoped=True)
    exported = _export_vhosts(broker, list(broker.vhosts.values()), scoped=False)
    return {
        **export_access(broker),
        "parameters": exported["parameters"],
        "global_parameters": [
            {"name": name, "value": value} for name, value in sorted(broker.parameters.global_.items())
        ],
        **{key: exported[key] for key in ("policies", "queues", "exchanges", "bindings")},
    }


def _export_vhosts(broker: Broker, vhosts: list[VHost], *, scoped: bool) -> dict[str, list]:
    names = {vhost.name for vhost in vhosts}
    exported: dict[str, list] = {
        "parameters": [
            {"value": value, "vhost": vhost, "component": component, "name": name}
            for (vhost, component, name), value in sorted(broker.parameters.scoped.items())
            if vhost in names
        ],
        "policies": [policy.as_json() for vhost in vhosts for policy in vhost.policies],
        "queues": [],
        "exchanges": [],
        "bindings": [],
    }
    for vhost in vhosts:
        where = {} if scoped else {"vhost": vhost.name}
        for queue in vhost.queues.values():
            if not queue.exclusive:
                exported["queues"].append(
                    {"name": queue.name, **where, "durable": queue.durable, "auto_delete": queue.auto_delete,
                     "arguments": queue.arguments}
                )
        for exchange in vhost.exchanges.values():
            if exchange.name and not exchange.name.startswith("amq."):
                exported["exchanges"].append(
                    {"name": exchange.name, **where, "type": exchange.type, "durable": exchange.durable,
                     "auto_delete": exchange.auto_delete, "internal": exchange.internal,
                     "arguments": exchange.arguments}
                )
            if not exchange.name:
                continue
            for binding in exchange.bindings.values():
                destination = binding.destination
                is_queue = isinstance(destination, Queue)
                if is_queue and destination.exclusive:
                    continue
                exported["bindings"].append(
                    {"source": exchange.name, **where, "destination": destination.name,
                     "destination_type": "queue" if is_queue else "exchange", "routing_key": binding.routing_key,
                     "arguments": binding.arguments}
                )
    return exported


# Import


@dataclass
class _Queue:
    vhost: str
    name: str
    durable: bool
    auto_delete: bool
    arguments: dict


@dataclass
class _Exchange:
    vhost: str
    name: str
    type: str
    durable: bool
    auto_delete: bool
    internal: bool
    arguments: dict


@dataclass
class _Binding:
    vhost: str
    source: str
    destination: str
    destination_type: str
    routing_key: str
    arguments: dict


class _Plan:
    """A checked document: what the import will do, in order."""

    def __init__(self) -> None:
        self.parameters: list[tuple[str, str, str, Any]] = []
        self.global_parameters: list[tuple[str, Any]] = []
        self.policies: list[Policy] = []
        self.queues: list[_Queue] = []
        self.exchanges: list[_Exchange] = []
        self.bindings: list[_Binding] = []


def _checked(broker: Broker, definitions: Any, vhost: str | None) -> _Plan:
    """Checks a whole document (one vhost's, with `vhost`) and returns what importing it does, or
    raises DefinitionsError naming the first thing wrong with it."""
    if not isinstance(definitions, dict):
        raise DefinitionsError("definitions must be a JSON object")
    for section in _SECTIONS:
        items = definitions.get(section, [])
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise DefinitionsError(f"'{section}' must be a list of objects")
    # The document's own vhosts exist by the time the rest is imported.
    known = set(broker.vhosts)
    if vhost is None:
        known.update(item["name"] for item in definitions.get("vhosts", []) if isinstance(item.get("name"), str))
    plan = _Plan()

    def where(item: Mapping[str, Any], section: str) -> str:
        if vhost is not None:
            return vhost
        name = _field(item, section, "vhost", str)
        if name not in known:
            raise DefinitionsError(f"no_such_vhost: '{name}' (in '{section}')")
        return name

    for item in definitions.get("parameters", []):
        parameter = (
            where(item, "parameters"), _field(item, "parameters", "component", str),
            _field(item, "parameters", "name", str), _field(item, "parameters", "value", object),
        )
        if parameter[1] in (VHOST_LIMITS, OPERATOR_POLICY):
            # The components the broker applies as they are set; it starts shovels and links later.
            try:
                check_value(*parameter[1:])
            except ValueError as error:
                raise DefinitionsError(f"{error} ({'/'.join(parameter[:3])})") from None
        plan.parameters.append(parameter)
    if vhost is None:
        for item in definitions.get("global_parameters", []):
            plan.global_parameters.append(
                (_field(item, "global_parameters", "name", str), _field(item, "global_parameters", "value", object))
            )
    for item in definitions.get("policies", []):
        policy_vhost, name = where(item, "policies"), _field(item, "policies", "name", str)
        try:
            plan.policies.append(parse_policy(policy_vhost, name, item))
        except PolicyError as error:
            raise DefinitionsError(f"{error.reason} ({policy_vhost}/{name})") from None
    for item in definitions.get("queues", []):
        queue = _Queue(
            where(item, "queues"), _field(item, "queues", "name", str), _field(item, "queues", "durable", bool, True),
            _field(item, "queues", "auto_delete", bool, False), _field(item, "queues", "arguments", dict, {}),
        )
        _check_name(broker, queue.vhost, queue.name, "queue")
        _check(lambda: queue_settings(
            queue.arguments, durable=queue.durable, exclusive=False, auto_delete=queue.auto_delete, queue=queue.name,
            vhost=queue.vhost,
        ))
        plan.queues.append(queue)
    _check_queue_limits(broker, plan.queues)
    for item in definitions.get("exchanges", []):
        exchange = _Exchange(
            where(item, "exchanges"), _field(item, "exchanges", "name", str), _field(item, "exchanges", "type", str),
            _field(item, "exchanges", "durable", bool, True), _field(item, "exchanges", "auto_delete", bool, False),
            _field(item, "exchanges", "internal", bool, False), _field(item, "exchanges", "arguments", dict, {}),
        )
        if exchange.type not in EXCHANGE_TYPES and exchange.type not in PLUGIN_EXCHANGE_TYPES:
            raise DefinitionsError(f"command_invalid: unknown exchange type '{exchange.type}'")
        _check_name(broker, exchange.vhost, exchange.name, "exchange")
        _check(lambda: alternate_exchange(exchange.arguments, exchange=exchange.name, vhost=exchange.vhost))
        _check(lambda: check_exchange_type_arguments(exchange.type, exchange.arguments, EXCHANGE_TYPES))
        plan.exchanges.append(exchange)
    for item in definitions.get("bindings", []):
        binding = _Binding(
            where(item, "bindings"), _field(item, "bindings", "source", str),
            _field(item, "bindings", "destination", str), _field(item, "bindings", "destination_type", str),
            _field(item, "bindings", "routing_key", str, ""), _field(item, "bindings", "arguments", dict, {}),
        )
        if binding.destination_type not in ("queue", "exchange"):
            raise DefinitionsError(f"invalid destination_type '{binding.destination_type}' in 'bindings'")
        plan.bindings.append(binding)
    return plan


_MISSING = object()


def _field(item: Mapping[str, Any], section: str, key: str, kind: type, default: Any = _MISSING) -> Any:
    value = item.get(key, default)
    if value is _MISSING:
        raise DefinitionsError(f"an item in '{section}' has no '{key}'")
    if kind is not object and (not isinstance(value, kind) or (kind is not bool and isinstance(value, bool))):
        raise DefinitionsError(f"'{key}' of an item in '{section}' must be a {kind.__name__}, not {value!r}")
    return value


def _check_queue_limits(broker: Broker, queues: list[_Queue]) -> None:
    """As RabbitMQ, an import that would take a vhost past its queue limit imports nothing; the limit
    is the one in force before the import, whatever limits the document sets."""
    adding: dict[str, int] = {}
    for queue in queues:
        found = broker.vhosts.get(queue.vhost)
        if found is None or queue.name not in found.queues:
            adding[queue.vhost] = adding.get(queue.vhost, 0) + 1
    for vhost, count in adding.items():
        found = broker.vhosts.get(vhost)
        refusal = broker.limits.import_refusal(vhost, count, 0 if found is None else len(found.queues))
        if refusal is not None:
            raise DefinitionsError(f"vhost_limit_exceeded: {refusal}")


def _check_name(broker: Broker, vhost: str, name: str, kind: str) -> None:
    """Names starting `amq.` are the broker's: a new one is refused as a declaration would be."""
    found = broker.vhosts.get(vhost)
    existing = () if found is None else found.queues if kind == "queue" else found.exchanges
    if name.startswith("amq.") and name not in existing:
        raise DefinitionsError(f"access_refused: {kind} name '{name}' contains reserved prefix 'amq.*'")


def _check(declare: Any) -> None:
    """Runs a declaration's checks; their AMQP error becomes RabbitMQ's import error text."""
    try:
        declare()
    except AMQPException as error:
        name, _, text = error.reply_text.partition(" - ")
        raise DefinitionsError(f"{name.lower()}: {text}") from None


def import_definitions(
    broker: Broker, definitions: Any, vhost: str | None = None, acting_user: str | None = None
) -> None:
    """Imports a document (into one vhost, with `vhost`); DefinitionsError if it is wrong.

    The users, vhosts, permissions and topic permissions come first (`import_access`: a vhost it
    makes gives `acting_user` every permission in it, as an import over RabbitMQ's HTTP API does),
    then the rest. Everything else is checked before anything changes; an error in those leaves
    what came before it imported, as RabbitMQ does.
    """
    plan = _checked(broker, definitions, vhost)
    if vhost is None:
        try:
            import_access(broker, definitions, acting_user)
        except InvalidDefinitions as error:
            raise DefinitionsError(str(error)) from None
    _apply(broker, plan)


def _apply(broker: Broker, plan: _Plan) -> None:
    for vhost, component, name, value in plan.parameters:
        broker.parameters.set(vhost, component, name, value)
    for name, value in plan.global_parameters:
        broker.parameters.set_global(name, value)
    for policy in plan.policies:
        broker.set_policy(policy)
    for queue in plan.queues:
        vhost = broker.vhosts[queue.vhost]
        if queue.name not in vhost.queues:
            _check(lambda: broker.queue_declared(vhost.declare_queue(
                queue.name, None, durable=queue.durable, auto_delete=queue.auto_delete, arguments=queue.arguments
            )))
    for exchange in plan.exchanges:
        vhost = broker.vhosts[exchange.vhost]
        if exchange.name not in vhost.exchanges:
            _check(lambda: vhost.declare_exchange(
                exchange.name, exchange.type, durable=exchange.durable, auto_delete=exchange.auto_delete,
                internal=exchange.internal, arguments=exchange.arguments,
            ))
    for binding in plan.bindings:
        vhost = broker.vhosts[binding.vhost]
        destinations = vhost.queues if binding.destination_type == "queue" else vhost.exchanges
        destination = destinations.get(binding.destination)
        if binding.source and binding.source in vhost.exchanges and destination is not None:
            vhost.bind(destination, binding.source, binding.routing_key, binding.arguments)
