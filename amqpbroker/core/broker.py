"""The broker: virtual hosts, users and their permissions, and the client connections attached to them.

Everything here is plain synchronous Python. The server glue creates a `ClientConnection` when a
client has completed the handshake, feeds it the client's methods, and implements its `Sink`.
The broker reads time from one clock of its own, `timers.clock`, and acts on time only when the
server's timers call it (`expire`, `expire_deliveries`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol

from ..store import MemoryStore, Store
from ..store.base import DeleteRecord, DeleteVHost, PutRecord, PutVHost
from . import dedup, delayed
from .arguments import queue_type_of, settings_from_arguments
from .bodies import BodyReads
from .bodies import read as read_bodies
from .commits import Batch, CommitTracker
from .confirms import Confirms
from .deadletter import DeadLetters
from .errors import ChannelException, ConnectionException
from .history import History
from .journal import Journal
from .limits import Limits
from .memory import MemoryWatermark
from .message import Message, QueueEntry
from .parameters import Parameters
from .permissions import PERMISSION, Access, Permissions
from .policies import OPERATOR_POLICY, POLICY, Policy, PolicyError, check_policy_value, parse_policy
from .queue import Consumer, Queue
from .session import Session
from .stats import BrokerStats, ChannelStats
from .stream import StreamQueue
from .timers import Timers
from .topic_permissions import TOPIC_PERMISSION, TopicPermissions
from .users import USER, User, Users, hash_password
from .vhost import VHost

log = logging.getLogger("amqpbroker.policies")

# Messages the timer drops in one turn at most, so that a large backlog expiring leaves the
# other connections their share of the event loop: 2,000 took 3-6 ms (and 50 ms when each is
# dead-lettered), far above a client's usual latency; 256 take a few tenths of a millisecond.
EXPIRE_SLICE = 256
_EXCHANGE_RECORDS = (delayed.RECORD_KIND, dedup.RECORD_KIND)
"""The kinds of store records that plugin exchanges keep: held messages, deduplication caches."""


class Sink(Protocol):
    """Where a connection's outgoing frames go; implemented by the server glue."""

    writable: bool
    """False while the client is not reading fast enough; deliveries wait until it is True again."""

    def send_method(self, channel: int, method: Any) -> None: ...

    def send_content(self, channel: int, method: Any, properties: bytes, body: bytes) -> None: ...

    def close(self, reply_code: int, reply_text: str) -> None:
        """Closes the whole connection from the broker's side with a connection.close."""

    def close_channel(self, channel: int, reply_code: int, reply_text: str) -> None:
        """Closes one channel from the broker's side with a channel.close, and its session with it."""

    def hold_input(self, channel: int) -> None:
        """What the client sends on `channel` from now on waits, in order, until `release_input`
        (a basic.get waits for its body from the store; replies wait for a commit)."""

    def release_input(self, channel: int) -> None:
        """What waited since `hold_input(channel)` is handled now, in order; nothing if nothing waits."""


@dataclass(frozen=True)
class ConnectionInfo:
    """Where a client connection comes from and what it said at the handshake, for the management
    API; the server glue knows it, the broker only keeps it."""

    peer_host: str = "?"
    peer_port: int = 0
    host: str = "?"
    """The broker's side: the address and port the client connected to."""
    port: int = 0
    client_properties: dict = field(default_factory=dict)
    connected_at: int = 0
    """Milliseconds since the epoch."""
    channel_max: int = 0
    frame_max: int = 0
    heartbeat: int = 0

    @property
    def name(self) -> str:
        """RabbitMQ's name for a connection: `peer -> local`."""
        return f"{self.peer_host}:{self.peer_port} -> {self.host}:{self.port}"


# Written once the defaults (vhost '/', user guest with all permissions on it) are made, or passed
# over for definitions loaded at the start, so that no later start makes them (again, after they were
# deleted), as RabbitMQ makes them only in a fresh database. A data directory from before users were
# stored has none, and gets them once.
_DEFAULTS_MADE = PutRecord("defaults", ("made",), {})

VHOST = "vhost"
"""The store record kind of a vhost's description, tags and tracing flag, keyed by its name."""

DEFAULT_CONSUMER_TIMEOUT = 1_800_000
"""Milliseconds a delivery may stay unacknowledged before its channel is closed: RabbitMQ's default."""


