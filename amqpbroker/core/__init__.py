"""The broker core: pure, synchronous AMQP semantics with no sockets, threads or files."""

from .broker import Broker, ClientConnection, Sink
from .errors import AMQPException, ChannelException, ConnectionException
from .queue import Consumer, Queue
from .session import Session
from .vhost import VHost

__all__ = [
    "AMQPException",
    "Broker",
    "ChannelException",
    "ClientConnection",
    "ConnectionException",
    "Consumer",
    "Queue",
    "Session",
    "Sink",
    "VHost",
]
