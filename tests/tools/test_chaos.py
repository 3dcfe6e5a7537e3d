"""A short run of tools/chaos.py: kill -9 cycles under load, with every invariant checked.

Three cycles (twenty with --long) of a broker subprocess under publishers with confirms,
consumers with acks and requeues and raw clients dying mid-frame, killed and restarted on its
data directory. Timings are never asserted.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

CHAOS = Path(__file__).resolve().parents[2] / "tools" / "chaos.py"


@pytest.mark.slow
def test_short_soak_keeps_every_invariant(long_run, tmp_path):
    cycles = 20 if long_run else 3
    proc = subprocess.run(
        [sys.executable, str(CHAOS), "--cycles", str(cycles), "--seconds", "1.5", "--seed", "7",
         "--data-dir", str(tmp_path / "data"), "--json"],
        capture_output=True, text=True, timeout=60 + 20 * cycles,
    )
    assert proc.stdout.strip(), f"no output; stderr:\n{proc.stderr}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["cycles"] == cycles, proc.stdout
    assert result["confirmed"] > 0 and result["delivered"] >= result["confirmed"], result
    for violation in ("lost", "acked_redelivered", "duplicates_without_redelivered", "order", "foreign"):
        assert result[violation] == 0, proc.stdout
    assert proc.returncode == 0, proc.stdout + proc.stderr


def load_chaos():
    spec = importlib.util.spec_from_file_location("chaos", CHAOS)
    module = importlib.util.module_from_spec(spec)
    sys.modules["chaos"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_ledger_counts_each_violation():
    ledger = load_chaos().Ledger()
    for message_id in ("p:1", "p:2", "p:3"):
        ledger.publishing(message_id)
        ledger.confirm(message_id)
    ledger.deliver("q", "p:2", redelivered=False)
    ledger.deliver("q", "p:1", redelivered=False)  # first delivery out of order
    ledger.deliver("q", "p:1", redelivered=True)  # a duplicate, flagged: fine
    ledger.deliver("q", "p:2", redelivered=False)  # a duplicate without the flag
    ledger.acks_sent(["p:1", "p:2"])
    ledger.acks_proven(["p:1"])
    ledger.deliver("q", "p:1", redelivered=True)  # back after its ack was committed
    ledger.deliver("q", "x:1", redelivered=False)
    figures = ledger.snapshot()
    assert (figures["order"], figures["duplicates_without_redelivered"], figures["acked_redelivered"],
            figures["foreign"], figures["duplicates"], figures["delivered"]) == (1, 1, 1, 1, 3, 6)
    assert ledger.missing() == {"p:3"}


def test_a_dead_lettered_message_starts_a_second_life():
    ledger = load_chaos().Ledger()
    ledger.publishing("p:1")
    ledger.confirm("p:1")
    ledger.deliver("src", "p:1", redelivered=False)
    ledger.deliver("dlq", "p:1", redelivered=False, dead=True)  # rejected, then dead-lettered: fine
    ledger.deliver("dlq", "p:1", redelivered=False, dead=True)  # its second life delivered twice
    figures = ledger.snapshot()
    assert (figures["dead_lettered"], figures["duplicates"], figures["duplicates_without_redelivered"]) == (1, 1, 1)


def test_a_dead_letter_lost_in_a_kill_may_come_again_unflagged_but_not_without_a_kill():
    ledger = load_chaos().Ledger()
    ledger.publishing("p:1")
    ledger.deliver("dlq", "p:1", redelivered=False, dead=True)
    ledger.killed()  # the move to the dead-letter queue was not committed: the message dies again
    ledger.deliver("dlq", "p:1", redelivered=False, dead=True)
    figures = ledger.snapshot()
    assert (figures["dead_lettered_again"], figures["duplicates_without_redelivered"]) == (1, 0)
    ledger.publishing("p:3")
    ledger.deliver("dlq", "p:3", redelivered=False, dead=True)
    ledger.deliver("dlq", "p:3", redelivered=False, dead=True)
    assert ledger.snapshot()["duplicates_without_redelivered"] == 1
