"""Dynamic shovels at run time: a link (see `links`) moving messages from a source broker to a
destination broker over two client connections, reconnecting after either goes away.

With ack-mode on-confirm the destination runs in confirm mode and a message is acked at the source
only once the destination confirmed it, so nothing is lost when either side dies: what was not
confirmed is still unacked at the source and comes back (possibly twice: at-least-once).
"""

from __future__ import annotations

from typing import Any

import trio

from ..core.shovels import ShovelConfig
from ..protocol import set_header, spec
from .client import URI, Channel, ChannelClosed, Connection, Delivery, connect
from .links import Link


class Shovel(Link):
    """One shovel, keyed (vhost, name) in `Links`; done when its src-delete-after is reached."""

    def __init__(self, vhost: str, name: str, config: ShovelConfig, node: str) -> None:
        super().__init__(f"shovel {name!r} in vhost {vhost!r}", config.reconnect_delay)
        self.vhost = vhost
        self.name = name
        self.config = config
        self.node = node
        self._attempt = 0
        self._forward_header = config.forward_header(node, vhost, name)

    def _publish(self, dest: Channel, delivery: Delivery) -> None:
        config = self.config
        properties = delivery.properties
        if config.add_forward_headers:
            properties = _add_forward_header(properties, self._forward_header)
        routing_key = config.dest_exchange_key
        if routing_key is None:
            routing_key = config.dest_queue if config.dest_queue is not None else delivery.routing_key
        dest.publish(config.dest_exchange or "", routing_key, properties, delivery.body)

    async def _session(self) -> bool:
        config = self.config
        # Several URIs: the next one on each attempt, as RabbitMQ picks one per connection.
        src_uri = URI.parse(config.src_uris[self._attempt % len(config.src_uris)])
        dest_uri = URI.parse(config.dest_uris[self._attempt % len(config.dest_uris)])
        self._attempt += 1
        name = f"Shovel {self.name}"
        async with connect(src_uri, name) as source, connect(dest_uri, name) as destination:
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
            self._running()
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
            for delivery in await src.next_deliveries():
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
