"""A channel's consumers and deliveries: delivery tags, unacknowledged messages, prefetch.

It sends what queues hand it (basic.deliver, basic.get-ok) and tracks each delivery until the
client acknowledges, rejects or requeues it, or the channel closes and it goes back to its queue.
Direct reply-to's pseudo-queue is a consumer of this channel too.
"""

from __future__ import annotations

from collections import OrderedDict
from itertools import chain
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from ..protocol import DECODE_ERRORS, BasicProperties, Long, spec
from .arguments import consumer_settings
from .errors import ChannelException, ConnectionException
from .message import Message, QueueEntry
from .queue import Consumer, Queue
from .stream import StreamConsumer, StreamQueue
from .topology import REPLY_TO
from .vhost import random_name

if TYPE_CHECKING:
    from .broker import ClientConnection
    from .output import ChannelOutput
    from .stats import ChannelStats
    from .topology import Topology

# What a client's settlement does with the deliveries it names.
ACK = "ack"
REQUEUE = "requeue"
REJECT = "reject"
# The history's name for each: a message given back to its queue is "nacked" whether basic.nack or
# basic.reject gave it back; one refused for good is "rejected" either way.
_SETTLED = {ACK: "acked", REQUEUE: "nacked", REJECT: "rejected"}


def _check_settleable(queue: Queue) -> None:
    """basic.nack and basic.reject cannot settle a stream queue's deliveries (as RabbitMQ's)."""
    if queue.settings.queue_type == "stream":
        raise ConnectionException.not_implemented(
            f"basic.nack and basic.reject not supported by stream queues {_describe(queue)}"
        )


class _Unacked:
    __slots__ = ("entry", "queue", "consumer", "delivered_at")

    def __init__(self, entry: QueueEntry, queue: Queue, consumer: Consumer | None, delivered_at: float) -> None:
        self.entry = entry
        self.queue = queue
        self.consumer = consumer
        self.delivered_at = delivered_at


class _Get:
    """A basic.get's message, taken from its queue, and what its get-ok will say."""

    __slots__ = ("queue", "entry", "no_ack", "message_count")

    def __init__(self, queue: Queue, entry: QueueEntry, no_ack: bool, message_count: int) -> None:
        self.queue = queue
        self.entry = entry
        self.no_ack = no_ack
        self.message_count = message_count


class ReplyTo:
    """Direct reply-to: the pseudo-queue behind `amq.rabbitmq.reply-to.<token>`.

    A reply published to that routing key goes straight to the one no-ack consumer of the channel
    that made the request; it is never queued and never stored.
    """

    journal = None
    flow = None

    def __init__(self, delivery: Delivery, consumer_tag: str) -> None:
        self.delivery = delivery
        self.consumer_tag = consumer_tag
        self.token = random_name("")
        self.name = f"{REPLY_TO}.{self.token}"
        """The routing key that reaches it, which the history names it by."""

    def push(self, message: Message) -> bool:
        self.delivery.deliver_reply(self.consumer_tag, message)
        return True

    def dispatch(self) -> None:
        pass


