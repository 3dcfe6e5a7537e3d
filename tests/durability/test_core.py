"""Durability in the broker core, without sockets: what a restart keeps, over both stores."""

from __future__ import annotations

import pytest

from amqpbroker import core
from amqpbroker.core.permissions import WRITE
from amqpbroker.protocol import spec

from .core_support import PERSISTENT, Node, Sink


def queue_names(broker: core.Broker, vhost: str = "/") -> set[str]:
    return set(broker.vhosts[vhost].queues)


def routed(broker: core.Broker, exchange: str, routing_key: str = "", headers: dict | None = None) -> set[str]:
    vhost = broker.vhosts["/"]
    return {queue.name for queue in vhost.route(vhost.exchanges[exchange], routing_key, headers)}


def test_durable_topology_survives_and_transient_does_not(node: Node) -> None:
    client = node.client()
    for kind in ("direct", "fanout", "topic", "headers"):
        client.send(spec.ExchangeDeclare(exchange=f"d-{kind}", type=kind, durable=True))
    client.send(spec.ExchangeDeclare(exchange="d-args", type="direct", durable=True,
                                     arguments={"alternate-exchange": "d-fanout"}))
    client.send(spec.ExchangeDeclare(exchange="t-direct", type="direct"))
    client.send(spec.QueueDeclare(queue="dq", durable=True, arguments={"x-max-length": 100, "x-custom": b"\x00"}))
    client.send(spec.QueueDeclare(queue="dq2", durable=True))
    client.send(spec.QueueDeclare(queue="tq"))
    client.send(spec.QueueDeclare(queue="xq", durable=True, exclusive=True))
    client.send(spec.QueueBind(queue="dq", exchange="d-direct", routing_key="k"))
    client.send(spec.QueueBind(queue="dq2", exchange="d-fanout"))
    client.send(spec.QueueBind(queue="dq", exchange="d-topic", routing_key="a.*"))
    client.send(spec.QueueBind(queue="dq2", exchange="d-headers", arguments={"x-match": "any", "h": 1}))
    client.send(spec.QueueBind(queue="tq", exchange="d-direct", routing_key="k"))
    client.send(spec.QueueBind(queue="dq", exchange="t-direct", routing_key="k"))
    client.send(spec.ExchangeBind(destination="d-fanout", source="d-direct", routing_key="e2e"))
    client.send(spec.QueueBind(queue="dq", exchange="d-direct", routing_key="gone"))
    client.send(spec.QueueUnbind(queue="dq", exchange="d-direct", routing_key="gone"))
    client.send(spec.ExchangeDeclare(exchange="deleted", type="direct", durable=True))
    client.send(spec.ExchangeDelete(exchange="deleted"))

    broker = node.restart()

    exchanges = broker.vhosts["/"].exchanges
    for kind in ("direct", "fanout", "topic", "headers"):
        assert exchanges[f"d-{kind}"].type == kind and exchanges[f"d-{kind}"].durable
    assert exchanges["d-args"].arguments == {"alternate-exchange": "d-fanout"}
    assert "t-direct" not in exchanges and "deleted" not in exchanges
    assert queue_names(broker) == {"dq", "dq2"}
    assert broker.vhosts["/"].queues["dq"].arguments == {"x-max-length": 100, "x-custom": b"\x00"}
    assert routed(broker, "d-direct", "k") == {"dq"}
    assert routed(broker, "d-direct", "gone") == set()
    assert routed(broker, "d-direct", "e2e") == {"dq2"}
    assert routed(broker, "d-fanout") == {"dq2"}
    assert routed(broker, "d-topic", "a.b") == {"dq"}
    assert routed(broker, "d-headers", "", {"h": 1}) == {"dq2"}
    assert routed(broker, "d-headers", "", {"h": 2}) == set()


def test_deleting_a_durable_queue_deletes_its_bindings_and_messages(node: Node) -> None:
    client = node.client()
    client.send(spec.ExchangeDeclare(exchange="x", type="fanout", durable=True))
    client.send(spec.QueueDeclare(queue="q", durable=True))
    client.send(spec.QueueBind(queue="q", exchange="x"))
    client.publish("x", "", b"m")
    node.broker.commit()
    client.send(spec.QueueDelete(queue="q"))
    broker = node.restart()
    assert queue_names(broker) == set()
    assert broker.vhosts["/"].exchanges["x"].bindings == {}
    assert node.store.max_message_id() == -1


