"""A virtual host: its exchanges and queues, and the declare/bind/delete rules RabbitMQ applies.

Each operation either succeeds or raises the `ChannelException` or `ConnectionException` RabbitMQ
would answer with, with RabbitMQ's wording.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from .errors import ChannelException, ConnectionException
from .exchanges import EXCHANGE_TYPES, Exchange, freeze, make_exchange
from .queue import Queue

DEFAULT_EXCHANGES = {
    "amq.direct": "direct",
    "amq.fanout": "fanout",
    "amq.topic": "topic",
    "amq.headers": "headers",
    "amq.match": "headers",
}

# Queue arguments RabbitMQ compares on redeclare; others are stored but not checked.
_CHECKED_QUEUE_ARGUMENTS = (
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-queue-type",
    "x-single-active-consumer",
)


def random_name(prefix: str) -> str:
    """A unique name the way RabbitMQ makes them: prefix plus 22 url-safe base64 characters."""
    return prefix + base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()


def _flag(value: bool) -> str:
    return "true" if value else "false"


class VHost:
    def __init__(self, name: str) -> None:
        self.name = name
        self.exchanges: dict[str, Exchange] = {"": make_exchange("", "direct", durable=True)}
        for exchange_name, type in DEFAULT_EXCHANGES.items():
            self.exchanges[exchange_name] = make_exchange(exchange_name, type, durable=True)
        self.queues: dict[str, Queue] = {}

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
        if name == "":
            raise ChannelException.access_refused("operation not permitted on the default exchange")
        if passive:
            return self.get_exchange(name)
        existing = self.exchanges.get(name)
        if existing is None:
            if name.startswith("amq."):
                raise ChannelException.access_refused(
                    f"exchange name '{name}' contains reserved prefix 'amq.*'"
                )
            if type not in EXCHANGE_TYPES:
                raise ConnectionException.command_invalid(f"invalid exchange type '{type}'")
            exchange = make_exchange(
                name, type, durable=durable, auto_delete=auto_delete, internal=internal, arguments=arguments
            )
            self.exchanges[name] = exchange
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

    def delete_exchange(self, name: str, *, if_unused: bool = False) -> None:
        if name == "":
            raise ChannelException.access_refused("operation not permitted on the default exchange")
        if name.startswith("amq."):
            raise ChannelException.access_refused(
                f"operation not permitted on the system exchange '{name}'"
            )
        exchange = self.exchanges.get(name)
        if exchange is None:
            return
        if if_unused and exchange.bindings:
            raise ChannelException.precondition_failed(f"{self._describe('exchange', name)} in use")
        del self.exchanges[name]

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
    ) -> Queue:
        existing = self.queues.get(name)
        if passive:
            if existing is None:
                raise ChannelException.not_found(f"no {self._describe('queue', name)}")
            return self.get_queue(name, connection)
        if existing is None:
            if name.startswith("amq."):
                raise ChannelException.access_refused(f"queue name '{name}' contains reserved prefix 'amq.*'")
            queue = Queue(
                name,
                self.name,
                durable=durable and not exclusive,
                exclusive_owner=connection if exclusive else None,
                auto_delete=auto_delete,
                arguments=arguments,
            )
            self.queues[name] = queue
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
        self._check_arguments(what, arguments or {}, existing.arguments, _CHECKED_QUEUE_ARGUMENTS)
        return existing

    def _check_arguments(self, what: str, received: dict, current: dict, checked: tuple[str, ...]) -> None:
        for arg in checked:
            new, old = received.get(arg), current.get(arg)
            if freeze(new) != freeze(old):
                received_text = "none" if new is None else f"the value '{new}'"
                current_text = "none" if old is None else f"the value '{old}'"
                raise ChannelException.precondition_failed(
                    f"inequivalent arg '{arg}' for {what}: received {received_text} but current is {current_text}"
                )

    def delete_queue(self, queue: Queue) -> int:
        """Removes the queue and its bindings; returns how many ready messages went with it."""
        count = queue.message_count
        self.queues.pop(queue.name, None)
        queue.deleted = True
        for exchange in list(self.exchanges.values()):
            exchange.unbind_destination(queue)
            self._auto_delete_exchange(exchange)
        queue.purge()
        return count

    # Bindings

    def bind(self, queue: Queue, exchange_name: str, routing_key: str, arguments: dict) -> None:
        if exchange_name == "":
            raise ChannelException.access_refused("operation not permitted on the default exchange")
        self.get_exchange(exchange_name).bind(queue, routing_key, arguments)

    def unbind(self, queue_name: str, exchange_name: str, routing_key: str, arguments: dict, connection: Any) -> None:
        if exchange_name == "":
            raise ChannelException.access_refused("operation not permitted on the default exchange")
        queue = self.queues.get(queue_name)
        exchange = self.exchanges.get(exchange_name)
        if queue is None or exchange is None:
            return
        self.get_queue(queue_name, connection)
        exchange.unbind(queue, routing_key, arguments)
        self._auto_delete_exchange(exchange)

    def _auto_delete_exchange(self, exchange: Exchange) -> None:
        if exchange.auto_delete and not exchange.bindings and self.exchanges.get(exchange.name) is exchange:
            del self.exchanges[exchange.name]
