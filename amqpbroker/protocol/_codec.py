"""Byte layout of AMQP field tables and field arrays, read the way RabbitMQ reads them.

Decoders take a buffer and an offset and return (value, new offset); they never copy the buffer.
Type letters follow RabbitMQ (spec/errata.md), not the 0-9-1 text: `s` is a signed 16-bit integer,
`l` a signed 64-bit one, `x` a byte array, and an array's length counts bytes.
"""

from __future__ import annotations

import datetime
import decimal
from struct import Struct
from typing import Any

Buffer = bytes | bytearray | memoryview

_UTC = datetime.timezone.utc
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=_UTC)

_B = Struct(">B")
_b = Struct(">b")
_H = Struct(">H")
_h = Struct(">h")
_I = Struct(">I")
_i = Struct(">i")
_Q = Struct(">Q")
_q = Struct(">q")
_f = Struct(">f")
_d = Struct(">d")
_Bi = Struct(">Bi")


class Long(int):
    """An integer sent as a signed 64-bit field (`l`) whatever its size, as RabbitMQ sends counts.

    Decoded `l` values are of this type, so a table decoded and encoded again keeps their type.
    """


class DecodeError(ValueError):
    """The bytes do not form a valid value (truncated, trailing bytes, unknown type letter)."""


def encode_reply_text(text: str) -> bytes:
    """The UTF-8 of a reply text, cut to fit a short string as RabbitMQ cuts it: 252 bytes and "...".

    A reply text quotes names of up to 255 bytes, so it can outgrow its field; an error must still be
    reported. Unlike RabbitMQ we cut on a character boundary, so the text stays valid UTF-8.
    """
    raw = text.encode()
    if len(raw) <= 255:
        return raw
    return raw[:252].decode("utf-8", "ignore").encode() + b"..."


def _shortstr(buf: Buffer, o: int) -> tuple[str, int]:
    size = buf[o]
    end = o + 1 + size
    if end > len(buf):
        raise DecodeError("truncated short string")
    return str(buf[o + 1:end], "utf-8"), end


def _longstr_bytes(buf: Buffer, o: int) -> tuple[bytes, int]:
    (size,) = _I.unpack_from(buf, o)
    end = o + 4 + size
    if end > len(buf):
        raise DecodeError("truncated long string")
    return bytes(buf[o + 4:end]), end


def _value(buf: Buffer, o: int) -> tuple[Any, int]:
    """One tagged value: the type letter at o, then the value."""
    tag = buf[o]
    o += 1
    if tag == 0x53:  # S
        raw, o = _longstr_bytes(buf, o)
        try:
            return raw.decode("utf-8"), o
        except UnicodeDecodeError:
            return raw, o
    if tag == 0x49:  # I
        return _i.unpack_from(buf, o)[0], o + 4
    if tag == 0x74:  # t
        return buf[o] != 0, o + 1
    if tag == 0x46:  # F
        return decode_table(buf, o)
    if tag == 0x6C or tag == 0x4C:  # l, L
        return Long(_q.unpack_from(buf, o)[0]), o + 8
    if tag == 0x41:  # A
        return _array(buf, o)
    if tag == 0x54:  # T
        (seconds,) = _Q.unpack_from(buf, o)
        return _EPOCH + datetime.timedelta(seconds=seconds), o + 8
    if tag == 0x62:  # b
        return _b.unpack_from(buf, o)[0], o + 1
    if tag == 0x42:  # B
        return _B.unpack_from(buf, o)[0], o + 1
    if tag == 0x73:  # s
        return _h.unpack_from(buf, o)[0], o + 2
    if tag == 0x75:  # u
        return _H.unpack_from(buf, o)[0], o + 2
    if tag == 0x69:  # i
        return _I.unpack_from(buf, o)[0], o + 4
    if tag == 0x66:  # f
        return _f.unpack_from(buf, o)[0], o + 4
    if tag == 0x64:  # d
        return _d.unpack_from(buf, o)[0], o + 8
    if tag == 0x44:  # D
        scale, unscaled = _Bi.unpack_from(buf, o)
        return decimal.Decimal(unscaled).scaleb(-scale), o + 5
    if tag == 0x78:  # x
        return _longstr_bytes(buf, o)
    if tag == 0x56:  # V
        return None, o
    raise DecodeError(f"unknown field type {chr(tag)!r}")


def decode_table(buf: Buffer, o: int) -> tuple[dict[str, Any], int]:
    """A field table with its 4-byte length prefix at offset o."""
    (size,) = _I.unpack_from(buf, o)
    o += 4
    end = o + size
    if end > len(buf):
        raise DecodeError("truncated field table")
    return decode_table_items(buf, o, end), end


def decode_table_items(buf: Buffer, o: int, end: int) -> dict[str, Any]:
    """The key/value pairs of a table between o and end (AMQPLAIN's response is such a bare list)."""
    table: dict[str, Any] = {}
    while o < end:
        key, o = _shortstr(buf, o)
        table[key], o = _value(buf, o)
    if o != end:
        raise DecodeError("field table overruns its length")
    return table