def test_messages_of_a_queue_deleted_while_they_were_unacked_are_collected_after_a_crash(node: Node) -> None:
    client = node.client()
    client.send(spec.QueueDeclare(queue="q", durable=True))
    client.publish("", "q", b"delivered, then its queue deleted")
    node.broker.commit()
    assert client.get("q") is not None
    client.send(spec.QueueDelete(queue="q"))  # committed; the message waits for an ack that never comes
    node.restart(clean=False)
    assert node.store.max_message_id() == -1


def test_a_vhost_survives_a_restart(node: Node) -> None:
    node.broker.add_vhost("extra", granted_to="guest")
    # No AMQP method creates a vhost; the core does, for the management interface and tests.
    connection = node.broker.connect("extra", "guest", Sink(), {})
    connection.open_channel(1).handle(spec.QueueDeclare(queue="q", durable=True))
    broker = node.restart()
    assert "extra" in broker.vhosts
    assert queue_names(broker, "extra") == {"q"}


def test_a_deleted_vhost_stays_deleted_with_everything_in_it(node: Node) -> None:
    node.broker.add_vhost("extra", granted_to="guest")
    connection = node.broker.connect("extra", "guest", Sink(), {})
    session = connection.open_channel(1)
    session.handle(spec.ExchangeDeclare(exchange="x", type="fanout", durable=True))
    session.handle(spec.QueueDeclare(queue="q", durable=True))
    session.handle(spec.QueueBind(queue="q", exchange="x"))
    session.publish(spec.BasicPublish(exchange="x"), PERSISTENT, b"m")
    node.broker.commit()
    connection.close()
    node.broker.delete_vhost("extra")
    broker = node.restart()
    assert set(broker.vhosts) == {"/"}
    assert node.store.recover().exchanges == [] and node.store.recover().queues == []
    assert node.store.max_message_id() == -1


def test_users_permissions_and_vhost_descriptions_survive_and_deletions_stay(node: Node) -> None:
    broker = node.broker
    broker.users.put(core.User("alice", "", ["management"]))
    broker.add_vhost("extra", granted_to="alice")
    broker.describe_vhost("extra", "kept", ["t"], True)
    broker.permissions.set("/", "alice", "^a", "^b", "^c")
    broker.delete_user("guest")
    restarted = node.restart()
    assert [user.name for user in restarted.users] == ["alice"]
    assert {(p.vhost, p.configure) for p in restarted.permissions} == {("extra", ".*"), ("/", "^a")}
    assert (restarted.vhosts["extra"].description, restarted.vhosts["extra"].tags) == ("kept", ["t"])
    restarted.delete_vhost("extra")
    again = node.restart()
    assert "guest" not in again.users and "extra" not in again.vhosts
    assert [(p.vhost, p.user) for p in again.permissions] == [("/", "alice")]


def test_topic_permissions_survive_and_clearing_stays(node: Node) -> None:
    broker = node.broker
    broker.users.put(core.User("alice", "", []))
    broker.add_vhost("extra")
    broker.topic_permissions.set("/", "alice", "amq.topic", "^{username}\\.", "")
    broker.topic_permissions.set("/", "alice", "t", "w", "r")
    broker.topic_permissions.set("extra", "alice", "amq.topic", "w", "r")
    broker.topic_permissions.set("/", "guest", "amq.topic", "w", "r")
    restarted = node.restart()
    assert [(p.vhost, p.user, p.exchange, p.write, p.read) for p in restarted.topic_permissions] == [
        ("/", "alice", "amq.topic", "^{username}\\.", ""), ("/", "alice", "t", "w", "r"),
        ("/", "guest", "amq.topic", "w", "r"), ("extra", "alice", "amq.topic", "w", "r"),
    ]
    assert restarted.topic_permissions.live("/", "alice")["amq.topic"].allows(WRITE, "alice.x")
    restarted.topic_permissions.clear("/", "alice", "t")
    restarted.delete_user("guest")
    restarted.delete_vhost("extra")
    again = node.restart()
    assert [(p.vhost, p.user, p.exchange) for p in again.topic_permissions] == [("/", "alice", "amq.topic")]


