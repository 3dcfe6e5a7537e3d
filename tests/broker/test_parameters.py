"""Global runtime parameters: kept durably, cleared, and the cluster's name among them."""

from __future__ import annotations

from amqpbroker import core
from amqpbroker.core.parameters import CLUSTER_NAME
from amqpbroker.store import open_store


def test_global_parameters_and_the_cluster_name_outlive_a_restart(tmp_path) -> None:
    store = open_store(str(tmp_path))
    broker = core.Broker(store=store)
    assert broker.parameters.cluster_name("node@host") == "node@host"
    broker.parameters.set_global(CLUSTER_NAME, "named")
    broker.parameters.set_global("gone", {"a": 1})
    assert broker.parameters.delete_global("gone") is True
    assert broker.parameters.delete_global("gone") is False
    broker.commit()
    store.close()
    store = open_store(str(tmp_path))
    recovered = core.Broker(store=store)
    assert recovered.parameters.global_ == {CLUSTER_NAME: "named"}
    assert recovered.parameters.cluster_name("node@host") == "named"
    store.close()


def test_a_cluster_name_that_is_not_text_leaves_the_nodes() -> None:
    broker = core.Broker()
    broker.parameters.set_global(CLUSTER_NAME, 5)
    assert broker.parameters.cluster_name("node@host") == "node@host"
