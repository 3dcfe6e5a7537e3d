"""Smoke tests for tools/bench.py.

Every scenario runs at a tiny scale against the embedded broker, and each run must account
for every message (or connection).  Timings are never asserted.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "tools" / "bench.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def amqp_url():
    from amqpbroker.testing import Broker

    with Broker(port=0) as broker:
        yield broker.url


def run_bench(tmp_path, *args):
    out, table = tmp_path / "runs.json", tmp_path / "table.md"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--scale", "0.001", "--timeout", "20", "--json", str(out),
         "--markdown", str(table), *args],
        capture_output=True, text=True, timeout=240,
    )
    assert out.exists(), f"no results; exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc, json.loads(out.read_text())["runs"], table.read_text()


def assert_accounted(name, r):
    assert "error" not in r, (name, r["error"])
    assert r["ok"], (name, r)
    if r["mode"] == "connections":
        assert r["opened"] == r["closed_ok"] == r["connections"] >= 2, (name, r)
        return
    assert r["published"] == r["producers"] * r["count"], (name, r)
    if r["mode"] == "expire":                              # no consumers: every message expired instead
        assert r["consumed"] == r["expected"] == 0 and r["expiry"]["queued"] == r["published"], (name, r)
        assert r["probe"]["ok"] and r["probe"]["consumed"] == r["probe"]["published"], (name, r)
        return
    assert r["consumed"] == r["unique"] == r["expected"] > 0, (name, r)
    assert (r["missing"], r["duplicates"], r["misrouted"], r["nacked"], r["foreign"]) == (0, 0, 0, 0, 0), (name, r)


def test_every_scenario_accounts_for_every_message(amqp_url, tmp_path):
    bench = load_bench()
    proc, runs, table = run_bench(tmp_path, "--url", amqp_url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The TLS scenarios need the AMQPS listeners of brokers bench.py starts (tests/tools/test_loadgen.py
    # runs loadgen over TLS).
    assert list(runs) == [s.name for s in bench.SCENARIOS if not s.tls]
    for name, per_broker in runs.items():
        (r,) = per_broker["broker"]
        assert_accounted(name, r)
        assert f"| {name} |" in table
    fanout, topic, backlog = runs["fanout-4"]["broker"][0], runs["topic-1000"]["broker"][0], runs["backlog-1m"]["broker"][0]
    assert fanout["expected"] == 4 * fanout["published"]
    assert (topic["bindings"], topic["matching_bindings"], topic["expected"]) == (1000, 4, topic["published"])
    assert backlog["backlog"]["queued"] == backlog["backlog"]["queued_reported"] == backlog["consumed"]
    assert backlog["backlog"]["drain_rate"] and backlog["backlog"]["fill_rate"]
    expire, priority, dead = (runs[name]["broker"][0] for name in ("ttl-expire", "priority", "dead-letter"))
    assert expire["queue_arguments"] == {"x-message-ttl": 200} and expire["expiry"]["empty_after_s"] is not None
    assert priority["queue_arguments"] == {"x-max-priority": 10} and priority["priorities"] == 10
    assert dead["dead_letter"]["dead_lettered"] == dead["published"] and dead["expected"] == 2 * dead["published"]


def test_compare_alternates_and_takes_the_median(amqp_url, tmp_path):
    # The same broker on both sides: this checks the plumbing, not the brokers.
    proc, runs, table = run_bench(tmp_path, "--compare", "--ours", amqp_url, "--rabbitmq", amqp_url,
                                  "--scenarios", "transient-1-1,latency-1000", "--repeat", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    order = sorted((r["bench"]["run"], r["bench"]["scenario"], r["bench"]["broker"])
                   for per_broker in runs.values() for rs in per_broker.values() for r in rs)
    # Each round's first broker is the other one than in the round before; a latency scenario
    # runs its minimum of rounds, more than --repeat asked.
    rounds = [("ours", "RabbitMQ"), ("RabbitMQ", "ours")]
    assert [(s, b) for _, s, b in order] == [
        ("transient-1-1", b) for r in range(2) for b in rounds[r % 2]] + [
        ("latency-1000", b) for r in range(7) for b in rounds[r % 2]]
    assert "2 run(s) per broker and scenario (latency-1000 7), the first broker alternating" in table
    for name, per_broker in runs.items():
        for r in per_broker["ours"] + per_broker["RabbitMQ"]:
            assert_accounted(name, r)
    assert "| scenario | metric | better | ours | RabbitMQ | ours/RabbitMQ |" in table
    assert "`python tools/loadgen.py --url $URL --count 200`" in table


def test_summary_medians_ratios_and_failed_runs():
    bench = load_bench()
    scenario = bench.BY_NAME["latency-1000"]
    ours, theirs = bench.Target("ours", "amqp://a"), bench.Target("RabbitMQ", "amqp://b")

    def result(p50, ok=True):
        return {"mode": "flow", "ok": ok, "missing": 0 if ok else 3, "duplicates": 0, "misrouted": 0, "nacked": 0,
                "latency_ms": {"p50": p50, "p99": 2 * p50}}

    runs = {scenario.name: {"ours": [result(1.0), result(3.0), result(100.0, ok=False)],
                            "RabbitMQ": [result(4.0), result(4.0), result(8.0)]}}
    rows = bench.summarize([scenario], [ours, theirs], runs)
    (s, m, medians, ratio), _ = rows
    assert (m.label, m.higher_is_better, medians, ratio) == ("latency p50 ms", False, [2.0, 4.0], 0.5)
    assert bench.failures([scenario], [ours, theirs], runs) == [
        "latency-1000 on ours, run 3: missing 3, duplicates 0, misrouted 0, nacked 0"]
    lines = bench.table_lines(rows, [ours, theirs])
    assert "lower" in lines[2] and lines[2].endswith("0.50x")


def test_scale_shrinks_counts_but_not_below_the_minimum():
    bench = load_bench()
    args = bench.BY_NAME["connections-1000"].loadgen_args(0.1)
    assert args == ["--connections", "100", "--hold", "1"]
    assert bench.BY_NAME["connections-1000"].loadgen_args(1e-6) == ["--connections", "2", "--hold", "0.2"]
    assert bench.BY_NAME["topic-1000"].loadgen_args(0.001)[:6] == ["--count", "100", "--exchange-type", "topic",
                                                                    "--bindings", "1000"]


def test_the_table_says_other_work_ran_only_if_the_cpus_were_busy_before_the_benchmark(tmp_path):
    bench = load_bench()
    args = bench.argparse.Namespace(scale=1.0, repeat=1)
    machine = {}
    # A load average left by work that ended before the start, work running at the start, and a
    # machine without /proc/stat, where the load average is all there is.
    cases = (("ended", {"busy": 0.04, "steal": 0.01}, 1.6), ("running", {"busy": 0.55, "steal": 0.02}, 0.4),
             ("no /proc", None, 1.6))
    for case, before, load in cases:
        info = {"date": "now", "command": "bench", "elapsed": 1.0, "products": {"ours": "amqpbroker"}, "cpus": 2,
                "congestion_control": "bbr", "load_start": load, "load_end": 2.0, "load_max": 2.5, "fresh": False,
                "cpu_before": before}
        path = tmp_path / "table.md"
        bench.write_markdown(path, args, [], [bench.Target("ours", "amqp://a")], [], {}, info)
        machine[case] = next(line for line in path.read_text().splitlines() if line.startswith("- machine"))
    assert "other work was running" not in machine["ended"] and "own brokers and load generators" in machine["ended"]
    assert "CPUs 4% in use and 1% stolen by the hypervisor in the 3 s before the start" in machine["ended"]
    assert "other work was running at the start" in machine["running"]
    assert "other work was running at the start" in machine["no /proc"]
    assert "TCP congestion control bbr by default" in machine["ended"], "pacing moves the large-message figures"


def test_the_table_says_how_much_cpu_the_hypervisor_took_during_the_runs():
    bench = load_bench()

    def result(run, broker, steal):
        return {"bench": {"run": run, "scenario": "latency-10000", "broker": broker, "steal": steal}}

    runs = {"latency-10000": {"ours": [result(1, "ours", 0.02), result(3, "ours", 0.01)],
                              "RabbitMQ": [result(2, "RabbitMQ", 0.12), result(4, "RabbitMQ", 0.03)]}}
    assert bench.steal_line(runs) == ("CPU time stolen by the hypervisor during the runs: median 2.5%, "
                                      "at most 12.0% (latency-10000 on RabbitMQ, run 2).")
    assert bench.steal_line({"latency-10000": {"ours": [result(1, "ours", None)]}}) is None
