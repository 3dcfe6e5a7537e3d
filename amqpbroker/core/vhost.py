"""A virtual host: its exchanges and queues, and the declare/bind/delete rules RabbitMQ applies.

Each operation either succeeds or raises the `ChannelException` or `ConnectionException` RabbitMQ
would answer with, with RabbitMQ's wording.
"""

from __future__ import annotations

import base64
import os
from typing import Any, Callable, Collection

from ..protocol import BasicProperties
from ..store.base import DeleteBinding, DeleteExchange, DeleteQueue, PutBinding, PutExchange, PutQueue
from .arguments import (
    QUEUE_TYPE_ARGUMENTS,
    alternate_exchange,
    check_exchange_type_arguments,
    check_server_named,
    erlang_text,
    queue_settings,
    queue_type_of,
    same_argument,
    type_name,
)
from .dedup import DeduplicationExchange
from .delayed import DelayedExchange
from .errors import ChannelException, ConnectionException
from .exchanges import EXCHANGE_TYPES, Binding, Exchange, make_exchange
from .history import History
from .journal import Journal
from .limits import Limits
from .memory import MemoryWatermark
from .message import Message
from .policies import Policies, Policy
from .queue import DeadLetterer, Queue
from .stats import BrokerStats
from .stream import StreamQueue
from .timers import Timers

DEFAULT_EXCHANGES = {
    "amq.direct": "direct",
    "amq.fanout": "fanout",
    "amq.topic": "topic",
    "amq.headers": "headers",
    "amq.match": "headers",
}
PLUGIN_EXCHANGE_TYPES = (DelayedExchange.type, DeduplicationExchange.type)
"""Exchange types of RabbitMQ plugins: the delayed-message exchange and the deduplication exchange."""


def check_exchange_type(type: str) -> None:
    """A type no exchange has is a connection error, as RabbitMQ answers it before anything else
    about a declaration (the name, the permissions, an exchange that exists)."""
    if type not in EXCHANGE_TYPES and type not in PLUGIN_EXCHANGE_TYPES:
        raise ConnectionException.command_invalid(f"unknown exchange type '{type}'")


def _refuse_default(*exchange_names: str) -> None:
    """The default exchange ("") is not declared, deleted or bound explicitly: 403, as RabbitMQ."""
    if "" in exchange_names:
        raise ChannelException.access_refused("operation not permitted on the default exchange")


def random_name(prefix: str) -> str:
    """A unique name the way RabbitMQ makes them: prefix plus 22 url-safe base64 characters."""
    return prefix + base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _kind(destination: Queue | Exchange) -> str:
    return "queue" if isinstance(destination, Queue) else "exchange"


# An argument missing from a field table, unlike one present with a void value.
_ABSENT = object()


def _describe_value(value: Any) -> str:
    """An argument value as RabbitMQ words it in an 'inequivalent arg' error when the other is absent."""
    if value is _ABSENT:
        return "none"
    return f"the value '{erlang_text(value)}' of type '{type_name(value)}'"


