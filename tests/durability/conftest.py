"""A broker subprocess on a data directory that outlives it: started, stopped with SIGTERM, or
killed with SIGKILL, and started again on the same directory."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest

from .core_support import Node

START_SECONDS = 15
STOP_SECONDS = 15


class BrokerProcess:
    """`python -m amqpbroker --data-dir DIR` on `listen_port` (0: a port of its choosing, new at
    each start); one process at a time."""

    def __init__(self, data_dir: Path, log_dir: Path, listen_port: int = 0, options: tuple[str, ...] = ()) -> None:
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.listen_port = listen_port
        self.options = options
        """More command-line options for the broker."""
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.starts = 0
        # Which start's process serves on `port`; None from the moment it is told to stop, after
        # which its port may go to any other program on the machine (another test's broker).
        self._serving: int | None = None

    def start(self) -> BrokerProcess:
        assert self.process is None, "already running"
        self.starts += 1
        log_path = self.log_dir / f"broker-{self.starts}.log"
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "amqpbroker", "--no-http", "--no-metrics", "--host", "127.0.0.1",
                 "--port", str(self.listen_port), "--data-dir", str(self.data_dir), "--log-level", "info",
                 *self.options],
                stderr=log,
                stdout=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            found = re.search(rb"listening on 127\.0\.0\.1:(\d+)", log_path.read_bytes())
            if found:
                self.port = int(found.group(1))
                self._serving = self.starts
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.01)
        self.kill()
        raise AssertionError(f"the broker did not start:\n{log_path.read_text(errors='replace')}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        return (self.log_dir / f"broker-{self.starts}.log").read_text(errors="replace")

    def stop(self) -> None:
        """A graceful shutdown (SIGTERM), which must end in time and with status 0."""
        assert self.process is not None
        self._serving = None
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the broker did not stop after SIGTERM:\n{self.log()}") from None
        self.process = None
        assert status == 0, f"the broker exited with {status}:\n{self.log()}"

    def kill(self) -> None:
        """SIGKILL: no shutdown at all, as in a crash or a power cut (for the process)."""
        self._serving = None
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=STOP_SECONDS)
            self.process = None

    def restart(self, how: str) -> BrokerProcess:
        if how == "sigterm":
            self.stop()
        elif how == "kill":
            self.kill()
        else:
            raise ValueError(how)
        return self.start()

    def params(self, **overrides: object) -> pika.ConnectionParameters:
        settings = dict(host="127.0.0.1", port=self.port, socket_timeout=5, stack_timeout=5,
                        blocked_connection_timeout=30, connection_attempts=1)
        settings.update(overrides)
        return pika.ConnectionParameters(**settings)

    def connect(self) -> pika.BlockingConnection:
        return pika.BlockingConnection(self.params())

    def connect_current(self, **overrides: object) -> pika.BlockingConnection | None:
        """A connection to the process of the moment, for a client running while the test stops
        and starts it: None if no process is serving, or if it was told to stop while the client
        connected. Its port is free from then on, and until the next process reports its own
        port, `port` is the old one: a client connecting there may reach another program that
        took it, a broker without this one's queues or with another test's messages."""
        serving = self._serving
        if serving is None:
            return None
        connection = pika.BlockingConnection(self.params(**overrides))
        if self._serving == serving:
            return connection
        try:
            connection.close()
        except (pika.exceptions.AMQPError, OSError):
            pass  # the process it reached is gone too
        return None

    def status(self) -> dict[str, int]:
        """The memory figures of /proc/PID/status, in bytes."""
        figures = {}
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                name, _, value = line.partition(":")
                if name.startswith(("Vm", "Rss")) and value.strip().endswith("kB"):
                    figures[name] = int(value.split()[0]) * 1024
        return figures


@pytest.fixture(params=["memory", "lmdb"])
def node(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Node]:
    """A broker core over each kind of store, restartable (`core_support.Node`)."""
    started = Node(request.param, tmp_path / "data")
    yield started
    started.close()


@pytest.fixture
def broker_process(tmp_path: Path) -> Iterator[BrokerProcess]:
    """A broker subprocess on `tmp_path/data`, started; killed when the test ends."""
    process = BrokerProcess(tmp_path / "data", tmp_path)
    process.start()
    yield process
    process.kill()


@pytest.fixture(autouse=True)
def _deadline(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that hangs fails instead: pika's blocking calls can wait for ever."""
    seconds = 600 if request.node.get_closest_marker("slow") else 120

    def expire(signum: int, frame: object) -> None:
        pytest.fail(f"test still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

