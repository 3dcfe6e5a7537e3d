"""The client × scenario table, for the terminal, results.md and results.json."""

import json
from dataclasses import asdict
from pathlib import Path

from interop.clients import Client
from interop.runner import FAIL, NA, PASS, Cell
from interop.scenarios import SCENARIOS


def summarize(cells: list[Cell]) -> dict[str, int]:
    applicable = [cell for cell in cells if cell.status != NA]
    return {
        "clients": len({cell.client for cell in cells}),
        "scenarios": len({cell.scenario for cell in cells}),
        "applicable": len(applicable),
        "passed": sum(cell.status == PASS for cell in applicable),
        "failed": sum(cell.status == FAIL for cell in applicable),
    }


def _grid(cells: list[Cell], clients: list[Client], scenarios: list[str]) -> list[list[str]]:
    status = {(cell.client, cell.scenario): cell.status for cell in cells}
    header = ["scenario", *(client.name for client in clients)]
    return [header] + [[scenario, *(status[client.name, scenario] for client in clients)] for scenario in scenarios]


def _failures(cells: list[Cell], clients: list[Client], scenarios: list[str]) -> list[Cell]:
    order = [(client.name, scenario) for client in clients for scenario in scenarios]
    failed = [cell for cell in cells if cell.status == FAIL]
    return sorted(failed, key=lambda cell: order.index((cell.client, cell.scenario)))


def _skipped(cells: list[Cell], scenarios: list[str]) -> list[str]:
    """Scenarios left out with a reason (one the broker cannot run), each with it, in table order."""
    reasons = {cell.scenario: cell.detail for cell in cells if cell.status == NA and cell.detail}
    return [f"{scenario}: {reasons[scenario]}" for scenario in scenarios if scenario in reasons]


def _summary_line(summary: dict[str, int]) -> str:
    return (
        f"{summary['passed']} of {summary['applicable']} applicable cells passed, {summary['failed']} failed "
        f"({summary['clients']} clients × {summary['scenarios']} scenarios)"
    )


def text(cells: list[Cell], clients: list[Client], scenarios: list[str]) -> str:
    rows = _grid(cells, clients, scenarios)
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    lines += ["", _summary_line(summarize(cells))]
    lines += [f"n/a {line}" for line in _skipped(cells, scenarios)]
    return "\n".join(lines)


def write(out: Path, meta: dict, cells: list[Cell], clients: list[Client], scenarios: list[str]) -> None:
    summary = summarize(cells)
    results = {
        **meta,
        "summary": summary,
        "clients": [{"name": client.name, "describe": client.describe} for client in clients],
        "scenarios": [{"name": s.name, "summary": s.summary} for s in SCENARIOS if s.name in scenarios],
        "cells": [asdict(cell) for cell in sorted(cells, key=lambda cell: (cell.client, cell.scenario))],
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    rows = _grid(cells, clients, scenarios)
    lines = [
        f"# Interop results: {meta['broker']}",
        "",
        f"{_summary_line(summary)}, in {meta['duration_seconds']:.0f} s, started {meta['started_at']}.",
        "",
        "| " + " | ".join(rows[0]) + " |",
        "|" + "---|" * len(rows[0]),
        *("| " + " | ".join(row) + " |" for row in rows[1:]),
    ]
    skipped = _skipped(cells, scenarios)
    if skipped:
        lines += ["", "## Not run on this broker", ""] + [f"- {line}" for line in skipped]
    failures = _failures(cells, clients, scenarios)
    if failures:
        lines += ["", "## Failures", ""]
        lines += [f"- **{cell.client} / {cell.scenario}**: {' '.join(cell.detail.split())}" for cell in failures]
    lines += ["", "## Clients", ""] + [f"- **{client.name}**: {client.describe}" for client in clients]
    lines += ["", "## Scenarios", ""] + [f"- **{s.name}**: {s.summary}" for s in SCENARIOS if s.name in scenarios]
    (out / "results.md").write_text("\n".join(lines) + "\n")