def test_persistent_messages_on_durable_queues_survive_and_others_do_not(node: Node) -> None:
    client = node.client()
    client.send(spec.ExchangeDeclare(exchange="x", type="fanout", durable=True))
    client.send(spec.QueueDeclare(queue="dq", durable=True))
    client.send(spec.QueueDeclare(queue="tq"))
    client.send(spec.QueueBind(queue="dq", exchange="x"))
    client.send(spec.QueueBind(queue="tq", exchange="x"))
    client.publish("", "dq", b"persistent")
    client.publish("", "dq", b"transient", persistent=False)
    client.publish("", "tq", b"persistent to a transient queue")
    client.publish("x", "", b"to both")
    client.publish("", "dq", b"acked")
    client.publish("", "dq", b"last")
    got = client.drain("tq")
    assert [body for body, _ in got] == [b"persistent to a transient queue", b"to both"]
    bodies = [client.get("dq") for _ in range(4)]
    assert [body for _, body in bodies] == [b"persistent", b"transient", b"to both", b"acked"]
    client.send(spec.BasicAck(delivery_tag=bodies[3][0].delivery_tag))
    client.close()

    broker = node.restart()
    after = node.client().drain("dq")
    assert after == [(b"persistent", True), (b"to both", True), (b"last", False)]
    assert queue_names(broker) == {"dq"}


def test_without_a_clean_shutdown_only_committed_work_survives(node: Node) -> None:
    client = node.client()
    client.send(spec.QueueDeclare(queue="q", durable=True))
    for i in range(4):
        client.publish("", "q", b"%d" % i)
    node.broker.commit()
    first = client.get("q")
    client.send(spec.BasicAck(delivery_tag=first[0].delivery_tag))
    client.publish("", "q", b"not committed")
    node.restart(clean=False)
    # After a crash any recovered message may have been delivered: all come back redelivered.
    assert node.client().drain("q") == [(b"0", True), (b"1", True), (b"2", True), (b"3", True)]


def test_a_message_delivered_before_a_crash_comes_back_redelivered(node: Node) -> None:
    client = node.client()
    client.send(spec.QueueDeclare(queue="q", durable=True))
    client.publish("", "q", b"delivered")
    node.broker.commit()
    assert client.get("q") is not None  # its delivered mark is not committed yet
    node.restart(clean=False)
    assert node.client().drain("q") == [(b"delivered", True)]


def test_what_a_crash_left_stays_marked_and_later_messages_are_not(node: Node) -> None:
    client = node.client()
    client.send(spec.QueueDeclare(queue="q", durable=True))
    client.publish("", "q", b"before the crash")
    node.broker.commit()
    client.get("q")
    node.restart(clean=False)
    node.client().publish("", "q", b"after the crash")
    node.restart()  # clean: it must not forget that the first one may have been delivered
    node.restart()
    assert node.client().drain("q") == [(b"before the crash", True), (b"after the crash", False)]


def test_a_message_published_after_acks_is_not_taken_for_redelivered(node: Node) -> None:
    client = node.client()
    client.send(spec.QueueDeclare(queue="q", durable=True))
    for i in range(3):
        client.publish("", "q", b"old %d" % i)
    assert len(client.drain("q")) == 3  # delivered and acknowledged: the queue is empty again
    node.restart()
    client = node.client()
    client.publish("", "q", b"new")
    node.restart()
    assert node.client().drain("q") == [(b"new", False)]


def test_the_delivered_mark_keeps_up_with_recovered_messages(node: Node) -> None:
    client = node.client()
    client.send(spec.QueueDeclare(queue="q", durable=True))
    for i in range(4):
        client.publish("", "q", b"%d" % i)
    got = [client.get("q") for _ in range(4)]
    for method, _ in got[2:]:
        client.send(spec.BasicAck(delivery_tag=method.delivery_tag))
    client.close()  # 0 and 1 delivered and requeued; 2 and 3 acknowledged
    node.restart()
    client = node.client()
    client.publish("", "q", b"4")
    node.restart()
    assert node.client().drain("q") == [(b"0", True), (b"1", True), (b"4", False)]


def test_committed_bodies_stay_in_memory_while_there_is_room(node: Node) -> None:
    client = node.client()
    client.send(spec.QueueDeclare(queue="dq", durable=True))
    client.publish("", "dq", b"durable")
    node.broker.commit()
    (entry,) = node.broker.vhosts["/"].queues["dq"].peek()
    assert entry.message.body == b"durable"


