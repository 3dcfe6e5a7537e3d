"""A published message, stored once however many queues it is routed to."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..protocol import BasicProperties
from .arguments import parse_expiration

if TYPE_CHECKING:
    from .confirms import Confirms

# Property flag bits in the first flags byte: expiration (bit 8) and priority (bit 11).
_EXPIRATION_OR_PRIORITY = 0x01 | 0x08
# Bits 15 to 12: content-type, content-encoding, headers, delivery-mode.
_CONTENT_TYPE, _CONTENT_ENCODING, _HEADERS, _DELIVERY_MODE = 0x80, 0x40, 0x20, 0x10


def is_persistent(properties: bytes) -> bool:
    """Whether the properties say delivery-mode 2.

    Steps over the fields before it (content type and encoding, two short strings, and the headers
    table) by their lengths, without decoding them; properties cut short say no.
    """
    if not properties or not properties[0] & _DELIVERY_MODE:
        return False
    flags = properties[0]
    offset = 2
    try:
        if flags & _CONTENT_TYPE:
            offset += 1 + properties[offset]
        if flags & _CONTENT_ENCODING:
            offset += 1 + properties[offset]
        if flags & _HEADERS:
            offset += 4 + int.from_bytes(properties[offset : offset + 4], "big")
        return properties[offset] == 2
    except IndexError:
        return False


class Message:
    """The exchange, routing key, raw properties and body of one publish.

    `properties` are the header frame's property bytes as the publisher sent them, forwarded to
    consumers unchanged; the broker decodes only what it needs: the `expiration` (in ms) and the
    `priority`, when they are set, and, once asked, whether the delivery mode is persistent.
    """

    __slots__ = (
        "exchange", "routing_key", "properties", "body", "size", "message_id", "refs", "holders", "priority",
        "expiration", "confirms", "needs_commit", "_persistent",
    )

    def __init__(
        self,
        exchange: str,
        routing_key: str,
        properties: bytes,
        body: bytes | None,
        message_id: int | None = None,
        size: int = 0,
    ) -> None:
        self.exchange = exchange
        self.routing_key = routing_key
        self.properties = properties
        # None once the body is safely in the store and only read back from there on delivery.
        self.body = body
        self.size = len(body) if body is not None else size
        """The body's length in bytes, which it keeps when the body itself is only in the store."""
        # Set when the message is persistent and stored; `refs` counts the durable queues holding it.
        self.message_id = message_id
        self.refs = 0
        # Queue entries of any queue holding it; the body's memory is released when none is left.
        self.holders = 0
        self.confirms: Confirms | None = None
        """The publisher confirms waiting for this message to be safe, until it is in the store or
        no durable queue holds it any more (each that took it acknowledged or dropped it)."""
        self.needs_commit = False
        """What the broker keeps of this publish is in the batch being gathered, though no queue may
        keep the message itself: a dead letter of it was stored, or a durable deduplication queue
        dropped it as a duplicate of a message it holds. Its confirm then waits for the commit."""
        self._persistent: bool | None = None
        self.priority = 0
        self.expiration: int | None = None
        if properties and properties[0] & _EXPIRATION_OR_PRIORITY:
            decoded = BasicProperties.decode(properties)
            self.priority = decoded.priority or 0
            if decoded.expiration is not None:
                self.expiration = parse_expiration(decoded.expiration)

    @property
    def persistent(self) -> bool:
        """Whether the properties say delivery-mode 2 (read once asked: only durable queues and
        durable delayed exchanges ask)."""
        persistent = self._persistent
        if persistent is None:
            persistent = self._persistent = is_persistent(self.properties)
        return persistent


class QueueEntry:
    """A message's place in one queue: `seq` orders it, so a requeue puts it back where it was.

    `expires` is when it expires on the broker's clock (None: never); a requeue keeps it.
    """

    __slots__ = ("seq", "message", "redelivered", "delivery_count", "expires")

    def __init__(self, seq: int, message: Message, expires: float | None = None) -> None:
        self.seq = seq
        self.message = message
        self.redelivered = False
        # Returns to a quorum queue so far, which its delivery limit counts.
        self.delivery_count = 0
        self.expires = expires

    def __lt__(self, other: QueueEntry) -> bool:
        return self.seq < other.seq
