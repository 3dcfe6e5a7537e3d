"""Keeps the running shovels and federation links in step with what defines them: the broker's
runtime parameters (`shovel`, `federation-upstream`, `federation-upstream-set`), its policies and
its exchanges. These change through the API, an imported definitions file, a declared or deleted
exchange or vhost alike, so they are compared, not hooked: every `CHECK_INTERVAL` seconds.
"""

from __future__ import annotations

import logging
from typing import Any, Hashable

import trio

from .. import core
from ..core.federation import UPSTREAM, UPSTREAM_SET, UpstreamConfig, UpstreamDefinitionError, upstream_names
from ..core.shovels import ShovelConfig, ShovelDefinitionError
from .federation import FederationLink
from .links import Links
from .shovels import Shovel

log = logging.getLogger("amqpbroker.links")

CHECK_INTERVAL = 0.25


class LinkDefinitions:
    def __init__(self, broker: core.Broker, node: str) -> None:
        self.broker = broker
        self.node = node
        self.shovels: Links[Shovel] = Links(self._shovel_done)
        """The running shovels by (vhost, name)."""
        self.federation: Links[FederationLink] = Links()
        """The running federation links by (vhost, exchange, upstream)."""
        self._shovel_values: dict[tuple[str, str], Any] = {}
        self._link_values: dict[tuple[str, str, str], Any] = {}
        self._seen_version = -1
        self._scope = trio.CancelScope()

    async def run(self) -> None:
        """Runs the links and follows their definitions until cancelled or stopped."""
        with self._scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.shovels.run)
                nursery.start_soon(self.federation.run)
                while True:
                    try:
                        self.check()
                    except Exception:
                        # A bug here must cost one turn of the check, not the broker.
                        log.exception("following shovel and federation definitions failed")
                    await trio.sleep(CHECK_INTERVAL)

    def stop(self) -> None:
        """Stops every link (at shutdown, before clients are told: a link must not reconnect)."""
        self._scope.cancel()

    def check(self) -> None:
        """Starts, restarts and stops links to match their definitions now."""
        parameters = self.broker.parameters
        if parameters.version != self._seen_version:
            self._seen_version = parameters.version
            self._follow(self.shovels, self._shovel_values, parameters.of("shovel"), self._shovel)
        self._follow(self.federation, self._link_values, self._federated(), self._link)

    def _follow(self, links: Links, running: dict, wanted: dict, make: Any) -> None:
        for key in [key for key in running if key not in wanted]:
            del running[key]
            links.delete(key)
        for key, value in wanted.items():
            if running.get(key, _NONE) == value:
                continue
            running[key] = value
            link = make(key, value)
            if link is None:
                links.delete(key)
            else:
                links.set(key, link)

    def _shovel(self, key: tuple[str, str], value: Any) -> Shovel | None:
        vhost, name = key
        try:
            return Shovel(vhost, name, ShovelConfig.from_value(name, value), self.node)
        except ShovelDefinitionError as exc:
            # Definitions imported from a file are not checked as the API checks them.
            log.warning("shovel %r in vhost %r is not valid: %s", name, vhost, exc)
            return None

    def _federated(self) -> dict[tuple[str, str, str], Any]:
        """The upstream definition of every (vhost, exchange, upstream) a policy federates."""
        upstreams = self.broker.parameters.of(UPSTREAM)
        sets = self.broker.parameters.of(UPSTREAM_SET)
        wanted: dict[tuple[str, str, str], Any] = {}
        for vhost in self.broker.vhosts.values():
            if not len(vhost.policies):
                continue
            mine = {name: value for (where, name), value in upstreams.items() if where == vhost.name}
            if not mine:
                continue
            my_sets = {name: value for (where, name), value in sets.items() if where == vhost.name}
            for exchange in vhost.exchanges:
                if not exchange:
                    continue
                definition = vhost.policies.definition(exchange, "exchanges")
                for upstream in upstream_names(definition, mine, my_sets):
                    wanted[(vhost.name, exchange, upstream)] = mine[upstream]
        return wanted

    def _link(self, key: tuple[str, str, str], value: Any) -> FederationLink | None:
        vhost, exchange, upstream = key
        try:
            config = UpstreamConfig.from_value(upstream, value)
        except UpstreamDefinitionError as exc:
            log.warning("federation upstream %r in vhost %r is not valid: %s", upstream, vhost, exc)
            return None
        return FederationLink(self.broker, vhost, exchange, upstream, config, self.node)

    def _shovel_done(self, key: Hashable) -> None:
        # As RabbitMQ: a shovel whose src-delete-after is reached deletes its own definition.
        vhost, name = key  # type: ignore[misc]
        self.broker.parameters.delete(vhost, "shovel", name)


_NONE = object()
