"""Brokers the runner starts itself: a private RabbitMQ node (the reference) or our own broker.

Each is a context manager that yields the broker's URL once it accepts AMQP connections and stops
the broker, with everything it started, on exit. Both listen on 127.0.0.1 on a free port, so they
never collide with a broker that is already running.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import amqp.exceptions
import kombu

from interop.clients import INTEROP_DIR

RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")  # Debian's, without the switch to user rabbitmq
_STARTUP = 90
_SHUTDOWN = 30


class BrokerError(Exception):
    pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_product(url: str) -> str:
    """The product and version the broker announces in connection.start."""
    with kombu.Connection(url, connect_timeout=5) as connection:
        connection.connect()
        properties = connection.connection.server_properties
    return f"{properties.get('product', '?')} {properties.get('version', '?')}"


@contextmanager
def _process(argv: list[str], log: Path, url: str, **popen) -> Iterator[str]:
    """Run a broker in its own process group; yield `url` once it accepts connections."""
    with log.open("wb") as output:
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, start_new_session=True, **popen)
    try:
        deadline = time.monotonic() + _STARTUP
        while True:
            if process.poll() is not None:
                raise BrokerError(f"{argv[0]} exited with {process.returncode}; see {log}")
            try:
                server_product(url)
                break
            except (OSError, amqp.exceptions.AMQPError):
                if time.monotonic() > deadline:
                    raise BrokerError(f"{argv[0]} did not accept connections within {_STARTUP} s; see {log}") from None
                time.sleep(0.5)
        yield url
    finally:
        _stop_group(process)


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the broker's process group, let it shut down, then SIGKILL whatever is left."""
    with suppress(ProcessLookupError):  # raised once no process of the group is left
        os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + _SHUTDOWN
        while time.monotonic() < deadline:
            process.poll()  # reap the group leader: a zombie still counts as a member
            os.killpg(process.pid, 0)
            time.sleep(0.1)
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextmanager
def rabbitmq(log: Path) -> Iterator[str]:
    """A private RabbitMQ node: its own name, ports, data and logs, no plugins, no management listener."""
    if not RABBITMQ_SERVER.is_file():
        raise BrokerError(f"{RABBITMQ_SERVER} not found (install rabbitmq-server)")
    port, dist_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="interop-rabbitmq-") as home:
        base = Path(home)
        (base / "enabled_plugins").write_text("[].\n")
        (base / "rabbitmq-env.conf").write_text("")
        env = {
            **os.environ,
            "HOME": home,  # the Erlang cookie goes here
            "RABBITMQ_NODENAME": f"interop-{port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(port),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        }
        url = f"amqp://guest:guest@127.0.0.1:{port}/%2F"
        with _process([str(RABBITMQ_SERVER)], log, url, env=env, cwd=home):
            yield url


@contextmanager
def ours(log: Path) -> Iterator[str]:
    """amqpbroker from this checkout, as a subprocess with a fresh data directory."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="interop-amqpbroker-") as data:
        argv = [sys.executable, "-m", "amqpbroker", "--no-http", "--no-metrics", "--host", "127.0.0.1",
                "--port", str(port), "--data-dir", data]
        with _process(argv, log, f"amqp://guest:guest@127.0.0.1:{port}/%2F", cwd=INTEROP_DIR.parent) as url:
            yield url
