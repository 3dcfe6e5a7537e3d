"""A channel's publishes: checked, routed to queues, stored when persistent, returned when unroutable.

A message is routed by its routing key and by the keys its `CC` and `BCC` headers list (arrays
of strings), on the same exchange; `BCC` is removed from the message before it is stored or sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Collection

from ..protocol import BasicProperties, remove_header, spec
from .arguments import parse_expiration, type_name
from .delayed import DelayedExchange, delay_of
from .errors import ChannelException, ConnectionException
from .exchanges import Exchange
from .message import Message
from .queue import Queue
from .topology import REPLY_TO

if TYPE_CHECKING:
    from .broker import ClientConnection
    from .confirms import Confirms
    from .delivery import Delivery
    from .output import ChannelOutput
    from .stats import ChannelStats
    from .vhost import VHost

_REPLY_TO_PREFIX = REPLY_TO + "."
_ROUTING_HEADERS = ("CC", "BCC")


class Publisher:
    def __init__(
        self,
        connection: ClientConnection,
        output: ChannelOutput,
        delivery: Delivery,
        confirms: Confirms,
        stats: ChannelStats,
    ) -> None:
        self._connection = connection
        self._vhost = connection.vhost
        self._stats = stats
        self._default_exchange = connection.vhost.exchanges[""]
        self._access = connection.access
        self._writable = connection.access.writable
        self._topics = connection.access.topics
        self._output = output
        self._delivery = delivery
        self._confirms = confirms
        self.confirm_mode = False

    def check(
        self, method: spec.BasicPublish, properties: bytes
    ) -> tuple[Exchange | None, bytes, tuple[str, ...]]:
        """The exchange a publish goes to (None for the default one), its properties as routed, and
        the routing keys its CC and BCC headers add.

        Raises what RabbitMQ answers at once, even on a transactional channel: no write permission on
        the exchange, a missing or internal exchange, no topic permission for the routing key, a
        forged user_id, a direct reply-to request without a reply consumer, a CC or BCC header that
        is not an array.
        """
        if method.immediate:
            raise ConnectionException.not_implemented("immediate=true")
        vhost = self._vhost
        exchange_name = method.exchange
        if exchange_name not in self._writable:
            self._access.publish(exchange_name)
        exchange = None
        if exchange_name:
            exchange = vhost.exchanges.get(exchange_name)
            if exchange is None:
                raise ChannelException.not_found(f"no exchange '{exchange_name}' in vhost '{vhost.name}'")
            if exchange.internal:
                raise ChannelException.access_refused(
                    f"cannot publish to internal exchange '{exchange_name}' in vhost '{vhost.name}'"
                )
            if exchange_name in self._topics:
                self._access.publish_topic(exchange, method.routing_key)
        cc: tuple[str, ...] = ()
        if len(properties) > 1:
            # Property flag bits 4 (user_id), 8 (expiration) and 9 (reply_to): decode only when a
            # publisher sets them.
            if properties[1] & 0x10 or properties[0] & 0x03:
                properties = self._check_properties(properties)
            # Bit 13: headers. A field table encodes a key as its length octet and name: properties
            # whose bytes hold neither b"\x02CC" nor b"\x03BCC" have no CC or BCC header. Looking
            # for one byte "C" first (memchr) is several times cheaper than a substring search.
            if (
                properties[0] & 0x20
                and 0x43 in properties
                and (b"\x02CC" in properties or b"\x03BCC" in properties)
            ):
                cc, properties = _routing_headers(properties)
        return exchange, properties, cc

    def route(
        self,
        exchange: Exchange | None,
        method: spec.BasicPublish,
        properties: bytes,
        body: bytes,
        cc: tuple[str, ...] = (),
    ) -> None:
        vhost = self._vhost
        routing_key = method.routing_key
        self._stats.publish += 1
        history = vhost.history
        if history is not None:
            history.record("published", vhost.name, Message(method.exchange, routing_key, properties, body))
        if exchange is not None:
            exchange.stats.publish_in += 1
            headers = None
            if exchange.reads_headers or exchange.exchange_bindings or exchange.alternate_exchange is not None:
                headers = BasicProperties.decode(properties).headers
                if isinstance(exchange, DelayedExchange) and (delay := delay_of(headers)) is not None:
                    self._hold(exchange, method, properties, body, cc, delay)
                    return
            queues: Collection[Queue] = vhost.route(exchange, routing_key, headers, cc)
        else:
            exchange = self._default_exchange
            exchange.stats.publish_in += 1
            if cc:
                queues = _named_queues(vhost.queues, (routing_key, *cc))
            else:
                queue = vhost.queues.get(routing_key)
                if queue is not None:
                    queues = (queue,)
                elif routing_key.startswith(_REPLY_TO_PREFIX):
                    reply_to = self._connection.broker.reply_to.get(routing_key[len(_REPLY_TO_PREFIX) :])
                    queues = (reply_to,) if reply_to is not None else ()
                else:
                    queues = ()
        confirms = self._confirms if self.confirm_mode else None
        if confirms is not None:
            confirms.published()
        message = None
        stored = refused = False
        if not queues:
            if method.mandatory:
                self._return_unroutable(method, properties, body)
            else:
                self._stats.drop_unroutable += 1
        else:
            exchange.stats.publish_out += len(queues)
            message = Message(method.exchange, routing_key, properties, body)
            stored, refused = vhost.enqueue(message, queues)
            for queue in queues:
                if queue.flow is not None:
                    self._connection.published_into(queue)
        if confirms is not None:
            # As with RabbitMQ, one queue refusing the message (x-overflow reject-publish) is
            # enough for a basic.nack, whatever the others did.
            if refused:
                confirms.refuse()
            elif exchange.routes_into_store or (message is not None and message.needs_commit):
                confirms.await_commit()
            elif stored:
                confirms.await_commit(message)
            self._connection.pending_confirms.add(confirms)

    def _hold(
        self,
        exchange: DelayedExchange,
        method: spec.BasicPublish,
        properties: bytes,
        body: bytes,
        cc: tuple[str, ...],
        delay: int,
    ) -> None:
        """A delayed exchange holds the message; its confirm waits for the store if it was stored.

        As with the plugin, a held message is routed nowhere for now: a mandatory one is returned
        at once, and still routed when it is due.
        """
        stored = exchange.hold(Message(method.exchange, method.routing_key, properties, body), delay, cc)
        confirms = self._confirms if self.confirm_mode else None
        if confirms is not None:
            confirms.published()
        if method.mandatory:
            self._return_unroutable(method, properties, body)
        if confirms is not None:
            if stored:
                confirms.await_commit()
            self._connection.pending_confirms.add(confirms)

    def _return_unroutable(self, method: spec.BasicPublish, properties: bytes, body: bytes) -> None:
        self._stats.return_unroutable += 1
        history = self._vhost.history
        if history is not None:
            message = Message(method.exchange, method.routing_key, properties, body)
            history.record("returned", self._vhost.name, message, reason="NO_ROUTE")
        self._output.content(
            spec.BasicReturn(
                reply_code=312, reply_text="NO_ROUTE", exchange=method.exchange, routing_key=method.routing_key
            ),
            properties,
            body,
        )

    def _check_properties(self, properties: bytes) -> bytes:
        """Refuses a forged user_id or an invalid expiration; gives a direct reply-to request its
        channel's reply address."""
        decoded = BasicProperties.decode(properties)
        if decoded.expiration is not None:
            parse_expiration(decoded.expiration)
        username = self._connection.username
        if decoded.user_id is not None and decoded.user_id != username:
            raise ChannelException.precondition_failed(
                f"user_id property set to '{decoded.user_id}' but authenticated user was '{username}'"
            )
        if decoded.reply_to == REPLY_TO:
            reply_to = self._delivery.reply_to
            if reply_to is None:
                raise ChannelException.precondition_failed("fast reply consumer does not exist")
            decoded.reply_to = _REPLY_TO_PREFIX + reply_to.token
            return decoded.encode()
        return properties


