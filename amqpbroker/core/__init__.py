"""The broker core: pure, synchronous AMQP semantics with no sockets, threads or files."""

from .broker import DEFAULT_CONSUMER_TIMEOUT, Broker, ClientConnection, ConnectionInfo, Sink
from .errors import AMQPException, ChannelException, ConnectionException
from .queue import Consumer, Queue
from .session import Session
from .vhost import VHost

__all__ = [
    "DEFAULT_CONSUMER_TIMEOUT",
    "AMQPException",
    "Broker",
    "ChannelException",
    "ClientConnection",
    "ConnectionInfo",
    "ConnectionException",
    "Consumer",
    "Queue",
    "Session",
    "Sink",
    "VHost",
]
