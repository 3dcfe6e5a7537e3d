"""What one channel sends to its client, in order, and the replies that wait for a commit.

A reply to a durable change (a durable queue declared, a binding deleted) tells the client the
change is made, which it may take to mean durable. So such a reply, and everything the channel
sends after it (to keep their order), waits until the store has committed the batch holding the
change. If that commit fails, the client is told with a connection error, as RabbitMQ does when
its own store fails, instead of a reply that would not be true. The client's close of the channel
(or connection) is answered after those replies (`hold_input`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .broker import ClientConnection


class ChannelOutput:
    def __init__(self, connection: ClientConnection, channel: int) -> None:
        self._connection = connection
        self._sink = connection.sink
        self._tracker = connection.broker.commits
        self.channel = channel
        self._held: list[tuple[Any, ...]] | None = None
        """What this channel sends while a reply waits for a commit; None when nothing waits."""
        self._held_until = -1
        self._input_held = False

    def method(self, method: Any) -> None:
        if self._held is None:
            self._sink.send_method(self.channel, method)
        else:
            self._held.append((method,))

    def content(self, method: Any, properties: bytes, body: bytes) -> None:
        if self._held is None:
            self._sink.send_content(self.channel, method, properties, body)
        else:
            self._held.append((method, properties, body))

    def durable(self, call: Callable[[], None]) -> None:
        """Runs `call`, whose replies say a change is made; if it journaled one, they wait for its commit."""
        was_held = self._held is not None
        if not was_held:
            self._held = []
        change = self._tracker.change()
        try:
            with change:
                call()
        finally:
            if change.batch is not None:
                self._held_until = self._tracker.wait(self, change.batch)
            elif not was_held:
                self._release()

    def batch_resolved(self, batch: int, ok: bool) -> None:
        if self._held is None:
            return
        if not ok:
            self._held = None
            self._sink.close(541, "INTERNAL_ERROR - the store failed to commit a durable change")
        elif batch >= self._held_until:
            self._release()

    def hold_input(self) -> bool:
        """While replies wait for a commit, what the client sends on the channel from now on waits
        too, until they are sent (`Sink.hold_input`): its close, so that close-ok follows them.
        Whether replies wait."""
        if self._held is None:
            return False
        if not self._input_held:
            self._input_held = True
            self._sink.hold_input(self.channel)
        return True

    def discard(self) -> None:
        """The channel is closed: what waited has nowhere to go (its number may be reused)."""
        self._held = None
        self._input_held = False
        self._tracker.forget(self)

    def _release(self) -> None:
        held, self._held = self._held, None
        for frame in held or ():
            if len(frame) == 1:
                self._sink.send_method(self.channel, frame[0])
            else:
                self._sink.send_content(self.channel, *frame)
        if self._input_held:
            self._input_held = False
            self._sink.release_input(self.channel)
