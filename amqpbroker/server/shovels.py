"""Dynamic shovels at run time: one supervisor task per shovel, moving messages from a source broker
to a destination broker over two client connections, reconnecting after either goes away.

With ack-mode on-confirm the destination runs in confirm mode and a message is acked at the source
only once the destination confirmed it, so nothing is lost when either side dies: what was not
confirmed is still unacked at the source and comes back (possibly twice: at-least-once).
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import trio

from ..core.shovels import ShovelConfig
from ..protocol import set_header, spec
from .client import URI, Channel, Delivery, ChannelClosed, Connection, LinkError, connect

log = logging.getLogger("amqpbroker.shovel")


@dataclass
class ShovelStatus:
    state: str = "starting"
    reason: str | None = None
    timestamp: datetime.datetime = field(default_factory=datetime.datetime.now)


class Shovel:
    """One shovel: `run()` keeps it going until it is cancelled or its src-delete-after is reached."""

    def __init__(self, vhost: str, name: str, config: ShovelConfig, node: str) -> None:
        self.vhost = vhost
        self.name = name
        self.config = config
        self.node = node
        self.status = ShovelStatus()
        self.restart = trio.Event()
        self._restart_scope = trio.CancelScope()
        self._attempt = 0
        self._forward_header = config.forward_header(node, vhost, name)

    def _set(self, state: str, reason: str | None = None) -> None:
        self.status = ShovelStatus(state, reason)

    async def run(self) -> None:
        """Returns when the shovel is done (src-delete-after reached); otherwise runs until cancelled."""
        while True:
            self._set("starting")
            self.restart = trio.Event()
            try:
                with trio.CancelScope() as self._restart_scope:
                    if await self._session():
                        return
            except Exception as exc:
                reason = _reason(exc)
                if not isinstance(_leaf(exc), LinkError):
                    log.exception("shovel %r in vhost %r failed", self.name, self.vhost)
                log.warning("shovel %r in vhost %r terminated: %s", self.name, self.vhost, reason)
                self._set("terminated", reason)
                with trio.move_on_after(self.config.reconnect_delay):
                    await self.restart.wait()

    def request_restart(self) -> None:
        """Drops the connections and starts over now (DELETE /api/shovels/vhost/{vhost}/{name}/restart)."""
        self.restart.set()
        self._restart_scope.cancel()

    def _publish(self, dest: Channel, delivery: Delivery) -> None:
        config = self.config
        properties = delivery.properties
        if config.add_forward_headers:
            properties = _add_forward_header(properties, self._forward_header)
        routing_key = config.dest_exchange_key
        if routing_key is None:
            routing_key = config.dest_queue if config.dest_queue is not None else delivery.routing_key
        dest.publish(config.dest_exchange or "", routing_key, properties, delivery.body)

    def _uris(self, uris: tuple[str, ...]) -> URI:
        # Several URIs: try the next one on each attempt, as RabbitMQ picks one per connection.
        return URI.parse(uris[self._attempt % len(uris)])

    async def _session(self) -> bool:
        config = self.config
        self._attempt += 1
        name = f"Shovel {self.name}"
        async with connect(self._uris(config.src_uris), name) as source, connect(
            self._uris(config.dest_uris), name
        ) as destination:
            queue, length = await self._declare_source(source)
            if config.dest_queue is not None:
                await _declare_queue(destination, config.dest_queue)
            src = await source.channel()
            dest = await destination.channel()
            if config.ack_mode == "on-confirm":
                await dest.call(spec.ConfirmSelect())
            if config.ack_mode != "no-ack":
                await src.call(spec.BasicQos(prefetch_count=config.prefetch_count))
            await src.call(spec.BasicConsume(queue=queue, no_ack=config.ack_mode == "no-ack"))
            self._set("running")
            log.info("shovel %r in vhost %r running", self.name, self.vhost)
            limit = config.src_delete_after
            if limit == "queue-length":
                limit = length
            return await self._forward(src, dest, None if limit == "never" else int(limit))

    async def _declare_source(self, connection: Connection) -> tuple[str, int]:
        """The queue to consume and its length now."""
        config = self.config
        if config.src_queue is not None:
            return config.src_queue, await _declare_queue(connection, config.src_queue)
        # A private queue bound to the source exchange; exclusive, so it goes with the connection.
        channel = await connection.channel()
        ok = await channel.call(spec.QueueDeclare(exclusive=True))
        assert isinstance(ok, spec.QueueDeclareOk)
        await channel.call(spec.QueueBind(ok.queue, config.src_exchange or "", config.src_exchange_key))
        return ok.queue, 0

    async def _forward(self, src: Channel, dest: Channel, limit: int | None) -> bool:
        """Forwards until `limit` messages were moved (True), or forever."""
        config = self.config
        on_confirm = config.ack_mode == "on-confirm"
        unconfirmed: dict[int, int] = {}
        """Source delivery tag by destination publish sequence number, in publish order."""
        settled = 0
        done = trio.Event()

        def confirmed(seq: int, multiple: bool, acked: bool) -> None:
            nonlocal settled
            if multiple:
                seqs = [s for s in unconfirmed if s <= seq]
            else:
                seqs = [seq] if seq in unconfirmed else []
            tags = [unconfirmed.pop(s) for s in seqs]
            if not tags:
                return
            if not acked:
                # As RabbitMQ's shovel: what the destination refused is dropped at the source.
                for tag in tags:
                    src.reject(tag)
            elif multiple:
                # Every earlier tag was settled already, so one multiple ack covers exactly these.
                src.ack(tags[-1], multiple=True)
            else:
                src.ack(tags[0])
            settled += len(tags)
            if limit is not None and settled >= limit:
                done.set()

        dest.on_confirm = confirmed
        if limit == 0:
            return True
        published = 0
        while limit is None or published < limit:
            batch = [await src.deliveries.receive()]
            # Everything received together is published before the writer runs: one write per batch.
            while True:
                try:
                    batch.append(src.deliveries.receive_nowait())
                except trio.WouldBlock:
                    break
            for delivery in batch:
                if limit is not None and published >= limit:
                    break
                self._publish(dest, delivery)
                published += 1
                if on_confirm:
                    unconfirmed[published] = delivery.delivery_tag
                elif config.ack_mode == "on-publish":
                    src.ack(delivery.delivery_tag)
        if on_confirm:
            await done.wait()
        return True


def _add_forward_header(properties: bytes, entry: dict[str, Any]) -> bytes:
    headers = spec.BasicProperties.decode(properties).headers or {}
    previous = headers.get("x-shovelled")
    chain = [entry, *previous] if isinstance(previous, list) else [entry]
    return set_header(properties, "x-shovelled", chain)


async def _declare_queue(connection: Connection, queue: str) -> int:
    """Declares `queue` as a durable queue unless it exists (whatever its arguments, e.g. a quorum
    queue); returns its message count."""
    channel = await connection.channel()
    try:
        ok = await channel.call(spec.QueueDeclare(queue, passive=True))
    except ChannelClosed as exc:
        if exc.reply_code != spec.ReplyCode.NOT_FOUND:
            raise
        channel = await connection.channel()
        ok = await channel.call(spec.QueueDeclare(queue, durable=True))
    assert isinstance(ok, spec.QueueDeclareOk)
    return ok.message_count


class Shovels:
    """The running shovels by (vhost, name): started and stopped as their definitions come and go."""

    def __init__(self, node: str, on_done: Callable[[str, str], None] = lambda vhost, name: None) -> None:
        self._node = node
        self._on_done = on_done
        self._nursery: trio.Nursery | None = None
        self._scope = trio.CancelScope()
        self._running: dict[tuple[str, str], tuple[Shovel, trio.CancelScope]] = {}
        self._pending: dict[tuple[str, str], ShovelConfig] = {}

    async def run(self) -> None:
        """Supervises the shovels until cancelled or stopped."""
        with self._scope:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for (vhost, name), config in self._pending.items():
                    self._start(vhost, name, config)
                self._pending.clear()
                await trio.sleep_forever()

    def stop(self) -> None:
        """Stops every shovel (at shutdown, before clients are told: a shovel must not reconnect)."""
        self._scope.cancel()

    def set(self, vhost: str, name: str, config: ShovelConfig) -> None:
        """Starts the shovel, or restarts it with its new definition."""
        self.delete(vhost, name)
        if self._nursery is None:
            self._pending[(vhost, name)] = config
        else:
            self._start(vhost, name, config)

    def delete(self, vhost: str, name: str) -> None:
        self._pending.pop((vhost, name), None)
        running = self._running.pop((vhost, name), None)
        if running is not None:
            running[1].cancel()

    def get(self, vhost: str, name: str) -> Shovel | None:
        running = self._running.get((vhost, name))
        return running[0] if running is not None else None

    def __iter__(self) -> Iterator[Shovel]:
        return iter([shovel for shovel, _ in self._running.values()])

    def _start(self, vhost: str, name: str, config: ShovelConfig) -> None:
        assert self._nursery is not None
        shovel = Shovel(vhost, name, config, self._node)
        scope = trio.CancelScope()
        self._running[(vhost, name)] = (shovel, scope)
        self._nursery.start_soon(self._supervise, shovel, scope)

    async def _supervise(self, shovel: Shovel, scope: trio.CancelScope) -> None:
        with scope:
            await shovel.run()
            log.info("shovel %r in vhost %r is done and deletes itself", shovel.name, shovel.vhost)
            if self._running.get((shovel.vhost, shovel.name), (None,))[0] is shovel:
                del self._running[(shovel.vhost, shovel.name)]
                self._on_done(shovel.vhost, shovel.name)


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def _reason(exc: BaseException) -> str:
    leaf = _leaf(exc)
    return str(leaf) or type(leaf).__name__