def _array(buf: Buffer, o: int) -> tuple[list[Any], int]:
    (size,) = _I.unpack_from(buf, o)
    o += 4
    end = o + size
    if end > len(buf):
        raise DecodeError("truncated field array")
    items = []
    while o < end:
        item, o = _value(buf, o)
        items.append(item)
    if o != end:
        raise DecodeError("field array overruns its length")
    return items, end


def _encode_value(value: Any, out: list[bytes]) -> None:
    # bool before int: bool is an int subclass.
    if isinstance(value, str):
        raw = value.encode()
        out += (b"S", _I.pack(len(raw)), raw)
    elif isinstance(value, bool):
        out.append(b"t\x01" if value else b"t\x00")
    elif isinstance(value, Long):
        out += (b"l", _q.pack(value))
    elif isinstance(value, int):
        # Like pika: 'I' when it fits, else 'l'; both are read as signed by every client.
        if -0x80000000 <= value <= 0x7FFFFFFF:
            out += (b"I", _i.pack(value))
        else:
            out += (b"l", _q.pack(value))
    elif isinstance(value, dict):
        out += (b"F", encode_table(value))
    elif isinstance(value, (bytes, bytearray, memoryview)):
        out += (b"x", _I.pack(len(value)), bytes(value))
    elif isinstance(value, float):
        out += (b"d", _d.pack(value))
    elif isinstance(value, (list, tuple)):
        items: list[bytes] = []
        for item in value:
            _encode_value(item, items)
        body = b"".join(items)
        out += (b"A", _I.pack(len(body)), body)
    elif value is None:
        out.append(b"V")
    elif isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_UTC)
        out += (b"T", _Q.pack(int((value - _EPOCH).total_seconds())))
    elif isinstance(value, decimal.Decimal):
        out += (b"D", _encode_decimal(value))
    else:
        raise TypeError(f"cannot encode {type(value).__name__} in a field table")


def _encode_decimal(value: decimal.Decimal) -> bytes:
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"cannot encode {value} as an AMQP decimal")
    unscaled = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
    if exponent > 0:
        unscaled *= 10**exponent
        exponent = 0
    return _Bi.pack(-exponent, unscaled)


def encode_table(table: dict[str, Any]) -> bytes:
    """A field table with its 4-byte length prefix."""
    if not table:
        return b"\x00\x00\x00\x00"
    out: list[bytes] = []
    for key, value in table.items():
        raw = key.encode()
        out += (_B.pack(len(raw)), raw)
        _encode_value(value, out)
    body = b"".join(out)
    return _I.pack(len(body)) + body



def _headers_at(properties: bytes) -> tuple[int, int]:
    """The property flags and where the headers table starts (or would start, if there is none)."""
    (flags,) = _H.unpack_from(properties, 0)
    o = 2
    last = flags
    while last & 1:
        (last,) = _H.unpack_from(properties, o)
        o += 2
    for present in (flags & 0x8000, flags & 0x4000):  # content-type and content-encoding come first
        if present:
            o += 1 + properties[o]
    return flags, o


def remove_header(properties: bytes, key: str) -> bytes:
    """Basic properties without one key of their headers table, every other byte as it was.

    Re-encoding the decoded properties instead would change type letters (a short int read back is
    written as a long one) and the consumer would not see what the publisher sent.
    """
    flags, table_start = _headers_at(properties)
    if not flags & 0x2000:
        return properties
    (size,) = _I.unpack_from(properties, table_start)
    o = table_start + 4
    end = o + size
    kept: list[bytes] = []
    while o < end:
        item = o
        name, o = _shortstr(properties, o)
        _, o = _value(properties, o)
        if name != key:
            kept.append(properties[item:o])
    items = b"".join(kept)
    return properties[:table_start] + _I.pack(len(items)) + items + properties[end:]


def replace_headers(properties: bytes, table: bytes) -> bytes:
    """Basic properties with `table` (an encoded field table, length first) as their headers table,
    every other byte as it was."""
    flags, table_start = _headers_at(properties)
    end = table_start
    if flags & 0x2000:
        end += 4 + _I.unpack_from(properties, table_start)[0]
    else:
        properties = _H.pack(flags | 0x2000) + properties[2:]
    return properties[:table_start] + table + properties[end:]


def set_header(properties: bytes, key: str, value: Any) -> bytes:
    """Basic properties with one header set to `value` (last in the table), every other byte as it was."""
    properties = remove_header(properties, key)
    flags, table_start = _headers_at(properties)
    raw = key.encode()
    out = [_B.pack(len(raw)), raw]
    _encode_value(value, out)
    item = b"".join(out)
    if not flags & 0x2000:
        properties = _H.pack(flags | 0x2000) + properties[2:table_start] + _I.pack(0) + properties[table_start:]
    (size,) = _I.unpack_from(properties, table_start)
    end = table_start + 4 + size
    return (
        properties[:table_start] + _I.pack(size + len(item)) + properties[table_start + 4 : end] + item
        + properties[end:]
    )
