"""Network faults between the broker and its clients: latency, stalls, cuts and refusals.

The server hands every accepted socket to `Faults.wrap`, which serves it through a `FaultyStream`,
or refuses it while refusals are on. A fault is set for the whole broker (every connection, new
ones too) or for single streams; a stream suffers the larger latency and is stalled if either
stalls it. Everything here runs in the broker's trio thread.
"""

from __future__ import annotations

import trio

from ..server.amqp import reset_socket

# The first four of the seven header bytes of a heartbeat frame: what a cut leaves the client with.
_PARTIAL_FRAME = b"\x08\x00\x00\x00"


class Faults:
    def __init__(self) -> None:
        self.latency = 0.0
        """Seconds added to every read and write of every connection."""
        self.stalled = False
        """Every connection stalled: nothing is sent or read."""
        self.refusing_until: float | None = None
        """New connections are reset until then (trio time; inf: until `accept`)."""
        self.streams: set[FaultyStream] = set()
        self._changed = trio.Event()

    def wrap(self, stream: trio.SocketStream) -> FaultyStream | None:
        """The stream to serve a new client through, or None to refuse it."""
        until = self.refusing_until
        if until is not None and trio.current_time() < until:
            return None
        faulty = FaultyStream(stream, self)
        self.streams.add(faulty)
        return faulty

    def changed(self) -> None:
        """Wakes the streams waiting out a stall, to see whether it is over."""
        self._changed.set()
        self._changed = trio.Event()

    async def wait_changed(self) -> None:
        await self._changed.wait()

    def heal(self) -> None:
        """Ends every fault, of the broker and of each stream; refusals too."""
        self.latency = 0.0
        self.stalled = False
        self.refusing_until = None
        for stream in self.streams:
            stream.latency = 0.0
            stream.stalled = False
        self.changed()


class FaultyStream(trio.abc.Stream):
    """A client's socket with the faults set on it and on the whole broker."""

    def __init__(self, stream: trio.SocketStream, faults: Faults) -> None:
        self._stream = stream
        self._faults = faults
        self.latency = 0.0
        self.stalled = False
        self._sending = trio.Lock()

    @property
    def socket(self) -> trio.socket.SocketType:
        return self._stream.socket

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        async with self._sending:
            await self._pass()
            await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        await self._pass_stall()
        data = await self._stream.receive_some(max_bytes)
        # Bytes that arrived as the stall began are held until it ends, as if still on the wire.
        await self._pass()
        return data

    async def aclose(self) -> None:
        self._faults.streams.discard(self)
        await self._stream.aclose()

    async def cut(self) -> None:
        """Sends the first bytes of a frame, then drops the connection with a TCP reset; a write
        under way finishes first. A stalled stream sends nothing more: it is reset at once."""
        if not self._is_stalled():
            async with self._sending:
                try:
                    await self._stream.send_all(_PARTIAL_FRAME)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
        reset_socket(self.socket)
        self._faults.changed()

    async def _pass(self) -> None:
        await self._pass_stall()
        # Counted from the start of the wait: a change of latency (heal) applies to waits under way.
        start = trio.current_time()
        while (latency := max(self.latency, self._faults.latency)) and trio.current_time() < start + latency:
            with trio.move_on_at(start + latency):
                await self._faults.wait_changed()

    async def _pass_stall(self) -> None:
        # A socket closed under a stall (reset, cut) ends the wait: the next use of it fails.
        while self._is_stalled() and self.socket.fileno() != -1:
            await self._faults.wait_changed()

    def _is_stalled(self) -> bool:
        return self.stalled or self._faults.stalled
