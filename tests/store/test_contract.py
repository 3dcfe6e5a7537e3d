"""The store contract, run against the in-memory store and the LMDB store alike.

MemoryStore is the verified fake of LmdbStore: both must answer every question the same way, so
tests of the core that run on the fake say something about the real thing.
"""

from __future__ import annotations

import datetime
import decimal
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amqpbroker.store import MemoryStore, Recovered, Store
from amqpbroker.store.base import (
    DeleteBinding,
    DeleteExchange,
    DeleteMessage,
    DeleteQueue,
    DeleteRecord,
    DeleteVHost,
    Dequeue,
    Enqueue,
    MarkDelivered,
    PutBinding,
    PutExchange,
    PutMessage,
    PutQueue,
    PutRecord,
    PutVHost,
    SetDeliveryCount,
)
from amqpbroker.store.lmdb_store import LmdbStore

STORES = ["memory", "lmdb"]


def open_store(kind: str, path: Path) -> Store:
    if kind == "memory":
        return MemoryStore()
    return LmdbStore(str(path))


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = open_store(request.param, tmp_path / "data")
    yield opened
    opened.close()


class Restartable:
    """A store closed and opened again on the same state, as by a broker stopping and starting."""

    def __init__(self, kind: str, path: Path) -> None:
        self.kind = kind
        self.path = path
        self.store = open_store(kind, path)

    def reopen(self, *, clean: bool = True) -> Store:
        self.store.close(clean=clean)
        if self.kind == "lmdb":
            self.store = open_store(self.kind, self.path)
        return self.store


@pytest.fixture(params=STORES)
def restartable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Restartable]:
    opened = Restartable(request.param, tmp_path / "data")
    yield opened
    opened.store.close()


def entries(store: Store, vhost: str = "/", queue: str = "q") -> list[tuple[int, int]]:
    """The queue's (seq, message_id) entries; `queue_entries` also gives each one's expiry."""
    return [(seq, message_id) for seq, message_id, _ in store.queue_entries(vhost, queue)]


def message(message_id: int, body: bytes = b"body", **fields: str) -> PutMessage:
    return PutMessage(
        message_id, fields.get("exchange", "ex"), fields.get("routing_key", "rk"), b"\x10\x00\x02", body
    )


# What every field-table value type decodes to; arguments must come back exactly as they went in.
ARGUMENTS = {
    "x-string": "text ü",
    "x-int": 42,
    "x-negative": -(2**40),
    "x-bool": True,
    "x-float": 1.5,
    "x-decimal": decimal.Decimal("3.14"),
    "x-bytes": b"\x00\xff",
    "x-none": None,
    "x-timestamp": datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc),
    "x-array": [1, "two", [3], {"four": 4}],
    "x-table": {"nested": {"deeper": b"raw"}},
}


# Recovery of the topology


def test_a_fresh_store_is_empty(store: Store) -> None:
    assert store.recover() == Recovered()
    assert entries(store) == []
    assert store.delivered_upto("/", "q") == -1
    assert store.max_message_id() == -1


def test_vhosts_are_put_and_deleted(store: Store) -> None:
    store.apply([PutVHost("/"), PutVHost("other"), PutVHost("third")])
    store.apply([DeleteVHost("other"), DeleteVHost("never-existed")])
    assert sorted(store.recover().vhosts) == ["/", "third"]


def test_records_are_kept_by_kind_and_key_and_outlive_a_restart(restartable: Restartable) -> None:
    store = restartable.store
    long_name = "n" * 255
    store.apply([
        PutRecord("user", ("alice",), {"password_hash": "x", "tags": ["administrator"]}),
        PutRecord("permission", ("/", "alice"), {"configure": ".*", "write": "", "read": ".*"}),
        PutRecord("policy", (long_name, long_name), {"pattern": "^q", "priority": 1, "definition": {"x": 1.5}}),
        PutRecord("user", ("bob",), {"tags": []}),
    ])
    store.apply([PutRecord("user", ("alice",), {"tags": []}), DeleteRecord("user", ("bob",)),
                 DeleteRecord("user", ("never-existed",))])
    records = sorted(restartable.reopen().recover().records)
    assert records == [
        PutRecord("permission", ("/", "alice"), {"configure": ".*", "write": "", "read": ".*"}),
        PutRecord("policy", (long_name, long_name), {"pattern": "^q", "priority": 1, "definition": {"x": 1.5}}),
        PutRecord("user", ("alice",), {"tags": []}),
    ]


