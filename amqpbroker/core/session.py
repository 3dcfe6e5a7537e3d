"""AMQP channel semantics: one `Session` per open channel.

A session turns the methods a client sends on its channel into broker operations, and sends what
the client must see through the connection's `Sink`: replies, deliveries, returns and confirms.
It owns delivery tags, unacknowledged deliveries, prefetch limits, consumers and confirm mode.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterable

from ..protocol import BasicProperties, spec
from ..store.base import PutMessage
from .errors import ChannelException, ConnectionException
from .exchanges import Exchange
from .message import Message, QueueEntry
from .queue import Consumer, Queue
from .vhost import random_name

if TYPE_CHECKING:
    from .broker import ClientConnection


class _Unacked:
    __slots__ = ("entry", "queue", "consumer")

    def __init__(self, entry: QueueEntry, queue: Queue, consumer: Consumer | None) -> None:
        self.entry = entry
        self.queue = queue
        self.consumer = consumer


REPLY_TO = "amq.rabbitmq.reply-to"
_REPLY_TO_PREFIX = REPLY_TO + "."


class _ReplyTo:
    """Direct reply-to: the pseudo-queue behind `amq.rabbitmq.reply-to.<token>`.

    A reply published to that routing key goes straight to the one no-ack consumer of the channel
    that made the request; it is never queued and never stored.
    """

    journal = None

    def __init__(self, session: Session, consumer_tag: str) -> None:
        self.session = session
        self.consumer_tag = consumer_tag
        self.token = random_name("")

    def push(self, message: Message) -> None:
        self.session.deliver_reply(self.consumer_tag, message)

    def dispatch(self) -> None:
        pass


class Session:
    def __init__(self, connection: ClientConnection, channel: int) -> None:
        self.connection = connection
        self.channel = channel
        self.vhost = connection.vhost
        self._sink = connection.sink
        self.consumers: dict[str, Consumer] = {}
        self._unacked: OrderedDict[int, _Unacked] = OrderedDict()
        self._delivery_tag = 0
        self._prefetch_count = 0
        self._global_prefetch_count = 0
        self._last_queue = ""
        self.confirm_mode = False
        self._tx: list[Callable[[], None]] | None = None
        self._reply_to: _ReplyTo | None = None
        """Operations waiting for tx.commit; None unless the channel is transactional."""
        self._publish_seq = 0
        self._confirmed_upto = 0
        self._awaiting_commit: deque[tuple[int, int]] = deque()
        """(publish seq, journal batch) of confirms that wait for the store."""
        self._held: list[tuple[Any, ...]] | None = None
        """What this channel sends while a durable change it replied to waits for its commit."""
        self._held_until = -1

    # Dispatch of client methods

    def handle(self, method: Any) -> None:
        handler = _HANDLERS.get(type(method))
        if handler is None:
            raise ConnectionException.not_implemented(f"method {method.NAME} is not implemented")
        if type(method) not in _DURABLE_REPLIES:
            handler(self, method)
            return
        # The reply says the change is made: if it is a durable one, the reply (and everything the
        # channel sends after it, to keep their order) waits until the store has committed it.
        journal = self.vhost.journal
        journaled = len(journal.ops)
        was_held = self._held is not None
        if not was_held:
            self._held = []
        try:
            handler(self, method)
        finally:
            if len(journal.ops) > journaled:
                self._held_until = journal.batch
                self.connection.broker.awaiting_commit.add(self)
            elif not was_held:
                self._release()

    def _release(self) -> None:
        held, self._held = self._held, None
        for frame in held or ():
            if len(frame) == 1:
                self._sink.send_method(self.channel, frame[0])
            else:
                self._sink.send_content(self.channel, *frame)

    def _reply(self, method: Any) -> None:
        if self._held is None:
            self._sink.send_method(self.channel, method)
        else:
            self._held.append((method,))

    def _send_content(self, method: Any, properties: bytes, body: bytes) -> None:
        if self._held is None:
            self._sink.send_content(self.channel, method, properties, body)
        else:
            self._held.append((method, properties, body))

    # channel

    def _channel_flow(self, method: spec.ChannelFlow) -> None:
        if not method.active:
            raise ConnectionException.not_implemented("active=false")
        self._reply(spec.ChannelFlowOk(active=True))

    # exchange

    def _exchange_declare(self, method: spec.ExchangeDeclare) -> None:
        self.vhost.declare_exchange(
            method.exchange,
            method.type,
            passive=method.passive,
            durable=method.durable,
            auto_delete=method.auto_delete,
            internal=method.internal,
            arguments=method.arguments,
        )
        if not method.no_wait:
            self._reply(spec.ExchangeDeclareOk())

    def _exchange_delete(self, method: spec.ExchangeDelete) -> None:
        self.vhost.delete_exchange(method.exchange, if_unused=method.if_unused)
        if not method.no_wait:
            self._reply(spec.ExchangeDeleteOk())

    # queue

    def _queue_name(self, name: str) -> str:
        """An empty queue name means the queue last declared on this channel."""
        if name:
            return name
        if not self._last_queue:
            raise ChannelException.not_found("no previously declared queue")
        return self._last_queue

    def _queue(self, name: str) -> Queue:
        return self.vhost.get_queue(self._queue_name(name), self.connection)

    def _queue_declare(self, method: spec.QueueDeclare) -> None:
        name = method.queue
        if name == REPLY_TO and method.passive:
            self._reply(spec.QueueDeclareOk(queue=name, message_count=0, consumer_count=0))
            return
        if not name and method.passive:
            name = self._queue_name(name)
        queue = self.vhost.declare_queue(
            name,
            self.connection,
            passive=method.passive,
            durable=method.durable,
            exclusive=method.exclusive,
            auto_delete=method.auto_delete,
            arguments=method.arguments,
        )
        if queue.exclusive_owner is self.connection:
            self.connection.exclusive_queues.add(queue)
        self._last_queue = queue.name
        if not method.no_wait:
            self._reply(
                spec.QueueDeclareOk(
                    queue=queue.name, message_count=queue.message_count, consumer_count=len(queue.consumers)
                )
            )

    def _queue_bind(self, method: spec.QueueBind) -> None:
        queue = self._queue(method.queue)
        self.vhost.bind(queue, method.exchange, method.routing_key, method.arguments)
        if not method.no_wait:
            self._reply(spec.QueueBindOk())

    def _queue_unbind(self, method: spec.QueueUnbind) -> None:
        self.vhost.unbind(
            self._queue_name(method.queue), method.exchange, method.routing_key, method.arguments, self.connection
        )
        self._reply(spec.QueueUnbindOk())

    def _queue_purge(self, method: spec.QueuePurge) -> None:
        count = self._queue(method.queue).purge()
        if not method.no_wait:
            self._reply(spec.QueuePurgeOk(message_count=count))

    def _queue_delete(self, method: spec.QueueDelete) -> None:
        queue = self.vhost.queues.get(self._queue_name(method.queue))
        count = 0
        if queue is not None:
            queue = self._queue(method.queue)
            what = f"queue '{queue.name}' in vhost '{self.vhost.name}'"
            if method.if_unused and queue.consumers:
                raise ChannelException.precondition_failed(f"{what} in use")
            if method.if_empty and queue.message_count:
                raise ChannelException.precondition_failed(f"{what} not empty")
            count = self.connection.broker.delete_queue(self.vhost, queue)
        if not method.no_wait:
            self._reply(spec.QueueDeleteOk(message_count=count))

    # basic: consumers

    def _basic_qos(self, method: spec.BasicQos) -> None:
        if method.prefetch_size:
            raise ConnectionException.not_implemented(f"prefetch_size!=0 ({method.prefetch_size})")
        if method.global_:
            self._global_prefetch_count = method.prefetch_count
        else:
            self._prefetch_count = method.prefetch_count
        self._reply(spec.BasicQosOk())
        self.dispatch_all()

    def _basic_consume(self, method: spec.BasicConsume) -> None:
        tag = method.consumer_tag or random_name("amq.ctag-")
        if tag in self.consumers or (self._reply_to is not None and self._reply_to.consumer_tag == tag):
            raise ConnectionException.not_allowed(f"attempt to reuse consumer tag '{tag}'")
        if method.queue == REPLY_TO:
            self._consume_replies(tag, method)
            return
        queue = self._queue(method.queue)
        if queue.consumers and (method.exclusive or queue.consumers[0].exclusive):
            raise ChannelException.access_refused(
                f"queue '{queue.name}' in vhost '{self.vhost.name}' in exclusive use"
            )
        consumer = Consumer(
            tag,
            queue,
            self,
            no_ack=method.no_ack,
            exclusive=method.exclusive,
            prefetch_count=self._prefetch_count,
            arguments=method.arguments,
        )
        if not method.no_wait:
            self._reply(spec.BasicConsumeOk(consumer_tag=tag))
        self.consumers[tag] = consumer
        queue.add_consumer(consumer)
        queue.dispatch()

    def _basic_cancel(self, method: spec.BasicCancel) -> None:
        if self._reply_to is not None and self._reply_to.consumer_tag == method.consumer_tag:
            self._stop_replies()
        consumer = self.consumers.pop(method.consumer_tag, None)
        if not method.no_wait:
            self._reply(spec.BasicCancelOk(consumer_tag=method.consumer_tag))
        if consumer is not None:
            self.connection.broker.remove_consumer(consumer)

    def cancelled_by_broker(self, consumer: Consumer) -> None:
        """The consumer's queue went away: forget it and tell the client if it asked to be told."""
        self.consumers.pop(consumer.tag, None)
        if self.connection.consumer_cancel_notify:
            self._reply(spec.BasicCancel(consumer_tag=consumer.tag, no_wait=True))

    def can_deliver(self, no_ack: bool) -> bool:
        # A closing connection takes nothing more: what its channels requeue goes to other consumers.
        if self.connection.closed or not self._sink.writable:
            return False
        return no_ack or not self._global_prefetch_count or len(self._unacked) < self._global_prefetch_count

    def deliver(self, consumer: Consumer, queue: Queue, entry: QueueEntry) -> None:
        self._delivery_tag += 1
        tag = self._delivery_tag
        message = entry.message
        method = spec.BasicDeliver(
            consumer_tag=consumer.tag,
            delivery_tag=tag,
            redelivered=entry.redelivered,
            exchange=message.exchange,
            routing_key=message.routing_key,
        )
        self._hand_over(method, tag, queue, entry, consumer, consumer.no_ack)

    def _hand_over(
        self, method: Any, tag: int, queue: Queue, entry: QueueEntry, consumer: Consumer | None, no_ack: bool
    ) -> None:
        """Sends a message, then tracks it until it is acknowledged, or forgets it if no ack will come."""
        message = entry.message
        body = message.body
        if queue.journal is not None and message.message_id is not None:
            if body is None:
                body = self.connection.broker.store.load_body(message.message_id)
            if entry.seq > queue.delivered_seq:
                queue.delivered_seq = entry.seq
                queue.journal.mark_delivered(queue)
        self._send_content(method, message.properties, body)
        if no_ack:
            queue.forget(entry)
            return
        self._unacked[tag] = _Unacked(entry, queue, consumer)
        if consumer is not None:
            consumer.unacked += 1
        queue.unacked_count += 1

    def dispatch_all(self) -> None:
        for queue in {consumer.queue for consumer in self.consumers.values()}:
            queue.dispatch()

    # basic: get, ack, reject, recover

    def _basic_get(self, method: spec.BasicGet) -> None:
        queue = self._queue(method.queue)
        entry = queue.take()
        if entry is None:
            self._reply(spec.BasicGetEmpty())
            return
        self._delivery_tag += 1
        tag = self._delivery_tag
        message = entry.message
        get_ok = spec.BasicGetOk(
            delivery_tag=tag,
            redelivered=entry.redelivered,
            exchange=message.exchange,
            routing_key=message.routing_key,
            message_count=queue.message_count,
        )
        self._hand_over(get_ok, tag, queue, entry, None, method.no_ack)

    def _take_unacked(self, delivery_tag: int, multiple: bool) -> list[_Unacked]:
        unacked = self._unacked
        if multiple and (delivery_tag == 0 or delivery_tag in unacked):
            taken = []
            while unacked:
                tag = next(iter(unacked))
                if delivery_tag and tag > delivery_tag:
                    break
                taken.append(unacked.pop(tag))
            return taken
        found = unacked.pop(delivery_tag, None)
        if found is None:
            raise ChannelException.precondition_failed(f"unknown delivery tag {delivery_tag}")
        return [found]

    def _settle(self, taken: Iterable[_Unacked], requeue: bool) -> None:
        queues: dict[Queue, list[QueueEntry]] = {}
        for item in taken:
            if item.consumer is not None:
                item.consumer.unacked -= 1
            item.queue.unacked_count -= 1
            queues.setdefault(item.queue, []).append(item.entry)
        for queue, entries in queues.items():
            if requeue and not queue.deleted:
                queue.requeue(entries)
            else:
                for entry in entries:
                    queue.forget(entry)
        if self._global_prefetch_count:
            self.dispatch_all()
        for queue in queues:
            queue.dispatch()

    def _basic_ack(self, method: spec.BasicAck) -> None:
        self._settle_later(method.delivery_tag, method.multiple, False)

    def _basic_nack(self, method: spec.BasicNack) -> None:
        self._settle_later(method.delivery_tag, method.multiple, method.requeue)

    def _basic_reject(self, method: spec.BasicReject) -> None:
        self._settle_later(method.delivery_tag, False, method.requeue)

    def _settle_later(self, delivery_tag: int, multiple: bool, requeue: bool) -> None:
        """Settles now, or at tx.commit on a transactional channel."""
        if self._tx is None:
            self._settle(self._take_unacked(delivery_tag, multiple), requeue)
        else:
            self._tx.append(lambda: self._settle(self._take_unacked(delivery_tag, multiple), requeue))

    def _basic_recover(self, method: spec.BasicRecover) -> None:
        if not method.requeue:
            raise ConnectionException.not_implemented("requeue=false")
        # The reply goes first, as with RabbitMQ, whose queues redeliver after the channel answered.
        self._reply(spec.BasicRecoverOk())
        self._requeue_all()

    def _basic_recover_async(self, method: spec.BasicRecoverAsync) -> None:
        if not method.requeue:
            raise ConnectionException.not_implemented("requeue=false")
        self._requeue_all()

    def _requeue_all(self) -> None:
        taken = list(self._unacked.values())
        self._unacked.clear()
        self._settle(taken, requeue=True)

    # basic: publish and confirms

    def publish(self, method: spec.BasicPublish, properties: bytes, body: bytes) -> None:
        if method.immediate:
            raise ConnectionException.not_implemented("immediate=true")
        vhost = self.vhost
        exchange_name = method.exchange
        exchange = None
        if exchange_name:
            exchange = vhost.exchanges.get(exchange_name)
            if exchange is None:
                raise ChannelException.not_found(f"no exchange '{exchange_name}' in vhost '{vhost.name}'")
            if exchange.internal:
                raise ChannelException.access_refused(
                    f"cannot publish to internal exchange '{exchange_name}' in vhost '{vhost.name}'"
                )
        # Property flag bits 4 (user_id) and 9 (reply_to): decode only when a publisher sets them.
        if len(properties) > 1 and (properties[1] & 0x10 or properties[0] & 0x02):
            properties = self._check_properties(properties)
        if self._tx is None:
            self._route(exchange, method, properties, body)
        else:
            self._tx.append(lambda: self._route(exchange, method, properties, body))

    def _route(self, exchange: Exchange | None, method: spec.BasicPublish, properties: bytes, body: bytes) -> None:
        vhost = self.vhost
        exchange_name = method.exchange
        routing_key = method.routing_key
        if exchange is not None:
            headers = None
            if exchange.type == "headers" or exchange.exchange_bindings:
                headers = BasicProperties.decode(properties).headers
            queues: Collection[Queue] = vhost.route(exchange, routing_key, headers)
        else:
            queue = vhost.queues.get(routing_key)
            if queue is not None:
                queues = (queue,)
            elif routing_key.startswith(_REPLY_TO_PREFIX):
                reply_to = self.connection.broker.reply_to.get(routing_key[len(_REPLY_TO_PREFIX) :])
                queues = (reply_to,) if reply_to is not None else ()
            else:
                queues = ()
        if self.confirm_mode:
            self._publish_seq += 1
        if not queues:
            if method.mandatory:
                self._send_content(
                    spec.BasicReturn(
                        reply_code=312, reply_text="NO_ROUTE", exchange=exchange_name, routing_key=routing_key
                    ),
                    properties,
                    body,
                )
        else:
            message = Message(exchange_name, routing_key, properties, body)
            if any(queue.journal is not None for queue in queues):
                self._store(message, queues)
            for queue in queues:
                queue.push(message)
                queue.dispatch()
        if self.confirm_mode:
            self.connection.pending_confirms.add(self)

    def _store(self, message: Message, queues: Iterable[Queue]) -> None:
        """Records a persistent message routed to durable queues; its confirm waits for the commit."""
        if BasicProperties.decode(message.properties).delivery_mode != 2:
            return
        broker = self.connection.broker
        journal = self.vhost.journal
        message.message_id = broker.new_message_id()
        journal.append(
            PutMessage(message.message_id, message.exchange, message.routing_key, message.properties, message.body),
            key=message,
        )
        if all(queue.journal is not None for queue in queues):
            journal.stored_messages.append(message)
        if self.confirm_mode:
            self._awaiting_commit.append((self._publish_seq, journal.batch))
            broker.awaiting_commit.add(self)

    def flush_confirms(self) -> None:
        """Confirms what can be confirmed: one multiple-ack for a run of publishes, a nack for each
        publish whose store write failed. Publishes wait for the commit of the batch holding them."""
        journal = self.vhost.journal
        if self._held is not None and self._held_until <= journal.committed:
            self._release()
        awaiting = self._awaiting_commit
        while awaiting and awaiting[0][1] <= journal.committed:
            seq, batch = awaiting.popleft()
            if batch in journal.failed:
                self._ack_upto(seq - 1)
                self._reply(spec.BasicNack(delivery_tag=seq, multiple=False, requeue=False))
                self._confirmed_upto = seq
        self._ack_upto(awaiting[0][0] - 1 if awaiting else self._publish_seq)

    def _ack_upto(self, seq: int) -> None:
        if seq > self._confirmed_upto:
            self._reply(spec.BasicAck(delivery_tag=seq, multiple=seq - self._confirmed_upto > 1))
            self._confirmed_upto = seq

    @property
    def awaiting_commit(self) -> bool:
        return bool(self._awaiting_commit) or self._held is not None

    def _confirm_select(self, method: spec.ConfirmSelect) -> None:
        if self._tx is not None:
            raise ChannelException.precondition_failed("cannot switch from tx to confirm mode")
        self.confirm_mode = True
        if not method.nowait:
            self._reply(spec.ConfirmSelectOk())

    # tx: publishes and acknowledgements wait for tx.commit; a batch, not an ACID transaction

    def _tx_select(self, method: spec.TxSelect) -> None:
        if self.confirm_mode:
            raise ChannelException.precondition_failed("cannot switch from confirm to tx mode")
        if self._tx is None:
            self._tx = []
        self._reply(spec.TxSelectOk())

    def _tx_commit(self, method: spec.TxCommit) -> None:
        if self._tx is None:
            raise ChannelException.precondition_failed("channel is not transactional")
        pending, self._tx = self._tx, []
        for operation in pending:
            operation()
        self._reply(spec.TxCommitOk())

    def _tx_rollback(self, method: spec.TxRollback) -> None:
        if self._tx is None:
            raise ChannelException.precondition_failed("channel is not transactional")
        self._tx.clear()
        self._reply(spec.TxRollbackOk())

    # exchange-to-exchange bindings

    def _exchange_bind(self, method: spec.ExchangeBind) -> None:
        self.vhost.bind_exchange(method.destination, method.source, method.routing_key, method.arguments)
        if not method.no_wait:
            self._reply(spec.ExchangeBindOk())

    def _exchange_unbind(self, method: spec.ExchangeUnbind) -> None:
        self.vhost.unbind_exchange(method.destination, method.source, method.routing_key, method.arguments)
        if not method.no_wait:
            self._reply(spec.ExchangeUnbindOk())

    def _check_properties(self, properties: bytes) -> bytes:
        """Refuses a forged user_id; gives a direct reply-to request its channel's reply address."""
        decoded = BasicProperties.decode(properties)
        username = self.connection.username
        if decoded.user_id is not None and decoded.user_id != username:
            raise ChannelException.precondition_failed(
                f"user_id property set to '{decoded.user_id}' but authenticated user was '{username}'"
            )
        if decoded.reply_to == REPLY_TO:
            if self._reply_to is None:
                raise ChannelException.precondition_failed("fast reply consumer does not exist")
            decoded.reply_to = _REPLY_TO_PREFIX + self._reply_to.token
            return decoded.encode()
        return properties

    # direct reply-to

    def _consume_replies(self, tag: str, method: spec.BasicConsume) -> None:
        if not method.no_ack:
            raise ChannelException.precondition_failed("reply consumer cannot acknowledge")
        if self._reply_to is not None:
            raise ChannelException.precondition_failed("reply consumer already set")
        self._reply_to = _ReplyTo(self, tag)
        self.connection.broker.reply_to[self._reply_to.token] = self._reply_to
        if not method.no_wait:
            self._reply(spec.BasicConsumeOk(consumer_tag=tag))

    def _stop_replies(self) -> None:
        if self._reply_to is not None:
            del self.connection.broker.reply_to[self._reply_to.token]
            self._reply_to = None

    def deliver_reply(self, consumer_tag: str, message: Message) -> None:
        self._delivery_tag += 1
        self._send_content(
            spec.BasicDeliver(
                consumer_tag=consumer_tag,
                delivery_tag=self._delivery_tag,
                redelivered=False,
                exchange=message.exchange,
                routing_key=message.routing_key,
            ),
            message.properties,
            message.body,
        )

    # closing

    def close(self) -> None:
        """The channel is gone: cancel its consumers and requeue what it had not acknowledged."""
        self._stop_replies()
        broker = self.connection.broker
        # What still waits for the store has no channel to go to (its number may be reused).
        self._awaiting_commit.clear()
        self._held = None
        broker.awaiting_commit.discard(self)
        for consumer in list(self.consumers.values()):
            broker.remove_consumer(consumer)
        self.consumers.clear()
        self._requeue_all()


