"""AMQP channel semantics: one `Session` per open channel.

A session takes the methods a client sends on its channel and hands each to the part of the
channel that owns it: `Topology` (exchanges, queues, bindings), `Delivery` (consumers,
deliveries, acknowledgements), `Publisher` (routing publishes) with `Confirms`, and a
`Transaction` while the channel is transactional. All of them send through one
`ChannelOutput`, which keeps the channel's frames in order.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, Callable

from ..protocol import spec
from .confirms import Confirms
from .delivery import ACK, REJECT, REQUEUE, Delivery
from .errors import ChannelException, ConnectionException
from .output import ChannelOutput
from .publishing import Publisher
from .stats import ChannelStats
from .topology import Topology
from .tx import Transaction

if TYPE_CHECKING:
    from .broker import ClientConnection


class Session:
    def __init__(self, connection: ClientConnection, channel: int) -> None:
        self.connection = connection
        self.channel = channel
        self.vhost = connection.vhost
        self.stats = ChannelStats()
        self.output = ChannelOutput(connection, channel)
        self.topology = Topology(connection, self.output)
        self.delivery = Delivery(connection, self.output, self.topology, self.stats)
        self.confirms = Confirms(self.output, connection.broker.commits, self.stats)
        self.publisher = Publisher(connection, self.output, self.delivery, self.confirms, self.stats)
        self._tx: Transaction | None = None

    @property
    def transactional(self) -> bool:
        return self._tx is not None

    @property
    def uncommitted(self) -> tuple[int, int]:
        """Publishes and acknowledgements waiting for tx.commit."""
        tx = self._tx
        return (0, 0) if tx is None else (tx.messages, tx.acks)

    def handle(self, method: Any) -> None:
        handler = _HANDLERS.get(type(method))
        if handler is None:
            raise ConnectionException.not_implemented(f"method {method.NAME} is not implemented")
        if type(method) in _DURABLE_REPLIES:
            self.output.durable(partial(handler, self, method))
        else:
            handler(self, method)

    def publish(self, method: spec.BasicPublish, properties: bytes, body: bytes) -> None:
        publisher = self.publisher
        exchange, properties, cc = publisher.check(method, properties)
        if self._tx is None:
            publisher.route(exchange, method, properties, body, cc)
        else:
            self._tx.defer(partial(publisher.route, exchange, method, properties, body, cc))
            self._tx.messages += 1

    def _settle_at_commit(self, tx: Transaction, delivery_tag: int, multiple: bool, outcome: str) -> None:
        """On a transactional channel the deliveries are taken now and settled at tx.commit."""
        taken = self.delivery.take(delivery_tag, multiple)
        tx.defer(partial(self.delivery.settle_taken, taken, outcome), partial(self.delivery.untake, taken))
        if outcome == ACK:
            tx.acks += len(taken)

    # Each settles at once outside a transaction: one call less for every acknowledgement.

    def _basic_ack(self, method: spec.BasicAck) -> None:
        if self._tx is None:
            self.delivery.settle(method.delivery_tag, method.multiple, ACK)
        else:
            self._settle_at_commit(self._tx, method.delivery_tag, method.multiple, ACK)

    def _basic_nack(self, method: spec.BasicNack) -> None:
        outcome = REQUEUE if method.requeue else REJECT
        if self._tx is None:
            self.delivery.settle(method.delivery_tag, method.multiple, outcome)
        else:
            self._settle_at_commit(self._tx, method.delivery_tag, method.multiple, outcome)

    def _basic_reject(self, method: spec.BasicReject) -> None:
        outcome = REQUEUE if method.requeue else REJECT
        if self._tx is None:
            self.delivery.settle(method.delivery_tag, False, outcome)
        else:
            self._settle_at_commit(self._tx, method.delivery_tag, False, outcome)

    def _channel_flow(self, method: spec.ChannelFlow) -> None:
        if not method.active:
            raise ConnectionException.not_implemented("active=false")
        self.output.method(spec.ChannelFlowOk(active=True))

    def _confirm_select(self, method: spec.ConfirmSelect) -> None:
        if self._tx is not None:
            raise ChannelException.precondition_failed("cannot switch from tx to confirm mode")
        self.publisher.confirm_mode = True
        if not method.nowait:
            self.output.method(spec.ConfirmSelectOk())

    def _tx_select(self, method: spec.TxSelect) -> None:
        if self.publisher.confirm_mode:
            raise ChannelException.precondition_failed("cannot switch from confirm to tx mode")
        if self._tx is None:
            self._tx = Transaction()
        self.output.method(spec.TxSelectOk())

    def _transaction(self) -> Transaction:
        if self._tx is None:
            raise ChannelException.precondition_failed("channel is not transactional")
        return self._tx

    def _tx_commit(self, method: spec.TxCommit) -> None:
        self._transaction().commit()
        self.output.method(spec.TxCommitOk())

    def _tx_rollback(self, method: spec.TxRollback) -> None:
        self._transaction().rollback()
        self.output.method(spec.TxRollbackOk())

    def close(self) -> None:
        """The channel is gone: nothing more is sent on it, and what it had not acknowledged is requeued."""
        self.output.discard()
        self.confirms.discard()
        self.connection.pending_confirms.discard(self.confirms)
        if self._tx is not None:
            self._tx.rollback()  # settlements never committed: their deliveries are requeued below
        self.delivery.close()


def _part(part: str, name: str) -> Callable[[Session, Any], None]:
    def handler(session: Session, method: Any) -> None:
        getattr(getattr(session, part), name)(method)

    return handler


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
    spec.ExchangeDeclare: _part("topology", "exchange_declare"),
    spec.ExchangeDelete: _part("topology", "exchange_delete"),
    spec.ExchangeBind: _part("topology", "exchange_bind"),
    spec.ExchangeUnbind: _part("topology", "exchange_unbind"),
    spec.QueueDeclare: _part("topology", "queue_declare"),
    spec.QueueBind: _part("topology", "queue_bind"),
    spec.QueueUnbind: _part("topology", "queue_unbind"),
    spec.QueuePurge: _part("topology", "queue_purge"),
    spec.QueueDelete: _part("topology", "queue_delete"),
    spec.BasicQos: _part("delivery", "qos"),
    spec.BasicConsume: _part("delivery", "consume"),
    spec.BasicCancel: _part("delivery", "cancel"),
    spec.BasicGet: _part("delivery", "get"),
    spec.BasicAck: Session._basic_ack,
    spec.BasicNack: Session._basic_nack,
    spec.BasicReject: Session._basic_reject,
    spec.BasicRecover: _part("delivery", "recover"),
    spec.BasicRecoverAsync: _part("delivery", "recover_async"),
    spec.ConfirmSelect: Session._confirm_select,
    spec.TxSelect: Session._tx_select,
    spec.TxCommit: Session._tx_commit,
    spec.TxRollback: Session._tx_rollback,
}