def test_exchanges_come_back_with_every_attribute(store: Store) -> None:
    exchanges = [
        PutExchange("/", "direct-x", "direct", False, False, {}),
        PutExchange("/", "fanout-x", "fanout", True, False, {"alternate-exchange": "ae"}),
        PutExchange("/", "topic-x", "topic", False, True, ARGUMENTS),
        PutExchange("other", "direct-x", "headers", False, False, {}),
    ]
    store.apply([PutVHost("/"), PutVHost("other"), *exchanges])
    assert sorted(store.recover().exchanges) == sorted(exchanges)


def test_putting_an_exchange_again_replaces_it_and_delete_removes_it(store: Store) -> None:
    store.apply([PutExchange("/", "x", "direct", False, False, {})])
    store.apply([
        PutExchange("/", "x", "direct", False, False, {"a": 1}),
        PutExchange("/", "y", "topic", False, False, {}),
    ])
    assert sorted(store.recover().exchanges) == [
        PutExchange("/", "x", "direct", False, False, {"a": 1}),
        PutExchange("/", "y", "topic", False, False, {}),
    ]
    store.apply([DeleteExchange("/", "x"), DeleteExchange("/", "not-there")])
    assert store.recover().exchanges == [PutExchange("/", "y", "topic", False, False, {})]


def test_queues_come_back_with_their_arguments(store: Store) -> None:
    queues = [
        PutQueue("/", "plain", False, {}),
        PutQueue("/", "with-arguments", True, ARGUMENTS),
        PutQueue("other", "plain", False, {"x-max-length": 10}),
    ]
    store.apply(queues)
    assert sorted(store.recover().queues) == sorted(queues)


def test_bindings_are_told_apart_by_every_field(store: Store) -> None:
    bindings = [
        PutBinding("/", "x", "q", "a", {}),
        PutBinding("/", "x", "q", "b", {}),
        PutBinding("/", "x", "q", "a", {"x-match": "any", "k": 1}),
        PutBinding("/", "x", "q2", "a", {}),
        PutBinding("/", "y", "q", "a", {}),
        PutBinding("other", "x", "q", "a", {}),
        PutBinding("/", "x", "q", "a", {}, "exchange"),  # to an exchange named like the queue
    ]
    store.apply(bindings)
    store.apply([bindings[0]])  # putting one again does not duplicate it
    recovered = store.recover().bindings
    assert len(recovered) == len(bindings)
    assert sorted(recovered, key=repr) == sorted(bindings, key=repr)


def test_a_binding_is_deleted_by_equal_arguments_in_any_order(store: Store) -> None:
    store.apply([
        PutBinding("/", "x", "q", "a", {"x-match": "all", "k": 1, "j": "v"}),
        PutBinding("/", "x", "q", "a", {}),
    ])
    store.apply([DeleteBinding("/", "x", "q", "a", {"j": "v", "k": 1, "x-match": "all"})])
    assert store.recover().bindings == [PutBinding("/", "x", "q", "a", {})]
    store.apply([DeleteBinding("/", "x", "q", "a", {}), DeleteBinding("/", "x", "q", "missing", {})])
    assert store.recover().bindings == []


def test_a_binding_is_deleted_by_nested_arguments_in_any_order(store: Store) -> None:
    store.apply([PutBinding("/", "x", "q", "a", {"t": {"a": 1, "b": [{"c": 2, "d": 3}]}})])
    store.apply([DeleteBinding("/", "x", "q", "a", {"t": {"b": [{"d": 3, "c": 2}], "a": 1}})])
    assert store.recover().bindings == []


