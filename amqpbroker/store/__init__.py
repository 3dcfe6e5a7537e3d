"""Durability: the store contract, an in-memory store and an LMDB store."""

from .base import Recovered, Store, StoredMessage, StoreError
from .memory import MemoryStore

__all__ = ["MemoryStore", "Recovered", "Store", "StoreError", "StoredMessage", "open_store"]


def open_store(data_dir: str | None) -> Store:
    """LMDB in `data_dir`, or memory when it is None."""
    if data_dir is None:
        return MemoryStore()
    from .lmdb_store import LmdbStore

    return LmdbStore(data_dir)