def _index_operator_policy(vhost: VHost, name: str, value: Any) -> None:
    """Makes the operator policy `value` (a runtime parameter's) apply in `vhost`; one that is not
    valid, as a definitions import before it was checked could store, applies nowhere and is logged."""
    try:
        check_policy_value(name, value, operator=True)
    except PolicyError as error:
        vhost.operator_policies.delete(name)
        log.warning("operator policy %r in vhost %r applies nowhere: %s", name, vhost.name, error.reason)
        return
    vhost.operator_policies.put(parse_policy(vhost.name, name, value, operator=True))


class Broker:
    """All broker state, recovered from `store` at creation; durable changes go to `journal`. A fresh
    store gets vhost '/' and user guest, unless `defaults` is False: RabbitMQ makes neither when it
    loads definitions at boot, where what is to be there comes from those."""

    def __init__(
        self,
        store: Store | None = None,
        memory_limit: int | None = None,
        *,
        consumer_timeout: int | None = DEFAULT_CONSUMER_TIMEOUT,
        loopback_users: Iterable[str] = ("guest",),
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        history: History | None = None,
        defaults: bool = True,
    ) -> None:
        self.timers = Timers(clock, wall_clock)
        """The broker's clock, and when each queue next needs it (message TTL, `x-expires`)."""
        self.history = history
        """Where what happens to messages is recorded, for tests; None records nothing."""
        self.consumer_timeout = consumer_timeout
        """Milliseconds a delivery may stay unacknowledged; None never times out."""
        self.connections: set[ClientConnection] = set()
        self.stats = BrokerStats()
        self.store = store if store is not None else MemoryStore()
        self.journal = Journal()
        self.users = Users(self.journal, loopback_users)
        """Users may log in from anywhere except those in `loopback_users`: only from a loopback address."""
        self.topic_permissions = TopicPermissions(self.journal)
        self.permissions = Permissions(self.journal, self.topic_permissions)
        self.memory = MemoryWatermark(memory_limit)
        self.commits = CommitTracker(self.journal, self.memory)
        self.bodies = BodyReads(self.memory)
        """Bodies due to consumers that are only in the store, for the server to read in a thread."""
        self.vhosts: dict[str, VHost] = {}
        self.reply_to: dict[str, Any] = {}
        """Direct reply-to addresses (`amq.rabbitmq.reply-to.<token>`) by token."""
        self.journal.next_message_id = self.store.max_message_id() + 1
        self.dead_letters = DeadLetters(self.vhosts, self.bodies, self.timers.wall_clock, history)
        self.parameters = Parameters(self.journal, changed=self._parameter_changed)
        self.limits = Limits(self.parameters, self.users, self.connections)
        """Vhost and user limits: how many connections, channels and queues they may have."""
        if self._recover():
            if defaults:
                self._make_defaults()
            else:
                self.journal.append(_DEFAULTS_MADE)

    def _make_defaults(self) -> None:
        self.add_vhost("/")
        self.describe_vhost("/", "Default virtual host", [], False)
        if "guest" not in self.users:
            self.users.put(User("guest", hash_password("guest"), ["administrator"]))
        if self.permissions.get("/", "guest") is None:
            self.permissions.set("/", "guest", ".*", ".*", ".*")
        self.journal.append(_DEFAULTS_MADE)

    def add_vhost(self, name: str, granted_to: str | None = None) -> VHost:
        """The vhost `name`, made if it is new; `granted_to` then gets every permission in it, as
        RabbitMQ's HTTP API grants them to the user who creates a vhost."""
        vhost = self.vhosts.get(name)
        if vhost is None:
            vhost = self.vhosts[name] = VHost(
                name, self.journal, self.memory, self.dead_letters, self.timers, self.stats, self.history, self.limits
            )
            self.journal.append(PutVHost(name))
            if granted_to is not None:
                self.permissions.set(name, granted_to, ".*", ".*", ".*")
        return vhost

    def describe_vhost(self, name: str, description: str, tags: list[str], tracing: bool) -> None:
        self.vhosts[name].describe(description, tags, tracing)
        self.journal.append(PutRecord(VHOST, (name,), {"description": description, "tags": tags, "tracing": tracing}))

    def delete_vhost(self, name: str) -> None:
        """Deletes the vhost with everything in it and every permission and topic permission in it;
        its connections are closed with 320, as RabbitMQ closes them."""
        vhost = self.vhosts.pop(name, None)
        if vhost is not None:
            self._close_connections(lambda connection: connection.vhost is vhost, f"vhost '{name}' is deleted")
            self.permissions.clear_vhost(name)
            self.topic_permissions.clear_vhost(name)
            for queue in list(vhost.queues.values()):
                self.delete_queue(vhost, queue)
            for exchange in list(vhost.exchanges.values()):
                if exchange.name and not exchange.name.startswith("amq."):
                    vhost.delete_exchange(exchange.name)
            for policy in vhost.policies:
                self.journal.append(DeleteRecord(POLICY, (name, policy.name)))
            self.parameters.clear_vhost(name)
            self.journal.append(DeleteRecord(VHOST, (name,)))
            self.journal.append(DeleteVHost(name))

    # Policies

    def set_policy(self, policy: Policy, *, operator: bool = False) -> None:
        """Adds or replaces a policy (`operator`: an operator policy), validated by `parse_policy`, in
        its existing vhost; the queues and exchanges it now applies to, or no longer applies to, take
        their new settings at once. An operator policy is a runtime parameter, as in RabbitMQ."""
        vhost = self.vhosts[policy.vhost]
        if operator:
            self.parameters.set(policy.vhost, OPERATOR_POLICY, policy.name, policy.value())
            return
        vhost.policies.put(policy)
        self.journal.append(PutRecord(POLICY, (policy.vhost, policy.name), policy.as_json()))
        self._apply_policies(vhost)

    def clear_policy(self, vhost_name: str, name: str, *, operator: bool = False) -> bool:
        """Deletes a policy (`operator`: an operator policy); False if there is no such policy."""
        if operator:
            return self.parameters.delete(vhost_name, OPERATOR_POLICY, name)
        vhost = self.vhosts.get(vhost_name)
        if vhost is None or vhost.policies.delete(name) is None:
            return False
        self.journal.append(DeleteRecord(POLICY, (vhost_name, name)))
        self._apply_policies(vhost)
        return True

    def _parameter_changed(self, vhost_name: str, component: str, name: str, value: Any) -> None:
        """Keeps each vhost's operator policies in step with the parameters that hold them, however
        those change (the API, an import); `value` None for a parameter cleared."""
        vhost = self.vhosts.get(vhost_name)
        if component != OPERATOR_POLICY or vhost is None:  # a vhost deleted takes its parameters along
            return
        if value is None:
            vhost.operator_policies.delete(name)
        else:
            _index_operator_policy(vhost, name, value)
        self._apply_policies(vhost)

    def _apply_policies(self, vhost: VHost) -> None:
        for queue in list(vhost.queues.values()):
            settings = settings_from_arguments(
                queue.arguments, *vhost.queue_policies(queue.name, queue.settings.queue_type)
            )
            queue.configure(settings)
        for exchange in vhost.exchanges.values():
            if exchange.name:
                exchange.configure(vhost.policies.definition(exchange.name, "exchanges"))

    # Durability

    def take_batch(self) -> Batch | None:
        """The pending store operations as one numbered batch, for the persister."""
        return self.commits.take()

    def batch_done(self, batch: Batch, ok: bool) -> None:
        """The store finished `batch`, successfully or not: everything that waited for it learns which."""
        self.commits.resolve(batch, ok)

    def read_bodies(self) -> None:
        """Reads the bodies asked for right here, and those the deliveries they let go on ask for
        (tests; the server reads them in a thread)."""
        while due := self.bodies.take():
            self.bodies.settle(due, read_bodies(self.store, due))

    def commit(self) -> None:
        """Applies everything pending to the store right here (tests, and a final flush at shutdown)."""
        while (batch := self.take_batch()) is not None:
            self.store.apply(batch.ops)
            self.batch_done(batch, True)

    # Timers

    def next_deadline(self) -> float | None:
        """When `expire` next has something to do, on the broker's clock; None if nothing waits."""
        return self.timers.next_deadline()

    def expire(self, now: float | None = None, budget: int = EXPIRE_SLICE) -> bool:
        """Gives the queues and delayed exchanges whose deadline has come their turn: expired
        messages leave queues, queues unused past their `x-expires` are deleted, and held messages
        now due are routed. At most `budget` messages go in one call; returns True if more is due
        already, for another call once others had their turn. The confirms that messages leaving
        their durable queues made due go out at the end of the turn, as those a client's acks made
        due go out after its frames."""
        timers = self.timers
        if now is None:
            now = timers.clock()
        while budget > 0:
            due = timers.due(now)
            if due is None:
                break
            if isinstance(due, delayed.DelayedExchange):
                budget -= self.vhosts[due.vhost].release(due, now, budget)
            elif isinstance(due, Queue):
                if due.idle(now):
                    self.delete_queue(self.vhosts[due.vhost], due)
                else:
                    budget -= due.expire(now, budget)
        self.commits.flush_settled()
        deadline = timers.next_deadline()
        return deadline is not None and deadline <= now

    def delete_user(self, name: str) -> bool:
        """Deletes the user and their permissions and topic permissions; their connections are closed
        with 320, as RabbitMQ closes them. False if there was no such user."""
        if not self.users.delete(name):
            return False
        self.permissions.clear_user(name)
        self.topic_permissions.clear_user(name)
        self._close_connections(lambda connection: connection.username == name, f"user '{name}' is deleted")
        return True

    def _close_connections(self, which: Callable[[ClientConnection], bool], reason: str) -> None:
        for connection in list(self.connections):
            if which(connection):
                connection.sink.close(320, f"CONNECTION_FORCED - {reason}")

    def _recover(self) -> bool:
        """Recovers everything durable from the store; True if the defaults are still to be made."""
        store = self.store
        recovered = store.recover()
        for name in recovered.vhosts:
            self.vhosts[name] = VHost(
                name, self.journal, self.memory, self.dead_letters, self.timers, self.stats, self.history, self.limits
            )
        self.parameters.recover(recovered.records)
        for (vhost_name, name), value in self.parameters.of(OPERATOR_POLICY).items():
            if vhost_name in self.vhosts:
                _index_operator_policy(self.vhosts[vhost_name], name, value)
        defaults_made = False
        for record in recovered.records:
            kind = record.kind
            if kind == USER:
                self.users.restore(record)
            elif kind == PERMISSION:
                self.permissions.restore(record)
            elif kind == TOPIC_PERMISSION:
                self.topic_permissions.restore(record)
            elif kind == VHOST and record.key[0] in self.vhosts:
                self.vhosts[record.key[0]].describe(**record.value)
            elif kind == _DEFAULTS_MADE.kind:
                defaults_made = True
            elif kind == POLICY and record.key[0] in self.vhosts:
                value = record.value
                self.vhosts[record.key[0]].policies.put(
                    Policy(*record.key, value["pattern"], value["apply-to"], value["priority"], value["definition"])
                )
        for record in recovered.exchanges:
            vhost = self.vhosts[record.vhost]
            vhost.exchanges[record.name] = vhost.make_exchange(
                record.name,
                record.type,
                durable=True,
                auto_delete=record.auto_delete,
                internal=record.internal,
                arguments=record.arguments,
            )
        for vhost in self.vhosts.values():
            for exchange in vhost.exchanges.values():
                if exchange.name:
                    exchange.configure(vhost.policies.definition(exchange.name, "exchanges"))
        messages: dict[int, Message] = {}
        over_limit: list[tuple[Queue, QueueEntry]] = []
        for record in recovered.queues:
            vhost = self.vhosts[record.vhost]
            settings = settings_from_arguments(
                record.arguments, *vhost.queue_policies(record.name, queue_type_of(record.arguments))
            )
            stream = settings.queue_type == "stream"
            queue = vhost.queues[record.name] = (StreamQueue if stream else Queue)(
                record.name,
                record.vhost,
                durable=True,
                auto_delete=record.auto_delete,
                arguments=record.arguments,
                settings=settings,
                journal=self.journal,
                memory=self.memory,
                dead_letters=self.dead_letters,
                timers=self.timers,
            )
            delivered = store.delivered_upto(record.vhost, record.name)
            queue.restore_delivered(delivered)
            counts = store.delivery_counts(record.vhost, record.name) if settings.queue_type == "quorum" else {}
            for seq, message_id, expires in store.queue_entries(record.vhost, record.name):
                message = messages.get(message_id)
                if message is None:
                    exchange, routing_key, properties, size = store.load_header(message_id)
                    message = messages[message_id] = Message(exchange, routing_key, properties, None, message_id, size)
                    self.memory.paged_out += 1
                if stream:
                    # A stream's entry keeps when it was appended where others keep their expiry.
                    queue.restore_appended(QueueEntry(seq, message), expires)
                    continue
                entry = QueueEntry(seq, message, None if expires is None else self.timers.from_wall_ms(expires))
                entry.redelivered = seq <= delivered
                entry.delivery_count = counts.get(seq, 0)
                if settings.delivery_limit is not None and entry.delivery_count > settings.delivery_limit:
                    # Dropped once the queue it is dead-lettered to, and the bindings there, are back.
                    over_limit.append((queue, entry))
                    continue
                queue.restore(entry)
            queue.declared(self.timers)
        for record in recovered.bindings:
            vhost = self.vhosts[record.vhost]
            exchange = vhost.exchanges.get(record.exchange)
            destinations = vhost.queues if record.destination_type == "queue" else vhost.exchanges
            destination = destinations.get(record.destination)
            if exchange is not None and destination is not None:
                exchange.bind(destination, record.routing_key, record.arguments)
        for queue, entry in over_limit:
            queue.drop_recovered(entry, "delivery_limit")
        exchange_records = [record for record in recovered.records if record.kind in _EXCHANGE_RECORDS]
        # A deduplication cache forgets its oldest values first: it takes them back in their order.
        exchange_records.sort(key=lambda record: record.value.get("added", 0))
        for record in exchange_records:
            self._recover_exchange_record(record)
        return not defaults_made

    def _recover_exchange_record(self, record: PutRecord) -> None:
        """Gives a delayed exchange a held message back, or a deduplication exchange a cache entry;
        a record whose exchange is gone is deleted."""
        vhost_name, exchange_name, _ = record.key
        vhost = self.vhosts.get(vhost_name)
        exchange = vhost.exchanges.get(exchange_name) if vhost is not None else None
        if isinstance(exchange, delayed.DelayedExchange) and record.kind == delayed.RECORD_KIND:
            exchange.restore(record.key, record.value)
        elif isinstance(exchange, dedup.DeduplicationExchange) and record.kind == dedup.RECORD_KIND:
            exchange.restore(record.key[2], record.value)
        else:
            self.journal.append(DeleteRecord(record.kind, record.key))

    def authenticate(self, username: str, password: str, address: str | None = None) -> bool:
        """Whether the password is the user's and the user may log in from `address`, the client's IP."""
        return self.users.authenticate(username, password, address) is not None

    def authenticate_external(self, username: str, address: str | None = None) -> bool:
        """Whether `username`, named by a verified TLS client certificate, is a user who may log in
        from `address`: the certificate stands for the password, as RabbitMQ's EXTERNAL mechanism."""
        return bool(username) and username in self.users and (address is None or self.users.may_log_in_from(username, address))

    def can_open_vhost(self, username: str, vhost: str) -> bool:
        """As RabbitMQ, a user with any permission in the vhost (even all empty) may open it."""
        return vhost in self.vhosts and username in self.users and self.permissions.get(vhost, username) is not None

    def connect(
        self, vhost: str, username: str, sink: Sink, capabilities: dict, info: ConnectionInfo | None = None
    ) -> ClientConnection:
        access = self.permissions.access(vhost, username)
        connection = ClientConnection(self, self.vhosts[vhost], username, sink, capabilities, access, info)
        self.connections.add(connection)
        self.stats.churn.connection_created += 1
        return connection

    # Statistics

    def channel_stats(self) -> list[ChannelStats]:
        """The counts of every open channel."""
        return [session.stats for connection in self.connections for session in connection.sessions.values()]

    def message_totals(self) -> ChannelStats:
        """The broker's message counts since it started, with the overview's rates."""
        return self.stats.message_totals(self.channel_stats())

    def sample_stats(self, now: float | None = None) -> None:
        """Samples every count for its rate: the overview's, the churn's, and every queue's,
        exchange's and channel's."""
        if now is None:
            now = self.timers.clock()
        channels = self.channel_stats()
        self.stats.overview_rates.sample(self.stats.message_totals(channels).counts(), now)
        self.stats.churn.sample(now)
        for stats in channels:
            stats.sample(now)
        for vhost in self.vhosts.values():
            for queue in vhost.queues.values():
                queue.stats.sample(now)
                queue.sample_capacity(now)
            for exchange in vhost.exchanges.values():
                exchange.stats.sample(now)

    def expire_deliveries(self) -> None:
        """Closes every channel whose oldest unacknowledged delivery is older than `consumer_timeout`.

        As in RabbitMQ, the channel is closed with 406 and what it had not acknowledged is requeued.
        """
        timeout = self.consumer_timeout
        if timeout is None:
            return
        deadline = self.timers.clock() - timeout / 1000
        for connection in list(self.connections):
            for channel, session in list(connection.sessions.items()):
                delivered_at = session.delivery.oldest_delivered_at()
                if delivered_at is not None and delivered_at < deadline:
                    error = ChannelException.precondition_failed(
                        f"delivery acknowledgement on channel {channel} timed out. Timeout value used: "
                        f"{timeout} ms. This timeout value can be configured, see consumers doc guide to "
                        "learn more"
                    )
                    connection.sink.close_channel(channel, error.reply_code, error.reply_text)

    def delete_queue(self, vhost: VHost, queue: Queue) -> int:
        """Deletes a queue, cancelling its consumers (telling clients that asked to be told)."""
        for consumer in list(queue.consumers):
            queue.remove_consumer(consumer)
            consumer.channel.cancelled_by_broker(consumer)
        if queue.exclusive_owner is not None:
            queue.exclusive_owner.exclusive_queues.discard(queue)
        return vhost.delete_queue(queue)

    def queue_declared(self, queue: Queue) -> None:
        """A channel declared `queue`, new or again: it runs on this broker's timers and counts as used."""
        queue.declared(self.timers)

    def remove_consumer(self, consumer: Consumer) -> None:
        """Detaches a consumer from its queue, deleting an auto-delete queue left without any."""
        queue = consumer.queue
        queue.remove_consumer(consumer)
        if queue.auto_delete and not queue.consumers and not queue.deleted:
            self.delete_queue(consumer.channel.vhost, queue)


