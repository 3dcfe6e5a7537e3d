"""Runs client scenarios against one broker: every cell in a process of its own, under a time limit.

A cell is one client running one scenario. A cell whose process hangs is killed (with everything it
started) and counts as failed, so one stuck client never stalls the run.
"""

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import suppress
from dataclasses import dataclass

from interop.clients import INTEROP_DIR, Client, Unavailable
from interop.clients.common import RESULT_MARK
from interop.scenarios import SCENARIOS

PASS, FAIL, NA = "pass", "FAIL", "n/a"
_BATCH_STARTUP = 60  # a batch client's own start-up (a JVM) on top of its scenarios' limits
_TAIL = 600


@dataclass(frozen=True)
class Cell:
    client: str
    scenario: str
    status: str
    detail: str = ""
    seconds: float | None = None


@dataclass(frozen=True)
class _Task:
    client: Client
    command: list[str]
    scenarios: list[str]
    timeout: float  # for each scenario

    @property
    def limit(self) -> float:
        return self.timeout * len(self.scenarios) + _BATCH_STARTUP if self.client.batch else self.timeout


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _TAIL else "…" + text[-_TAIL:]


def _run_process(argv: list[str], limit: float) -> tuple[int | None, str, str]:
    """Run argv in its own process group; the exit status is None when it was killed at `limit`."""
    process = subprocess.Popen(
        argv, cwd=INTEROP_DIR.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=limit)
        status = process.returncode
    except subprocess.TimeoutExpired:
        _kill_group(process)
        stdout, stderr = process.communicate()
        status = None
    finally:
        _kill_group(process)  # whatever the cell left behind
    return status, stdout, stderr


def _kill_group(process: subprocess.Popen) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _plan(client: Client) -> tuple[list[str], list[str]] | str:
    """The client's command and the scenarios it implements, or why it cannot run."""
    try:
        command = client.prepare()
    except Unavailable as exc:
        return f"client unavailable: {exc}"
    status, stdout, stderr = _run_process([*command, "--list"], _BATCH_STARTUP)
    if status != 0:
        return f"`--list` failed ({status}): {_tail(stderr)}"
    return command, stdout.split()


def _run_task(task: _Task, url: str, prefix: str) -> list[Cell]:
    extra = [f"--timeout={task.timeout:g}"] if task.client.batch else []
    argv = [*task.command, f"--url={url}", f"--prefix={prefix}.{task.client.name}", *extra, *task.scenarios]
    started = time.monotonic()
    status, stdout, stderr = _run_process(argv, task.limit)
    seconds = None if task.client.batch else round(time.monotonic() - started, 2)
    reported = {}
    for line in stdout.splitlines():
        if line.startswith(RESULT_MARK):
            result = json.loads(line[len(RESULT_MARK):])
            reported[result["scenario"]] = result
    cells = []
    for scenario in task.scenarios:
        if scenario in reported:
            result = reported[scenario]
            cells.append(Cell(task.client.name, scenario, PASS if result["ok"] else FAIL, result["detail"], seconds))
        elif status is None:
            cells.append(Cell(task.client.name, scenario, FAIL, f"timed out after {task.limit:g} s", seconds))
        else:
            detail = f"no result (exit status {status}): {_tail(stderr)}"
            cells.append(Cell(task.client.name, scenario, FAIL, detail, seconds))
    return cells


def not_applicable(
    clients: list[Client], scenarios: list[str], *, plugins: bool, provisioned: bool
) -> tuple[list[str], list[Cell]]:
    """The scenarios the broker can run, and a not-applicable cell saying why for each client of the
    others: without `plugins` (the reference RabbitMQ, which lacks RabbitMQ's community plugins) those
    that need one; unless `provisioned` (a broker the runner did not start) those that need what the
    runner gives the brokers it starts."""
    reasons = {}
    for scenario in SCENARIOS:
        if scenario.plugin is not None and not plugins:
            reasons[scenario.name] = f"the reference broker lacks the plugin {scenario.plugin}"
        elif scenario.provisioned and not provisioned:
            reasons[scenario.name] = (
                "needs interop's DEFINITIONS and OPERATOR_POLICIES, which only --ours and --reference give the broker"
            )
    skipped = [
        Cell(client.name, scenario, NA, reasons[scenario])
        for client in clients
        for scenario in scenarios
        if scenario in reasons
    ]
    return [scenario for scenario in scenarios if scenario not in reasons], skipped


def run(
    url: str,
    clients: list[Client],
    scenarios: list[str],
    *,
    timeout: float,
    jobs: int,
    on_cell: Callable[[Cell], None],
    plugins: bool = True,
    provisioned: bool = True,
) -> list[Cell]:
    """Run every applicable (client, scenario) cell against the broker at `url`; without `plugins`,
    the scenarios that need a RabbitMQ plugin are not applicable, and unless `provisioned` (the
    broker was given interop's DEFINITIONS and OPERATOR_POLICIES) those that need them."""
    prefix = f"interop-{uuid.uuid4().hex[:8]}"
    scenarios, cells = not_applicable(clients, scenarios, plugins=plugins, provisioned=provisioned)
    tasks: list[_Task] = []
    with ThreadPoolExecutor(jobs) as pool:
        for client, plan in zip(clients, pool.map(_plan, clients)):
            if isinstance(plan, str):
                cells += [Cell(client.name, scenario, FAIL, plan) for scenario in scenarios]
                continue
            command, implemented = plan
            cells += [Cell(client.name, scenario, NA) for scenario in scenarios if scenario not in implemented]
            applicable = [scenario for scenario in scenarios if scenario in implemented]
            if not applicable:
                continue
            if client.batch:
                tasks.append(_Task(client, command, applicable, timeout))
            else:
                tasks += [_Task(client, command, [scenario], timeout) for scenario in applicable]
        # The longest tasks first, so that they do not finish last.
        tasks.sort(key=lambda task: (not task.client.batch, task.scenarios != ["heartbeat"]))
        for done in as_completed([pool.submit(_run_task, task, url, prefix) for task in tasks]):
            for cell in done.result():
                on_cell(cell)
                cells.append(cell)
    return cells
