"""AMQP 0-9-1 without I/O: frames, field tables, generated method classes and the server connection.

`spec` is the generated module of method classes (spec.BasicPublish, ...), constants and reply codes.
"""

from . import _spec as spec
from ._codec import DecodeError, Long, decode_table, encode_table, remove_header, replace_headers, set_header
from ._connection import DECODE_ERRORS, MAX_MESSAGE_SIZE, MAX_MESSAGE_SIZE_CEILING, ServerConnection
from ._frames import FrameError
from ._spec import BasicProperties, Method, ReplyCode
from .events import (
    ChannelClosed,
    ChannelClosing,
    ChannelOpened,
    ConnectionClosed,
    ConnectionClosing,
    ContentReceived,
    Event,
    Handshaken,
    MethodReceived,
)

__all__ = [
    "MAX_MESSAGE_SIZE",
    "MAX_MESSAGE_SIZE_CEILING",
    "BasicProperties",
    "ChannelClosed",
    "ChannelClosing",
    "ChannelOpened",
    "ConnectionClosed",
    "ConnectionClosing",
    "ContentReceived",
    "DECODE_ERRORS",
    "DecodeError",
    "Long",
    "Event",
    "FrameError",
    "Handshaken",
    "Method",
    "MethodReceived",
    "ReplyCode",
    "ServerConnection",
    "decode_table",
    "encode_table",
    "remove_header",
    "replace_headers",
    "set_header",
    "spec",
]