def test_exchange_to_exchange_and_queue_bindings_are_deleted_apart(store: Store) -> None:
    store.apply([PutBinding("/", "x", "d", "k", {}, "exchange"), PutBinding("/", "x", "d", "k", {}, "queue")])
    store.apply([DeleteBinding("/", "x", "d", "k", {}, "exchange")])
    assert store.recover().bindings == [PutBinding("/", "x", "d", "k", {}, "queue")]


def test_a_binding_with_the_longest_names_and_big_arguments_is_kept(store: Store) -> None:
    name = "n" * 255
    binding = PutBinding("/", name, name, name, {f"header-{i}": "v" * 100 for i in range(50)})
    store.apply([PutExchange("/", name, "headers", False, False, {}), PutQueue("/", name, False, {}), binding])
    assert store.recover().bindings == [binding]
    store.apply([DeleteBinding(*binding)])
    assert store.recover().bindings == []


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
    | st.decimals(allow_nan=False, allow_infinity=False, places=3)
)
_field_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
_tables = st.dictionaries(st.text(min_size=1, max_size=10), _field_values, max_size=5)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arguments=_tables)
def test_any_field_table_round_trips_as_arguments(store: Store, arguments: dict) -> None:
    store.apply([PutQueue("/", "q", False, arguments), PutBinding("/", "x", "q", "k", arguments)])
    recovered = store.recover()
    assert recovered.queues == [PutQueue("/", "q", False, arguments)]
    assert recovered.bindings == [PutBinding("/", "x", "q", "k", arguments)]
    store.apply([DeleteBinding("/", "x", "q", "k", arguments), DeleteQueue("/", "q")])
    assert store.recover() == Recovered()


@pytest.mark.parametrize("lookalike", [{"$bytes": "AAE="}, {"$decimal": "1.5"}, {"$datetime": "2020-01-01T00:00:00"}])
def test_a_table_that_looks_like_an_encoded_value_stays_a_table(store: Store, lookalike: dict) -> None:
    arguments = {"x-table": lookalike, "x-list": [lookalike]}
    store.apply([PutQueue("/", "q", False, arguments)])
    assert store.recover().queues == [PutQueue("/", "q", False, arguments)]


# Messages and queue entries


def test_a_message_is_read_back_header_and_body_apart(store: Store) -> None:
    body = bytes(range(256)) * 1000
    store.apply([PutMessage(7, "exchänge", "routing.key", b"\x90\x00\x0atext/plain\x02", body)])
    assert store.load_header(7) == ("exchänge", "routing.key", b"\x90\x00\x0atext/plain\x02", len(body))
    assert store.load_body(7) == body


def test_empty_names_properties_and_body_are_kept(store: Store) -> None:
    store.apply([PutMessage(0, "", "", b"", b"")])
    assert store.load_header(0) == ("", "", b"", 0)
    assert store.load_body(0) == b""


def test_a_deleted_message_cannot_be_loaded(store: Store) -> None:
    store.apply([message(1), message(2)])
    store.apply([DeleteMessage(1), DeleteMessage(99)])
    with pytest.raises(KeyError):
        store.load_body(1)
    with pytest.raises(KeyError):
        store.load_header(1)
    assert store.load_body(2) == b"body"


def test_max_message_id_is_the_highest_id_in_use(store: Store) -> None:
    ids = [3, 300, 2**33 + 5, 70]
    store.apply([message(i) for i in ids])
    assert store.max_message_id() == 2**33 + 5
    store.apply([DeleteMessage(2**33 + 5)])
    assert store.max_message_id() == 300
    store.apply([DeleteMessage(i) for i in ids])
    assert store.max_message_id() == -1


def test_entries_come_back_in_seq_order(store: Store) -> None:
    seqs = [5, 0, 256, 1, 2**32 + 1, 255, 65536]
    store.apply([message(1)])
    store.apply([Enqueue("/", "q", seq, 1) for seq in seqs])
    assert entries(store) == [(seq, 1) for seq in sorted(seqs)]


