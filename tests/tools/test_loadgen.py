"""Smoke tests for tools/loadgen.py.

Runs the load generator with tiny counts against $AMQP_TEST_URL when set (e.g. a
RabbitMQ), else against the embedded broker, and checks from its --json output that
every message was consumed exactly once.  Timings are never asserted.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

LOADGEN = Path(__file__).resolve().parents[2] / "tools" / "loadgen.py"


def load_module():
    spec = importlib.util.spec_from_file_location("loadgen", LOADGEN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def amqp_url():
    url = os.environ.get("AMQP_TEST_URL")
    if url:
        yield url
        return
    from amqpbroker.testing import Broker

    with Broker(port=0) as broker:
        yield broker.url


def run_loadgen(url, *args):
    proc = subprocess.run(
        [sys.executable, str(LOADGEN), "--url", url, "--json", "--timeout", "10", *args],
        capture_output=True, text=True, timeout=180,
    )
    assert proc.stdout.strip(), f"no output; stderr:\n{proc.stderr}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "error" not in result, result["error"] + "\n" + proc.stderr
    return proc.returncode, result


SCENARIOS = [
    pytest.param(["--count", "200"], id="default"),
    pytest.param(["--count", "200", "--confirms", "--confirm-window", "10"], id="confirms"),
    pytest.param(["--count", "200", "--confirms", "--persistent", "--durable", "--confirm-window", "10"],
                 id="confirms-persistent-durable"),
    pytest.param(["--producers", "2", "--consumers", "2", "--count", "100", "--prefetch", "20",
                  "--ack-every", "10"], id="2x2-multiple-ack"),
    pytest.param(["--count", "200", "--auto-ack"], id="auto-ack"),
    pytest.param(["--count", "10", "--size", "300000"], id="multi-frame-bodies"),
    pytest.param(["--client", "pika", "--count", "100", "--confirms"], id="pika"),
]


@pytest.mark.parametrize("args", SCENARIOS)
def test_every_message_consumed_exactly_once(amqp_url, args):
    returncode, r = run_loadgen(amqp_url, *args)
    expected = r["producers"] * r["count"]
    assert (r["published"], r["consumed"], r["unique"]) == (expected, expected, expected), r
    assert (r["duplicates"], r["missing"], r["nacked"], r["foreign"]) == (0, 0, 0, 0), r
    assert r["ok"] and returncode == 0, r
    assert set(r["latency_ms"]) == {"p50", "p95", "p99", "max"}


def test_unreachable_broker_fails_fast():
    proc = subprocess.run(
        [sys.executable, str(LOADGEN), "--url", "amqp://guest:guest@127.0.0.1:1/", "--json",
         "--count", "10", "--timeout", "5"],
        capture_output=True, text=True, timeout=60,
    )
    returncode, out = proc.returncode, json.loads(proc.stdout)
    assert returncode == 2 and out["ok"] is False and "error" in out


def test_accounting_reports_loss_duplicates_and_foreign_messages():
    lg = load_module()
    cfg = lg.parse_args(["--count", "4", "--consumers", "2"])
    cfg.queue, cfg.run_tag = "q", 7
    a, b = lg.Tally(7, cfg.count), lg.Tally(7, cfg.count)
    for tally, seq in ((a, 0), (a, 1), (b, 1)):           # seq 1 twice, 2 and 3 never
        tally.add(2_000_000, 1_000_000, 7 << 48 | seq)
    b.add(2_000_000, 1_000_000, 9 << 48)                  # another run's message
    done = {("producer", 0): {"published": 4, "nacked": 0, "start": 0, "end": 10**9, "cpu": 0.0},
            ("consumer", 0): dict(a.result(), cpu=0.0), ("consumer", 1): dict(b.result(), cpu=0.0)}
    r = lg.report(cfg, done, rss=[], cpu=[], stale=0, backlog=0)
    assert (r["consumed"], r["unique"], r["duplicates"], r["missing"], r["foreign"]) == (3, 2, 1, 2, 1)
    assert r["ok"] is False
    assert r["latency_ms"]["max"] == 1.0


def test_parse_url():
    lg = load_module()
    assert lg.parse_url("amqp://u:p%40ss@example:5673/%2f") == ("example", 5673, "u", "p@ss", "/")
    assert lg.parse_url("amqp://h") == ("h", 5672, "guest", "guest", "/")
    assert lg.parse_url("amqp://h/vh")[4] == "vh"
    assert lg.redact("amqp://u:secret@h/") == "amqp://u:***@h/"
