"""Field tables and arrays: a byte vector per type letter, nesting, encoder choices, round-trips."""

from __future__ import annotations

import datetime
import decimal
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amqpbroker.protocol import BasicProperties, DecodeError, decode_table, encode_table, set_header
from amqpbroker.protocol._codec import decode_table_items, encode_reply_text

UTC = datetime.timezone.utc


def table_bytes(items: bytes) -> bytes:
    return len(items).to_bytes(4, "big") + items


def decode_one(entry: bytes):
    """Decode a table holding the single entry `k` followed by the given type letter and value."""
    data = table_bytes(b"\x01k" + entry)
    table, end = decode_table(data, 0)
    assert end == len(data)
    return table["k"]


@pytest.mark.parametrize("entry, expected", [
    (b"t\x01", True),
    (b"t\x00", False),
    (b"b\xff", -1),
    (b"B\xff", 255),
    (b"s\xff\xfe", -2),                              # RabbitMQ: signed 16-bit, not a short string
    (b"u\xff\xfe", 65534),
    (b"I\xff\xff\xff\xfd", -3),
    (b"i\xff\xff\xff\xfd", 4294967293),
    (b"l\xff\xff\xff\xff\xff\xff\xff\xfc", -4),      # RabbitMQ: signed 64-bit
    (b"L\x00\x00\x00\x00\x00\x00\x01\x00", 256),
    (b"f\x3f\xc0\x00\x00", 1.5),
    (b"d\x40\x04\x00\x00\x00\x00\x00\x00", 2.5),
    (b"D\x02\xff\xff\xff\x85", decimal.Decimal("-1.23")),
    (b"S\x00\x00\x00\x03abc", "abc"),
    (b"S\x00\x00\x00\x02\xc3\xa9", "\u00e9"),
    (b"S\x00\x00\x00\x02\xff\xfe", b"\xff\xfe"),     # not UTF-8: kept as bytes
    (b"x\x00\x00\x00\x03\x00\x01\x02", b"\x00\x01\x02"),
    (b"T\x00\x00\x00\x00\x5f\x5e\x10\x00", datetime.datetime(2020, 9, 13, 12, 26, 40, tzinfo=UTC)),
    (b"V", None),
    (b"F\x00\x00\x00\x07\x01aI\x00\x00\x00\x01", {"a": 1}),
    (b"F\x00\x00\x00\x00", {}),
    (b"A\x00\x00\x00\x0aI\x00\x00\x00\x01S\x00\x00\x00\x00", [1, ""]),   # length in bytes, not items
    (b"A\x00\x00\x00\x00", []),
])
def test_decode_each_type_letter(entry, expected):
    assert decode_one(entry) == expected


def test_nested_tables_and_arrays():
    # {"x": {"y": [{"z": True}, [None]]}}
    z = b"\x01zt\x01"
    arr = b"F" + table_bytes(z) + b"A" + table_bytes(b"V")
    y = b"\x01yA" + table_bytes(arr)
    data = table_bytes(b"\x01xF" + table_bytes(y))
    table, _ = decode_table(data, 0)
    assert table == {"x": {"y": [{"z": True}, [None]]}}
    assert encode_table(table) == data


def test_decode_at_offset_and_returns_end():
    data = b"junk" + table_bytes(b"\x01at\x01") + b"tail"
    table, end = decode_table(memoryview(data), 4)
    assert table == {"a": True} and data[end:] == b"tail"


@pytest.mark.parametrize("value, entry", [
    (True, b"t\x01"),
    (False, b"t\x00"),
    (7, b"I\x00\x00\x00\x07"),
    (-2**31, b"I\x80\x00\x00\x00"),
    (2**31, b"l\x00\x00\x00\x00\x80\x00\x00\x00"),
    (-2**31 - 1, b"l\xff\xff\xff\xff\x7f\xff\xff\xff"),
    (2.5, b"d\x40\x04\x00\x00\x00\x00\x00\x00"),
    ("h\u00e9", b"S\x00\x00\x00\x03h\xc3\xa9"),
    (b"\x00", b"x\x00\x00\x00\x01\x00"),
    ({}, b"F\x00\x00\x00\x00"),
    ([1, "a"], b"A\x00\x00\x00\x0bI\x00\x00\x00\x01S\x00\x00\x00\x01a"),
    ((), b"A\x00\x00\x00\x00"),
    (None, b"V"),
    (datetime.datetime(2020, 9, 13, 12, 26, 40, tzinfo=UTC), b"T\x00\x00\x00\x00\x5f\x5e\x10\x00"),
    (datetime.datetime(2020, 9, 13, 12, 26, 40), b"T\x00\x00\x00\x00\x5f\x5e\x10\x00"),  # naive = UTC
    (decimal.Decimal("-1.23"), b"D\x02\xff\xff\xff\x85"),
    (decimal.Decimal("5E+2"), b"D\x00\x00\x00\x01\xf4"),
])
def test_encode_python_values(value, entry):
    assert encode_table({"k": value}) == table_bytes(b"\x01k" + entry)


