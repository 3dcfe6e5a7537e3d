"""The LMDB store: durable state in one memory-mapped file, written one batch per transaction.

Writes happen in one thread at a time (the persister's); each `apply` is one write transaction,
committed and synced before it returns. Reads (message bodies on delivery, recovery) may happen in
any thread. The map grows when it is full; a data directory of another format, or one LMDB cannot
read, is refused rather than overwritten, and one that another broker holds is refused too.

A clean close leaves a `clean` key in `meta`, which the next open takes away: a store opened
without finding it was not closed cleanly, and its recovery marks every entry delivered.

Key layout: names are length-prefixed, so a queue's entries share a prefix and sort by their
big-endian sequence number. A binding's key is a digest of everything that identifies it, which
together can be longer than LMDB allows a key to be.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import decimal
import hashlib
import json
import os
import struct
import threading
from typing import Any, Callable, Iterator, Sequence, TypeVar

import lmdb

from .base import (
    DeleteBinding,
    DeleteExchange,
    DeleteMessage,
    DeleteQueue,
    DeleteRecord,
    DeleteVHost,
    Dequeue,
    Enqueue,
    MarkDelivered,
    Mended,
    Op,
    PutBinding,
    PutExchange,
    PutMessage,
    PutQueue,
    PutRecord,
    PutVHost,
    Recovered,
    SetDeliveryCount,
    Store,
    StoreError,
    counts_deliveries,
    log,
)
from .dirlock import LOCK_FILE, DirectoryLock

FORMAT_VERSION = 4
"""2: the `clean` key and the lock file. A version 1 directory is upgraded in place: it has no
`clean` key, so its first recovery marks every entry delivered (version 1 did not say whether it
was stopped cleanly).
3: an entry may end in a delivery count. A version 2 directory has none and is read as it is; the
new version keeps an older amqpbroker from misreading the entries that have one.
4: each body's length in `sizes`, so that queues count their bytes without reading the bodies.
Upgrading an older directory reads each of its bodies once, at open, to write its length."""
_UPGRADABLE = {1, 2, 3}
T = TypeVar("T")
_INITIAL_MAP_SIZE = 256 * 1024 * 1024
_U64 = struct.Struct(">Q")
# An entry is its message id, then its expiry in milliseconds since the epoch if it expires, then
# its delivery count if a quorum queue ever had it returned: 8, 16, 12 or 20 bytes.
_ENTRY_EXPIRING = struct.Struct(">QQ")
_DELIVERY_COUNT = struct.Struct(">I")
_DATABASES = (b"meta", b"vhosts", b"exchanges", b"queues", b"bindings", b"messages", b"bodies", b"sizes",
              b"entries", b"delivered", b"records")


def _name_key(*names: str) -> bytes:
    out = bytearray()
    for name in names:
        encoded = name.encode()
        out.append(len(encoded))
        out += encoded
    return bytes(out)


def _to_json(value: Any) -> Any:
    """A field value as JSON data; the types JSON lacks become one-key objects tagged with `$`."""
    if isinstance(value, dict):
        table = {key: _to_json(item) for key, item in value.items()}
        # A table that itself looks like a tagged value is wrapped, so it comes back a table.
        if len(table) == 1 and next(iter(table)).startswith("$"):
            return {"$table": table}
        return table
    if isinstance(value, list):
        return [_to_json(item) for item in value]
    if isinstance(value, (bytes, bytearray)):  # a large body is the bytearray it was received into
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime.datetime):
        return {"$datetime": value.isoformat()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store {type(value).__name__} in a record")


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            (tag, item), = value.items()
            if tag == "$table":
                return {key: _from_json(inner) for key, inner in item.items()}
            if tag == "$bytes":
                return base64.b64decode(item)
            if tag == "$decimal":
                return decimal.Decimal(item)
            if tag == "$datetime":
                return datetime.datetime.fromisoformat(item)
        return {key: _from_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    return value


def _dump(record: tuple) -> bytes:
    return json.dumps(_to_json(list(record))).encode()


def _load(data: bytes) -> list:
    return _from_json(json.loads(data))


class LmdbStore(Store):
    def __init__(self, path: str, *, map_size: int = _INITIAL_MAP_SIZE) -> None:
        self.path = path
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create data directory {path}: {exc.strerror}") from None
        names = os.listdir(path)
        has_data = "data.mdb" in names and os.path.getsize(os.path.join(path, "data.mdb")) > 0
        foreign = sorted(name for name in names if name not in ("data.mdb", "lock.mdb", LOCK_FILE))
        if foreign and not has_data:
            raise StoreError(
                f"data directory {path} is not empty and holds no amqpbroker data ({', '.join(foreign[:3])}); "
                "refusing to use it"
            )
        self._directory_lock = DirectoryLock(path)
        try:
            self._open(has_data, map_size)
        except BaseException:
            # A refused directory is left as it was found, without a lock file it did not have.
            self._directory_lock.release(remove=self._directory_lock.created)
            raise

    def _open(self, has_data: bool, map_size: int) -> None:
        path = self.path
        if has_data:
            self._check_existing()
        try:
            self._env = lmdb.open(path, map_size=map_size, max_dbs=len(_DATABASES), readahead=False)
            self._db = {name.decode(): self._env.open_db(name) for name in _DATABASES}
        except lmdb.Error as exc:
            raise StoreError(f"data directory {path} is corrupt or unreadable: {exc}") from None
        # set_mapsize needs every transaction of this process closed: reads and growth share a lock.
        self._lock = threading.Lock()
        self._failed = False
        """A write failed since the store was opened: what the broker wrote may be incomplete."""
        try:
            self._crashed = self._start()
        except BaseException:
            self._env.close()
            raise

    def _check_existing(self) -> None:
        """Refuses a data directory of another format or program, before anything is written to it.

        The check opens the environment read-only and without the lock file, so that a directory it
        refuses is left exactly as it was found.
        """
        try:
            env = lmdb.open(self.path, readonly=True, lock=False, max_dbs=len(_DATABASES))
        except lmdb.Error as exc:
            raise StoreError(f"data directory {self.path} is corrupt or unreadable: {exc}") from None
        try:
            with env.begin() as txn:
                databases = {key for key, _ in txn.cursor()}
                if not databases <= set(_DATABASES):
                    raise StoreError(
                        f"data directory {self.path} holds an LMDB database that is not amqpbroker's; "
                        "refusing to use it"
                    )
                found = None
                if b"meta" in databases:
                    found = txn.get(b"format", db=env.open_db(b"meta", txn=txn, create=False))
        except lmdb.Error as exc:
            raise StoreError(f"data directory {self.path} is corrupt or unreadable: {exc}") from None
        finally:
            env.close()
        if found is None:
            return
        try:
            version = int(found)
        except ValueError:
            raise StoreError(f"data directory {self.path} has an unreadable format version {found!r}") from None
        if version != FORMAT_VERSION and version not in _UPGRADABLE:
            raise StoreError(
                f"data directory {self.path} has format version {version}, this amqpbroker reads version "
                f"{FORMAT_VERSION}; refusing to touch it"
            )

    def _start(self) -> bool:
        """Writes the format version into a new directory, upgrades an older one, and takes the
        `clean` key away; returns True if it was missing (the store was not closed cleanly)."""
        return self._write_transaction(self._start_in)

    def _start_in(self, txn: lmdb.Transaction) -> bool:
        meta = self._db["meta"]
        found = txn.get(b"format", db=meta)
        if found is None:
            if txn.stat(self._db["queues"])["entries"] or txn.stat(self._db["messages"])["entries"]:
                raise StoreError(f"data directory {self.path} has data but no format version; refusing it")
            txn.put(b"format", str(FORMAT_VERSION).encode(), db=meta)
            return False
        if int(found) != FORMAT_VERSION:
            measured = self._measure_bodies(txn)  # every version it upgrades is older than `sizes`
            log.info(
                "data directory %s: format version %s upgraded to %d (%d bodies measured)",
                self.path, found.decode(), FORMAT_VERSION, measured,
            )
            txn.put(b"format", str(FORMAT_VERSION).encode(), db=meta)
        return not txn.delete(b"clean", db=meta)

    def _measure_bodies(self, txn: lmdb.Transaction) -> int:
        """Writes the length of every stored body into `sizes` (format 4); how many there are."""
        sizes = self._db["sizes"]
        count = 0
        for key, body in txn.cursor(db=self._db["bodies"]):
            txn.put(key, _U64.pack(len(body)), db=sizes)
            count += 1
        return count

    def apply(self, ops: Sequence[Op]) -> None:
        self._write_transaction(self._write, ops)

    def _write_transaction(self, write: Callable[..., T], *args: Any) -> T:
        """`write(txn, *args)` in one write transaction, committed and synced; the map grows as needed."""
        try:
            while True:
                try:
                    with self._env.begin(write=True) as txn:
                        return write(txn, *args)
                except lmdb.MapFullError:
                    self._grow()
                except lmdb.Error as exc:
                    raise StoreError(f"cannot write to {self.path}: {exc}") from exc
        except BaseException:
            self._failed = True
            raise

    def _grow(self) -> None:
        with self._lock:
            self._env.set_mapsize(self._env.info()["map_size"] * 2)

    def _write(self, txn: lmdb.Transaction, ops: Sequence[Op]) -> None:
        db = self._db
        for op in ops:
            kind = type(op)
            if kind is Enqueue:
                value = _U64.pack(op.message_id) if op.expires is None else _ENTRY_EXPIRING.pack(op.message_id, op.expires)
                txn.put(_name_key(op.vhost, op.queue) + _U64.pack(op.seq), value, db=db["entries"])
            elif kind is Dequeue:
                txn.delete(_name_key(op.vhost, op.queue) + _U64.pack(op.seq), db=db["entries"])
            elif kind is SetDeliveryCount:
                key = _name_key(op.vhost, op.queue) + _U64.pack(op.seq)
                value = txn.get(key, db=db["entries"])
                if value is not None:
                    kept = value[: len(value) - len(value) % 8]  # without the count it had
                    txn.put(key, kept + _DELIVERY_COUNT.pack(op.delivery_count), db=db["entries"])
            elif kind is PutMessage:
                key = _U64.pack(op.message_id)
                exchange, routing_key = op.exchange.encode(), op.routing_key.encode()
                header = bytes((len(exchange),)) + exchange + bytes((len(routing_key),)) + routing_key + op.properties
                txn.put(key, header, db=db["messages"])
                txn.put(key, op.body, db=db["bodies"])
                txn.put(key, _U64.pack(len(op.body)), db=db["sizes"])
            elif kind is DeleteMessage:
                key = _U64.pack(op.message_id)
                txn.delete(key, db=db["messages"])
                txn.delete(key, db=db["bodies"])
                txn.delete(key, db=db["sizes"])
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
            elif kind is PutRecord:
                txn.put(_record_key(op), _dump((op.kind, list(op.key), op.value)), db=db["records"])
            elif kind is DeleteRecord:
                txn.delete(_record_key(op), db=db["records"])

    @staticmethod
    def _delete_prefix(txn: lmdb.Transaction, db: Any, prefix: bytes) -> None:
        cursor = txn.cursor(db=db)
        if cursor.set_range(prefix):
            while cursor.key().startswith(prefix):
                if not cursor.delete():
                    break

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        try:
            yield
        except lmdb.Error as exc:
            raise StoreError(f"data directory {self.path} is corrupt or unreadable: {exc}") from exc

    def _mend(self) -> Mended:
        mended = self._write_transaction(self._mend_in)
        self._crashed = False
        return mended

    def _mend_in(self, txn: lmdb.Transaction) -> Mended:
        db = self._db
        mended = Mended(crashed=self._crashed)
        queues = set(txn.cursor(db=db["queues"]).iternext(values=False))
        headers, bodies = txn.cursor(db=db["messages"]), txn.cursor(db=db["bodies"])
        complete: dict[bytes, bool] = {}
        """Messages entries refer to: True if both header and body are stored."""
        referenced: set[bytes] = set()
        last_seq: dict[bytes, bytes] = {}
        dropped: list[bytes] = []
        for key, value in txn.cursor(db=db["entries"]):
            queue, seq = key[:-8], key[-8:]
            message_key = value[:8]  # an expiring entry has its expiry after the message id
            found = complete.get(message_key)
            if found is None:
                found = complete[message_key] = headers.set_key(message_key) and bodies.set_key(message_key)
            if queue not in queues:
                mended.queueless += 1
            elif not found:
                vhost, name = _load_names(queue)
                mended.missing.append((vhost, name, _U64.unpack(seq)[0], _U64.unpack(message_key)[0]))
            else:
                referenced.add(message_key)
                last_seq[queue] = seq  # entries come in seq order: the last one stays
                continue
            dropped.append(key)
        for key in dropped:
            txn.delete(key, db=db["entries"])
        for key in list(txn.cursor(db=db["messages"]).iternext(values=False)):
            if key not in referenced:
                if complete.get(key) is not False:  # a header without its body is counted as missing
                    mended.unreferenced += 1
                txn.delete(key, db=db["messages"])
        for name in ("bodies", "sizes"):
            for key in list(txn.cursor(db=db[name]).iternext(values=False)):
                if key not in referenced:
                    txn.delete(key, db=db[name])
        if mended.crashed:
            for queue, seq in last_seq.items():
                if counts_deliveries(PutQueue(*_load(txn.get(queue, db=db["queues"])))):
                    self._count_delivered(txn, queue)
                # Stored as seq + 1, as MarkDelivered writes it.
                mark = _U64.pack(_U64.unpack(seq)[0] + 1)
                txn.put(queue, max(mark, txn.get(queue, b"", db=db["delivered"])), db=db["delivered"])
        return mended

    def _count_delivered(self, txn: lmdb.Transaction, queue: bytes) -> None:
        """Counts a return for each entry of `queue` at or below its delivered mark that has no count."""
        db = self._db
        found = txn.get(queue, db=db["delivered"])
        if found is None:
            return
        end = queue + found  # the key of the first entry above the mark (stored as seq + 1)
        cursor = txn.cursor(db=db["entries"])
        counted = []
        if cursor.set_range(queue):
            for key, value in cursor:
                if key >= end or not key.startswith(queue):
                    break
                if not len(value) % 8:
                    counted.append((key, value + _DELIVERY_COUNT.pack(1)))
        for key, value in counted:
            txn.put(key, value, db=db["entries"])

    def _topology(self) -> Recovered:
        with self._reading(), self._env.begin() as txn:
            db = self._db
            return Recovered(
                vhosts=[_load_names(key)[0] for key, _ in txn.cursor(db=db["vhosts"])],
                exchanges=[PutExchange(*_load(value)) for _, value in txn.cursor(db=db["exchanges"])],
                queues=[PutQueue(*_load(value)) for _, value in txn.cursor(db=db["queues"])],
                bindings=[PutBinding(*_load(value)) for _, value in txn.cursor(db=db["bindings"])],
                records=[_load_record(value) for _, value in txn.cursor(db=db["records"])],
            )

    def queue_entries(self, vhost: str, queue: str) -> Iterator[tuple[int, int, int | None]]:
        prefix = _name_key(vhost, queue)
        with self._reading(), self._env.begin() as txn:
            cursor = txn.cursor(db=self._db["entries"])
            if not cursor.set_range(prefix):
                return
            for key, value in cursor:
                if not key.startswith(prefix):
                    return
                seq = _U64.unpack_from(key, len(prefix))[0]
                if len(value) < _ENTRY_EXPIRING.size:
                    yield seq, _U64.unpack_from(value)[0], None
                else:
                    yield seq, *_ENTRY_EXPIRING.unpack_from(value)

    def delivery_counts(self, vhost: str, queue: str) -> dict[int, int]:
        prefix = _name_key(vhost, queue)
        counts = {}
        with self._reading(), self._env.begin() as txn:
            cursor = txn.cursor(db=self._db["entries"])
            if not cursor.set_range(prefix):
                return counts
            for key, value in cursor:
                if not key.startswith(prefix):
                    break
                if len(value) % 8:
                    counts[_U64.unpack_from(key, len(prefix))[0]] = _DELIVERY_COUNT.unpack_from(value, len(value) - 4)[0]
        return counts

    def delivered_upto(self, vhost: str, queue: str) -> int:
        with self._lock, self._reading(), self._env.begin() as txn:
            found = txn.get(_name_key(vhost, queue), db=self._db["delivered"])
        return -1 if found is None else _U64.unpack(found)[0] - 1

    def load_header(self, message_id: int) -> tuple[str, str, bytes, int]:
        key = _U64.pack(message_id)
        with self._lock, self._reading(), self._env.begin() as txn:
            header = txn.get(key, db=self._db["messages"])
            size = txn.get(key, db=self._db["sizes"])
        if header is None or size is None:
            raise KeyError(message_id)
        exchange_end = 1 + header[0]
        routing_key_end = exchange_end + 1 + header[exchange_end]
        return (
            header[1:exchange_end].decode(),
            header[exchange_end + 1 : routing_key_end].decode(),
            header[routing_key_end:],
            _U64.unpack(size)[0],
        )

    def load_body(self, message_id: int) -> bytes:
        with self._lock, self._reading(), self._env.begin() as txn:
            body = txn.get(_U64.pack(message_id), db=self._db["bodies"])
        if body is None:
            raise KeyError(message_id)
        return body

    def max_message_id(self) -> int:
        with self._reading(), self._env.begin() as txn:
            cursor = txn.cursor(db=self._db["messages"])
            return _U64.unpack(cursor.key())[0] if cursor.last() else -1

    def size_on_disk(self) -> int:
        # Allocated blocks, so that LMDB's sparse map counts what it holds, not what it may grow to.
        total = 0
        with os.scandir(self.path) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_blocks * 512
        return total

    def close(self, *, clean: bool = True) -> None:
        if clean and not self._crashed and not self._failed:
            try:
                with self._env.begin(write=True) as txn:
                    txn.put(b"clean", b"", db=self._db["meta"])
            except lmdb.Error as exc:
                log.warning("data directory %s: cannot record the clean stop (%s); the next start "
                            "will take it for a crash", self.path, exc)
        self._env.close()
        self._directory_lock.release()


def _load_names(key: bytes) -> list[str]:
    """The names `_name_key` encoded."""
    names = []
    start = 0
    while start < len(key):
        end = start + 1 + key[start]
        names.append(key[start + 1 : end].decode())
        start = end
    return names


def _binding_key(op: PutBinding | DeleteBinding) -> bytes:
    # Names and arguments together can outgrow LMDB's 511-byte keys: the key is their digest, and
    # the record itself is the value.
    arguments = json.dumps(_to_json(op.arguments), sort_keys=True).encode()
    identity = _name_key(op.vhost, op.exchange, op.destination_type, op.destination, op.routing_key) + arguments
    return hashlib.blake2b(identity, digest_size=32).digest()


def _record_key(op: PutRecord | DeleteRecord) -> bytes:
    # Like a binding's: the names may outgrow LMDB's keys, so the key is their digest.
    return hashlib.blake2b(_name_key(op.kind, *op.key), digest_size=32).digest()


def _load_record(data: bytes) -> PutRecord:
    kind, key, value = _load(data)
    return PutRecord(kind, tuple(key), value)