def publish_unconfirmed(
    vhost: VHost, exchange: Exchange | None, routing_key: str, properties: bytes, body: bytes
) -> bool:
    """A publish from no channel (the management API's): routed by its routing key and its CC and
    BCC headers as basic.publish is (or held by a delayed exchange), with no confirm and no return;
    whether a queue took it. `exchange` None is the default exchange."""
    cc: tuple[str, ...] = ()
    decoded = BasicProperties.decode(properties)
    headers = decoded.headers or {}
    if decoded.expiration is not None:
        parse_expiration(decoded.expiration)
    if any(name in headers for name in _ROUTING_HEADERS):
        cc, properties = _routing_headers(properties)
    if exchange is None:
        queues: Collection[Queue] = _named_queues(vhost.queues, (routing_key, *cc))
    elif isinstance(exchange, DelayedExchange) and (delay := delay_of(headers)) is not None:
        # Held, it is routed nowhere for now, as basic.publish's mandatory flag would find.
        exchange.hold(Message(exchange.name, routing_key, properties, body), delay, cc)
        return False
    else:
        queues = vhost.route(exchange, routing_key, headers, cc)
    if queues:
        vhost.enqueue(Message(exchange.name if exchange is not None else "", routing_key, properties, body), queues)
    return bool(queues)


def _named_queues(queues: dict[str, Queue], names: tuple[str, ...]) -> set[Queue]:
    """The default exchange's routing for several keys: the queues of those names.

    A comprehension inline in `route` would make its locals closure cells, at a cost to every publish.
    """
    return {queues[name] for name in names if name in queues}


def _routing_headers(properties: bytes) -> tuple[tuple[str, ...], bytes]:
    """The routing keys of the CC and BCC headers, and the properties without BCC.

    Like RabbitMQ, array items that are not strings are ignored, and a header of another type
    makes the message invalid.
    """
    headers = BasicProperties.decode(properties).headers or {}
    keys: list[str] = []
    for name in _ROUTING_HEADERS:
        if name not in headers:
            continue
        value = headers[name]
        if not isinstance(value, list):
            raise ChannelException.precondition_failed(
                f'invalid message: {{unacceptable_type_in_header,"{name}",{type_name(value)}}}'
            )
        keys.extend(item for item in value if isinstance(item, str))
    if "BCC" in headers:
        properties = remove_header(properties, "BCC")
    return tuple(keys), properties