# Methods whose reply tells the client a change is made, which it may take to be durable.
_DURABLE_REPLIES = frozenset({
    spec.ExchangeDeclare,
    spec.ExchangeDelete,
    spec.ExchangeBind,
    spec.ExchangeUnbind,
    spec.QueueDeclare,
    spec.QueueBind,
    spec.QueueUnbind,
    spec.QueuePurge,
    spec.QueueDelete,
    spec.TxCommit,
})

_HANDLERS: dict[type, Callable[[Session, Any], None]] = {
    spec.ChannelFlow: Session._channel_flow,
    spec.ExchangeDeclare: Session._exchange_declare,
    spec.ExchangeDelete: Session._exchange_delete,
    spec.QueueDeclare: Session._queue_declare,
    spec.QueueBind: Session._queue_bind,
    spec.QueueUnbind: Session._queue_unbind,
    spec.QueuePurge: Session._queue_purge,
    spec.QueueDelete: Session._queue_delete,
    spec.BasicQos: Session._basic_qos,
    spec.BasicConsume: Session._basic_consume,
    spec.BasicCancel: Session._basic_cancel,
    spec.BasicGet: Session._basic_get,
    spec.BasicAck: Session._basic_ack,
    spec.BasicNack: Session._basic_nack,
    spec.BasicReject: Session._basic_reject,
    spec.BasicRecover: Session._basic_recover,
    spec.BasicRecoverAsync: Session._basic_recover_async,
    spec.ConfirmSelect: Session._confirm_select,
    spec.TxSelect: Session._tx_select,
    spec.TxCommit: Session._tx_commit,
    spec.TxRollback: Session._tx_rollback,
    spec.ExchangeBind: Session._exchange_bind,
    spec.ExchangeUnbind: Session._exchange_unbind,
}
