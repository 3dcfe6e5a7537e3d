"""Publisher confirms of one channel: a sequence number per publish, acked once the publish is safe.

A publish that the store need not keep is confirmed when the broker has routed it; one that it
must keep waits for the commit of the batch holding it, or, as in RabbitMQ, until every durable
queue it went to has let it go (delivered and acknowledged, or dropped), whichever comes first: a
message that no queue holds any more need not be on disk. One that lives on as a dead letter is
not let go: its confirm waits for the batch that stores the dead letter. Confirms go out in order,
a run of publishes as one multiple-ack; a publish whose batch failed, or that a queue refused, gets
its own basic.nack.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from ..protocol import spec

if TYPE_CHECKING:
    from .commits import CommitTracker
    from .message import Message
    from .output import ChannelOutput
    from .stats import ChannelStats


class Confirms:
    def __init__(self, output: ChannelOutput, tracker: CommitTracker, stats: ChannelStats) -> None:
        self._output = output
        self._tracker = tracker
        self._stats = stats
        self._published = 0
        self._confirmed_upto = 0
        self._awaiting: deque[tuple[int, int | None, Message | None]] = deque()
        """(publish sequence number, batch, message) of publishes whose confirm waits for the store;
        a batch of None is a refused publish, nacked once the confirms before it went out. The
        message is there when queues hold it: while it waits, its `confirms` is this object."""

    @property
    def unconfirmed(self) -> int:
        """Publishes numbered and not yet acked or nacked: confirms go out in order."""
        return self._published - self._confirmed_upto

    def published(self) -> int:
        """Numbers the next publish; its confirm goes out at the next `flush` unless it must wait."""
        self._published += 1
        return self._published

    def await_commit(self, message: Message | None = None) -> None:
        """The publish numbered last went to the store: its confirm waits for that batch, or until
        no durable queue holds `message` any more (see `settled`)."""
        if message is not None:
            message.confirms = self
        self._awaiting.append((self._published, self._tracker.wait(self), message))

    def refuse(self) -> None:
        """The publish numbered last was refused by a queue: it gets basic.nack, in its turn."""
        if self._awaiting:
            self._awaiting.append((self._published, None, None))
        else:
            self._nack(self._published)

    def settled(self, message: Message) -> None:
        """No durable queue holds `message` any more, before its batch was committed: its confirm
        need not wait for the store, and goes out at the tracker's next `flush_settled`."""
        message.confirms = None
        self._tracker.settled(self)

    def flush(self) -> None:
        """Acks every publish up to the first that still waits for the store."""
        self._advance(-1, True)

    def batch_resolved(self, batch: int, ok: bool) -> None:
        self._advance(batch, ok)

    def discard(self) -> None:
        """The channel is closed: nothing more is confirmed on it."""
        for _, _, message in self._awaiting:
            if message is not None:
                message.confirms = None
        self._awaiting.clear()
        self._tracker.forget(self)

    def _advance(self, batch: int, ok: bool) -> None:
        """Confirms, in order, the publishes that wait no more: those settled, and those in batches
        up to `batch`, which the store wrote (`ok`) or failed to write."""
        awaiting = self._awaiting
        while awaiting:
            seq, waited_for, message = awaiting[0]
            if waited_for is None:
                self._nack(seq)
            elif message is not None and message.confirms is None:
                pass  # settled: acked with the run it belongs to
            elif waited_for <= batch:
                if message is not None:
                    message.confirms = None
                if not ok:
                    self._nack(seq)
            else:
                break
            awaiting.popleft()
        self._ack_upto(awaiting[0][0] - 1 if awaiting else self._published)

    def _nack(self, seq: int) -> None:
        """Acks what precedes `seq`, then nacks `seq` alone."""
        self._ack_upto(seq - 1)
        self._output.method(spec.BasicNack(delivery_tag=seq, multiple=False, requeue=False))
        self._confirmed_upto = seq

    def _ack_upto(self, seq: int) -> None:
        if seq > self._confirmed_upto:
            count = seq - self._confirmed_upto
            self._output.method(spec.BasicAck(delivery_tag=seq, multiple=count > 1))
            self._stats.confirm += count
            self._confirmed_upto = seq
