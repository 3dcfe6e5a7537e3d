"""A channel's topology methods: exchanges, queues and bindings declared, bound and deleted.

The rules themselves (names, equivalence, exclusivity) are the virtual host's; this part of a
channel adds what is per channel: the queue last declared on it, which an empty queue name means,
and the user's permissions, checked where RabbitMQ checks them (after its checks of reserved names,
before anything is looked up but the source of a binding, for its topic permission).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from ..protocol import spec
from .errors import ChannelException, ConnectionException
from .permissions import EXCHANGE, QUEUE
from .queue import Queue
from .vhost import check_exchange_type

if TYPE_CHECKING:
    from .broker import ClientConnection
    from .output import ChannelOutput

REPLY_TO = "amq.rabbitmq.reply-to"


class Topology:
    def __init__(self, connection: ClientConnection, output: ChannelOutput) -> None:
        self._connection = connection
        self._vhost = connection.vhost
        self._access = connection.access
        self._output = output
        self._last_queue = ""

    # exchange

    def exchange_declare(self, method: spec.ExchangeDeclare) -> None:
        name = method.exchange
        if not method.passive:
            check_exchange_type(method.type)
        if name and not method.passive:
            # A new `amq.` name is refused by the vhost before an alternate exchange is looked at.
            new = name not in self._vhost.exchanges and not name.startswith("amq.")
            self._access.declare(EXCHANGE, name, new, method.arguments)
        self._vhost.declare_exchange(
            method.exchange,
            method.type,
            passive=method.passive,
            durable=method.durable,
            auto_delete=method.auto_delete,
            internal=method.internal,
            arguments=method.arguments,
        )
        if not method.no_wait:
            self._output.method(spec.ExchangeDeclareOk())

    def exchange_delete(self, method: spec.ExchangeDelete) -> None:
        name = method.exchange
        if name and not name.startswith("amq."):  # the vhost refuses to delete those whatever the permissions
            self._access.delete(EXCHANGE, name)
        self._vhost.delete_exchange(method.exchange, if_unused=method.if_unused)
        if not method.no_wait:
            self._output.method(spec.ExchangeDeleteOk())

    def _authorize_binding(self, kind: str, destination: str, source: str, binding_key: str) -> None:
        self._access.bind(kind, destination, source)
        self._access.bind_topic(self._vhost.exchanges.get(source), binding_key)

    def exchange_bind(self, method: spec.ExchangeBind) -> None:
        self._authorize_binding(EXCHANGE, method.destination, method.source, method.routing_key)
        self._vhost.bind_exchange(method.destination, method.source, method.routing_key, method.arguments)
        if not method.no_wait:
            self._output.method(spec.ExchangeBindOk())

    def exchange_unbind(self, method: spec.ExchangeUnbind) -> None:
        self._authorize_binding(EXCHANGE, method.destination, method.source, method.routing_key)
        self._vhost.unbind_exchange(method.destination, method.source, method.routing_key, method.arguments)
        if not method.no_wait:
            self._output.method(spec.ExchangeUnbindOk())

    # queue

    def queue_name(self, name: str) -> str:
        """An empty queue name means the queue last declared on this channel."""
        if name:
            return name
        if not self._last_queue:
            raise ChannelException.not_found("no previously declared queue")
        return self._last_queue

    def queue(self, name: str) -> Queue:
        return self._vhost.get_queue(self.queue_name(name), self._connection)

    def queue_to_read(self, name: str) -> Queue:
        """The queue queue.purge, basic.consume or basic.get names, if the user may read it."""
        name = self.queue_name(name)
        self._access.read_queue(name)
        return self.queue(name)

    def queue_declare(self, method: spec.QueueDeclare) -> None:
        name = method.queue
        if name == REPLY_TO and method.passive:
            self._output.method(spec.QueueDeclareOk(queue=name, message_count=0, consumer_count=0))
            return
        if not name and method.passive:
            name = self.queue_name(name)
        connection = self._connection
        queue = self._vhost.declare_queue(
            name,
            connection,
            passive=method.passive,
            durable=method.durable,
            exclusive=method.exclusive,
            auto_delete=method.auto_delete,
            arguments=method.arguments,
            authorize=partial(self._access.declare, QUEUE, arguments=method.arguments),
        )
        if queue.exclusive_owner is connection:
            connection.exclusive_queues.add(queue)
        connection.broker.queue_declared(queue)
        self._last_queue = queue.name
        if not method.no_wait:
            message_count, consumer_count = queue.counts()
            self._output.method(
                spec.QueueDeclareOk(queue=queue.name, message_count=message_count, consumer_count=consumer_count)
            )

    def queue_bind(self, method: spec.QueueBind) -> None:
        name = self.queue_name(method.queue)
        self._authorize_binding(QUEUE, name, method.exchange, method.routing_key)
        self._vhost.bind_queue(name, method.exchange, method.routing_key, method.arguments, self._connection)
        if not method.no_wait:
            self._output.method(spec.QueueBindOk())

    def queue_unbind(self, method: spec.QueueUnbind) -> None:
        name = self.queue_name(method.queue)
        self._authorize_binding(QUEUE, name, method.exchange, method.routing_key)
        self._vhost.unbind(name, method.exchange, method.routing_key, method.arguments, self._connection)
        self._output.method(spec.QueueUnbindOk())

    def queue_purge(self, method: spec.QueuePurge) -> None:
        queue = self.queue_to_read(method.queue)
        if queue.settings.queue_type == "stream":
            raise ConnectionException.not_implemented(
                f"queue.purge not supported by stream queues queue '{queue.name}' in vhost '{self._vhost.name}'"
            )
        count = queue.purge()
        if not method.no_wait:
            self._output.method(spec.QueuePurgeOk(message_count=count))

    def queue_delete(self, method: spec.QueueDelete) -> None:
        vhost = self._vhost
        count = 0
        name = self.queue_name(method.queue)
        self._access.delete(QUEUE, name)
        if name in vhost.queues:
            queue = self.queue(name)
            what = f"queue '{queue.name}' in vhost '{vhost.name}'"
            if method.if_unused and queue.consumers:
                raise ChannelException.precondition_failed(f"{what} in use")
            if method.if_empty and queue.message_count:
                raise ChannelException.precondition_failed(f"{what} not empty")
            count = self._connection.broker.delete_queue(vhost, queue)
        if not method.no_wait:
            self._output.method(spec.QueueDeleteOk(message_count=count))