def test_entries_of_queues_with_similar_names_stay_apart(store: Store) -> None:
    store.apply([message(1), message(2), message(3), message(4)])
    store.apply([
        Enqueue("/", "q", 0, 1),
        Enqueue("/", "q2", 0, 2),
        Enqueue("/q", "", 0, 3),  # vhost "/q", queue "": the same characters split differently
        Enqueue("other", "q", 0, 4),
    ])
    assert entries(store, "/", "q") == [(0, 1)]
    assert entries(store, "/", "q2") == [(0, 2)]
    assert entries(store, "/q", "") == [(0, 3)]
    assert entries(store, "other", "q") == [(0, 4)]
    assert entries(store, "/", "") == []


def test_an_entry_keeps_its_expiry(store: Store) -> None:
    expires = 1_700_000_000_123
    store.apply([message(1), Enqueue("/", "q", 0, 1), Enqueue("/", "q", 1, 1, expires), Enqueue("/", "r", 0, 1, 0)])
    assert list(store.queue_entries("/", "q")) == [(0, 1, None), (1, 1, expires)]
    assert list(store.queue_entries("/", "r")) == [(0, 1, 0)]


def test_an_entry_keeps_its_latest_delivery_count_and_its_expiry(restartable: Restartable) -> None:
    store = restartable.store
    expires = 1_700_000_000_123
    store.apply([
        PutQueue("/", "q", False, {}), message(1), Enqueue("/", "q", 0, 1), Enqueue("/", "q", 1, 1, expires),
        Enqueue("/", "q", 2, 1), SetDeliveryCount("/", "q", 0, 1),
    ])
    store.apply([SetDeliveryCount("/", "q", 0, 2), SetDeliveryCount("/", "q", 1, 2**32 - 1)])
    assert store.delivery_counts("/", "q") == {0: 2, 1: 2**32 - 1}
    store = restartable.reopen()
    store.recover()
    assert store.delivery_counts("/", "q") == {0: 2, 1: 2**32 - 1}
    assert list(store.queue_entries("/", "q")) == [(0, 1, None), (1, 1, expires), (2, 1, None)]
    store.apply([Dequeue("/", "q", 0)])
    assert store.delivery_counts("/", "q") == {1: 2**32 - 1}
    assert store.delivery_counts("/", "other") == {}


def test_a_delivery_count_for_an_entry_not_stored_is_ignored(store: Store) -> None:
    store.apply([message(1), Enqueue("/", "q", 0, 1), Dequeue("/", "q", 0), SetDeliveryCount("/", "q", 0, 1)])
    store.apply([SetDeliveryCount("/", "q", 5, 1), SetDeliveryCount("/", "nowhere", 0, 1)])
    assert entries(store) == []
    assert store.delivery_counts("/", "q") == {}
    store.apply([Enqueue("/", "q", 0, 1)])
    assert store.delivery_counts("/", "q") == {}  # an entry entered again starts uncounted


def test_delete_queue_removes_its_delivery_counts(store: Store) -> None:
    store.apply([PutQueue("/", "q", False, {}), message(1), Enqueue("/", "q", 0, 1), SetDeliveryCount("/", "q", 0, 3)])
    store.apply([DeleteQueue("/", "q"), PutQueue("/", "q", False, {}), Enqueue("/", "q", 0, 1)])
    assert store.delivery_counts("/", "q") == {}


def test_one_message_may_be_entered_in_many_queues(store: Store) -> None:
    store.apply([message(9), Enqueue("/", "a", 0, 9), Enqueue("/", "b", 4, 9)])
    assert entries(store, "/", "a") == [(0, 9)]
    assert entries(store, "/", "b") == [(4, 9)]