def test_encode_rejects_unknown_types():
    with pytest.raises(TypeError):
        encode_table({"k": object()})


def test_empty_table():
    assert encode_table({}) == b"\x00\x00\x00\x00"
    assert decode_table(b"\x00\x00\x00\x00", 0) == ({}, 4)


def test_amqplain_style_bare_items():
    items = b"\x05LOGINS\x00\x00\x00\x05guest"
    assert decode_table_items(items, 0, len(items)) == {"LOGIN": "guest"}


@pytest.mark.parametrize("data", [
    b"\x00\x00\x00\x05\x01kZ\x00\x00",             # unknown type letter
    b"\x00\x00\x00\x09\x01kS\x00\x00\x00\x05ab",    # string longer than the table
    b"\x00\x00\x00\x10\x01kt\x01",                  # table longer than the buffer
    b"\x00\x00\x00\x04\x01kI\x00",                  # value runs past the table's end
    b"\x00\x00\x00\x08\x01kA\x00\x00\x00\x09",      # array longer than the buffer
])
def test_malformed_tables_raise(data):
    # The connection turns exactly these into 501 FRAME_ERROR.
    with pytest.raises((DecodeError, IndexError, struct.error)):
        decode_table(data, 0)


keys = st.text(max_size=20).filter(lambda k: len(k.encode()) < 256)
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-2**63, max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.binary(max_size=30),
    st.none(),
    st.datetimes(min_value=datetime.datetime(1970, 1, 1), max_value=datetime.datetime(9999, 1, 1),
                 timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=0)),
    st.decimals(allow_nan=False, allow_infinity=False, places=3,
                min_value=-2_000_000, max_value=2_000_000),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)),
    max_leaves=20,
)
tables = st.dictionaries(keys, values, max_size=6)


@given(tables)
def test_table_round_trip(table):
    data = encode_table(table)
    decoded, end = decode_table(data, 0)
    assert end == len(data)
    assert decoded == table
    assert encode_table(decoded) == data


@pytest.mark.parametrize("text, expected", [
    ("NOT_FOUND - no queue 'q'", b"NOT_FOUND - no queue 'q'"),
    ("a" * 255, b"a" * 255),
    ("a" * 256, b"a" * 252 + b"..."),                            # RabbitMQ's cut: 252 bytes and "..."
    ("a" + "\u00e9" * 200, ("a" + "\u00e9" * 125).encode() + b"..."),  # never inside a character
])
def test_reply_text_is_cut_to_fit_a_short_string(text, expected):
    assert encode_reply_text(text) == expected


@given(st.text(max_size=400))
def test_cut_reply_text_is_a_utf8_prefix_that_fits(text):
    encoded = encode_reply_text(text)
    assert len(encoded) <= 255
    if encoded != text.encode():
        assert encoded.endswith(b"...") and text.startswith(encoded[:-3].decode())


@pytest.mark.parametrize(
    "properties",
    [
        BasicProperties(),
        BasicProperties(content_type="text/plain", content_encoding="gzip", delivery_mode=2),
        BasicProperties(content_type="a", headers={"x-delay": 5, "kept": "b"}, priority=3),
    ],
)
def test_set_header_replaces_or_adds_one_header_and_keeps_the_rest(properties: BasicProperties) -> None:
    encoded = properties.encode()
    decoded = BasicProperties.decode(set_header(encoded, "x-delay", -5000))
    assert decoded.headers == {**(properties.headers or {}), "x-delay": -5000}
    decoded.headers = properties.headers
    assert decoded == properties


def test_set_header_keeps_the_other_headers_bytes() -> None:
    # A short int ('s') would become a long one if the table were decoded and encoded again.
    headers = table_bytes(b"\x01as\x00\x07")
    properties = b"\x20\x00" + headers
    assert set_header(properties, "b", 1) == b"\x20\x00" + table_bytes(b"\x01as\x00\x07\x01bI\x00\x00\x00\x01")
