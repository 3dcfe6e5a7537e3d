"""What ServerConnection.receive_data() and tick() report to the code driving a connection.

Events are small immutable records; the connection has already queued whatever the protocol itself
answers (open-ok, heartbeats, ...), so an event says only what the broker needs to act on. The
client's closes are answered by the caller once it has handled what came before them
(`answer_channel_close`, `answer_close`), and so is an error the protocol finds (`close_for_error`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._spec import Method


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of all connection events."""


@dataclass(frozen=True, slots=True)
class Handshaken(Event):
    """connection.open-ok has been sent: the client may now open channels."""

    vhost: str
    username: str
    client_properties: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChannelOpened(Event):
    """The client opened a channel; channel.open-ok has been sent."""

    channel: int


@dataclass(frozen=True, slots=True)
class ChannelClosed(Event):
    """The client closed a channel. Once what it sent before is handled,
    ServerConnection.answer_channel_close sends close-ok; until then its number stays taken."""

    channel: int


@dataclass(frozen=True, slots=True)
class ChannelClosing(Event):
    """The protocol layer closed a channel for an error it detected itself (e.g. 406 message too large).

    channel.close has been sent; tear the channel's broker state down now. Not emitted for closes
    requested through ServerConnection.close_channel().
    """

    channel: int
    reply_code: int
    reply_text: str


@dataclass(frozen=True, slots=True)
class MethodReceived(Event):
    """A method without content that the broker must handle (exchange.*, queue.*, basic.*, ...)."""

    channel: int
    method: Method


@dataclass(frozen=True, slots=True)
class ContentReceived(Event):
    """A content-bearing method (basic.publish) with its raw property bytes and its whole body: a
    bytearray from BODY_BUFFER_MIN bytes on (the buffer it was received into), else bytes."""

    channel: int
    method: Method
    properties: bytes
    body: bytes | bytearray


@dataclass(frozen=True, slots=True)
class ConnectionClosing(Event):
    """The protocol layer is closing the connection for an error it detected in what the client
    sent, and reads no more. Once what the client sent before is handled (its replies queued),
    ServerConnection.close_for_error sends connection.close; then tear the connection's broker
    state down. Not emitted for closes requested through ServerConnection.close().
    """

    reply_code: int
    reply_text: str


@dataclass(frozen=True, slots=True)
class ConnectionClosed(Event):
    """The connection is over: flush data_to_send() and close the socket.

    reply_code is 0 when it ended without an AMQP reason (EOF, missed heartbeats, bad protocol header).
    `linger` is nonzero when the client closed the connection: once what it sent before is handled,
    ServerConnection.answer_close sends close-ok. The socket is then the client's to close after it
    has read close-ok, so it stays open that many seconds at most, what arrives meanwhile read and
    dropped (closing it under unread input would reset it, close-ok perhaps unread).
    """

    reply_code: int
    reply_text: str
    linger: float = 0.0