def test_dequeue_removes_exactly_one_entry(store: Store) -> None:
    store.apply([message(1), *(Enqueue("/", "q", seq, 1) for seq in range(5))])
    store.apply([Dequeue("/", "q", 2), Dequeue("/", "q", 0), Dequeue("/", "q", 42), Dequeue("/", "nowhere", 1)])
    assert entries(store) == [(1, 1), (3, 1), (4, 1)]


def test_delete_queue_removes_its_entries_and_delivered_mark_only(store: Store) -> None:
    store.apply([
        PutQueue("/", "q", False, {}),
        PutQueue("/", "q2", False, {}),
        message(1),
        *(Enqueue("/", "q", seq, 1) for seq in range(3)),
        Enqueue("/", "q2", 0, 1),
        MarkDelivered("/", "q", 1),
        MarkDelivered("/", "q2", 0),
    ])
    store.apply([DeleteQueue("/", "q")])
    assert entries(store, "/", "q") == []
    assert store.delivered_upto("/", "q") == -1
    assert entries(store, "/", "q2") == [(0, 1)]
    assert store.delivered_upto("/", "q2") == 0
    assert store.recover().queues == [PutQueue("/", "q2", False, {})]
    # The message content is the core's to delete (other queues may still hold it).
    assert store.load_body(1) == b"body"


def test_a_queue_deleted_and_declared_again_in_one_batch_starts_empty(store: Store) -> None:
    store.apply([PutQueue("/", "q", False, {}), message(1), Enqueue("/", "q", 0, 1), MarkDelivered("/", "q", 0)])
    store.apply([DeleteQueue("/", "q"), PutQueue("/", "q", True, {}), Enqueue("/", "q", 1, 1)])
    assert store.recover().queues == [PutQueue("/", "q", True, {})]
    assert entries(store) == [(1, 1)]
    assert store.delivered_upto("/", "q") == -1


def test_delivered_upto_is_the_latest_mark_per_queue(store: Store) -> None:
    assert store.delivered_upto("/", "q") == -1
    store.apply([MarkDelivered("/", "q", 0)])
    assert store.delivered_upto("/", "q") == 0
    store.apply([MarkDelivered("/", "q", 3), MarkDelivered("/", "q", 2**40), MarkDelivered("/", "other", 7)])
    assert store.delivered_upto("/", "q") == 2**40
    assert store.delivered_upto("/", "other") == 7
    assert store.delivered_upto("v", "q") == -1


def test_a_batch_is_applied_in_order(store: Store) -> None:
    store.apply([
        message(1), Enqueue("/", "q", 0, 1), Dequeue("/", "q", 0), DeleteMessage(1),
        message(2), Enqueue("/", "q", 1, 2),
        PutQueue("/", "gone", False, {}), DeleteQueue("/", "gone"),
    ])
    assert entries(store) == [(1, 2)]
    assert store.max_message_id() == 2
    assert store.recover().queues == []


def test_an_empty_batch_changes_nothing(store: Store) -> None:
    store.apply([PutQueue("/", "q", False, {})])
    store.apply([])
    assert store.recover().queues == [PutQueue("/", "q", False, {})]


# Recovery mends what a crash left


def test_recovery_deletes_messages_no_entry_refers_to(restartable: Restartable, caplog: pytest.LogCaptureFixture) -> None:
    store = restartable.store
    store.apply([PutQueue("/", "q", False, {}), message(1), message(2), message(3)])
    # 2 stayed behind a queue deleted while it was unacknowledged; 3 is entered in a queue not stored.
    store.apply([Enqueue("/", "q", 0, 1), Enqueue("/", "gone", 0, 3)])
    store = restartable.reopen(clean=False)
    with caplog.at_level(logging.INFO, logger="amqpbroker.store"):
        assert store.recover().queues == [PutQueue("/", "q", False, {})]
    assert entries(store) == [(0, 1)]
    assert entries(store, "/", "gone") == []
    assert store.load_body(1) == b"body"
    for message_id in (2, 3):
        with pytest.raises(KeyError):
            store.load_header(message_id)
        with pytest.raises(KeyError):
            store.load_body(message_id)
    assert store.max_message_id() == 1
    assert "deleted 2 stored messages that no queue refers to any more" in caplog.messages
    assert "dropped 1 stored entries of queues that no longer exist" in caplog.messages


