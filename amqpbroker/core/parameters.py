"""Runtime parameters: vhost-scoped (component, name, value) and global (name, value), kept durably.

RabbitMQ keeps plugin settings here (federation upstreams, shovels, the cluster's name), vhost
limits (`vhost-limits`, read by `limits`) and operator policies (`operator_policy`, which the broker
follows through `changed`). The server runs the shovels (component `shovel`) and
federation links (`federation-upstream`) they define, and follows `version` to notice changes; other components are kept so that definitions imported from
RabbitMQ export back whole. `check_value` validates a value of a component we act on.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from ..store.base import DeleteRecord, PutRecord
from .journal import Journal


_MISSING = object()

CLUSTER_NAME = "cluster_name"
"""The global parameter that names the cluster, as RabbitMQ's `set_cluster_name` sets it."""


class Parameters:
    def __init__(self, journal: Journal, changed: Callable[[str, str, str, Any], None] | None = None) -> None:
        self._journal = journal
        self._changed = changed
        """Told (vhost, component, name, value) of each scoped parameter set, and with value None of
        each cleared; not of those recovered."""
        self.scoped: dict[tuple[str, str, str], Any] = {}
        """Values by (vhost, component, name)."""
        self.global_: dict[str, Any] = {}
        """Values by name."""
        self.version = 0
        """Counts the changes to scoped parameters: who acts on them compares it with what it saw."""

    def recover(self, records: Iterable[PutRecord]) -> None:
        for record in records:
            if record.kind == "parameter":
                self.scoped[record.key] = record.value["value"]
                self.version += 1
            elif record.kind == "global_parameter":
                self.global_[record.key[0]] = record.value["value"]

    def set(self, vhost: str, component: str, name: str, value: Any) -> None:
        key = (vhost, component, name)
        self.scoped[key] = value
        self.version += 1
        self._journal.append(PutRecord("parameter", key, {"value": value}))
        self._tell(key, value)

    def delete(self, vhost: str, component: str, name: str) -> bool:
        """Clears a parameter; False if there was none."""
        key = (vhost, component, name)
        if self.scoped.pop(key, _MISSING) is _MISSING:
            return False
        self.version += 1
        self._journal.append(DeleteRecord("parameter", key))
        self._tell(key, None)
        return True

    def _tell(self, key: tuple[str, str, str], value: Any) -> None:
        if self._changed is not None:
            self._changed(*key, value)

    def of(self, component: str) -> dict[tuple[str, str], Any]:
        """The values of one component by (vhost, name)."""
        return {(vhost, name): value for (vhost, kind, name), value in self.scoped.items() if kind == component}

    def set_global(self, name: str, value: Any) -> None:
        self.global_[name] = value
        self._journal.append(PutRecord("global_parameter", (name,), {"value": value}))

    def delete_global(self, name: str) -> bool:
        """Clears a global parameter; False if there was none."""
        if self.global_.pop(name, _MISSING) is _MISSING:
            return False
        self._journal.append(DeleteRecord("global_parameter", (name,)))
        return True

    def cluster_name(self, default: str) -> str:
        """The cluster's name: the `cluster_name` parameter when one is set, else `default`."""
        name = self.global_.get(CLUSTER_NAME)
        return name if isinstance(name, str) else default

    def clear_vhost(self, vhost: str) -> None:
        """Forgets every parameter of a deleted vhost."""
        for key in [key for key in self.scoped if key[0] == vhost]:
            del self.scoped[key]
            self.version += 1
            self._journal.append(DeleteRecord("parameter", key))
            self._tell(key, None)


def check_value(component: str, name: str, value: Any) -> None:
    """Raises ValueError, with RabbitMQ's reason, unless `value` is a valid value of `component`
    (one we act on: shovel, federation-upstream, federation-upstream-set, vhost-limits, operator_policy)."""
    # Imported here: these components' modules are the parameters' readers, not their keepers.
    from .federation import UPSTREAM, UPSTREAM_SET, UpstreamConfig, check_upstream_set
    from .limits import VHOST_LIMITS, check_vhost_limits
    from .policies import OPERATOR_POLICY, check_policy_value
    from .shovels import ShovelConfig

    if component == OPERATOR_POLICY:
        check_policy_value(name, value, operator=True)
    elif component == VHOST_LIMITS:
        check_vhost_limits(value)
    elif component == "shovel":
        ShovelConfig.from_value(name, value)
    elif component == UPSTREAM:
        UpstreamConfig.from_value(name, value)
    elif component == UPSTREAM_SET:
        check_upstream_set(value)
    else:
        raise ValueError(f"Validation failed\n\ncomponent {component} not found\n")
