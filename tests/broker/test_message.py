"""What the broker reads of a message's properties without decoding them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from amqpbroker.core.message import is_persistent
from amqpbroker.protocol import BasicProperties


@settings(max_examples=300)
@given(
    delivery_mode=st.none() | st.integers(0, 255),
    content_type=st.none() | st.text(max_size=20),
    content_encoding=st.none() | st.text(max_size=20),
    headers=st.none()
    | st.dictionaries(st.text(max_size=10), st.integers(-(2**31), 2**31 - 1) | st.text(max_size=30), max_size=4),
    timestamp=st.none() | st.integers(0, 2**40),
    cut=st.integers(0, 8),
)
def test_persistence_is_read_past_the_fields_before_the_delivery_mode(
    delivery_mode, content_type, content_encoding, headers, timestamp, cut
) -> None:
    properties = BasicProperties(
        delivery_mode=delivery_mode, content_type=content_type, content_encoding=content_encoding, headers=headers,
        timestamp=timestamp,
    ).encode()
    assert is_persistent(properties) == (delivery_mode == 2)
    # Properties cut short are no persistent message's, and raise nothing.
    assert is_persistent(properties[: len(properties) - cut]) in (False, delivery_mode == 2)
