"""Where the API is served: the command line's `--http-port` and `--no-http`, and the embedded
broker's `http_port` (off unless asked for)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time

import pytest

from amqpbroker.cli import parse_args
from amqpbroker.testing import Broker

from .client import ApiClient


def _start(*args: str) -> tuple[subprocess.Popen, list[str]]:
    """Starts the command and returns it with its log lines up to the AMQP listener's."""
    process = subprocess.Popen(
        [sys.executable, "-m", "amqpbroker", "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0", "--in-memory",
         *args],
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines.append(process.stderr.readline())
        if "management API on" in lines[-1] or ("listening on" in lines[-1] and "--no-http" in args):
            return process, lines
    process.kill()
    raise AssertionError(f"the broker did not start: {lines}")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=10)
    process.stderr.close()


def test_http_port_zero_serves_the_api_on_a_free_port() -> None:
    process, lines = _start("--http-port", "0")
    try:
        port = int(re.search(r"management API on http://127\.0\.0\.1:(\d+)/api/", lines[-1]).group(1))
        reply = ApiClient(f"http://127.0.0.1:{port}").get("/api/overview")
        assert reply.status == 200
        assert {"protocol": "http", "port": port} in [
            {"protocol": listener["protocol"], "port": listener["port"]} for listener in reply.json["listeners"]
        ]
    finally:
        _stop(process)


def test_no_http_serves_no_api() -> None:
    process, lines = _start("--no-http")
    try:
        assert not any("management API" in line for line in lines)
    finally:
        _stop(process)


def test_an_http_port_in_use_is_named() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "amqpbroker", "--host", "127.0.0.1", "--port", "0", "--in-memory",
             "--http-port", str(port)],
            capture_output=True, text=True, timeout=30,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_the_default_http_port_is_rabbitmqs() -> None:
    assert parse_args([]).http_port == 15672
    assert parse_args(["--no-http"]).no_http


def test_the_embedded_broker_serves_no_api_unless_asked() -> None:
    with Broker() as broker:
        assert broker.http_port is None
        with pytest.raises(RuntimeError, match="http_port=0"):
            broker.http_url


def test_the_embedded_broker_keeps_its_api_port_across_a_restart() -> None:
    with Broker(http_port=0) as broker:
        port = broker.http_port
        broker.restart()
        assert broker.http_port == port
        assert ApiClient(broker.http_url).get("/api/overview").status == 200
