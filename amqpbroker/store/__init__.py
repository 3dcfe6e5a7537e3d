"""Durability: the store contract, an in-memory store and an LMDB store."""

from .base import Recovered, Store, StoredMessage, StoreError
from .memory import MemoryStore

__all__ = ["MemoryStore", "Recovered", "Store", "StoreError", "StoredMessage"]
