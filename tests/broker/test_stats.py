"""Statistics: what channels, queues, exchanges and the broker count, and the rates sampled from them."""

from __future__ import annotations

import datetime

from amqpbroker import core
from amqpbroker.core.stats import Rates
from amqpbroker.mgmt import message_stats
from amqpbroker.protocol import spec

# The counts RabbitMQ 3.10 reports, each also as `N_details` (seen on it with pika traffic).
QUEUE_KEYS = {"ack", "deliver", "deliver_get", "deliver_no_ack", "get", "get_empty", "get_no_ack", "publish",
              "redeliver"}
CHANNEL_KEYS = QUEUE_KEYS | {"confirm", "drop_unroutable", "return_unroutable"}
EXCHANGE_KEYS = {"publish_in", "publish_out"}
# The overview has a channel's, and the queues' disk reads and writes, which we do not count.
NOT_COUNTED = {"disk_reads", "disk_writes"}


def keys(stats: dict) -> set[str]:
    """The counts' names, after checking that each has its details with a rate."""
    names = {key for key in stats if not key.endswith("_details")}
    assert {key for key in stats if key.endswith("_details")} == {f"{name}_details" for name in names}
    assert all(isinstance(stats[f"{name}_details"]["rate"], float) for name in names)
    return names


def counts(stats) -> dict[str, int]:
    """The non-zero counts of a stats object, by name."""
    return {name: count for name, count, _ in stats.items() if count}


def rates(stats) -> dict[str, float]:
    return {name: rate for name, _, rate in stats.items() if rate}


def test_connections_and_channels_opened_and_closed_are_counted(broker, connect) -> None:
    first, second = connect(), connect()
    first.channel(1)
    first.channel(2)
    second.channel(1)
    first.client.close_channel(2)
    second.client.close()
    churn = broker.stats.churn
    assert (churn.connection_created, churn.connection_closed) == (2, 1)
    assert (churn.channel_created, churn.channel_closed) == (3, 2)


def test_queue_declarations_creations_and_deletions_are_counted(broker, peer) -> None:
    peer.declare("q")
    peer.declare("q")
    peer.declare("q", passive=True)
    peer.declare("")
    peer.handle(spec.QueueDelete(queue="q"))
    peer.handle(spec.QueueDelete(queue="q"))
    churn = broker.stats.churn
    # As RabbitMQ: a passive declaration is no declaration; deleting a missing queue deletes nothing.
    assert (churn.queue_declared, churn.queue_created, churn.queue_deleted) == (3, 2, 1)


def test_exclusive_queues_deleted_with_their_connection_are_counted(broker, connect) -> None:
    owner = connect()
    owner.declare("mine", exclusive=True)
    owner.client.close()
    assert broker.stats.churn.queue_deleted == 1


def test_publishes_count_on_the_channel_the_exchange_and_each_queue_routed_to(broker, peer) -> None:
    peer.exchange("fan", "fanout")
    for queue in ("a", "b"):
        peer.declare(queue)
        peer.bind(queue, "fan")
    peer.publish("fan", "", b"1")
    peer.publish("fan", "", b"2")
    peer.publish("", "a", b"3")
    vhost = broker.vhosts["/"]
    assert counts(peer.channel(1).stats) == {"publish": 3}
    assert counts(vhost.exchanges["fan"].stats) == {"publish_in": 2, "publish_out": 4}
    assert counts(vhost.exchanges[""].stats) == {"publish_in": 1, "publish_out": 1}
    assert counts(vhost.queues["a"].stats) == {"publish": 3}
    assert counts(vhost.queues["b"].stats) == {"publish": 2}


def test_unroutable_publishes_are_returned_or_dropped(broker, peer) -> None:
    peer.publish("", "nowhere", mandatory=True)
    peer.publish("", "nowhere")
    peer.publish("amq.direct", "nowhere")
    assert counts(peer.channel(1).stats) == {"publish": 3, "return_unroutable": 1, "drop_unroutable": 2}
    assert counts(broker.vhosts["/"].exchanges["amq.direct"].stats) == {"publish_in": 1}


def test_deliveries_are_counted_by_kind_on_the_queue_and_the_channel(broker, peer) -> None:
    peer.declare("q")
    for body in (b"1", b"2", b"3", b"4", b"5"):
        peer.publish("", "q", body)
    peer.get("q", no_ack=True)
    peer.get("q", no_ack=False)
    peer.consume("q", "manual", ch=2)
    peer.handle(spec.BasicNack(delivery_tag=2, requeue=True), ch=1)  # the get: back, redelivered
    peer.get("q", no_ack=True)
    expected = {"deliver": 4, "get": 1, "get_no_ack": 1, "get_empty": 1, "redeliver": 1}
    assert counts(broker.vhosts["/"].queues["q"].stats) == {"publish": 5, **expected}
    sessions = peer.client.sessions
    assert counts(sessions[1].stats) == {"publish": 5, "get": 1, "get_no_ack": 1, "get_empty": 1}
    assert counts(sessions[2].stats) == {"deliver": 4, "redeliver": 1}