def test_under_pressure_committed_bodies_leave_memory_and_are_read_from_the_store(node: Node) -> None:
    node.broker.memory.limit = 40  # the two bodies are past half of it
    client = node.client()
    client.send(spec.QueueDeclare(queue="dq", durable=True))
    client.send(spec.QueueDeclare(queue="tq"))
    client.send(spec.ExchangeDeclare(exchange="x", type="fanout"))
    client.send(spec.QueueBind(queue="dq", exchange="x"))
    client.send(spec.QueueBind(queue="tq", exchange="x"))
    client.publish("", "dq", b"durable only")
    client.publish("x", "", b"durable and transient")
    node.broker.commit()
    entries = node.broker.vhosts["/"].queues["dq"].peek()
    assert entries[0].message.body is None
    assert entries[1].message.body == b"durable and transient"  # a transient queue still needs it
    assert [body for body, _ in client.drain("dq")] == [b"durable only", b"durable and transient"]


def test_a_body_read_back_for_a_consumer_is_counted_until_acknowledged(node: Node) -> None:
    client = node.client()
    client.send(spec.QueueDeclare(queue="dq", durable=True))
    client.publish("", "dq", b"read back")
    node.restart()  # the body is now only in the store
    memory = node.broker.memory
    client = node.client()
    client.send(spec.BasicConsume(queue="dq", consumer_tag="c"))
    [(method, body)] = client.sink.contents(spec.BasicDeliver)
    assert body == b"read back" and memory.used == len(body)
    client.send(spec.BasicAck(delivery_tag=method.delivery_tag))
    assert memory.used == 0


def test_a_message_is_deleted_when_its_last_durable_queue_is_done_with_it(node: Node) -> None:
    client = node.client()
    client.send(spec.ExchangeDeclare(exchange="x", type="fanout"))
    for name in ("a", "b"):
        client.send(spec.QueueDeclare(queue=name, durable=True))
        client.send(spec.QueueBind(queue=name, exchange="x"))
    client.publish("x", "", b"shared")
    node.broker.commit()
    (message_id,) = {message_id for _, message_id, _ in node.store.queue_entries("/", "a")}
    client.drain("a")
    node.broker.commit()
    assert node.store.load_body(message_id) == b"shared"
    unacked = client.get("b")
    client.send(spec.QueueDelete(queue="b"))  # deleted while its message is still unacknowledged
    client.send(spec.BasicAck(delivery_tag=unacked[0].delivery_tag))
    node.broker.commit()
    with pytest.raises(KeyError):
        node.store.load_body(message_id)


def test_a_closed_channel_gets_no_confirm_meant_for_its_predecessor(node: Node) -> None:
    client = node.client()
    client.send(spec.QueueDeclare(queue="q", durable=True))
    client.send(spec.ConfirmSelect())
    client.publish("", "q", b"before close")
    client.connection.close_channel(1)
    client.send(spec.ConfirmSelect())  # channel 1 again, a new session
    node.broker.commit()
    assert client.sink.methods(spec.BasicAck) == []
    client.publish("", "q", b"after reopening")
    node.broker.commit()
    assert [(m.delivery_tag, m.multiple) for m in client.sink.methods(spec.BasicAck)] == [(1, False)]


def test_confirms_of_a_batch_go_out_as_one_multiple_ack(node: Node) -> None:
    client = node.client()
    client.send(spec.QueueDeclare(queue="q", durable=True))
    client.send(spec.ConfirmSelect())
    for i in range(1000):
        client.publish("", "q", b"%d" % i)
    assert client.sink.methods(spec.BasicAck) == []  # nothing is confirmed before the commit
    batch = node.broker.take_batch()
    assert node.broker.take_batch() is None
    node.store.apply(batch.ops)
    node.broker.batch_done(batch, ok=True)
    acks = client.sink.methods(spec.BasicAck)
    assert [(ack.delivery_tag, ack.multiple) for ack in acks] == [(1000, True)]


def test_transient_publishes_are_confirmed_at_once_in_order_with_persistent_ones(node: Node) -> None:
    client = node.client()
    client.send(spec.QueueDeclare(queue="dq", durable=True))
    client.send(spec.QueueDeclare(queue="tq"))
    client.send(spec.ConfirmSelect())
    client.publish("", "tq", b"1")
    client.publish("", "dq", b"2")
    client.publish("", "tq", b"3")
    assert [(m.delivery_tag, m.multiple) for m in client.sink.methods(spec.BasicAck)] == [(1, False)]
    node.broker.commit()
    assert [(m.delivery_tag, m.multiple) for m in client.sink.methods(spec.BasicAck)] == [(1, False), (3, True)]


