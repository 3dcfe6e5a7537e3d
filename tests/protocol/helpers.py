"""Byte builders and a scripted client for driving ServerConnection in tests."""

from __future__ import annotations

import struct
from typing import Any

from amqpbroker.protocol import ServerConnection, spec
from amqpbroker.protocol._codec import encode_table

HEADER = b"AMQP\x00\x00\x09\x01"
HEARTBEAT = b"\x08\x00\x00\x00\x00\x00\x00\xce"


def frame(frame_type: int, channel: int, payload: bytes) -> bytes:
    return struct.pack(">BHI", frame_type, channel, len(payload)) + payload + b"\xce"


def method(channel: int, m: spec.Method) -> bytes:
    return frame(1, channel, m.encode())


def header(channel: int, body_size: int, properties: bytes = b"\x00\x00", class_id: int = 60) -> bytes:
    return frame(2, channel, struct.pack(">HHQ", class_id, 0, body_size) + properties)


def body(channel: int, data: bytes) -> bytes:
    return frame(3, channel, data)


def publish(channel: int, data: bytes, properties: bytes = b"\x00\x00", routing_key: str = "q") -> bytes:
    return (method(channel, spec.BasicPublish(routing_key=routing_key))
            + header(channel, len(data), properties)
            + (body(channel, data) if data else b""))


def split_frames(data: bytes) -> list[tuple[int, int, bytes]]:
    """Parse a byte string of frames (as the server sent them) into (type, channel, payload)."""
    out = []
    pos = 0
    while pos < len(data):
        frame_type, channel, size = struct.unpack_from(">BHI", data, pos)
        assert data[pos + 7 + size] == 0xCE
        out.append((frame_type, channel, data[pos + 7:pos + 7 + size]))
        pos += 8 + size
    return out


def sent_methods(data: bytes) -> list[tuple[int, spec.Method]]:
    """The method frames in data, decoded."""
    out = []
    for frame_type, channel, payload in split_frames(data):
        if frame_type == 1:
            class_id, method_id = struct.unpack_from(">HH", payload)
            out.append((channel, spec.METHODS[class_id, method_id].decode(payload)))
    return out


def start_ok(mechanism: str = "PLAIN", response: bytes = b"\x00guest\x00guest",
             capabilities: dict[str, Any] | None = None) -> bytes:
    props = {"product": "test", "capabilities": capabilities if capabilities is not None
             else {"authentication_failure_close": True}}
    return method(0, spec.ConnectionStartOk(client_properties=props, mechanism=mechanism,
                                            response=response, locale="en_US"))


def amqplain(login: Any, password: Any) -> bytes:
    return encode_table({"LOGIN": login, "PASSWORD": password})[4:]


def new_connection(**kwargs: Any) -> ServerConnection:
    kwargs.setdefault("authenticate", lambda user, password: (user, password) == ("guest", "guest"))
    kwargs.setdefault("can_open_vhost", lambda user, vhost: vhost == "/")
    return ServerConnection(**kwargs)


def open_connection(heartbeat: int = 60, frame_max: int = 131072, channel_max: int = 2047,
                    **kwargs: Any) -> ServerConnection:
    """A connection through the whole handshake, with its output drained."""
    conn = new_connection(**kwargs)
    conn.receive_data(HEADER, 0.0)
    conn.receive_data(start_ok(), 0.0)
    events = conn.receive_data(
        method(0, spec.ConnectionTuneOk(channel_max=channel_max, frame_max=frame_max, heartbeat=heartbeat))
        + method(0, spec.ConnectionOpen(virtual_host="/")), 0.0)
    assert [type(e).__name__ for e in events] == ["Handshaken"], events
    conn.data_to_send()
    return conn


def open_channel(conn: ServerConnection, channel: int = 1) -> None:
    conn.receive_data(method(channel, spec.ChannelOpen()), 0.0)
    conn.data_to_send()
