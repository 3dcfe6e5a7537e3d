"""Raw AMQP over a blocking socket for the fuzz and flood tests: a pipelined handshake, hand-cut
frames, and a reader of what the broker sends back."""

from __future__ import annotations

import socket
import struct

from amqpbroker.protocol import spec
from amqpbroker.protocol._frames import method_frame

HEADER = b"AMQP\x00\x00\x09\x01"


def handshake(channel_max: int = 16, frame_max: int = 4096, capabilities: dict | None = None,
              heartbeat: int = 0) -> bytes:
    """Header, start-ok, tune-ok and open, sent at once without waiting for the broker's side."""
    properties = {"product": "raw", "capabilities": capabilities or {}}
    return HEADER + b"".join(method_frame(0, m.encode()) for m in (
        spec.ConnectionStartOk(client_properties=properties, mechanism="PLAIN",
                               response=b"\x00guest\x00guest", locale="en_US"),
        spec.ConnectionTuneOk(channel_max=channel_max, frame_max=frame_max, heartbeat=heartbeat),
        spec.ConnectionOpen(virtual_host="/"),
    ))


def raw_frame(frame_type: int, channel: int, payload: bytes) -> bytes:
    return struct.pack(">BHI", frame_type, channel, len(payload)) + payload + b"\xce"


class FrameReader:
    """Reads the broker's frames off a socket, decoding method frames."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffered = b""

    def methods(self, heartbeats: bool = False):
        """Yields (channel, method) for every method frame until the socket closes; with
        `heartbeats`, (channel, None) for every heartbeat frame too."""
        while True:
            while len(self._buffered) >= 7:
                frame_type, channel, size = struct.unpack_from(">BHI", self._buffered)
                if len(self._buffered) < size + 8:
                    break
                payload, self._buffered = self._buffered[7:7 + size], self._buffered[size + 8:]
                if frame_type == 1:
                    yield channel, spec.METHODS[struct.unpack_from(">HH", payload)].decode(payload)
                elif frame_type == 8 and heartbeats:
                    yield channel, None
            try:
                data = self.sock.recv(1 << 16)
            except ConnectionResetError:
                return
            if not data:
                return
            self._buffered += data
