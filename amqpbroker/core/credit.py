"""Credit flow: a publishing connection waits while a queue it published into is pressing.

RabbitMQ grants each publishing channel credit per queue, replenished as the queue process gets
through its messages, so a publisher cannot outrun the queues it feeds; a reader whose credit ran
out stops reading its socket. Here every queue takes a publish at once, so what a queue cannot get
through shows as its backlog instead: a queue with consumers whose ready messages pass FLOW_HIGH is
*pressing*, and a connection that publishes into it stops reading until it is back at FLOW_LOW.
Large messages press by their bytes long before their count: a backlog that holds more than
FLOW_HIGH_BYTES, judged by the size of the message just published, presses until it is back at half
its length then. Nothing is counted per message beyond the backlog length the queue keeps anyway.

As with RabbitMQ, this is about pace, not length: a queue without consumers never presses (the
memory alarm covers its length), and a wait that lasts longer than the server allows means the
queue's consumers are slow rather than busy, so the queue is left *slack* (pressing nobody) until
it gets back to FLOW_LOW. A connection never waits for a queue it consumes from itself, whose
acks it would no longer read.

A queue whose consumers reject everything to a dead-letter exchange is paced like any other, though
RabbitMQ's publisher runs ahead of such a queue (its queue process keeps up with the publishes while
the consumers' round trips set the dead-letter rate). Here, each time such a queue starts to press,
its consumers are at their prefetch limit with their deliveries written, just as in a plain 1 -> 1
run where the broker is the bottleneck: nothing in the queue tells the two apart, so a rule that let
this publisher run ahead would let every publisher outrun its consumers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable

if TYPE_CHECKING:
    from .queue import Queue

FLOW_HIGH = 2000
"""Ready messages above which a queue with consumers presses the connections publishing into it."""
FLOW_LOW = 1000
"""Ready messages at which a pressing queue lets them go on."""
FLOW_HIGH_BYTES = 16 * 1024 * 1024
"""Bytes of ready messages (their count times the size of the one just published) above which a
queue with consumers presses too: a backlog of large bodies is a burden to memory, and a cold heap
to fill, long before FLOW_HIGH of them."""


class QueueFlow:
    """A queue's part while it presses (or is left slack): the waits to tell when it stops."""

    __slots__ = ("waits", "slack", "low")

    def __init__(self, low: int) -> None:
        self.waits: set[FlowWait] = set()
        self.slack = False
        self.low = low
        """Ready messages at which the queue lets its waiters go."""

    def release(self, queue: Queue) -> None:
        waits, self.waits = self.waits, set()
        for wait in waits:
            wait.released(queue)


class FlowWait:
    """One connection's pause: the queues it pressed that have not drained yet.

    `wake` is called once the last of them has, or has stopped pressing.
    """

    __slots__ = ("queues", "_wake")

    def __init__(self, wake: Callable[[], None]) -> None:
        self.queues: set[Queue] = set()
        self._wake = wake

    @property
    def done(self) -> bool:
        return not self.queues

    def add(self, queues: Iterable[Queue]) -> None:
        for queue in queues:
            if queue.pressing and queue not in self.queues:
                self.queues.add(queue)
                queue.flow.waits.add(self)

    def released(self, queue: Queue) -> None:
        """`queue` presses no more."""
        self.queues.discard(queue)
        if not self.queues:
            self._wake()

    def give_up(self) -> None:
        """The wait lasted too long: the queues still pressing are slow, not busy; each is left slack."""
        for queue in list(self.queues):
            queue.slacken()

    def cancel(self) -> None:
        """The connection is gone: the queues have no one to tell."""
        for queue in self.queues:
            queue.flow.waits.discard(self)
        self.queues.clear()
