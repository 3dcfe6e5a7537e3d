"""The LMDB store: durable state in one memory-mapped file, written one batch per transaction.

Writes happen in one thread at a time (the persister's); each `apply` is one write transaction,
committed and synced before it returns. Reads (message bodies on delivery, recovery) may happen in
any thread. The map grows when it is full; a data directory of another format, or one LMDB cannot
read, is refused rather than overwritten.

Key layout: names are length-prefixed, so a queue's entries share a prefix and sort by their
big-endian sequence number.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import os
import struct
import threading
from typing import Any, Iterator, Sequence

import lmdb

from .base import (
    DeleteBinding,
    DeleteExchange,
    DeleteMessage,
    DeleteQueue,
    DeleteVHost,
    Dequeue,
    Enqueue,
    MarkDelivered,
    Op,
    PutBinding,
    PutExchange,
    PutMessage,
    PutQueue,
    PutVHost,
    Recovered,
    Store,
    StoreError,
)

FORMAT_VERSION = 1
_INITIAL_MAP_SIZE = 256 * 1024 * 1024
_U64 = struct.Struct(">Q")
_DATABASES = (b"meta", b"vhosts", b"exchanges", b"queues", b"bindings", b"messages", b"bodies", b"entries",
              b"delivered")


def _name_key(*names: str) -> bytes:
    out = bytearray()
    for name in names:
        encoded = name.encode()
        out.append(len(encoded))
        out += encoded
    return bytes(out)


def _encode_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime.datetime):
        return {"$datetime": value.isoformat()}
    raise TypeError(f"cannot store {type(value).__name__} in a record")


def _decode_object(obj: dict) -> Any:
    if len(obj) == 1:
        (tag, value), = obj.items()
        if tag == "$bytes":
            return base64.b64decode(value)
        if tag == "$decimal":
            return decimal.Decimal(value)
        if tag == "$datetime":
            return datetime.datetime.fromisoformat(value)
    return obj


def _dump(record: tuple) -> bytes:
    return json.dumps(list(record), default=_encode_value).encode()


def _load(data: bytes) -> list:
    return json.loads(data, object_hook=_decode_object)


class LmdbStore(Store):
    def __init__(self, path: str, *, map_size: int = _INITIAL_MAP_SIZE) -> None:
        self.path = path
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create data directory {path}: {exc.strerror}") from None
        foreign = [n for n in os.listdir(path) if n not in ("data.mdb", "lock.mdb")]
        if foreign and "data.mdb" not in os.listdir(path):
            raise StoreError(
                f"data directory {path} is not empty and holds no amqpbroker data ({', '.join(sorted(foreign)[:3])}); "
                "refusing to use it"
            )
        try:
            self._env = lmdb.open(path, map_size=map_size, max_dbs=len(_DATABASES), readahead=False)
            self._db = {name.decode(): self._env.open_db(name) for name in _DATABASES}
        except lmdb.Error as exc:
            raise StoreError(f"data directory {path} is corrupt or unreadable: {exc}") from None
        # set_mapsize needs every transaction of this process closed: reads and growth share a lock.
        self._lock = threading.Lock()
        self._check_format()

    def _check_format(self) -> None:
        with self._env.begin(write=True) as txn:
            found = txn.get(b"format", db=self._db["meta"])
            if found is None:
                if txn.stat(self._db["queues"])["entries"] or txn.stat(self._db["messages"])["entries"]:
                    raise StoreError(f"data directory {self.path} has data but no format version; refusing it")
                txn.put(b"format", str(FORMAT_VERSION).encode(), db=self._db["meta"])
                return
        try:
            version = int(found)
        except ValueError:
            raise StoreError(f"data directory {self.path} has an unreadable format version {found!r}") from None
        if version != FORMAT_VERSION:
            raise StoreError(
                f"data directory {self.path} has format version {version}, this amqpbroker reads version "
                f"{FORMAT_VERSION}; refusing to touch it"
            )

    def apply(self, ops: Sequence[Op]) -> None:
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    self._write(txn, ops)
                return
            except lmdb.MapFullError:
                self._grow()
            except lmdb.Error as exc:
                raise StoreError(f"cannot write to {self.path}: {exc}") from exc

    def _grow(self) -> None:
        with self._lock:
            self._env.set_mapsize(self._env.info()["map_size"] * 2)

    def _write(self, txn: lmdb.Transaction, ops: Sequence[Op]) -> None:
        db = self._db
        for op in ops:
            kind = type(op)
            if kind is Enqueue:
                txn.put(_name_key(op.vhost, op.queue) + _U64.pack(op.seq), _U64.pack(op.message_id), db=db["entries"])
            elif kind is Dequeue:
                txn.delete(_name_key(op.vhost, op.queue) + _U64.pack(op.seq), db=db["entries"])
            elif kind is PutMessage:
                key = _U64.pack(op.message_id)
                exchange, routing_key = op.exchange.encode(), op.routing_key.encode()
                header = bytes((len(exchange),)) + exchange + bytes((len(routing_key),)) + routing_key + op.properties
                txn.put(key, header, db=db["messages"])
                txn.put(key, op.body, db=db["bodies"])
            elif kind is DeleteMessage:
                key = _U64.pack(op.message_id)
                txn.delete(key, db=db["messages"])
                txn.delete(key, db=db["bodies"])
            elif kind is MarkDelivered:
                txn.put(_name_key(op.vhost, op.queue), _U64.pack(op.seq + 1), db=db["delivered"])
            elif kind is PutVHost:
                txn.put(_name_key(op.name), b"", db=db["vhosts"])
            elif kind is DeleteVHost:
                txn.delete(_name_key(op.name), db=db["vhosts"])
            elif kind is PutExchange:
                txn.put(_name_key(op.vhost, op.name), _dump(op), db=db["exchanges"])
            elif kind is DeleteExchange:
                txn.delete(_name_key(op.vhost, op.name), db=db["exchanges"])
            elif kind is PutQueue:
                txn.put(_name_key(op.vhost, op.name), _dump(op), db=db["queues"])
            elif kind is DeleteQueue:
                key = _name_key(op.vhost, op.name)
                txn.delete(key, db=db["queues"])
                txn.delete(key, db=db["delivered"])
                self._delete_prefix(txn, db["entries"], key)
            elif kind is PutBinding:
                txn.put(_binding_key(op), _dump(op), db=db["bindings"])
            elif kind is DeleteBinding:
                txn.delete(_binding_key(op), db=db["bindings"])

    @staticmethod
    def _delete_prefix(txn: lmdb.Transaction, db: Any, prefix: bytes) -> None:
        cursor = txn.cursor(db=db)
        if cursor.set_range(prefix):
            while cursor.key().startswith(prefix):
                if not cursor.delete():
                    break

    def recover(self) -> Recovered:
        with self._env.begin() as txn:
            db = self._db
            return Recovered(
                vhosts=[_load_name(key) for key, _ in txn.cursor(db=db["vhosts"])],
                exchanges=[PutExchange(*_load(value)) for _, value in txn.cursor(db=db["exchanges"])],
                queues=[PutQueue(*_load(value)) for _, value in txn.cursor(db=db["queues"])],
                bindings=[PutBinding(*_load(value)) for _, value in txn.cursor(db=db["bindings"])],
            )

    def queue_entries(self, vhost: str, queue: str) -> Iterator[tuple[int, int]]:
        prefix = _name_key(vhost, queue)
        with self._env.begin() as txn:
            cursor = txn.cursor(db=self._db["entries"])
            if not cursor.set_range(prefix):
                return
            for key, value in cursor:
                if not key.startswith(prefix):
                    return
                yield _U64.unpack_from(key, len(prefix))[0], _U64.unpack(value)[0]

    def delivered_upto(self, vhost: str, queue: str) -> int:
        with self._lock, self._env.begin() as txn:
            found = txn.get(_name_key(vhost, queue), db=self._db["delivered"])
        return -1 if found is None else _U64.unpack(found)[0] - 1

    def load_header(self, message_id: int) -> tuple[str, str, bytes]:
        with self._lock, self._env.begin() as txn:
            header = txn.get(_U64.pack(message_id), db=self._db["messages"])
        exchange_end = 1 + header[0]
        routing_key_end = exchange_end + 1 + header[exchange_end]
        return (
            header[1:exchange_end].decode(),
            header[exchange_end + 1 : routing_key_end].decode(),
            header[routing_key_end:],
        )

    def load_body(self, message_id: int) -> bytes:
        with self._lock, self._env.begin() as txn:
            return txn.get(_U64.pack(message_id), db=self._db["bodies"])

    def max_message_id(self) -> int:
        with self._env.begin() as txn:
            cursor = txn.cursor(db=self._db["messages"])
            return _U64.unpack(cursor.key())[0] if cursor.last() else -1

    def close(self) -> None:
        self._env.close()


def _load_name(key: bytes) -> str:
    return key[1 : 1 + key[0]].decode()


def _binding_key(op: PutBinding | DeleteBinding) -> bytes:
    arguments = json.dumps(op.arguments, sort_keys=True, default=_encode_value).encode()
    return _name_key(op.vhost, op.exchange, op.destination_type, op.destination, op.routing_key) + arguments
