"""The broker: virtual hosts, users, and the client connections attached to them.

Everything here is plain synchronous Python. The server glue creates a `ClientConnection` when a
client has completed the handshake, feeds it the client's methods, and implements its `Sink`.
"""

from __future__ import annotations

from typing import Any, Protocol

from .errors import ConnectionException
from .queue import Consumer, Queue
from .session import Session
from .vhost import VHost


class Sink(Protocol):
    """Where a connection's outgoing frames go; implemented by the server glue."""

    writable: bool
    """False while the client is not reading fast enough; deliveries wait until it is True again."""

    def send_method(self, channel: int, method: Any) -> None: ...

    def send_content(self, channel: int, method: Any, properties: bytes, body: bytes) -> None: ...


class Broker:
    def __init__(self, users: dict[str, str] | None = None) -> None:
        self.users = {"guest": "guest"} if users is None else users
        self.vhosts: dict[str, VHost] = {}
        self.add_vhost("/")

    def add_vhost(self, name: str) -> VHost:
        vhost = self.vhosts.get(name)
        if vhost is None:
            vhost = self.vhosts[name] = VHost(name)
        return vhost

    def delete_vhost(self, name: str) -> None:
        vhost = self.vhosts.pop(name, None)
        if vhost is not None:
            for queue in list(vhost.queues.values()):
                self.delete_queue(vhost, queue)

    def authenticate(self, username: str, password: str) -> bool:
        return self.users.get(username) == password

    def can_open_vhost(self, username: str, vhost: str) -> bool:
        return vhost in self.vhosts and username in self.users

    def connect(self, vhost: str, username: str, sink: Sink, capabilities: dict) -> ClientConnection:
        return ClientConnection(self, self.vhosts[vhost], username, sink, capabilities)

    def delete_queue(self, vhost: VHost, queue: Queue) -> int:
        """Deletes a queue, cancelling its consumers (telling clients that asked to be told)."""
        for consumer in list(queue.consumers):
            queue.remove_consumer(consumer)
            consumer.session.cancelled_by_broker(consumer)
        if queue.exclusive_owner is not None:
            queue.exclusive_owner.exclusive_queues.discard(queue)
        return vhost.delete_queue(queue)

    def remove_consumer(self, consumer: Consumer) -> None:
        """Detaches a consumer from its queue, deleting an auto-delete queue left without any."""
        queue = consumer.queue
        queue.remove_consumer(consumer)
        if queue.auto_delete and not queue.consumers and not queue.deleted:
            self.delete_queue(consumer.session.vhost, queue)


class ClientConnection:
    """A client's authenticated connection to one virtual host: its channels and exclusive queues."""

    def __init__(self, broker: Broker, vhost: VHost, username: str, sink: Sink, capabilities: dict) -> None:
        self.broker = broker
        self.vhost = vhost
        self.username = username
        self.sink = sink
        self.consumer_cancel_notify = bool(capabilities.get("consumer_cancel_notify"))
        self.sessions: dict[int, Session] = {}
        self.exclusive_queues: set[Queue] = set()
        self.pending_confirms: set[Session] = set()
        self.closed = False

    def open_channel(self, channel: int) -> Session:
        if channel in self.sessions:
            raise ConnectionException.channel_error("second 'channel.open' seen")
        session = self.sessions[channel] = Session(self, channel)
        return session

    def close_channel(self, channel: int) -> None:
        session = self.sessions.pop(channel, None)
        if session is not None:
            self.pending_confirms.discard(session)
            session.close()

    def flush_confirms(self) -> None:
        for session in self.pending_confirms:
            session.flush_confirms()
        self.pending_confirms.clear()

    def resume(self) -> None:
        """The client reads again: deliver what waited for it."""
        for session in list(self.sessions.values()):
            session.dispatch_all()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for channel in list(self.sessions):
            self.close_channel(channel)
        for queue in list(self.exclusive_queues):
            self.broker.delete_queue(self.vhost, queue)