class Delivery:
    def __init__(
        self, connection: ClientConnection, output: ChannelOutput, topology: Topology, stats: ChannelStats
    ) -> None:
        self.connection = connection
        self._stats = stats
        self.vhost = connection.vhost
        self._clock = connection.broker.timers.clock
        self._sink = connection.sink
        self._output = output
        self._topology = topology
        self.consumers: dict[str, Consumer] = {}
        self.reply_to: ReplyTo | None = None
        self._unacked: OrderedDict[int, _Unacked] = OrderedDict()
        self._settling: dict[int, _Unacked] = {}
        """Deliveries a transaction's settlement took, until its tx.commit settles them or its
        rollback puts them back: still the queues' unacknowledged messages meanwhile."""
        self._delivery_tag = 0
        self._prefetch_count = 0
        self._global_prefetch_count = 0
        self._waiting_get: _Get | None = None
        """The basic.get waiting for its body from the store, while the channel's input waits for it."""

    @property
    def channel_number(self) -> int:
        return self._output.channel

    @property
    def prefetch_count(self) -> int:
        """The per-consumer prefetch the next consumer gets (basic.qos global=false)."""
        return self._prefetch_count

    @property
    def global_prefetch_count(self) -> int:
        return self._global_prefetch_count

    @property
    def unacked_count(self) -> int:
        return len(self._unacked)

    # consumers

    def qos(self, method: spec.BasicQos) -> None:
        if method.prefetch_size:
            raise ConnectionException.not_implemented(f"prefetch_size!=0 ({method.prefetch_size})")
        if method.global_:
            self._global_prefetch_count = method.prefetch_count
        else:
            # As RabbitMQ 3.x: a per-consumer prefetch also lifts the channel's global one.
            self._prefetch_count = method.prefetch_count
            self._global_prefetch_count = 0
        self._output.method(spec.BasicQosOk())
        self.dispatch_all()

    def consume(self, method: spec.BasicConsume) -> None:
        tag = method.consumer_tag or random_name("amq.ctag-")
        if tag in self.consumers or (self.reply_to is not None and self.reply_to.consumer_tag == tag):
            raise ConnectionException.not_allowed(f"attempt to reuse consumer tag '{tag}'")
        if method.queue == REPLY_TO:
            self._consume_replies(tag, method)
            return
        queue = self._topology.queue_to_read(method.queue)
        queue_type = queue.settings.queue_type
        if queue_type == "quorum":
            self._refuse_global_qos(queue)
        settings = consumer_settings(method.arguments, queue_type, queue=queue.name, vhost=self.vhost.name)
        if queue_type == "stream":
            # Every consumer of a stream reads all of it: RabbitMQ ignores `exclusive` there.
            self._check_stream_consumer(queue, method)
        else:
            self._check_exclusive(queue, method)
        options = {
            "no_ack": method.no_ack,
            "exclusive": method.exclusive,
            "prefetch_count": self._prefetch_count,
            "arguments": method.arguments,
        }
        if isinstance(queue, StreamQueue):
            consumer: Consumer = StreamConsumer(
                tag, queue, self, offset=queue.start_offset(settings.stream_offset), **options
            )
        else:
            consumer = Consumer(tag, queue, self, priority=settings.priority, **options)
        if not method.no_wait:
            self._output.method(spec.BasicConsumeOk(consumer_tag=tag))
        self.consumers[tag] = consumer
        queue.add_consumer(consumer)
        queue.dispatch()

    def _check_exclusive(self, queue: Queue, method: spec.BasicConsume) -> None:
        # A single-active-consumer queue refuses an exclusive consumer even while it has none.
        exclusive_wanted = method.exclusive and (queue.consumers or queue.settings.single_active_consumer)
        if exclusive_wanted or (queue.consumers and queue.consumers[0].exclusive):
            raise ChannelException.access_refused(
                f"queue '{queue.name}' in vhost '{self.vhost.name}' in exclusive use"
            )

    def _refuse_global_qos(self, queue: Queue) -> None:
        if self._global_prefetch_count:
            raise ConnectionException.not_implemented(
                f"queue '{queue.name}' in vhost '{self.vhost.name}' does not support global qos"
            )

    def _check_stream_consumer(self, queue: Queue, method: spec.BasicConsume) -> None:
        """A stream is read with a per-consumer prefetch and acknowledgements, as RabbitMQ requires
        (checked in its order)."""
        if not self._prefetch_count:
            raise ChannelException.precondition_failed(
                f"consumer prefetch count is not set for '{_describe(queue)}'"
            )
        if method.no_ack:
            raise ConnectionException.not_implemented(
                f"automatic acknowledgement not supported by stream queues {_describe(queue)}"
            )
        self._refuse_global_qos(queue)

    def cancel(self, method: spec.BasicCancel) -> None:
        if self.reply_to is not None and self.reply_to.consumer_tag == method.consumer_tag:
            self._stop_replies()
        consumer = self.consumers.pop(method.consumer_tag, None)
        if not method.no_wait:
            self._output.method(spec.BasicCancelOk(consumer_tag=method.consumer_tag))
        if consumer is not None:
            self.connection.broker.remove_consumer(consumer)
            # In a single-active-consumer queue another consumer may be the active one now.
            consumer.queue.dispatch()

    def cancelled_by_broker(self, consumer: Consumer) -> None:
        """The consumer's queue went away: forget it and tell the client if it asked to be told."""
        self.consumers.pop(consumer.tag, None)
        if self.connection.consumer_cancel_notify:
            self._output.method(spec.BasicCancel(consumer_tag=consumer.tag, no_wait=True))

    # deliveries

    def can_deliver(self, no_ack: bool) -> bool:
        # A closing connection takes nothing more: what its channels requeue goes to other consumers.
        if self.connection.closed or not self._sink.writable:
            return False
        # Deliveries acked in a transaction keep their credit until tx.commit, as in RabbitMQ.
        return no_ack or not self._global_prefetch_count or (
            len(self._unacked) + len(self._settling) < self._global_prefetch_count)

    def deliver(self, consumer: Consumer, queue: Queue, entry: QueueEntry) -> bool:
        """Sends `entry` to `consumer`; False if it could not be (it is back in its queue)."""
        message = entry.message
        body = message.body
        if body is None:
            # Only in the store: read off the event loop; the queue delivers it once it is back.
            self.connection.broker.bodies.request(message, queue)
            queue.put_back(entry)
            return False
        self._delivery_tag += 1
        # Positional: consumer tag, delivery tag, redelivered, exchange, routing key.
        method = spec.BasicDeliver(
            consumer.tag, self._delivery_tag, entry.redelivered, message.exchange, message.routing_key
        )
        self._hand_over(method, queue, entry, body, consumer, consumer.no_ack)
        # Counted on the queue and on the channel, as RabbitMQ reports both.
        queue_stats, stats = queue.consumers.stats, self._stats
        if consumer.no_ack:
            queue_stats.deliver_no_ack += 1
            stats.deliver_no_ack += 1
        else:
            queue_stats.deliver += 1
            stats.deliver += 1
        return True

    def _hand_over(
        self, method: Any, queue: Queue, entry: QueueEntry, body: bytes, consumer: Consumer | None, no_ack: bool
    ) -> None:
        """Sends a message, then tracks it until it is acknowledged, or forgets it if no ack will come."""
        message = entry.message
        if queue.journal is not None and message.message_id is not None and entry.seq > queue.delivered_seq:
            queue.delivered_seq = entry.seq
            queue.journal.mark_delivered(queue)
        properties = message.properties
        queue_type = queue.settings.queue_type
        if queue_type == "quorum":
            properties = _with_header(properties, "x-delivery-count", entry.delivery_count)
            if entry.delivery_count and not no_ack:
                queue.redelivering(entry)
        elif queue_type == "stream":
            properties = _with_header(properties, "x-stream-offset", entry.seq)
        self._output.content(method, properties, body)
        if entry.redelivered:
            queue.stats.redeliver += 1
            self._stats.redeliver += 1
        history = self.vhost.history
        if history is not None:
            history.record("delivered", self.vhost.name, message, queue.name)
        if no_ack:
            queue.forget(entry)
            return
        self._unacked[self._delivery_tag] = _Unacked(entry, queue, consumer, self._clock())
        if consumer is not None:
            consumer.unacked += 1
        queue.unacked_count += 1

    def unacked(self) -> Iterator[tuple[Queue, QueueEntry]]:
        """The deliveries not yet settled (a transaction's included until its commit), each as its
        queue and entry."""
        for item in chain(self._unacked.values(), self._settling.values()):
            yield item.queue, item.entry

    def oldest_delivered_at(self) -> float | None:
        """When the oldest delivery still unacknowledged was made, on the broker's clock; None if none is."""
        oldest = next(iter(self._unacked.values()), None)
        return None if oldest is None else oldest.delivered_at

    def dispatch_all(self) -> None:
        for queue in {consumer.queue for consumer in self.consumers.values()}:
            queue.dispatch()

    def get(self, method: spec.BasicGet) -> None:
        queue = self._topology.queue_to_read(method.queue)
        if queue.settings.queue_type == "stream":
            raise ConnectionException.not_implemented(f"basic.get not supported by stream queues {_describe(queue)}")
        entry = queue.take()
        if entry is None:
            self._get_empty(queue)
            return
        get = _Get(queue, entry, method.no_ack, queue.message_count)
        body = entry.message.body
        if body is None:
            # Only in the store: read off the event loop. The get-ok must come before the replies
            # to what the client sent after the get, so the channel's input waits until it is sent.
            self._waiting_get = get
            self._sink.hold_input(self.channel_number)
            self.connection.broker.bodies.request(entry.message, self)
            return
        self._answer(get, body)

    def body_read(self, message: Message, body: bytes | None) -> None:
        """The body the waiting basic.get needs is back from the store (see `bodies`): it is
        answered, and the channel's input goes on. A get the channel gave up meanwhile is not."""
        get = self._waiting_get
        if get is None or get.entry.message is not message:
            return
        self._waiting_get = None
        if body is None:
            # The store failed to give it: the message keeps its place, and the client hears the
            # queue had nothing for it, as it may ask again (and RabbitMQ's store does not fail).
            get.queue.give_back((get.entry,))
            self._get_empty(get.queue)
        else:
            self._answer(get, body)
        self._sink.release_input(self.channel_number)

    def _give_up_get(self) -> None:
        """The channel goes (closed for an error, or with its connection) while its basic.get waits
        for a body: the message goes back to its place unanswered, and the channel's input goes on."""
        get = self._waiting_get
        if get is None:
            return
        self._waiting_get = None
        get.queue.give_back((get.entry,))
        self._sink.release_input(self.channel_number)

    def _answer(self, get: _Get, body: bytes) -> None:
        queue, entry = get.queue, get.entry
        message = entry.message
        self._delivery_tag += 1
        get_ok = spec.BasicGetOk(
            delivery_tag=self._delivery_tag,
            redelivered=entry.redelivered,
            exchange=message.exchange,
            routing_key=message.routing_key,
            message_count=get.message_count,
        )
        self._hand_over(get_ok, queue, entry, body, None, get.no_ack)
        queue_stats, stats = queue.stats, self._stats
        if get.no_ack:
            queue_stats.get_no_ack += 1
            stats.get_no_ack += 1
        else:
            queue_stats.get += 1
            stats.get += 1

    def _get_empty(self, queue: Queue) -> None:
        queue.stats.get_empty += 1
        self._stats.get_empty += 1
        self._output.method(spec.BasicGetEmpty())

    # acknowledgements

    def settle(self, delivery_tag: int, multiple: bool, outcome: str) -> None:
        """Settles the deliveries a basic.ack, basic.nack or basic.reject names: ACK, REQUEUE or REJECT."""
        if multiple:
            self.settle_taken(self.take(delivery_tag, multiple), outcome)
            return
        # One delivery, the common case: settled without the lists and per-queue grouping of many.
        item = self._pop(delivery_tag)
        queue = item.queue
        if outcome != ACK:
            _check_settleable(queue)
        history = self.vhost.history
        if history is not None:
            history.record(_SETTLED[outcome], self.vhost.name, item.entry.message, queue.name)
        self._release(item)
        self._settle_in(queue, [item.entry], outcome)
        if self._global_prefetch_count:
            self.dispatch_all()
        queue.dispatch()

    def take(self, delivery_tag: int, multiple: bool) -> list[tuple[int, _Unacked]]:
        """Takes the deliveries a settlement names out of the unacknowledged ones, by tag; an unknown
        tag is 406 at once (also on a transactional channel, which settles them at tx.commit)."""
        unacked = self._unacked
        if multiple and (delivery_tag == 0 or delivery_tag in unacked):
            taken = []
            while unacked:
                tag = next(iter(unacked))
                if delivery_tag and tag > delivery_tag:
                    break
                taken.append((tag, unacked.pop(tag)))
        else:
            taken = [(delivery_tag, self._pop(delivery_tag))]
        self._settling.update(taken)
        return taken

    def _pop(self, delivery_tag: int) -> _Unacked:
        found = self._unacked.pop(delivery_tag, None)
        if found is None:
            raise ChannelException.precondition_failed(f"unknown delivery tag {delivery_tag}")
        return found

    def untake(self, taken: list[tuple[int, _Unacked]]) -> None:
        """Puts deliveries taken for a settlement that did not happen (tx.rollback) back, in tag order."""
        for tag, _ in taken:
            del self._settling[tag]
        self._unacked = OrderedDict(sorted([*self._unacked.items(), *taken]))

    def settle_taken(self, taken: list[tuple[int, _Unacked]], outcome: str) -> None:
        for tag, _ in taken:
            del self._settling[tag]
        if outcome != ACK:
            for _, item in taken:
                _check_settleable(item.queue)
        history = self.vhost.history
        if history is not None:
            kind = _SETTLED[outcome]
            for _, item in taken:
                history.record(kind, self.vhost.name, item.entry.message, item.queue.name)
        self._settle([item for _, item in taken], outcome)

    def _settle(self, taken: Iterable[_Unacked], outcome: str) -> None:
        queues: dict[Queue, list[QueueEntry]] = {}
        for item in taken:
            self._release(item)
            queues.setdefault(item.queue, []).append(item.entry)
        for queue, entries in queues.items():
            self._settle_in(queue, entries, outcome)
        if self._global_prefetch_count:
            self.dispatch_all()
        for queue in queues:
            queue.dispatch()

    @staticmethod
    def _release(item: _Unacked) -> None:
        """The delivery no longer counts against its consumer's and queue's unacknowledged ones."""
        if item.consumer is not None:
            item.consumer.unacked -= 1
        item.queue.unacked_count -= 1

    def _settle_in(self, queue: Queue, entries: list[QueueEntry], outcome: str) -> None:
        """Settles `queue`'s `entries`: forgotten, requeued or dropped (dead-lettered) by `outcome`."""
        if outcome == ACK:
            queue.consumers.stats.ack += len(entries)
            self._stats.ack += len(entries)
        if queue.deleted or outcome == ACK:
            for entry in entries:
                queue.forget(entry)
        elif outcome == REQUEUE:
            queue.requeue(entries)
        else:
            for entry in entries:
                queue.drop(entry, "rejected")

    def recover(self, method: spec.BasicRecover) -> None:
        if not method.requeue:
            raise ConnectionException.not_implemented("requeue=false")
        if any(item.queue.settings.queue_type == "stream" for item in self._unacked.values()):
            # RabbitMQ's stream queues crash on it.
            raise ConnectionException.internal_error()
        # The reply goes first, as with RabbitMQ, whose queues redeliver after the channel answered.
        self._output.method(spec.BasicRecoverOk())
        self.requeue_all()

    def recover_async(self, method: spec.BasicRecoverAsync) -> None:
        if not method.requeue:
            raise ConnectionException.not_implemented("requeue=false")
        self.requeue_all()

    def requeue_all(self) -> None:
        """Puts back every unacknowledged delivery: the channel closed, or the client asked (basic.recover)."""
        taken = list(self._unacked.values())
        self._unacked.clear()
        history = self.vhost.history
        if history is not None:
            for item in taken:
                history.record("requeued", self.vhost.name, item.entry.message, item.queue.name)
        self._settle(taken, REQUEUE)

    # direct reply-to

    def _consume_replies(self, tag: str, method: spec.BasicConsume) -> None:
        if not method.no_ack:
            raise ChannelException.precondition_failed("reply consumer cannot acknowledge")
        if self.reply_to is not None:
            raise ChannelException.precondition_failed("reply consumer already set")
        self.reply_to = ReplyTo(self, tag)
        self.connection.broker.reply_to[self.reply_to.token] = self.reply_to
        if not method.no_wait:
            self._output.method(spec.BasicConsumeOk(consumer_tag=tag))

    def _stop_replies(self) -> None:
        if self.reply_to is not None:
            del self.connection.broker.reply_to[self.reply_to.token]
            self.reply_to = None

    def deliver_reply(self, consumer_tag: str, message: Message) -> None:
        self._delivery_tag += 1
        self._output.content(
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
        self._give_up_get()
        self._stop_replies()
        broker = self.connection.broker
        consumers = list(self.consumers.values())
        for consumer in consumers:
            broker.remove_consumer(consumer)
        self.consumers.clear()
        self.requeue_all()
        # Once none of them is left: a single-active-consumer queue may have another active one.
        for queue in {consumer.queue for consumer in consumers}:
            queue.dispatch()


def _describe(queue: Queue) -> str:
    return f"queue '{queue.name}' in vhost '{queue.vhost}'"


def _with_header(properties: bytes, name: str, value: int) -> bytes:
    """The properties with a header a queue adds to every delivery (a quorum queue's
    `x-delivery-count`, a stream's `x-stream-offset`); malformed ones (nothing checked them at
    publish) go out as they came."""
    try:
        decoded = BasicProperties.decode(properties)
    except DECODE_ERRORS:
        return properties
    decoded.headers = {**(decoded.headers or {}), name: Long(value)}
    return decoded.encode()