class ClientConnection:
    """A client's authenticated connection to one virtual host: its channels and exclusive queues."""

    def __init__(
        self,
        broker: Broker,
        vhost: VHost,
        username: str,
        sink: Sink,
        capabilities: dict,
        access: Access,
        info: ConnectionInfo | None = None,
    ) -> None:
        self.broker = broker
        self.vhost = vhost
        self.username = username
        self.access = access
        self.sink = sink
        self.info = info if info is not None else ConnectionInfo()
        self.consumer_cancel_notify = bool(capabilities.get("consumer_cancel_notify"))
        self.sessions: dict[int, Session] = {}
        self.exclusive_queues: set[Queue] = set()
        self.pending_confirms: set[Confirms] = set()
        """Confirms of channels that published since the last flush."""
        self.pressed_by: list[Queue] = []
        """Pressing queues this connection published into since the server last looked (see `credit`)."""
        self.closed = False

    def open_channel(self, channel: int) -> Session:
        if channel in self.sessions:
            raise ConnectionException.channel_error("second 'channel.open' seen")
        session = self.sessions[channel] = Session(self, channel)
        self.broker.stats.churn.channel_created += 1
        return session

    def hold_input_for_replies(self, channel: int) -> bool:
        """Whether replies on `channel` wait for a commit; if so, what the client sends on it waits
        until they are sent (`Sink.hold_input`), so that its close is answered after them."""
        session = self.sessions.get(channel)
        return session is not None and session.output.hold_input()

    def close_channel(self, channel: int) -> None:
        session = self.sessions.pop(channel, None)
        if session is not None:
            session.close()
            self.broker.stats.channel_closed(session.stats)

    def flush_confirms(self) -> None:
        """Sends the confirms due after the client's frames were handled: of this connection's
        publishes, and of any channel's that this client's acks settled."""
        for confirms in self.pending_confirms:
            confirms.flush()
        self.pending_confirms.clear()
        self.broker.commits.flush_settled()

    def published_into(self, queue: Queue) -> None:
        """`queue` has a credit flow state: if it presses, the connection is to wait for it, unless
        the connection consumes from it too (it would no longer read the acks that drain it)."""
        if queue.pressing and not any(consumer.channel.connection is self for consumer in queue.consumers):
            self.pressed_by.append(queue)

    def resume(self) -> None:
        """The client reads again: deliver what waited for it."""
        for session in list(self.sessions.values()):
            session.delivery.dispatch_all()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.broker.connections.discard(self)
        self.broker.stats.churn.connection_closed += 1
        for channel in list(self.sessions):
            self.close_channel(channel)
        for queue in list(self.exclusive_queues):
            self.broker.delete_queue(self.vhost, queue)
