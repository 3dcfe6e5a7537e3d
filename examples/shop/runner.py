"""Runs the whole shop: a broker (the `amqpbroker` command, on its own data directory and a free
port), each service as a process of its own, and the orders; prints a live summary, breaks things
on purpose when asked, and reports how every order ended.

`python -m examples.shop --help` lists the flags; `run(Options(...))` does the same from Python.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO

from . import state as shop_state
from .payment import MODES

PACKAGE = __package__
# The directory `python -m PACKAGE.service` must import from, wherever the services are started.
IMPORT_ROOT = Path(__file__).resolve().parents[len(PACKAGE.split("."))]
START_SECONDS = 15  # for the broker to listen
FIRST_ORDER_SECONDS = 60  # for the services to start and the first order to be placed, on a busy machine


@dataclass
class Options:
    orders: int = 200
    rate: float = 100.0  # orders a second; 0 as fast as the broker confirms them
    inventory_workers: int = 1
    payment: str = "effectively-once"
    kill_email: bool = False  # kill -9 the email service when a tenth of the orders have ended, start it 2 s later
    kill_payment: bool = False  # kill -9 payment when a third have ended, start it 1 s later
    kill_broker: bool = False  # kill -9 the broker when half have ended, start it 1 s later
    stall_seconds: float = 5.0  # once orders flow, give up when nothing moves for this long
    directory: Path | None = None  # for the broker's data, the services' state and logs; a temporary one if None


class Broker(Protocol):
    url: str

    def crash(self) -> None:
        """Stops the broker as a crash would, and has it serving again on the same URL."""


class BrokerProcess:
    """`python -m amqpbroker` on a fixed port (so clients find it again) and a data directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = _free_port()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.down_seconds = 1.0

    def start(self) -> None:
        self.starts += 1
        log_path = self.directory / "logs" / f"broker-{self.starts}.log"
        command = [sys.executable, "-m", "amqpbroker", "--no-http", "--no-metrics", "--host", "127.0.0.1",
                   "--port", str(self.port), "--data-dir", str(self.directory / "broker"), "--log-level", "info"]
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + START_SECONDS
        while not re.search(rb"listening on 127\.0\.0\.1:\d+", log_path.read_bytes()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(f"the broker did not start:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.01)

    def crash(self) -> None:
        """kill -9, then a new broker on the same data directory and port after `down_seconds`."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        time.sleep(self.down_seconds)
        self.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)


class Services:
    """The service processes by name (`inventory-1`, `payment`, ...), each started with its flags."""

    def __init__(self, url: str, directory: Path) -> None:
        self.url = url
        self.directory = directory
        self._commands: dict[str, list[str]] = {}
        self._processes: dict[str, subprocess.Popen] = {}
        self._starts: dict[str, int] = {}

    def add(self, name: str, module: str, *flags: str) -> None:
        self._commands[name] = [sys.executable, "-m", f"{PACKAGE}.{module}", "--url", self.url,
                                "--state", str(self.directory / "state"), *flags]
        self.start(name)

    def start(self, name: str) -> None:
        self._starts[name] = self._starts.get(name, 0) + 1
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(IMPORT_ROOT), environment.get("PYTHONPATH")]))
        with open(self.directory / "logs" / f"{name}-{self._starts[name]}.log", "wb") as log:
            self._processes[name] = subprocess.Popen(
                self._commands[name], stdout=subprocess.DEVNULL, stderr=log, env=environment
            )

    def kill(self, name: str) -> int:
        process = self._processes.pop(name)
        process.kill()
        process.wait()
        return process.pid

    def stop_all(self) -> None:
        for process in self._processes.values():
            process.terminate()
        for process in self._processes.values():
            process.wait(timeout=10)
        self._processes.clear()

    def exited(self) -> list[str]:
        """Services that stopped on their own: a bug, whose log says more."""
        return [name for name, process in self._processes.items() if process.poll() is not None]


@dataclass
class Step:
    """Something done to the running shop once `due(snapshot, seconds since it was last done)` holds."""

    due: Callable[[shop_state.Snapshot, float], bool]
    action: Callable[[], str]


@dataclass
class Report:
    snapshot: shop_state.Snapshot
    seconds: float  # from the first order placed to the last one ended, or to the last move before giving up
    complete: bool  # every order placed and ended, and an email for every payment
    events: list[str]
    broker_back_seconds: list[float]  # after each kill -9: until the new broker listened
    flowing_again_seconds: list[float]  # after each kill -9: from listening until orders moved again


def run(options: Options, broker: Broker | str | None = None, out: TextIO = sys.stdout) -> Report:
    """Runs the shop until every order has ended or nothing has moved for `stall_seconds`.

    `broker` is one to crash on purpose, or the URL of one that is not ours to crash, or None to
    start our own. A temporary directory is removed after a complete run, and kept for its logs
    otherwise."""
    if isinstance(broker, str) and options.kill_broker:
        raise ValueError("kill_broker needs a broker that can be crashed, not a URL")
    directory = options.directory or Path(tempfile.mkdtemp(prefix="shop-"))
    (directory / "logs").mkdir(parents=True, exist_ok=True)
    (directory / "state").mkdir(exist_ok=True)
    own_broker = None
    if broker is None:
        own_broker = BrokerProcess(directory)
        own_broker.start()
        broker = own_broker
    url = broker if isinstance(broker, str) else broker.url
    print(f"broker at {url}; data, state and logs in {directory}", file=out)
    services = Services(url, directory)
    try:
        report = _Run(options, broker, services, directory, out).watch()
    finally:
        services.stop_all()
        if own_broker is not None:
            own_broker.stop()
    if options.directory is None and report.complete:
        shutil.rmtree(directory)
    return report


class _Run:
    def __init__(
        self, options: Options, broker: Broker | str, services: Services, directory: Path, out: TextIO
    ) -> None:
        self.options = options
        self.broker = broker
        self.services = services
        self.directory = directory
        self.out = out
        self.events: list[str] = []
        self.broker_back: list[float] = []
        self.flowing_again: list[float] = []
        self._awaiting_flow: tuple[float, tuple[int, ...]] | None = None
        self._start = self._first_order = time.monotonic()

    def watch(self) -> Report:
        options = self.options
        for worker in range(1, options.inventory_workers + 1):
            self.services.add(f"inventory-{worker}", "inventory", "--worker", str(worker))
        self.services.add("payment", "payment", "--mode", options.payment)
        self.services.add("email", "emails")
        self.services.add("shipping", "shipping")
        self.services.add("orders", "orders", "--orders", str(options.orders), "--rate", str(options.rate))
        steps = self._steps()
        snapshot = shop_state.read(self.directory / "state")
        printed = time.monotonic()
        moved = printed + FIRST_ORDER_SECONDS - options.stall_seconds
        while not self._complete(snapshot) and time.monotonic() - moved < options.stall_seconds:
            time.sleep(0.1)
            latest = shop_state.read(self.directory / "state")
            now = time.monotonic()
            if latest.placed and not snapshot.placed:
                self._first_order = now
            if latest.progress != snapshot.progress:
                moved = now
                self._note_flow(latest, now)
            snapshot = latest
            if now - printed >= 0.5:
                self._print(snapshot.line())
                printed = now
            for step in list(steps):
                if step.due(snapshot, now):
                    steps.remove(step)
                    self._event(step.action())
                    moved = time.monotonic()
            if exited := self.services.exited():
                raise RuntimeError(f"{', '.join(exited)} stopped on its own: see the logs in {self.directory / 'logs'}")
        self._print(snapshot.line())
        return Report(
            snapshot=snapshot,
            seconds=(time.monotonic() if self._complete(snapshot) else moved) - self._first_order,
            complete=self._complete(snapshot),
            events=self.events,
            broker_back_seconds=self.broker_back,
            flowing_again_seconds=self.flowing_again,
        )

    def _complete(self, snapshot: shop_state.Snapshot) -> bool:
        return (
            snapshot.placed == self.options.orders
            and len(snapshot.outcomes) == self.options.orders
            and snapshot.emailed == snapshot.paid
        )

    def _steps(self) -> list[Step]:
        orders, steps = self.options.orders, []
        killed: dict[str, float] = {}

        def kill(name: str) -> Callable[[], str]:
            def action() -> str:
                killed[name] = time.monotonic()
                return f"kill -9 {name} (pid {self.services.kill(name)})"
            return action

        def start(name: str) -> Callable[[], str]:
            def action() -> str:
                self.services.start(name)
                return f"{name} started again"
            return action

        def after(name: str, seconds: float) -> Callable[[shop_state.Snapshot, float], bool]:
            return lambda snapshot, now: name in killed and now - killed[name] >= seconds

        def ended(fraction: float) -> Callable[[shop_state.Snapshot, float], bool]:
            return lambda snapshot, now: len(snapshot.outcomes) >= orders * fraction

        if self.options.kill_email:
            steps.append(Step(ended(0.1), kill("email")))
            steps.append(Step(after("email", 2.0), start("email")))
        if self.options.kill_payment:
            steps.append(Step(ended(0.3), kill("payment")))
            steps.append(Step(after("payment", 1.0), start("payment")))
        if self.options.kill_broker:
            steps.append(Step(ended(0.5), self._crash_broker))
        return steps

    def _crash_broker(self) -> str:
        killed = time.monotonic()
        self.broker.crash()
        listening = time.monotonic()
        self.broker_back.append(listening - killed)
        # What the services finished while the broker was down counts as before: only what moves
        # now went through the new broker.
        self._awaiting_flow = (listening, shop_state.read(self.directory / "state").progress)
        return f"broker killed (kill -9) and started again: listening after {listening - killed:.2f} s"

    def _note_flow(self, snapshot: shop_state.Snapshot, now: float) -> None:
        """After a broker crash: the first time an order moves further than before the crash."""
        if self._awaiting_flow is None:
            return
        listening, before = self._awaiting_flow
        if sum(snapshot.progress) > sum(before):
            self.flowing_again.append(now - listening)
            self._awaiting_flow = None
            self._event(f"orders moving again {now - listening:.2f} s after the broker listened")

    def _event(self, text: str) -> None:
        self.events.append(text)
        self._print(f"** {text}")

    def _print(self, text: str) -> None:
        print(f"{time.monotonic() - self._start:6.1f}s  {text}", file=self.out, flush=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
