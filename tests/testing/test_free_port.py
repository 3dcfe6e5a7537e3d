"""free_port, which private RabbitMQ nodes and the benchmark take their ports from."""

from __future__ import annotations

import socket

from amqpbroker.testing import rabbitmq


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_port_given_once_is_not_given_again_though_it_is_free(monkeypatch) -> None:
    first, second = unused_port(), unused_port()
    picks = iter([first, first, second])
    monkeypatch.setattr(rabbitmq.random, "randrange", lambda low, high: next(picks))
    assert rabbitmq.free_port() == first
    # `first` is free again (nothing listens there), as a stopped node's port is until it restarts.
    assert rabbitmq.free_port() == second
