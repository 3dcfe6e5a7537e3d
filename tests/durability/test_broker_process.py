"""BrokerProcess.connect_current: a client running while the test restarts the broker reaches
that broker or nothing, never another program that took the port the broker left."""

from __future__ import annotations

from pathlib import Path

import pika
import pytest

from .conftest import BrokerProcess


@pytest.fixture
def other_program(tmp_path: Path, broker_process: BrokerProcess) -> BrokerProcess:
    """Another broker, to be started on the port `broker_process` listens on once that is free."""
    log_dir = tmp_path / "other"
    log_dir.mkdir()
    return BrokerProcess(log_dir / "data", log_dir, listen_port=broker_process.port)


def test_connects_to_the_broker_serving(broker_process: BrokerProcess) -> None:
    connection = broker_process.connect_current()
    assert connection is not None
    connection.channel().queue_declare("here", durable=True)
    connection.close()


def test_no_connection_to_the_old_port_once_the_broker_is_killed(
    broker_process: BrokerProcess, other_program: BrokerProcess
) -> None:
    broker_process.kill()
    other_program.start()
    try:
        assert broker_process.connect_current() is None
    finally:
        other_program.kill()


@pytest.mark.parametrize("how", ["kill", "sigterm"])
def test_a_connection_made_while_the_broker_stops_is_given_up(
    broker_process: BrokerProcess, other_program: BrokerProcess, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """The client has read the port; before its connect, the broker stops and another program
    listens there. The connection succeeds, to the wrong broker: it must not be used."""
    connect = pika.BlockingConnection
    reached = []

    def stopped_meanwhile(params: pika.ConnectionParameters) -> pika.BlockingConnection:
        broker_process.kill() if how == "kill" else broker_process.stop()
        other_program.start()
        connection = connect(params)
        reached.append(params.port)
        return connection

    monkeypatch.setattr(pika, "BlockingConnection", stopped_meanwhile)
    try:
        assert broker_process.connect_current() is None
        assert reached == [other_program.port]
    finally:
        other_program.kill()