class VHost:
    def __init__(
        self,
        name: str,
        journal: Journal | None = None,
        memory: MemoryWatermark | None = None,
        dead_letters: DeadLetterer | None = None,
        timers: Timers | None = None,
        stats: BrokerStats | None = None,
        history: History | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.name = name
        self.description = ""
        self.tags: list[str] = []
        self.tracing = False
        """Only shown and kept: messages are not traced."""
        self._dead_letters = dead_letters
        self.stats = stats if stats is not None else BrokerStats()
        self.journal = journal if journal is not None else Journal()
        self.memory = memory if memory is not None else MemoryWatermark()
        self.timers = timers if timers is not None else Timers()
        self.history = history
        self._limits = limits
        """Where the vhost's queue limit is checked; None for no limit."""
        self.exchanges: dict[str, Exchange] = {"": make_exchange("", "direct", durable=True)}
        for exchange_name, type in DEFAULT_EXCHANGES.items():
            self.exchanges[exchange_name] = make_exchange(exchange_name, type, durable=True)
        self.queues: dict[str, Queue] = {}
        self.policies = Policies()
        self.operator_policies = Policies()

    def queue_policies(self, name: str, queue_type: str) -> tuple[Policy | None, Policy | None]:
        """The policy and the operator policy that apply to the queue `name` of type `queue_type`."""
        return (
            self.policies.match(name, "queues", queue_type),
            self.operator_policies.match(name, "queues", queue_type),
        )

    def describe(self, description: str, tags: list[str], tracing: bool) -> None:
        """Sets what the management API shows of the vhost."""
        self.description, self.tags, self.tracing = description, tags, tracing

    def _describe(self, kind: str, name: str) -> str:
        return f"{kind} '{name}' in vhost '{self.name}'"

    # Exchanges

    def get_exchange(self, name: str) -> Exchange:
        exchange = self.exchanges.get(name)
        if exchange is None:
            raise ChannelException.not_found(f"no {self._describe('exchange', name)}")
        return exchange

    def declare_exchange(
        self,
        name: str,
        type: str,
        *,
        passive: bool = False,
        durable: bool = False,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: dict | None = None,
    ) -> Exchange:
        if not passive:
            check_exchange_type(type)
        _refuse_default(name)
        if passive:
            return self.get_exchange(name)
        existing = self.exchanges.get(name)
        if existing is None:
            if name.startswith("amq."):
                raise ChannelException.access_refused(
                    f"exchange name '{name}' contains reserved prefix 'amq.*'"
                )
            alternate_exchange(arguments or {}, exchange=name, vhost=self.name)
            check_exchange_type_arguments(type, arguments or {}, EXCHANGE_TYPES)
            exchange = self.make_exchange(
                name, type, durable=durable, auto_delete=auto_delete, internal=internal, arguments=arguments or {}
            )
            exchange.configure(self.policies.definition(name, "exchanges"))
            self.exchanges[name] = exchange
            if durable:
                self.journal.append(PutExchange(self.name, name, type, auto_delete, internal, exchange.arguments))
            return exchange
        what = self._describe("exchange", name)
        for arg, received, current in (
            ("type", type, existing.type),
            ("durable", _flag(durable), _flag(existing.durable)),
            ("auto_delete", _flag(auto_delete), _flag(existing.auto_delete)),
            ("internal", _flag(internal), _flag(existing.internal)),
        ):
            if received != current:
                raise ChannelException.precondition_failed(
                    f"inequivalent arg '{arg}' for {what}: received '{received}' but current is '{current}'"
                )
        self._check_arguments(what, arguments or {}, existing.arguments, ("alternate-exchange",))
        return existing

    def make_exchange(self, name: str, type: str, **kwargs: Any) -> Exchange:
        """A new exchange of `type`, not yet in the vhost; a plugin's type gets the broker services
        it keeps its messages or its cache with."""
        if type == DelayedExchange.type:
            return DelayedExchange(
                name, vhost=self.name, journal=self.journal, timers=self.timers, memory=self.memory, **kwargs
            )
        if type == DeduplicationExchange.type:
            return DeduplicationExchange(
                name, vhost=self.name, journal=self.journal, wall_clock=self.timers.wall_clock, **kwargs
            )
        return make_exchange(name, type, **kwargs)

    def delete_exchange(self, name: str, *, if_unused: bool = False) -> None:
        _refuse_default(name)
        if name.startswith("amq."):
            raise ChannelException.access_refused(f"deletion of system {self._describe('exchange', name)} not allowed")
        exchange = self.exchanges.get(name)
        if exchange is None:
            return
        if if_unused and exchange.bindings:
            raise ChannelException.precondition_failed(f"{self._describe('exchange', name)} in use")
        self._remove_exchange(exchange)

    def _remove_exchange(self, exchange: Exchange) -> None:
        del self.exchanges[exchange.name]
        for binding in exchange.bindings.values():
            self._unpersist_binding(binding)
        for source in list(self.exchanges.values()):
            if source.exchange_bindings:
                for binding in source.unbind_destination(exchange):
                    self._unpersist_binding(binding)
                self._auto_delete_exchange(source)
        exchange.removed()
        if exchange.durable:
            self.journal.append(DeleteExchange(self.name, exchange.name))

    def route(
        self, exchange: Exchange, routing_key: str, headers: dict | None, cc: tuple[str, ...] = ()
    ) -> Collection[Queue]:
        """The queues a message reaches from `exchange` by its routing key and its CC/BCC keys.

        Routing follows exchange-to-exchange bindings, and goes to an exchange's alternate exchange
        when that exchange itself routes the message nowhere; each exchange is visited at most once.
        """
        if cc:
            return self._route_further(exchange, None, (routing_key, *cc), headers)
        found = exchange.route(routing_key, headers)
        if not exchange.exchange_bindings and (found or exchange.alternate_exchange is None):
            return found
        return self._route_further(exchange, found, (routing_key,), headers)

    def _route_further(
        self, exchange: Exchange, found: Collection[Any] | None, routing_keys: tuple[str, ...], headers: dict | None
    ) -> set[Queue]:
        """`route` past the first exchange; `found` is what that exchange routes to, if known already."""
        queues: set[Queue] = set()
        seen = {exchange}
        pending = [exchange]
        while pending:
            source = pending.pop()
            if found is None:
                found = set()
                for routing_key in routing_keys:
                    found.update(source.route(routing_key, headers))
            if not found and source.alternate_exchange is not None:
                alternate = self.exchanges.get(source.alternate_exchange)
                found = (alternate,) if alternate is not None else ()
            for destination in found:
                if isinstance(destination, Queue):
                    queues.add(destination)
                elif destination not in seen:
                    seen.add(destination)
                    pending.append(destination)
            found = None
        return queues

    def release(self, exchange: DelayedExchange, now: float, budget: int) -> int:
        """Routes the messages `exchange` holds that are due at `now`, at most `budget` of them;
        returns how many it routed."""
        due = exchange.take_due(now, budget)
        for held in due:
            message = held.message
            headers = BasicProperties.decode(message.properties).headers
            queues = self.route(exchange, message.routing_key, headers, held.cc)
            if queues:
                self.enqueue(message, queues)
        return len(due)

    def enqueue(self, message: Message, queues: Collection[Queue]) -> tuple[bool, bool]:
        """Puts a routed message on its queues, stored first if it is persistent and one of them is
        durable, or if one of them is a stream. Returns whether it was stored (a confirm for it then
        waits for the commit) and whether a queue refused it (x-overflow reject-publish)."""
        first_stored: Queue | None = None
        """The queue before whose push the message is stored: a persistent one before any."""
        # A loop, not any() over a generator: this runs for every message routed.
        for queue in queues:
            if queue.journal is not None:
                break
        else:
            queue = None
        if queue is not None:
            if message.persistent:
                first_stored = next(iter(queues))
            elif any(queue.stores_all for queue in queues):
                # A quorum queue or a stream keeps every message on disk, as RabbitMQ's do; the
                # other queues take a transient one first, while it has no store id, so that they
                # keep it in memory only.
                queues = sorted(queues, key=lambda queue: queue.stores_all)
                first_stored = next(queue for queue in queues if queue.stores_all)
        stored = False
        refused = False
        for queue in queues:
            if queue is first_stored:
                self.journal.store_message(message)
                # Held while it is routed: a queue that drops its copy at once (a no-ack delivery,
                # an overflow) must not cancel the message the next durable queue still enqueues.
                message.refs += 1
                stored = True
            if queue.push(message):
                if self.history is not None:
                    self.history.record("routed", self.name, message, queue.name)
                queue.dispatch()
            else:
                refused = True
        if stored:
            message.refs -= 1
            if not message.refs:
                # No durable queue kept it: the store need not have it after all.
                self.journal.cancel(message)
                stored = False
        return stored, refused

    # Queues

    def get_queue(self, name: str, connection: Any = None) -> Queue:
        """The queue, checking that `connection` may use it if it is exclusive."""
        queue = self.queues.get(name)
        if queue is None:
            raise ChannelException.not_found(f"no {self._describe('queue', name)}")
        if queue.exclusive_owner is not None and queue.exclusive_owner is not connection:
            self._locked(name)
        return queue

    def _locked(self, name: str) -> None:
        raise ChannelException.resource_locked(
            f"cannot obtain exclusive access to locked {self._describe('queue', name)}. It could be "
            "originally declared on another connection or the exclusive property value does not match "
            "that of the original declaration."
        )

    def declare_queue(
        self,
        name: str,
        connection: Any,
        *,
        passive: bool = False,
        durable: bool = False,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: dict | None = None,
        authorize: Callable[[str, bool], None] | None = None,
    ) -> Queue:
        """Declares a queue; an empty `name` asks for a server-named `amq.gen-` queue.

        `authorize(name, new)` is asked once the name is known and before anything else, as RabbitMQ
        checks permissions; it raises to refuse.
        """
        if passive:
            return self.get_queue(name, connection)
        if not name:
            check_server_named(arguments or {})
            name = random_name("amq.gen-")
        elif name.startswith("amq."):
            # Like RabbitMQ, refused even if such a queue exists: only the server names `amq.` queues.
            raise ChannelException.access_refused(f"queue name '{name}' contains reserved prefix 'amq.*'")
        existing = self.queues.get(name)
        if authorize is not None:
            authorize(name, existing is None)
        self.stats.churn.queue_declared += 1
        if existing is None:
            if self._limits is not None:
                self._limits.check_new_queue(self.name, name, len(self.queues))
            policy, operator_policy = self.queue_policies(name, queue_type_of(arguments or {}))
            settings = queue_settings(
                arguments or {},
                durable=durable,
                exclusive=exclusive,
                auto_delete=auto_delete,
                queue=name,
                vhost=self.name,
                policy=policy,
                operator_policy=operator_policy,
            )
            queue = (StreamQueue if settings.queue_type == "stream" else Queue)(
                name,
                self.name,
                durable=durable and not exclusive,
                exclusive_owner=connection if exclusive else None,
                auto_delete=auto_delete,
                arguments=arguments,
                settings=settings,
                journal=self.journal,
                memory=self.memory,
                dead_letters=self._dead_letters,
            )
            self.queues[name] = queue
            self.stats.churn.queue_created += 1
            if queue.durable:
                self.journal.append(PutQueue(self.name, name, auto_delete, queue.arguments))
            return queue
        if existing.exclusive_owner is not (connection if exclusive else None):
            self._locked(name)
        what = self._describe("queue", name)
        for arg, received, current in (
            ("durable", durable, existing.durable),
            ("auto_delete", auto_delete, existing.auto_delete),
        ):
            if arg == "durable" and exclusive:
                continue
            if received != current:
                raise ChannelException.precondition_failed(
                    f"inequivalent arg '{arg}' for {what}: received '{_flag(received)}' "
                    f"but current is '{_flag(current)}'"
                )
        checked = QUEUE_TYPE_ARGUMENTS[existing.settings.queue_type]
        self._check_arguments(what, arguments or {}, existing.arguments, checked)
        return existing

    def _check_arguments(self, what: str, received: dict, current: dict, checked: tuple[str, ...]) -> None:
        for arg in checked:
            new, old = received.get(arg, _ABSENT), current.get(arg, _ABSENT)
            if new is _ABSENT and old is _ABSENT:
                continue
            if new is not _ABSENT and old is not _ABSENT and same_argument(new, old):
                continue
            if arg == "x-queue-type" and "classic" in (new, old) and _ABSENT in (new, old):
                continue  # a classic queue may be declared with or without naming its type
            if new is _ABSENT or old is _ABSENT:
                received_text, current_text = _describe_value(new), _describe_value(old)
            else:
                received_text, current_text = f"'{erlang_text(new)}'", f"'{erlang_text(old)}'"
            raise ChannelException.precondition_failed(
                f"inequivalent arg '{arg}' for {what}: received {received_text} but current is {current_text}"
            )

    def delete_queue(self, queue: Queue) -> int:
        """Removes the queue and its bindings; returns how many ready messages went with it."""
        count = queue.message_count
        self.queues.pop(queue.name, None)
        if not queue.deleted:
            self.stats.queue_deleted(queue.settings.queue_type, queue.stats)
        queue.deleted = True
        for exchange in list(self.exchanges.values()):
            removed = exchange.unbind_destination(queue)
            for binding in removed:
                self._unpersist_binding(binding)
            if removed:
                self._auto_delete_exchange(exchange)
        queue.purge()
        if queue.durable:
            self.journal.append(DeleteQueue(self.name, queue.name))
        return count

    # Bindings

    def _bindable(self, exchange_name: str) -> Exchange:
        _refuse_default(exchange_name)
        return self.get_exchange(exchange_name)

    def bind(self, destination: Queue | Exchange, exchange_name: str, routing_key: str, arguments: dict) -> None:
        self._bind(self._bindable(exchange_name), destination, routing_key, arguments)

    # queue.bind and exchange.bind look their names up in RabbitMQ's order, which decides the error
    # a client gets when more than one is wrong: the default exchange named, then the source missing,
    # then the destination missing, then a queue another connection holds exclusively.

    def bind_queue(self, queue_name: str, exchange_name: str, routing_key: str, arguments: dict,
                   connection: Any) -> None:
        source = self._bindable(exchange_name)
        self._bind(source, self.get_queue(queue_name, connection), routing_key, arguments)

    def bind_exchange(self, destination_name: str, source_name: str, routing_key: str, arguments: dict) -> None:
        _refuse_default(destination_name)
        source = self._bindable(source_name)
        self._bind(source, self.get_exchange(destination_name), routing_key, arguments)

    def _bind(self, source: Exchange, destination: Queue | Exchange, routing_key: str, arguments: dict) -> None:
        binding = source.bind(destination, routing_key, arguments)
        if binding is not None and source.durable and destination.durable:
            self.journal.append(
                PutBinding(self.name, source.name, destination.name, routing_key, arguments, _kind(destination))
            )

    def unbind(self, queue_name: str, exchange_name: str, routing_key: str, arguments: dict, connection: Any) -> None:
        _refuse_default(exchange_name)
        if queue_name in self.queues:
            self._unbind(self.get_queue(queue_name, connection), exchange_name, routing_key, arguments)

    def unbind_exchange(self, destination_name: str, source_name: str, routing_key: str, arguments: dict) -> None:
        _refuse_default(destination_name, source_name)
        destination = self.exchanges.get(destination_name)
        if destination is not None:
            self._unbind(destination, source_name, routing_key, arguments)

    def _unbind(self, destination: Queue | Exchange, exchange_name: str, routing_key: str, arguments: dict) -> None:
        source = self.exchanges.get(exchange_name)
        if source is None:
            return
        binding = source.unbind(destination, routing_key, arguments)
        if binding is not None:
            self._unpersist_binding(binding)
            self._auto_delete_exchange(source)

    def _unpersist_binding(self, binding: Binding) -> None:
        if binding.source.durable and binding.destination.durable:
            self.journal.append(
                DeleteBinding(self.name, binding.source.name, binding.destination.name, binding.routing_key,
                              binding.arguments, _kind(binding.destination))
            )

    def _auto_delete_exchange(self, exchange: Exchange) -> None:
        if exchange.auto_delete and not exchange.bindings and self.exchanges.get(exchange.name) is exchange:
            self._remove_exchange(exchange)
