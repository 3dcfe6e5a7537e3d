"""A stateful property test: random publishes, gets, consumers, acks, rejects, recovers and channel closes
on one queue never lose, duplicate or reorder a message, and respect prefetch."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from amqpbroker import core
from amqpbroker.protocol import spec

from .conftest import Peer

CHANNELS = (1, 2)


class AckModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.broker = core.Broker()
        self.peer = Peer(self.broker)
        self.peer.declare("q")
        self.queue = self.broker.vhosts["/"].queues["q"]
        self.published = 0
        self.settled: set[int] = set()
        self.delivered_before: set[int] = set()
        # Per channel: delivery tag -> (message number, consumer tag, or None for basic.get)
        self.outstanding: dict[int, dict[int, tuple[int, str | None]]] = {ch: {} for ch in CHANNELS}
        # channel -> (consumer tag, prefetch_count, global prefetch_count)
        self.consuming: dict[int, tuple[str, int, int]] = {}
        self.consumers = 0
        for ch in CHANNELS:
            self.peer.channel(ch)

    def _absorb(self) -> None:
        """Reads what the broker sent: every delivery adds an outstanding tag."""
        for frame in self.peer.sink.take():
            method = frame.method
            if isinstance(method, (spec.BasicDeliver, spec.BasicGetOk)):
                number = int(frame.body)
                assert method.redelivered == (number in self.delivered_before), (number, method)
                self.delivered_before.add(number)
                consumer = method.consumer_tag if isinstance(method, spec.BasicDeliver) else None
                if consumer is not None and self.consuming[frame.channel][2]:
                    # The channel's limit counts every unacked delivery, basic.get ones too.
                    assert len(self.outstanding[frame.channel]) < self.consuming[frame.channel][2]
                self.outstanding[frame.channel][method.delivery_tag] = (number, consumer)

    def _tags(self, ch: int) -> list[int]:
        return sorted(self.outstanding[ch])

    @rule()
    def publish(self) -> None:
        self.peer.publish("", "q", b"%d" % self.published)
        self.published += 1
        self._absorb()

    @rule(ch=st.sampled_from(CHANNELS), no_ack=st.booleans())
    def get(self, ch: int, no_ack: bool) -> None:
        self.peer.handle(spec.BasicGet(queue="q", no_ack=no_ack), ch)
        frames = self.peer.sink.frames
        if no_ack and isinstance(frames[-1].method, spec.BasicGetOk):
            number = int(frames[-1].body)
            self.peer.sink.take()
            assert frames[-1].method.redelivered == (number in self.delivered_before)
            self.delivered_before.add(number)
            self.settled.add(number)
        self._absorb()

    @precondition(lambda self: len(self.consuming) < len(CHANNELS))
    @rule(data=st.data(), prefetch=st.integers(0, 3), global_prefetch=st.integers(0, 4))
    def consume(self, data, prefetch: int, global_prefetch: int) -> None:
        ch = data.draw(st.sampled_from([c for c in CHANNELS if c not in self.consuming]))
        # Per consumer first: as in RabbitMQ, a per-consumer qos lifts the channel's global one.
        self.peer.qos(prefetch, ch=ch)
        self.peer.qos(global_prefetch, global_=True, ch=ch)
        self.consumers += 1
        tag = self.peer.consume("q", f"c{self.consumers}", ch=ch)
        self.consuming[ch] = (tag, prefetch, global_prefetch)
        self._absorb()

    @precondition(lambda self: self.consuming)
    @rule(data=st.data())
    def cancel(self, data) -> None:
        ch = data.draw(st.sampled_from(sorted(self.consuming)))
        self.peer.handle(spec.BasicCancel(consumer_tag=self.consuming[ch][0]), ch)
        del self.consuming[ch]
        self._absorb()

    @precondition(lambda self: any(self.outstanding.values()))
    @rule(data=st.data(), how=st.sampled_from(["ack", "ack-multiple", "reject", "nack-multiple"]), requeue=st.booleans())
    def settle(self, data, how: str, requeue: bool) -> None:
        ch = data.draw(st.sampled_from([c for c in CHANNELS if self.outstanding[c]]))
        tag = data.draw(st.sampled_from(self._tags(ch)))
        multiple = how.endswith("multiple")
        if how.startswith("ack"):
            self.peer.ack(tag, multiple=multiple, ch=ch)
            requeue = False
        elif how == "reject":
            self.peer.handle(spec.BasicReject(delivery_tag=tag, requeue=requeue), ch)
        else:
            self.peer.handle(spec.BasicNack(delivery_tag=tag, multiple=True, requeue=requeue), ch)
        for t in [t for t in self._tags(ch) if t == tag or (multiple and t < tag)]:
            number, _ = self.outstanding[ch].pop(t)
            if not requeue:
                self.settled.add(number)
        self._absorb()

    @rule(ch=st.sampled_from(CHANNELS))
    def recover(self, ch: int) -> None:
        self.peer.handle(spec.BasicRecover(requeue=True), ch)
        self.outstanding[ch].clear()
        self._absorb()

    @rule(ch=st.sampled_from(CHANNELS))
    def close_channel(self, ch: int) -> None:
        self.peer.client.close_channel(ch)
        self.outstanding[ch].clear()
        self.consuming.pop(ch, None)
        self.peer.channel(ch)
        self._absorb()

    @rule(writable=st.booleans())
    def set_writable(self, writable: bool) -> None:
        self.peer.sink.writable = writable
        if writable:
            self.peer.client.resume()
        self._absorb()

    @invariant()
    def every_message_is_in_exactly_one_place(self) -> None:
        ready = [int(e.message.body) for e in self.queue.peek()]
        unacked = [number for tags in self.outstanding.values() for number, _ in tags.values()]
        places = ready + unacked + sorted(self.settled)
        assert sorted(places) == list(range(self.published))
        assert self.queue.unacked_count == len(unacked)
        assert self.queue.message_count == len(ready)

    @invariant()
    def ready_messages_keep_publish_order(self) -> None:
        ready = [int(e.message.body) for e in self.queue.peek()]
        assert ready == sorted(ready)

    @invariant()
    def prefetch_is_respected(self) -> None:
        for ch, (tag, prefetch, _) in self.consuming.items():
            by_consumer = sum(1 for _, consumer in self.outstanding[ch].values() if consumer == tag)
            if prefetch:
                assert by_consumer <= prefetch

    @invariant()
    def consumers_with_credit_leave_nothing_ready(self) -> None:
        if not self.peer.sink.writable or not self.queue.message_count:
            return
        for ch, (tag, prefetch, global_prefetch) in self.consuming.items():
            by_consumer = sum(1 for _, consumer in self.outstanding[ch].values() if consumer == tag)
            has_credit = (not prefetch or by_consumer < prefetch) and (
                not global_prefetch or len(self.outstanding[ch]) < global_prefetch
            )
            assert not has_credit, (ch, prefetch, global_prefetch, self.outstanding[ch])


AckModel.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
test_ack_model = AckModel.TestCase
