"""Definitions: export and import in RabbitMQ's format, checked against a file RabbitMQ 3.10.8 exported.

The fixture `tests/fixtures/rabbitmq-3.10.8-definitions.json` is RabbitMQ's `GET /api/definitions`
after declaring a vhost `pd-defs` with every exchange type, classic, quorum, priority and
transient queues with arguments, queue and exchange-to-exchange bindings (headers arguments, a
binding from `amq.direct`), four policies, and a user `pd-user` (password `pd-secret`) with
permissions; of the export, only the vhosts `/` and `pd-defs`, the users guest and pd-user, their
permissions in those vhosts and the objects of `pd-defs` were kept. Its `topic_permissions` were
taken from another RabbitMQ 3.10.8 export, of pd-user's topic permissions on `amq.topic` and
`pd.topic` in `pd-defs`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from amqpbroker import core
from amqpbroker.core.definitions import DefinitionsError, export_definitions, import_definitions
from amqpbroker.store import open_store

from .conftest import Peer

FIXTURE = Path(__file__).parent.parent / "fixtures" / "rabbitmq-3.10.8-definitions.json"
TOPOLOGY = ("parameters", "global_parameters", "policies", "queues", "exchanges", "bindings")
SECTIONS = ("users", "vhosts", "permissions", "topic_permissions", *TOPOLOGY)


def rabbitmq_definitions() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def same_items(a: list[dict], b: list[dict]) -> bool:
    """Whether two sections list the same items, in any order (RabbitMQ's order is its tables')."""
    def key(item: dict) -> str:
        return json.dumps(item, sort_keys=True)

    return sorted(map(key, a)) == sorted(map(key, b))


@pytest.fixture
def imported() -> core.Broker:
    broker = core.Broker()
    import_definitions(broker, rabbitmq_definitions())
    return broker


def test_a_rabbitmq_export_imports_and_exports_back_the_same(imported) -> None:
    original = rabbitmq_definitions()
    exported = export_definitions(imported)
    assert list(exported) == list(SECTIONS)
    for section in SECTIONS:
        assert same_items(exported[section], original[section]), section


def test_imported_users_log_in_with_their_rabbitmq_passwords(imported) -> None:
    assert imported.authenticate("pd-user", "pd-secret")
    assert imported.authenticate("guest", "guest")
    assert not imported.authenticate("pd-user", "guest")


def test_imported_objects_work(imported) -> None:
    vhost = imported.vhosts["pd-defs"]
    classic = vhost.queues["pd.classic"]
    # The argument's 100 and the policy pd-limits' 50: the smaller wins.
    assert classic.settings.max_length == 50
    assert classic.settings.dead_letter_exchange == "pd.fanout"
    assert vhost.queues["pd.quorum"].settings.delivery_limit == 3
    assert vhost.exchanges["pd.direct"].alternate_exchange == "pd.fanout"
    assert {queue.name for queue in vhost.route(vhost.exchanges["pd.topic"], "orders.1.created", None)} == {
        "pd.quorum"
    }
    headers = {"kind": "urgent"}
    assert {queue.name for queue in vhost.route(vhost.exchanges["pd.topic"], "audit.x", headers)} == {"pd.priority"}


def test_the_export_leaves_out_what_the_broker_makes_and_exclusive_queues() -> None:
    broker = core.Broker()
    peer = Peer(broker)
    peer.declare("shared")
    peer.declare("mine", exclusive=True)
    peer.bind("mine", "amq.direct", "k")
    peer.bind("shared", "amq.direct", "k")
    exported = export_definitions(broker)
    assert exported["exchanges"] == []
    assert exported["queues"] == [
        {"name": "shared", "vhost": "/", "durable": False, "auto_delete": False, "arguments": {}}
    ]
    assert exported["bindings"] == [
        {"source": "amq.direct", "vhost": "/", "destination": "shared", "destination_type": "queue",
         "routing_key": "k", "arguments": {}}
    ]


def test_one_vhosts_export_names_no_vhost_but_in_its_policies(imported) -> None:
    exported = export_definitions(imported, vhost="pd-defs")
    assert list(exported) == ["parameters", "policies", "queues", "exchanges", "bindings"]
    for section in ("queues", "exchanges", "bindings"):
        assert exported[section] and all("vhost" not in item for item in exported[section])
    assert all(policy["vhost"] == "pd-defs" for policy in exported["policies"])


def test_one_vhosts_import_goes_to_that_vhost() -> None:
    broker = core.Broker()
    broker.add_vhost("v2")
    import_definitions(broker, {"queues": [{"name": "q", "vhost": "elsewhere", "durable": True}]}, vhost="v2")
    assert "q" in broker.vhosts["v2"].queues


def test_what_exists_stays_and_bindings_to_nothing_are_skipped() -> None:
    broker = core.Broker()
    Peer(broker).declare("q", arguments={"x-max-length": 1})
    import_definitions(broker, {
        "queues": [{"name": "q", "vhost": "/", "durable": True, "auto_delete": False, "arguments": {}}],
        "bindings": [{"source": "amq.fanout", "vhost": "/", "destination": "nothing", "destination_type": "queue",
                      "routing_key": "", "arguments": {}}],
    })
    queue = broker.vhosts["/"].queues["q"]
    assert (queue.durable, queue.arguments) == (False, {"x-max-length": 1})
    assert broker.vhosts["/"].exchanges["amq.fanout"].bindings == {}


def test_an_operator_policy_imports_as_the_parameter_rabbitmq_exports_it_as() -> None:
    broker = core.Broker()
    Peer(broker).declare("capped", arguments={"x-max-length": 10})
    value = {"pattern": "^capped$", "definition": {"max-length": 2}, "priority": 0, "apply-to": "queues"}
    parameter = {"value": value, "vhost": "/", "component": "operator_policy", "name": "cap"}
    import_definitions(broker, {"parameters": [parameter]})
    vhost = broker.vhosts["/"]
    assert [policy.name for policy in vhost.operator_policies] == ["cap"]
    assert vhost.queues["capped"].settings.max_length == 2
    assert export_definitions(broker)["parameters"] == [parameter]


@pytest.mark.parametrize(
    "definitions, reason",
    [
        ([], "definitions must be a JSON object"),
        ({"queues": "x"}, "'queues' must be a list of objects"),
        ({"queues": [{"vhost": "/"}]}, "an item in 'queues' has no 'name'"),
        ({"queues": [{"name": "q", "vhost": "/", "durable": "yes"}]},
         "'durable' of an item in 'queues' must be a bool, not 'yes'"),
        ({"queues": [{"name": "q", "vhost": "nowhere"}]}, "no_such_vhost: 'nowhere' (in 'queues')"),
        ({"queues": [{"name": "q", "vhost": "/", "arguments": {"x-max-priority": "abc"}}]},
         "precondition_failed: invalid arg 'x-max-priority' for queue 'q' in vhost '/': "
         '"expected integer, got longstr"'),
        ({"queues": [{"name": "amq.q", "vhost": "/"}]},
         "access_refused: queue name 'amq.q' contains reserved prefix 'amq.*'"),
        ({"exchanges": [{"name": "x", "vhost": "/", "type": "nope"}]}, "command_invalid: unknown exchange type 'nope'"),
        ({"policies": [{"name": "p", "vhost": "/", "pattern": "x", "definition": {"foo": 1}}]},
         'Validation failed\n\n[{<<"foo">>,1}] are not recognised policy settings\n (//p)'),
        ({"bindings": [{"source": "a", "vhost": "/", "destination": "b", "destination_type": "thing"}]},
         "invalid destination_type 'thing' in 'bindings'"),
        ({"parameters": [{"component": "operator_policy", "vhost": "/", "name": "cap",
                          "value": {"pattern": "", "definition": {"overflow": "drop-head"}, "priority": 0}}]},
         'Validation failed\n\n[{<<"overflow">>,<<"drop-head">>}] are not recognised policy settings\n'
         " (//operator_policy/cap)"),
        ({"permissions": [{"user": "nobody", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}]},
         "no_such_user: 'nobody'"),
    ],
)
def test_a_bad_document_is_refused_and_changes_nothing(definitions: Any, reason: str) -> None:
    broker = core.Broker()
    broker.commit()
    document = definitions
    if isinstance(definitions, dict):
        document = {"policies": [{"name": "first", "vhost": "/", "pattern": "", "definition": {"max-length": 1}}],
                    **definitions}
    with pytest.raises(DefinitionsError) as raised:
        import_definitions(broker, document)
    assert raised.value.reason == reason
    assert len(broker.vhosts["/"].policies) == 0
    assert broker.journal.ops == []


@pytest.mark.parametrize("lmdb", [False, True], ids=["memory", "lmdb"])
def test_imported_definitions_are_durable(tmp_path, lmdb: bool) -> None:
    store = open_store(str(tmp_path) if lmdb else None)
    broker = core.Broker(store=store)
    import_definitions(broker, rabbitmq_definitions())
    broker.commit()
    if lmdb:
        store.close()
        store = open_store(str(tmp_path))
    exported = export_definitions(core.Broker(store=store))
    store.close()
    original = rabbitmq_definitions()
    # The transient queue and exchange go with the broker that had them, as in RabbitMQ.
    for section in SECTIONS:
        durable = [item for item in original[section] if item.get("durable", True)]
        assert same_items(exported[section], durable), section