def test_consumers_without_acks_count_as_deliver_no_ack(broker, peer) -> None:
    peer.declare("q")
    peer.consume("q", "auto", no_ack=True)
    peer.publish("", "q")
    assert counts(broker.vhosts["/"].queues["q"].stats) == {"publish": 1, "deliver_no_ack": 1}
    assert counts(peer.channel(1).stats) == {"publish": 1, "deliver_no_ack": 1}


def test_acks_count_each_message_and_rejections_none(broker, peer) -> None:
    peer.declare("q")
    for _ in range(4):
        peer.publish("", "q")
    peer.consume("q", "c")
    peer.ack(2, multiple=True)
    peer.handle(spec.BasicReject(delivery_tag=3, requeue=False))
    peer.handle(spec.BasicNack(delivery_tag=4, requeue=False))
    assert counts(broker.vhosts["/"].queues["q"].stats)["ack"] == 2
    assert counts(peer.channel(1).stats)["ack"] == 2


def test_confirms_count_each_message_confirmed(broker, peer) -> None:
    peer.declare("q")
    peer.handle(spec.ConfirmSelect())
    for _ in range(3):
        peer.publish("", "q")
    peer.client.flush_confirms()
    peer.publish("", "q")
    peer.client.flush_confirms()
    assert [m.delivery_tag for m in peer.sink.methods(spec.BasicAck)] == [3, 4]
    assert peer.channel(1).stats.confirm == 4


def test_message_totals_keep_what_closed_channels_counted(broker, connect) -> None:
    gone, staying = connect(), connect()
    gone.declare("q")
    gone.publish("", "q")
    gone.publish("", "q")
    gone.client.close()
    staying.publish("", "q")
    staying.get("q")
    assert counts(broker.message_totals()) == {"publish": 3, "get_no_ack": 1}


def test_queue_totals_by_type_keep_what_deleted_queues_counted(broker, peer) -> None:
    peer.declare("classic")
    peer.declare("quorum", durable=True, arguments={"x-queue-type": "quorum"})
    for queue in ("classic", "quorum", "quorum"):
        peer.publish("", queue)
        peer.get(queue)
    peer.handle(spec.QueueDelete(queue="classic"))
    live = [(queue.settings.queue_type, queue.stats) for queue in broker.vhosts["/"].queues.values()]
    totals = broker.stats.queue_totals(live)
    assert {kind: counts(stats) for kind, stats in totals.items()} == {
        "classic": {"publish": 1, "get_no_ack": 1},
        "quorum": {"publish": 2, "get_no_ack": 2},
    }


def test_rates_are_per_second_over_the_last_sampling_interval(broker, peer, clock) -> None:
    peer.declare("q")
    broker.sample_stats()
    for _ in range(10):
        peer.publish("", "q")
    clock.advance(5)
    broker.sample_stats()
    queue = broker.vhosts["/"].queues["q"]
    assert rates(queue.stats) == {"publish": 2.0}
    assert rates(peer.channel(1).stats) == {"publish": 2.0}
    assert rates(broker.vhosts["/"].exchanges[""].stats) == {"publish_in": 2.0, "publish_out": 2.0}
    assert rates(broker.message_totals()) == {"publish": 2.0}
    for _ in range(5):
        peer.get("q")
    clock.advance(5)
    broker.sample_stats()
    assert rates(queue.stats) == {"get_no_ack": 1.0}
    assert rates(broker.message_totals()) == {"get_no_ack": 1.0}


def test_churn_rates_are_per_second_over_the_last_sampling_interval(broker, connect, clock) -> None:
    broker.sample_stats()
    for _ in range(5):
        connect().client.close()
    clock.advance(5)
    broker.sample_stats()
    assert rates(broker.stats.churn) == {"connection_created": 1.0, "connection_closed": 1.0}


def test_overview_rates_do_not_drop_when_a_channel_closes(broker, connect, clock) -> None:
    publisher = connect()
    publisher.declare("q")
    broker.sample_stats()
    for _ in range(10):
        publisher.publish("", "q")
    publisher.client.close()
    clock.advance(5)
    broker.sample_stats()
    assert rates(broker.message_totals()) == {"publish": 2.0}


def test_a_rate_needs_two_samples() -> None:
    rates = Rates(2)
    rates.sample((5, 7), 10.0)
    assert rates.values == (0.0, 0.0)
    rates.sample((15, 7), 12.0)
    assert rates.values == (5.0, 0.0)


