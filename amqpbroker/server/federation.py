"""Federation links at run time: for an exchange here federated with an upstream, a link (see
`links`) keeps a queue on the upstream bound to the upstream exchange with the binding keys the
exchange has here, consumes it, and publishes what arrives into the exchange here.

With ack-mode on-confirm a message is acked upstream only once the store committed what it became
here, so a link that dies (either side) leaves it on the upstream queue, to come again.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from .. import core
from ..core.federation import UpstreamConfig, hop_entry, link_queue_name, received_from, should_forward
from ..core.publishing import publish_unconfirmed
from ..protocol import set_header, spec
from .client import URI, Channel, Delivery, LinkError, connect
from .links import Link
from .persister import committed

log = logging.getLogger("amqpbroker.federation")

# How often a link compares the exchange's bindings here with those of its queue upstream.
BINDINGS_CHECK_INTERVAL = 0.5


class FederationLink(Link):
    """The link of one federated exchange with one upstream, keyed (vhost, exchange, upstream)."""

    def __init__(
        self, broker: core.Broker, vhost: str, exchange: str, upstream: str, config: UpstreamConfig, node: str
    ) -> None:
        super().__init__(
            f"federation link of exchange {exchange!r} in vhost {vhost!r} with upstream {upstream!r}",
            config.reconnect_delay,
        )
        self.broker = broker
        self.vhost = vhost
        self.exchange = exchange
        self.upstream = upstream
        self.config = config
        self.node = node
        self._attempt = 0

    @property
    def _cluster_name(self) -> str:
        """This broker's name as its connections advertise it, which hops record: the cluster's
        name when one is set, read anew as RabbitMQ reads it."""
        return self.broker.parameters.cluster_name(self.node)

    async def _session(self) -> bool:
        config = self.config
        uri_text = config.uris[self._attempt % len(config.uris)]
        self._attempt += 1
        uri = URI.parse(uri_text)
        upstream_exchange = config.exchange or self.exchange
        queue = link_queue_name(upstream_exchange, self._cluster_name, self.vhost, self.exchange)
        name = f"Federation link (upstream: {self.upstream}, exchange: {self.exchange})"
        async with connect(uri, name) as connection:
            channel = await connection.channel()
            await channel.call(spec.ExchangeDeclare(upstream_exchange, passive=True))
            await channel.call(spec.QueueDeclare(queue, durable=True, arguments=config.queue_arguments()))
            bound: dict[tuple[str, Any], dict[str, Any]] = {}
            """What the queue upstream is bound with: arguments by (routing key, frozen arguments)."""
            await self._bind(channel, queue, upstream_exchange, bound)
            if config.ack_mode != "no-ack":
                await channel.call(spec.BasicQos(prefetch_count=config.prefetch_count))
            await channel.call(spec.BasicConsume(queue=queue, no_ack=config.ack_mode == "no-ack"))
            cluster_name = connection.server_properties.get("cluster_name")
            entry = {"uri": uri_text, "cluster-name": cluster_name if isinstance(cluster_name, str) else uri.host,
                     "vhost": uri.vhost}
            self._running()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._follow_bindings, channel, queue, upstream_exchange, bound)
                await self._forward(channel, entry)
        return False

    def _here(self) -> tuple[core.VHost, Any]:
        vhost = self.broker.vhosts.get(self.vhost)
        exchange = vhost.exchanges.get(self.exchange) if vhost is not None else None
        if vhost is None or exchange is None:
            raise LinkError(f"the federated exchange {self.exchange!r} is gone")
        return vhost, exchange

    def _bindings_here(self) -> dict[tuple[str, Any], dict[str, Any]]:
        """The exchange's bindings here: arguments by (routing key, frozen arguments)."""
        _, exchange = self._here()
        return {(binding.routing_key, binding.key[2]): binding.arguments for binding in exchange.bindings.values()}

    async def _bind(self, channel: Channel, queue: str, upstream_exchange: str, bound: dict) -> None:
        """Binds the queue upstream with the keys bound here, and unbinds those no longer bound here."""
        wanted = self._bindings_here()
        for key in [key for key in wanted if key not in bound]:
            await channel.call(spec.QueueBind(queue, upstream_exchange, key[0], arguments=wanted[key]))
            bound[key] = wanted[key]
        for key in [key for key in bound if key not in wanted]:
            await channel.call(spec.QueueUnbind(queue, upstream_exchange, key[0], arguments=bound.pop(key)))

    async def _follow_bindings(self, channel: Channel, queue: str, upstream_exchange: str, bound: dict) -> None:
        while True:
            await trio.sleep(BINDINGS_CHECK_INTERVAL)
            await self._bind(channel, queue, upstream_exchange, bound)

    async def _forward(self, channel: Channel, entry: dict[str, Any]) -> None:
        ack_mode = self.config.ack_mode
        while True:
            batch = await channel.next_deliveries()
            vhost, exchange = self._here()
            with self.broker.commits.change() as change:
                for delivery in batch:
                    self._publish(vhost, exchange, delivery, entry)
            if ack_mode == "no-ack":
                continue
            if ack_mode == "on-confirm" and change.batch is not None:
                if not await committed(self.broker.commits, change.batch):
                    raise LinkError("the store failed to commit forwarded messages")
            channel.ack(batch[-1].delivery_tag, multiple=True)

    def _publish(self, vhost: core.VHost, exchange: Any, delivery: Delivery, entry: dict[str, Any]) -> None:
        properties = delivery.properties
        hops = received_from(spec.BasicProperties.decode(properties).headers)
        if not should_forward(hops, self.config.max_hops, self._cluster_name):
            return
        hop = hop_entry(entry["uri"], self.exchange, delivery.redelivered, entry["cluster-name"], entry["vhost"])
        properties = set_header(properties, "x-received-from", [hop, *hops])
        try:
            publish_unconfirmed(vhost, exchange, delivery.routing_key, properties, delivery.body)
        except core.AMQPException as exc:
            # A message no channel here would take (a malformed CC header, a bad expiration):
            # dropped, as a channel would refuse it, so that it does not stop the link.
            log.warning("%s dropped a message: %s", self.description, exc.reply_text)

