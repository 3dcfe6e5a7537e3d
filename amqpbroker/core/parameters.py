"""Runtime parameters: vhost-scoped (component, name, value) and global (name, value), kept durably.

RabbitMQ keeps plugin settings here (federation upstreams, shovels, the cluster's name). We run no
plugin that reads them; they are kept so that definitions imported from RabbitMQ export back whole.
"""

from __future__ import annotations

from typing import Any, Iterable

from ..store.base import DeleteRecord, PutRecord
from .journal import Journal


class Parameters:
    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self.scoped: dict[tuple[str, str, str], Any] = {}
        """Values by (vhost, component, name)."""
        self.global_: dict[str, Any] = {}
        """Values by name."""

    def recover(self, records: Iterable[PutRecord]) -> None:
        for record in records:
            if record.kind == "parameter":
                self.scoped[record.key] = record.value["value"]
            elif record.kind == "global_parameter":
                self.global_[record.key[0]] = record.value["value"]

    def set(self, vhost: str, component: str, name: str, value: Any) -> None:
        key = (vhost, component, name)
        self.scoped[key] = value
        self._journal.append(PutRecord("parameter", key, {"value": value}))

    def set_global(self, name: str, value: Any) -> None:
        self.global_[name] = value
        self._journal.append(PutRecord("global_parameter", (name,), {"value": value}))

    def clear_vhost(self, vhost: str) -> None:
        """Forgets every parameter of a deleted vhost."""
        for key in [key for key in self.scoped if key[0] == vhost]:
            del self.scoped[key]
            self._journal.append(DeleteRecord("parameter", key))
