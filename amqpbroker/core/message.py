"""A published message, stored once however many queues it is routed to."""

from __future__ import annotations


class Message:
    """The exchange, routing key, raw properties and body of one publish.

    `properties` are the header frame's property bytes as the publisher sent them, forwarded to
    consumers unchanged; the broker decodes only what it needs.
    """

    __slots__ = ("exchange", "routing_key", "properties", "body", "message_id", "refs", "holders")

    def __init__(
        self, exchange: str, routing_key: str, properties: bytes, body: bytes | None, message_id: int | None = None
    ) -> None:
        self.exchange = exchange
        self.routing_key = routing_key
        self.properties = properties
        # None once the body is safely in the store and only read back from there on delivery.
        self.body = body
        # Set when the message is persistent and stored; `refs` counts the durable queues holding it.
        self.message_id = message_id
        self.refs = 0
        # Queue entries of any queue holding it; the body's memory is released when none is left.
        self.holders = 0


class QueueEntry:
    """A message's place in one queue: `seq` orders it, so a requeue puts it back where it was."""

    __slots__ = ("seq", "message", "redelivered", "delivery_count")

    def __init__(self, seq: int, message: Message) -> None:
        self.seq = seq
        self.message = message
        self.redelivered = False
        # Returns to a quorum queue so far, which its delivery limit counts.
        self.delivery_count = 0

    def __lt__(self, other: QueueEntry) -> bool:
        return self.seq < other.seq
