"""Publisher confirms of one channel: a sequence number per publish, acked once the publish is safe.

A publish that the store need not keep is confirmed when the broker has routed it; one that it
must keep waits for the commit of the batch holding it. Confirms go out in order, a run of
publishes as one multiple-ack; a publish whose batch failed, or that a queue refused, gets its own
basic.nack.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from ..protocol import spec

if TYPE_CHECKING:
    from .commits import CommitTracker
    from .output import ChannelOutput
    from .stats import ChannelStats


class Confirms:
    def __init__(self, output: ChannelOutput, tracker: CommitTracker, stats: ChannelStats) -> None:
        self._output = output
        self._tracker = tracker
        self._stats = stats
        self._published = 0
        self._confirmed_upto = 0
        self._awaiting: deque[tuple[int, int | None]] = deque()
        """(publish sequence number, batch) of publishes whose confirm waits for the store; a batch
        of None is a refused publish, nacked once the confirms before it went out."""

    def published(self) -> int:
        """Numbers the next publish; its confirm goes out at the next `flush` unless it must wait."""
        self._published += 1
        return self._published

    def await_commit(self) -> None:
        """The publish numbered last went to the store: its confirm waits for that batch."""
        self._awaiting.append((self._published, self._tracker.wait(self)))

    def refuse(self) -> None:
        """The publish numbered last was refused by a queue: it gets basic.nack, in its turn."""
        if self._awaiting:
            self._awaiting.append((self._published, None))
        else:
            self._nack(self._published)

    def flush(self) -> None:
        """Acks every publish up to the first that still waits for the store."""
        awaiting = self._awaiting
        self._ack_upto(awaiting[0][0] - 1 if awaiting else self._published)

    def batch_resolved(self, batch: int, ok: bool) -> None:
        awaiting = self._awaiting
        while awaiting and (awaiting[0][1] is None or awaiting[0][1] <= batch):
            seq, waited_for = awaiting.popleft()
            if waited_for is None or not ok:
                self._nack(seq)
        self.flush()

    def discard(self) -> None:
        """The channel is closed: nothing more is confirmed on it."""
        self._awaiting.clear()
        self._tracker.forget(self)

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
