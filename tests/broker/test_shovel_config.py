"""Shovel definitions in RabbitMQ's keys: defaults, the problems RabbitMQ's validation names, and the
x-shovelled entry (as RabbitMQ 3.10 writes it, checked against it)."""

from __future__ import annotations

import pytest

from amqpbroker.core.shovels import ShovelConfig, ShovelDefinitionError, redact_uri

MINIMAL = {"src-uri": "amqp://h1", "src-queue": "q", "dest-uri": "amqp://u:p@h2:5673/v"}


def test_defaults_are_rabbitmqs() -> None:
    config = ShovelConfig.from_value("s", MINIMAL)
    assert (config.ack_mode, config.prefetch_count, config.reconnect_delay) == ("on-confirm", 1000, 5.0)
    assert (config.src_delete_after, config.add_forward_headers) == ("never", False)
    assert config.dest_queue is None and config.dest_exchange_key is None
    assert config.src_uris == ("amqp://h1",)


def test_every_problem_is_named() -> None:
    with pytest.raises(ShovelDefinitionError) as caught:
        ShovelConfig.from_value("s", {**MINIMAL, "src-exchange": "x", "ack-mode": "bogus", "prefetch-count": "x"})
    message = str(caught.value)
    assert message.startswith("Validation failed\n\n")
    assert "Cannot specify 'src-exchange' and 'src-queue'" in message
    assert "ack-mode should be one of" in message and "prefetch-count should be a number" in message


@pytest.mark.parametrize("value", [
    {"src-queue": "q", "dest-uri": "amqp://h"},
    {"src-uri": "amqp://h", "dest-uri": "amqp://h"},
    {**MINIMAL, "dest-queue": "q", "dest-exchange": "x"},
    {**MINIMAL, "src-delete-after": "sometimes"},
    {**MINIMAL, "add-forward-headers": "yes"},
    {**MINIMAL, "dest-uri": "http://h"},
])
def test_invalid(value: dict) -> None:
    with pytest.raises(ShovelDefinitionError):
        ShovelConfig.from_value("s", value)


def test_forward_header_as_rabbitmq_writes_it() -> None:
    config = ShovelConfig.from_value("s", {
        "src-uri": "amqp://guest:guest@127.0.0.1:5672", "src-exchange": "ex", "src-exchange-key": "k",
        "dest-uri": ["amqp://guest:guest@127.0.0.1"], "dest-exchange": "dex",
    })
    assert config.forward_header("rabbit@vm", "/", "s") == {
        "shovelled-by": "rabbit@vm", "shovel-type": "dynamic", "shovel-name": "s", "shovel-vhost": "/",
        "src-uri": "amqp://127.0.0.1:5672", "dest-uri": "amqp://127.0.0.1",
        "src-exchange": "ex", "src-exchange-key": "k", "dest-exchange": "dex",
    }


def test_older_key_names_and_unrecognised_terms() -> None:
    config = ShovelConfig.from_value("s", {**MINIMAL, "prefetch-count": 5, "delete-after": 3, "add-forward-headers": True})
    assert (config.prefetch_count, config.src_delete_after, config.add_forward_headers) == (5, 3, True)
    config = ShovelConfig.from_value("s", {**MINIMAL, "src-prefetch-count": 6, "dest-add-forward-headers": True})
    assert (config.prefetch_count, config.add_forward_headers) == (6, True)
    with pytest.raises(ShovelDefinitionError) as caught:
        ShovelConfig.from_value("s", {**MINIMAL, "foo": 1, "src-delete-after": "x"})
    assert str(caught.value) == (
        'Validation failed\n\nUnrecognised terms [{<<"foo">>,1}] in s\n'
        'src-delete-after should be a number greater than or equal to 0, "never" or "queue-length", '
        'actually was <<"x">>\n'
    )


def test_redact_uri() -> None:
    assert redact_uri("amqp://u:p@h:1/v?heartbeat=5") == "amqp://h:1/v?heartbeat=5"
    assert redact_uri("amqp://h") == "amqp://h"
