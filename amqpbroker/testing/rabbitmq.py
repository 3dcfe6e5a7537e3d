"""A private RabbitMQ node for tests and benchmarks: Debian's `rabbitmq-server` on free ports, with
its own node name, data and log directories, started, killed (SIGKILL) and started again.

It never touches the machine's own node: the name, the AMQP and distribution ports, the cookie
(HOME) and every directory are its own. Plugins: none unless asked (e.g. `rabbitmq_shovel`).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
import uuid
from contextlib import suppress
from pathlib import Path

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
START_SECONDS = 90
STOP_SECONDS = 30


def installed() -> bool:
    return os.path.exists(SERVER) and shutil.which("erl") is not None


def free_port() -> int:
    """A free port below the kernel's ephemeral range, so that no outgoing connection takes it while
    the process that listens there restarts; never one this process was given before, which may be
    free now only because its listener is stopped (a node's AMQP and distribution ports, or a TLS
    port kept across restarts, would otherwise meet)."""
    low = _ephemeral_low()
    while True:
        port = random.randrange(10000, low)
        if port in _given:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            _given.add(port)
            return port


_given: set[int] = set()


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
            return int(ports.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


class RabbitMQNode:
    """One node, `amqp://guest:guest@127.0.0.1:{port}/`; its port stays the same across restarts."""

    def __init__(self, base: Path, plugins: tuple[str, ...] = (), log: Path | None = None) -> None:
        self.base = base
        self.log = log
        """Where the server's output goes (default: `base/server-N.out` for the Nth start)."""
        self.name = f"amqpbrokertest-{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.process: subprocess.Popen | None = None
        self.starts = 0
        base.mkdir(parents=True, exist_ok=True)
        (base / "enabled_plugins").write_text(f"[{','.join(plugins)}].\n")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        base = self.base
        return {
            **os.environ,
            "HOME": str(base),  # its own Erlang cookie
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            # No system-wide configuration: /etc/rabbitmq belongs to the machine's node.
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
        }

    def start(self) -> RabbitMQNode:
        """Starts the node and waits until it accepts AMQP connections."""
        assert self.process is None, "already running"
        self.starts += 1
        output = self.log or self.base / f"server-{self.starts}.out"
        with open(output, "wb") as out:
            # Its own process group: a kill reaches the Erlang VM under the start script too.
            self.process = subprocess.Popen(
                [SERVER], env=self._env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self._accepts_amqp():
                return self
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"RabbitMQ node {self.name} did not start:\n{output.read_text(errors='replace')[-3000:]}")

    def _accepts_amqp(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"AMQP\x00\x00\x09\x01")
                return sock.recv(1) == b"\x01"  # the first byte of connection.start's method frame
        except OSError:
            return False

    def ctl(self, *args: str) -> str:
        """`rabbitmqctl ARGS...` against this node; its output."""
        result = subprocess.run(
            [CTL, "-n", self.name, *args], env=self._env(), capture_output=True, text=True, timeout=60
        )
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {result.stderr or result.stdout}")
        return result.stdout

    def kill(self) -> None:
        """SIGKILL to the whole node: no shutdown, connections drop."""
        if self.process is not None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_SECONDS)
            self.process = None

    def stop(self) -> None:
        """A clean stop of the whole node."""
        process, self.process = self.process, None
        if process is not None:
            stop_group(process)


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM a process group led by `process` (started with start_new_session), let it shut
    down, then SIGKILL whatever is left of it."""
    with suppress(ProcessLookupError):  # raised once no process of the group is left
        os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        while time.monotonic() < deadline:
            process.poll()  # reap the group leader: a zombie still counts as a member
            os.killpg(process.pid, 0)
            time.sleep(0.1)
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
