"""What only the LMDB store can show: state found again on reopening, a map that grows, a data
directory held by one store at a time, and data directories it refuses to touch (and the
`amqpbroker` command's message when it does)."""

from __future__ import annotations

import logging
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Callable

import lmdb
import pytest

from amqpbroker import cli
from amqpbroker.server import Server, single_error
from amqpbroker.store import StoreError
from amqpbroker.store.base import (
    DeleteMessage,
    Dequeue,
    Enqueue,
    MarkDelivered,
    PutBinding,
    PutExchange,
    PutMessage,
    PutQueue,
    PutVHost,
    SetDeliveryCount,
)
from amqpbroker.store.lmdb_store import FORMAT_VERSION, LmdbStore


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file of the directory with its bytes and modification time."""
    return {
        str(path.relative_to(directory)): (path.read_bytes() if path.is_file() else b"", path.stat().st_mtime_ns)
        for path in sorted(directory.rglob("*"))
    }


def test_everything_is_found_again_after_reopening(tmp_path: Path) -> None:
    path = str(tmp_path / "data")
    topology = [
        PutVHost("/"),
        PutVHost("other"),
        PutExchange("/", "x", "topic", False, False, {"alternate-exchange": "ae"}),
        PutQueue("/", "q", False, {"x-max-length": 5, "x-bytes": b"\x01"}),
        PutQueue("other", "q", True, {}),
        PutBinding("/", "x", "q", "a.#", {}),
    ]
    store = LmdbStore(path)
    store.apply(topology)
    store.apply([PutMessage(i, "x", f"a.{i}", b"\x10\x00\x02", b"body %d" % i) for i in range(10)])
    store.apply([Enqueue("/", "q", i, i) for i in range(10)] + [Enqueue("other", "q", 0, 3)])
    store.apply([Dequeue("/", "q", 0), DeleteMessage(0), MarkDelivered("/", "q", 4)])
    store.close()

    store = LmdbStore(path)
    try:
        recovered = store.recover()
        assert sorted(recovered.vhosts) == ["/", "other"]
        assert recovered.exchanges == [topology[2]]
        assert sorted(recovered.queues) == sorted(topology[3:5])
        assert recovered.bindings == [topology[5]]
        assert list(store.queue_entries("/", "q")) == [(i, i, None) for i in range(1, 10)]
        assert list(store.queue_entries("other", "q")) == [(0, 3, None)]
        assert store.delivered_upto("/", "q") == 4
        assert store.delivered_upto("other", "q") == -1
        assert store.load_header(9) == ("x", "a.9", b"\x10\x00\x02", len(b"body 9"))
        assert store.load_body(9) == b"body 9"
        assert store.max_message_id() == 9
        with pytest.raises(KeyError):
            store.load_body(0)
    finally:
        store.close()


def test_the_map_grows_as_data_outgrows_it(tmp_path: Path) -> None:
    path = str(tmp_path / "data")
    store = LmdbStore(path, map_size=1 << 20)
    body = os.urandom(100_000)
    # One batch bigger than the whole initial map, then many that fill it up again and again.
    store.apply([PutMessage(i, "", "q", b"", body) for i in range(30)])
    for start in range(30, 200, 10):
        store.apply([PutMessage(i, "", "q", b"", body) for i in range(start, start + 10)])
    store.apply([Enqueue("/", "q", i, i) for i in range(200)])
    assert all(store.load_body(i) == body for i in range(200))
    store.close()

    store = LmdbStore(path, map_size=1 << 20)  # a smaller map than the data: LMDB takes the file's size
    try:
        assert len(list(store.queue_entries("/", "q"))) == 200
        assert all(store.load_body(i) == body for i in range(0, 200, 17))
        store.apply([PutMessage(1000, "", "q", b"", body * 10)])
        assert store.load_body(1000) == body * 10
    finally:
        store.close()


def test_a_batch_that_cannot_be_written_leaves_no_trace(tmp_path: Path) -> None:
    store = LmdbStore(str(tmp_path / "data"))
    try:
        store.apply([PutQueue("/", "kept", False, {})])
        with pytest.raises(Exception):
            store.apply([
                PutQueue("/", "half", False, {}),
                PutMessage(1, "", "half", b"", b"body"),
                PutExchange("/", "x", "direct", False, False, {"unstorable": object()}),
            ])
        assert store.recover().queues == [PutQueue("/", "kept", False, {})]
        assert store.max_message_id() == -1
    finally:
        store.close()


def test_a_new_directory_is_created_and_an_empty_one_is_used(tmp_path: Path) -> None:
    LmdbStore(str(tmp_path / "a" / "b" / "c")).close()
    (tmp_path / "empty").mkdir()
    LmdbStore(str(tmp_path / "empty")).close()
    # A data file that was created but never written (a crash at the very first start).
    (tmp_path / "unwritten").mkdir()
    (tmp_path / "unwritten" / "data.mdb").write_bytes(b"")
    store = LmdbStore(str(tmp_path / "unwritten"))
    store.apply([PutQueue("/", "q", False, {})])
    store.close()


def raw_edit(directory: Path, edit: Callable[[lmdb.Transaction, lmdb.Environment], None]) -> None:
    """Changes a closed data directory behind the store's back, as a damaged disk or an older
    broker would have left it."""
    env = lmdb.open(str(directory), max_dbs=16)
    with env.begin(write=True) as txn:
        edit(txn, env)
    env.close()


def test_an_entry_whose_body_is_missing_is_dropped_with_its_header(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "data"
    store = LmdbStore(str(path))
    store.apply([PutQueue("/", "q", False, {}), *(PutMessage(i, "", "q", b"", b"%d" % i) for i in range(3))])
    store.apply([Enqueue("/", "q", i, i) for i in range(3)])
    store.close()
    raw_edit(path, lambda txn, env: txn.delete(struct.pack(">Q", 1), db=env.open_db(b"bodies", txn=txn)))
    store = LmdbStore(str(path))
    try:
        with caplog.at_level(logging.INFO, logger="amqpbroker.store"):
            store.recover()
        assert list(store.queue_entries("/", "q")) == [(0, 0, None), (2, 2, None)]
        with pytest.raises(KeyError):
            store.load_header(1)
        assert caplog.messages == ["queue 'q' in vhost '/': message 1 of entry 1 is missing from the store; skipped it"]
    finally:
        store.close()


def test_a_store_whose_write_failed_is_not_closed_cleanly(tmp_path: Path) -> None:
    path = str(tmp_path / "data")
    store = LmdbStore(path)
    store.apply([PutQueue("/", "q", False, {}), PutMessage(1, "", "q", b"", b""), Enqueue("/", "q", 0, 1)])
    with pytest.raises(TypeError):
        store.apply([PutExchange("/", "x", "direct", False, False, {"unstorable": object()})])
    store.close()
    store = LmdbStore(path)
    try:
        store.recover()
        assert store.delivered_upto("/", "q") == 0
    finally:
        store.close()


def test_a_version_1_directory_is_upgraded_and_its_messages_marked_delivered(tmp_path: Path) -> None:
    path = tmp_path / "data"
    store = LmdbStore(str(path))
    store.apply([PutQueue("/", "q", False, {}), PutMessage(1, "", "q", b"", b"kept")])
    store.apply([Enqueue("/", "q", 0, 1), Enqueue("/", "q", 1, 1)])
    store.close()

    def version_1(txn: lmdb.Transaction, env: lmdb.Environment) -> None:
        meta = env.open_db(b"meta", txn=txn)
        txn.put(b"format", b"1", db=meta)
        txn.delete(b"clean", db=meta)  # version 1 did not say whether it was stopped cleanly

    raw_edit(path, version_1)
    store = LmdbStore(str(path))
    try:
        assert store.recover().queues == [PutQueue("/", "q", False, {})]
        assert list(store.queue_entries("/", "q")) == [(0, 1, None), (1, 1, None)]
        assert store.delivered_upto("/", "q") == 1
        assert store.load_body(1) == b"kept"
    finally:
        store.close()
    formats = []
    raw_edit(path, lambda txn, env: formats.append(txn.get(b"format", db=env.open_db(b"meta", txn=txn))))
    assert formats == [str(FORMAT_VERSION).encode()]


def test_a_version_2_directory_is_upgraded_and_its_entries_take_delivery_counts(tmp_path: Path) -> None:
    path = tmp_path / "data"
    store = LmdbStore(str(path))
    store.apply([PutQueue("/", "q", False, {}), PutMessage(1, "", "q", b"", b"kept")])
    store.apply([Enqueue("/", "q", 0, 1), Enqueue("/", "q", 1, 1, 1_700_000_000_000), MarkDelivered("/", "q", 0)])
    store.close()
    raw_edit(path, lambda txn, env: txn.put(b"format", b"2", db=env.open_db(b"meta", txn=txn)))
    store = LmdbStore(str(path))
    try:
        store.recover()
        assert list(store.queue_entries("/", "q")) == [(0, 1, None), (1, 1, 1_700_000_000_000)]
        assert store.delivered_upto("/", "q") == 0  # version 2 was stopped cleanly
        assert store.delivery_counts("/", "q") == {}
        store.apply([SetDeliveryCount("/", "q", 0, 1), SetDeliveryCount("/", "q", 1, 2)])
        assert store.delivery_counts("/", "q") == {0: 1, 1: 2}
    finally:
        store.close()
    formats = []
    raw_edit(path, lambda txn, env: formats.append(txn.get(b"format", db=env.open_db(b"meta", txn=txn))))
    assert formats == [str(FORMAT_VERSION).encode()]


def test_a_version_3_directory_is_upgraded_and_its_bodies_are_measured_once_at_open(tmp_path: Path) -> None:
    path = tmp_path / "data"
    store = LmdbStore(str(path))
    store.apply([PutQueue("/", "q", False, {}), PutMessage(1, "", "q", b"", b"kept"), Enqueue("/", "q", 0, 1)])
    store.apply([PutMessage(2, "", "q", b"", b"x" * 300_000), Enqueue("/", "q", 1, 2)])
    store.close()

    def version_3(txn: lmdb.Transaction, env: lmdb.Environment) -> None:
        txn.put(b"format", b"3", db=env.open_db(b"meta", txn=txn))
        txn.drop(env.open_db(b"sizes", txn=txn), delete=True)

    raw_edit(path, version_3)
    LmdbStore(str(path)).close()  # opened and closed: nothing but the upgrade happened
    found: dict[int, int] = {}

    def read_sizes(txn: lmdb.Transaction, env: lmdb.Environment) -> None:
        for key, value in txn.cursor(db=env.open_db(b"sizes", txn=txn)):
            found[int.from_bytes(key, "big")] = int.from_bytes(value, "big")
        found[-1] = int(txn.get(b"format", db=env.open_db(b"meta", txn=txn)))

    raw_edit(path, read_sizes)
    assert found == {1: len(b"kept"), 2: 300_000, -1: FORMAT_VERSION}
    store = LmdbStore(str(path))
    try:
        store.recover()
        assert store.load_header(1)[3] == len(b"kept")
        store.apply([PutMessage(3, "", "q", b"", b"new body")])
        assert store.load_header(3)[3] == len(b"new body")
    finally:
        store.close()


def test_a_directory_is_held_by_one_store_at_a_time(tmp_path: Path) -> None:
    path = str(tmp_path / "data")
    first = LmdbStore(path)
    first.apply([PutQueue("/", "q", False, {})])
    with pytest.raises(StoreError) as refused:
        LmdbStore(path)
    assert str(refused.value) == (
        f"data directory {path} is in use by another broker (process {os.getpid()}); "
        "stop it first, or use another data directory"
    )
    assert first.recover().queues == [PutQueue("/", "q", False, {})]  # the refused one did not touch it
    first.close()
    second = LmdbStore(path)
    try:
        assert second.recover().queues == [PutQueue("/", "q", False, {})]
    finally:
        second.close()


# Data directories that must be refused, untouched


def newer_format(directory: Path) -> None:
    env = lmdb.open(str(directory), max_dbs=4)
    with env.begin(write=True) as txn:
        txn.put(b"format", str(FORMAT_VERSION + 1).encode(), db=env.open_db(b"meta", txn=txn))
    env.close()


def unknown_older_format(directory: Path) -> None:
    env = lmdb.open(str(directory), max_dbs=4)
    with env.begin(write=True) as txn:
        txn.put(b"format", b"0", db=env.open_db(b"meta", txn=txn))
    env.close()


def unreadable_format(directory: Path) -> None:
    env = lmdb.open(str(directory), max_dbs=4)
    with env.begin(write=True) as txn:
        txn.put(b"format", b"one", db=env.open_db(b"meta", txn=txn))
    env.close()


def garbage_data_file(directory: Path) -> None:
    directory.mkdir()
    (directory / "data.mdb").write_bytes(os.urandom(64 * 1024))


def tiny_garbage_data_file(directory: Path) -> None:
    directory.mkdir()
    (directory / "data.mdb").write_bytes(b"not lmdb")


def foreign_files(directory: Path) -> None:
    directory.mkdir()
    (directory / "notes.txt").write_text("my own files\n")
    (directory / "photos").mkdir()


def foreign_lmdb(directory: Path) -> None:
    env = lmdb.open(str(directory))
    with env.begin(write=True) as txn:
        txn.put(b"somebody else's", b"data")
    env.close()


REFUSED = {
    "newer format version": (newer_format, f"has format version {FORMAT_VERSION + 1}"),
    "unknown older format version": (unknown_older_format, "has format version 0"),
    "unreadable format version": (unreadable_format, "unreadable format version"),
    "garbage data file": (garbage_data_file, "is corrupt or unreadable"),
    "tiny garbage data file": (tiny_garbage_data_file, "is corrupt or unreadable"),
    "foreign files": (foreign_files, "is not empty and holds no amqpbroker data"),
    "another program's LMDB": (foreign_lmdb, "not amqpbroker's"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_a_data_directory_that_is_not_ours_is_refused_untouched(tmp_path: Path, case: str) -> None:
    make, reason = REFUSED[case]
    directory = tmp_path / "data"
    make(directory)
    before = snapshot(directory)
    with pytest.raises(StoreError) as refused:
        LmdbStore(str(directory))
    assert str(directory) in str(refused.value)
    assert reason in str(refused.value)
    assert snapshot(directory) == before


@pytest.mark.parametrize("case", ["newer format version", "garbage data file", "foreign files"])
def test_the_command_prints_why_and_exits_1(tmp_path: Path, case: str) -> None:
    make, reason = REFUSED[case]
    directory = tmp_path / "data"
    make(directory)
    before = snapshot(directory)
    result = subprocess.run(
        [sys.executable, "-m", "amqpbroker", "--no-http", "--no-metrics", "--host", "127.0.0.1", "--port", "0",
         "--data-dir", str(directory)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert f"amqpbroker: data directory {directory}" in result.stderr
    assert reason in result.stderr
    assert "Traceback" not in result.stderr
    assert "listening on" not in result.stderr
    assert snapshot(directory) == before


def test_the_command_reports_a_store_that_fails_during_recovery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def unreadable(store: LmdbStore) -> None:
        raise StoreError(f"data directory {store.path} is corrupt or unreadable: MDB_CORRUPTED (simulated)")

    monkeypatch.setattr(LmdbStore, "recover", unreadable)
    directory = tmp_path / "data"
    assert cli.main(["--host", "127.0.0.1", "--port", "0", "--data-dir", str(directory)]) == 1
    assert f"amqpbroker: data directory {directory} is corrupt or unreadable" in capsys.readouterr().err


def test_the_command_leaves_the_store_unclean_when_serving_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "data"
    store = LmdbStore(str(directory))
    store.apply([PutVHost("/"), PutQueue("/", "q", False, {}), PutMessage(1, "", "q", b"", b""), Enqueue("/", "q", 0, 1)])
    store.close()

    async def broken(server: object, **kwargs: object) -> None:
        raise RuntimeError("a bug while serving: deliveries may have gone unrecorded")

    monkeypatch.setattr(Server, "serve", broken)
    with pytest.raises(BaseExceptionGroup) as raised:
        cli.main(["--host", "127.0.0.1", "--port", "0", "--data-dir", str(directory)])
    assert isinstance(single_error(raised.value), RuntimeError)
    store = LmdbStore(str(directory))
    try:
        store.recover()
        assert store.delivered_upto("/", "q") == 0
    finally:
        store.close()