def test_the_reply_to_a_durable_change_waits_for_its_commit(node: Node) -> None:
    client = node.client()
    session = client.connection.open_channel(1)
    sent = client.sink.sent
    session.handle(spec.QueueDeclare(queue="dq", durable=True))
    session.handle(spec.BasicGet(queue="dq"))  # sent after the declare-ok, so it waits behind it
    assert sent == []
    node.broker.commit()
    assert [type(method) for _, method, _ in sent] == [spec.QueueDeclareOk, spec.BasicGetEmpty]

    # Nothing to commit, nothing to wait for.
    for method in (
        spec.QueueDeclare(queue="dq", durable=True),
        spec.QueueDeclare(queue="dq", passive=True),
        spec.QueueDeclare(queue="tq"),
        spec.QueueBind(queue="tq", exchange="amq.direct", routing_key="k"),
        spec.ExchangeDeclare(exchange="tx", type="topic"),
    ):
        before = len(sent)
        session.handle(method)
        assert len(sent) == before + 1, method


@pytest.mark.parametrize(
    "method",
    [
        spec.ExchangeDeclare(exchange="x", type="fanout", durable=True),
        spec.ExchangeDelete(exchange="existing"),
        spec.QueueBind(queue="q", exchange="existing"),
        spec.ExchangeBind(destination="existing", source="amq.fanout"),
        spec.QueueDelete(queue="q"),
        spec.QueuePurge(queue="q"),
    ],
    ids=lambda method: type(method).__name__,
)
def test_each_durable_change_is_answered_after_its_commit(node: Node, method: object) -> None:
    setup = node.client()
    setup.send(spec.ExchangeDeclare(exchange="existing", type="fanout", durable=True))
    setup.send(spec.QueueDeclare(queue="q", durable=True))
    setup.publish("", "q", b"m")
    node.broker.commit()
    client = node.client()
    client.connection.open_channel(1).handle(method)
    assert client.sink.sent == []
    node.broker.commit()
    assert len(client.sink.sent) == 1


def test_deliveries_on_a_waiting_channel_keep_their_place(node: Node) -> None:
    client = node.client()
    client.send(spec.QueueDeclare(queue="q", durable=True))
    session = client.connection.sessions[1]
    session.handle(spec.BasicConsume(queue="q", consumer_tag="c"))
    session.handle(spec.QueueDeclare(queue="q2", durable=True))
    client.publish("", "q", b"after the declare")  # delivered at once, but sent after declare-ok
    kinds = [type(method) for _, method, _ in client.sink.sent]
    assert kinds == [spec.QueueDeclareOk, spec.BasicConsumeOk]
    node.broker.commit()
    kinds = [type(method) for _, method, _ in client.sink.sent]
    assert kinds == [spec.QueueDeclareOk, spec.BasicConsumeOk, spec.QueueDeclareOk, spec.BasicDeliver]


def test_tx_commit_ok_waits_until_the_transaction_is_on_disk(node: Node) -> None:
    client = node.client()
    client.send(spec.QueueDeclare(queue="q", durable=True))
    client.send(spec.TxSelect())
    session = client.connection.sessions[1]
    client.publish("", "q", b"in a transaction")
    session.handle(spec.TxCommit())
    assert client.sink.methods(spec.TxCommitOk) == []
    node.restart(clean=False)  # a crash now loses the transaction: its commit-ok was never sent
    assert node.client().drain("q") == []

    client = node.client()
    client.send(spec.TxSelect())
    client.publish("", "q", b"in a transaction")
    client.connection.sessions[1].handle(spec.TxCommit())
    node.broker.commit()
    assert len(client.sink.methods(spec.TxCommitOk)) == 1
    node.restart(clean=False)
    assert node.client().drain("q") == [(b"in a transaction", True)]  # True: see the test above


def test_a_channel_closed_while_waiting_sends_nothing_more(node: Node) -> None:
    client = node.client()
    session = client.connection.open_channel(1)
    session.handle(spec.QueueDeclare(queue="q", durable=True))
    client.connection.close_channel(1)
    client.connection.open_channel(1).handle(spec.QueueDeclare(queue="t"))
    node.broker.commit()
    assert [method.queue for _, method, _ in client.sink.sent] == ["t"]
