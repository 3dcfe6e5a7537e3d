"""The `amqpbroker` command: flags, graceful shutdown on SIGTERM and SIGINT, clear errors."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pika
import pytest

from amqpbroker.config import load


def start_broker(*args: str, listening: str = "listening on") -> tuple[subprocess.Popen, int]:
    """Starts the command on 127.0.0.1 (unless `args` name another --host) and a free port; the port
    of the first log line saying `listening`."""
    process = subprocess.Popen(
        [sys.executable, "-m", "amqpbroker", "--no-http", "--no-metrics", "--host", "127.0.0.1", "--port", "0", *args],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        found = re.search(listening + r" \S+:(\d+)", line)
        if found:
            return process, int(found.group(1))
    process.kill()
    raise AssertionError("the broker did not report its port")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_closes_clients_with_connection_forced(signum: signal.Signals) -> None:
    process, port = start_broker("--in-memory")
    try:
        connection = pika.BlockingConnection(pika.URLParameters(f"amqp://guest:guest@127.0.0.1:{port}/"))
        connection.channel().queue_declare("q")
        process.send_signal(signum)
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
            connection.process_data_events(time_limit=5)
        assert closed.value.reply_code == 320
        assert closed.value.reply_text.startswith("CONNECTION_FORCED")
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
        process.stderr.close()


def test_bad_port_flag_says_what_is_wrong() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "amqpbroker", "--port", "amqp"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "not a port number: 'amqp'" in result.stderr


def test_port_in_use_is_reported() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "amqpbroker", "--no-http", "--no-metrics", "--host", "127.0.0.1",
             "--port", str(port), "--in-memory"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_limit_flags_reach_the_broker(tmp_path) -> None:
    process, port = start_broker(
        "--data-dir", str(tmp_path), "--max-message-size", "1000", "--disk-free-limit", "1000000000000000"
    )
    try:
        connection = pika.BlockingConnection(pika.URLParameters(f"amqp://guest:guest@127.0.0.1:{port}/"))
        channel = connection.channel()
        channel.queue_declare("q")
        channel.basic_publish("", "q", b"x" * 1001)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
            channel.queue_declare("q", passive=True)
        assert closed.value.reply_code == 406
        # No disk has a petabyte free: the disk alarm is on, so this publish is held.
        blocked: list[str] = []
        connection.add_on_connection_blocked_callback(lambda conn, frame: blocked.append(frame.method.reason))
        connection.channel().basic_publish("", "q", b"small")
        deadline = time.monotonic() + 10
        while not blocked and time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.05)
        assert blocked == ["low on disk"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
        process.stderr.close()


def test_consumer_timeout_flag_closes_a_channel_holding_an_unacked_delivery() -> None:
    process, port = start_broker("--in-memory", "--consumer-timeout", "200")
    try:
        connection = pika.BlockingConnection(pika.URLParameters(f"amqp://guest:guest@127.0.0.1:{port}/"))
        channel = connection.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.basic_publish("", queue, b"m")
        channel.basic_consume(queue, lambda *delivery: None)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
            channel.start_consuming()
        assert closed.value.reply_code == 406
        assert "Timeout value used: 200 ms." in closed.value.reply_text
        connection.close()
    finally:
        process.kill()
        process.stderr.close()


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--max-message-size", "513MiB", "513MiB is more than the largest allowed, 512MiB"),
        ("--handshake-timeout", "0", "must be more than 0 seconds, not 0"),
        ("--shutdown-timeout", "soon", "not a number of seconds: 'soon'"),
        ("--disk-free-limit", "lots", "not a size: 'lots'"),
    ],
)
def test_bad_limit_flag_says_what_is_wrong(flag: str, value: str, message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "amqpbroker", flag, value], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert message in result.stderr


def test_consumer_timeout_defaults_to_rabbitmqs_and_zero_turns_it_off() -> None:
    assert load([], {})["limits.consumer_timeout"] == 1_800_000
    assert load(["--consumer-timeout", "0"], {})["limits.consumer_timeout"] is None


def test_bad_consumer_timeout_flag_says_what_is_wrong() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "amqpbroker", "--consumer-timeout", "1s"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "not a number of milliseconds: '1s'" in result.stderr


def test_load_definitions_imports_a_file_at_start(tmp_path) -> None:
    definitions = tmp_path / "definitions.json"
    definitions.write_text(json.dumps({
        "vhosts": [{"name": "/"}],
        "users": [{"name": "guest", "password": "guest", "tags": "administrator"}],
        "permissions": [{"user": "guest", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}],
        "policies": [{"vhost": "/", "name": "short", "pattern": "^orders$", "apply-to": "queues",
                      "definition": {"max-length": 1}, "priority": 0}],
        "queues": [{"name": "orders", "vhost": "/", "durable": True, "auto_delete": False, "arguments": {}}],
        "exchanges": [{"name": "shop", "vhost": "/", "type": "topic", "durable": True, "auto_delete": False,
                       "internal": False, "arguments": {}}],
        "bindings": [{"source": "shop", "vhost": "/", "destination": "orders", "destination_type": "queue",
                      "routing_key": "order.#", "arguments": {}}],
    }))
    process, port = start_broker("--in-memory", "--load-definitions", str(definitions))
    try:
        connection = pika.BlockingConnection(pika.URLParameters(f"amqp://guest:guest@127.0.0.1:{port}/"))
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("shop", "order.created", b"first")
        channel.basic_publish("shop", "order.paid", b"second")
        assert channel.queue_declare("orders", passive=True).method.message_count == 1
        assert channel.basic_get("orders", auto_ack=True)[2] == b"second"
        connection.close()
    finally:
        process.kill()
        process.stderr.close()


def test_load_definitions_takes_a_file_rabbitmq_exported() -> None:
    fixture = Path(__file__).parent.parent / "fixtures" / "rabbitmq-3.10.8-definitions.json"
    process, port = start_broker("--in-memory", "--load-definitions", str(fixture))
    try:
        url = f"amqp://pd-user:pd-secret@127.0.0.1:{port}/pd-defs"
        connection = pika.BlockingConnection(pika.URLParameters(url))
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("pd.direct", "plain", b"routed")
        assert channel.basic_get("pd.plain", auto_ack=True)[2] == b"routed"
        connection.close()
    finally:
        process.kill()
        process.stderr.close()


def _can_log_in(port: int, credentials: str, vhost: str) -> bool:
    """Whether `credentials` ("user:password") open a connection to `vhost` (URL-quoted)."""
    try:
        pika.BlockingConnection(pika.URLParameters(f"amqp://{credentials}@127.0.0.1:{port}/{vhost}")).close()
    except (pika.exceptions.ProbableAuthenticationError, pika.exceptions.ProbableAccessDeniedError):
        return False
    return True


def test_definitions_loaded_into_a_fresh_data_directory_replace_guest_and_the_default_vhost(tmp_path) -> None:
    # As RabbitMQ 3.10 with load_definitions: the defaults are not made, then or at any later start.
    definitions = tmp_path / "definitions.json"
    definitions.write_text(json.dumps({
        "vhosts": [{"name": "shop"}],
        "users": [{"name": "app", "password": "app-secret", "tags": ""}],
        "permissions": [{"user": "app", "vhost": "shop", "configure": ".*", "write": ".*", "read": ".*"}],
    }))
    data = str(tmp_path / "data")
    for args in (("--load-definitions", str(definitions)), ()):
        process, port = start_broker("--data-dir", data, *args)
        try:
            assert _can_log_in(port, "app:app-secret", "shop")
            assert not _can_log_in(port, "guest:guest", "%2F")
            assert not _can_log_in(port, "app:app-secret", "%2F")
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=30)


def test_definitions_without_users_are_loaded_with_a_warning(tmp_path) -> None:
    definitions = tmp_path / "definitions.json"
    definitions.write_text(json.dumps({"vhosts": [{"name": "shop"}]}))
    process = subprocess.Popen(
        [sys.executable, "-m", "amqpbroker", "--no-http", "--no-metrics", "--port", "0", "--in-memory",
         "--load-definitions", str(definitions)],
        stderr=subprocess.PIPE, text=True,
    )
    try:
        log = []
        for line in iter(process.stderr.readline, ""):
            log.append(line)
            if "listening on" in line:
                break
    finally:
        process.kill()
        process.stderr.close()
    warning = f"WARNING amqpbroker: no user can log in: the broker has none, and {definitions} defines none"
    assert any(line.rstrip().endswith(warning) for line in log)


def test_a_start_whose_definitions_failed_to_load_leaves_the_data_directory_fresh(tmp_path) -> None:
    definitions = tmp_path / "definitions.json"
    definitions.write_text("{not json")
    data = str(tmp_path / "data")
    failed = subprocess.run(
        [sys.executable, "-m", "amqpbroker", "--no-http", "--no-metrics", "--port", "0", "--data-dir", data,
         "--load-definitions", str(definitions)],
        capture_output=True, text=True, timeout=30,
    )
    assert failed.returncode == 1
    process, port = start_broker("--data-dir", data)
    try:
        assert _can_log_in(port, "guest:guest", "%2F")
    finally:
        process.kill()
        process.stderr.close()


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "No such file or directory"),
        ("{not json", "not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        ('{"vhosts": [{"name": "/"}], "exchanges": [{"name": "x", "vhost": "/", "type": "nope"}]}',
         "command_invalid: unknown exchange type 'nope'"),
    ],
)
def test_a_bad_definitions_file_stops_the_start(tmp_path, content: str | None, message: str) -> None:
    definitions = tmp_path / "definitions.json"
    if content is not None:
        definitions.write_text(content)
    result = subprocess.run(
        [sys.executable, "-m", "amqpbroker", "--no-http", "--no-metrics", "--port", "0", "--in-memory",
         "--load-definitions", str(definitions)],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr.endswith(f"amqpbroker: cannot load definitions from {definitions}: {message}\n")



@pytest.mark.parametrize(("flag", "names"), [([], ("guest",)), (["--loopback-users", ""], ()), (["--loopback-users", "guest, ops"], ("guest", "ops"))])
def test_loopback_users_flag(flag: list[str], names: tuple[str, ...]) -> None:
    assert load(flag, {})["auth.loopback_users"] == names