def test_an_entry_whose_message_is_missing_is_logged_and_dropped(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    store.apply([
        PutQueue("/", "q", False, {}), message(1), message(2),
        Enqueue("/", "q", 0, 1), Enqueue("/", "q", 1, 5), Enqueue("/", "q", 2, 2),
    ])
    with caplog.at_level(logging.WARNING, logger="amqpbroker.store"):
        store.recover()
    assert entries(store) == [(0, 1), (2, 2)]
    assert caplog.messages == ["queue 'q' in vhost '/': message 5 of entry 1 is missing from the store; skipped it"]
    caplog.clear()
    store.recover()
    assert caplog.messages == []


def test_after_an_unclean_close_every_entry_is_marked_delivered(restartable: Restartable) -> None:
    store = restartable.store
    store.apply([
        PutQueue("/", "q", False, {}), PutQueue("v", "q", False, {}), PutQueue("/", "empty", False, {}),
        message(1), *(Enqueue("/", "q", seq, 1) for seq in range(3)), MarkDelivered("/", "q", 0),
        Enqueue("v", "q", 7, 1), MarkDelivered("v", "q", 9),
    ])
    store = restartable.reopen(clean=False)
    store.recover()
    assert store.delivered_upto("/", "q") == 2
    assert store.delivered_upto("v", "q") == 9  # a mark above the last entry stays
    assert store.delivered_upto("/", "empty") == -1
    # The marks are durable: a clean restart keeps them and marks nothing more.
    store.apply([Enqueue("/", "q", 3, 1)])
    store = restartable.reopen()
    store.recover()
    assert store.delivered_upto("/", "q") == 2


QUORUM = {"x-queue-type": "quorum"}


@pytest.mark.parametrize("clean", [False, True])
def test_after_an_unclean_close_a_quorum_entry_delivered_and_never_counted_counts_one_return(
    restartable: Restartable, clean: bool
) -> None:
    store = restartable.store
    store.apply([
        PutQueue("/", "quorum", False, QUORUM), PutQueue("/", "classic", False, {}), message(1),
        *(Enqueue("/", "quorum", seq, 1, 1_700_000_000_000 if seq == 1 else None) for seq in range(5)),
        *(Enqueue("/", "classic", seq, 1) for seq in range(2)),
        SetDeliveryCount("/", "quorum", 2, 3), MarkDelivered("/", "quorum", 2), MarkDelivered("/", "classic", 1),
    ])
    store = restartable.reopen(clean=clean)
    store.recover()
    # After a crash, 0 and 1 count as out when it came; 2 was out again (or waiting) with its count
    # written ahead; 3 and 4 were never delivered. A clean stop returned (and counted) what was out.
    assert store.delivery_counts("/", "quorum") == ({2: 3} if clean else {0: 1, 1: 1, 2: 3})
    assert list(store.queue_entries("/", "quorum"))[1] == (1, 1, 1_700_000_000_000)
    assert store.delivery_counts("/", "classic") == {}


def test_after_a_clean_close_the_marks_stay_as_they_were(restartable: Restartable) -> None:
    store = restartable.store
    store.apply([PutQueue("/", "q", False, {}), message(1), *(Enqueue("/", "q", seq, 1) for seq in range(3))])
    store.apply([MarkDelivered("/", "q", 0)])
    store = restartable.reopen()
    store.recover()
    assert store.delivered_upto("/", "q") == 0


def test_an_unclean_close_is_remembered_until_a_recovery(restartable: Restartable) -> None:
    store = restartable.store
    store.apply([PutQueue("/", "q", False, {}), message(1), Enqueue("/", "q", 4, 1)])
    restartable.reopen(clean=False)
    store = restartable.reopen()  # opened and closed again without a broker recovering it
    store.recover()
    assert store.delivered_upto("/", "q") == 4