def test_idle_once_a_sample_finds_nothing_counted_since_the_one_before() -> None:
    rates = Rates(2)
    rates.sample((0, 0), 10.0)
    assert rates.idle_since is None
    rates.sample((0, 0), 15.0)
    assert rates.idle_since == 10.0
    rates.sample((1, 0), 20.0)
    assert rates.idle_since is None
    rates.sample((1, 0), 25.0)
    rates.sample((1, 0), 30.0)
    # Busy last in the interval before the sample at 20: idle since then at least.
    assert rates.idle_since == 20.0


def test_a_queue_and_a_channel_are_idle_since_the_sample_that_last_found_them_busy(
    broker: core.Broker, peer, clock
) -> None:
    peer.declare("q")
    queue = broker.vhosts["/"].queues["q"]
    peer.publish("", "q")
    broker.sample_stats()
    assert message_stats.idle_since(queue.stats, broker.timers) == {}
    busy_at = clock.wall()
    clock.advance(5)
    broker.sample_stats()
    # RabbitMQ's format: ISO 8601 in UTC, to the millisecond.
    expected = {"idle_since": datetime.datetime.fromtimestamp(busy_at, datetime.timezone.utc).isoformat(
        timespec="milliseconds")}
    assert expected["idle_since"].endswith("+00:00")
    assert message_stats.idle_since(queue.stats, broker.timers) == expected
    assert message_stats.idle_since(peer.channel(1).stats, broker.timers) == expected
    peer.get("q")
    clock.advance(5)
    broker.sample_stats()
    assert message_stats.idle_since(queue.stats, broker.timers) == {}
    assert message_stats.idle_since(peer.channel(1).stats, broker.timers) == {}


def test_active_once_anything_was_counted(broker: core.Broker, peer) -> None:
    peer.declare("q")
    queue = broker.vhosts["/"].queues["q"]
    assert not queue.stats.active()
    peer.publish("", "q")
    assert queue.stats.active()


# message_stats, as the management API reports them


def test_objects_that_counted_nothing_have_no_message_stats(broker: core.Broker, peer) -> None:
    peer.declare("q")
    vhost = broker.vhosts["/"]
    assert message_stats.of(vhost.queues["q"].stats) == {}
    assert message_stats.of(vhost.exchanges["amq.direct"].stats) == {}
    assert message_stats.of(peer.channel(1).stats) == {}
    assert keys(message_stats.overview(broker)) == CHANNEL_KEYS


def test_queue_exchange_and_channel_message_stats_are_keyed_as_rabbitmqs(broker: core.Broker, peer) -> None:
    peer.declare("q")
    peer.publish("", "q")
    vhost = broker.vhosts["/"]
    assert keys(message_stats.of(vhost.queues["q"].stats)["message_stats"]) == QUEUE_KEYS
    assert keys(message_stats.of(vhost.exchanges[""].stats)["message_stats"]) == EXCHANGE_KEYS
    assert keys(message_stats.of(peer.channel(1).stats)["message_stats"]) == CHANNEL_KEYS


def test_rates_are_per_second_over_the_last_interval_and_deliver_get_sums_deliveries(
    broker: core.Broker, peer, clock
) -> None:
    peer.declare("q")
    broker.sample_stats()
    for _ in range(7):
        peer.publish("", "q")
    peer.get("q", no_ack=True)
    peer.get("q", no_ack=False)
    peer.consume("q", "c", ch=2)
    peer.handle(spec.BasicAck(delivery_tag=5, multiple=True), ch=2)
    clock.advance(5)
    broker.sample_stats()
    stats = message_stats.of(broker.vhosts["/"].queues["q"].stats)["message_stats"]
    assert (stats["publish"], stats["publish_details"]) == (7, {"rate": 1.4})
    assert (stats["deliver_get"], stats["deliver_get_details"]) == (7, {"rate": 1.4})
    assert (stats["ack"], stats["ack_details"]) == (5, {"rate": 1.0})
    overview = message_stats.overview(broker)
    assert (overview["deliver"], overview["get"], overview["get_no_ack"]) == (5, 1, 1)
    assert overview["deliver_get_details"] == {"rate": 1.4}


def test_a_publish_a_delayed_exchange_holds_is_counted_when_it_arrives(broker, peer) -> None:
    peer.exchange("later", "x-delayed-message", arguments={"x-delayed-type": "direct"})
    peer.publish("later", "k", headers={"x-delay": 60_000}, mandatory=True)
    assert counts(peer.channel(1).stats) == {"publish": 1, "return_unroutable": 1}
    assert counts(broker.vhosts["/"].exchanges["later"].stats) == {"publish_in": 1}
