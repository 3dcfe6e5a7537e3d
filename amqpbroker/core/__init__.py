"""The broker core: pure, synchronous AMQP semantics with no sockets, threads or files."""

from .broker import DEFAULT_CONSUMER_TIMEOUT, Broker, ClientConnection, ConnectionInfo, Sink
from .errors import AMQPException, ChannelException, ConnectionException
from .permissions import Permission, Permissions
from .queue import Consumer, Queue
from .session import Session
from .topic_permissions import TopicPermission, TopicPermissions
from .users import User, Users
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
    "Permission",
    "Permissions",
    "Queue",
    "Session",
    "Sink",
    "TopicPermission",
    "TopicPermissions",
    "User",
    "Users",
    "VHost",
]
