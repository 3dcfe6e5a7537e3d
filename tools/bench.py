#!/usr/bin/env python3
"""PerfTest-style benchmark: named loadgen scenarios against one broker, or amqpbroker against RabbitMQ.

    python tools/bench.py --url amqp://guest:guest@127.0.0.1:5672/          # one broker
    python tools/bench.py --compare --start-both --markdown tools/RESULTS.md  # ours vs a private RabbitMQ
    python tools/bench.py --compare --ours URL --rabbitmq URL --repeat 3 --scenarios fanout-4,size-10k
    python tools/bench.py --start-both --scenarios tls-transient-1-1          # both over TLS (AMQPS)

Every scenario is one run of tools/loadgen.py (its --json output is what gets compared); the
table gives each scenario's figures, the ratio ours/RabbitMQ and whether higher or lower is
better, and the loadgen command that reproduces a row.  In compare mode the two brokers run
each scenario in rounds of one run each, the first broker alternating from round to round
(ours, RabbitMQ; RabbitMQ, ours; ... for --repeat N, or a latency scenario's minimum of rounds)
and the table shows the median of the runs.  See tools/README.md.
"""

import argparse
import functools
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent
LOADGEN = TOOLS / "loadgen.py"
sys.path.insert(0, str(TOOLS))
import loadgen  # noqa: E402  (tools/ is not a package)

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"


# ---------------------------------------------------------------------------------------
# Scenarios.

@dataclass(frozen=True)
class Scaled:
    """A loadgen argument multiplied by --scale (never below `minimum`)."""
    value: float
    minimum: float

    def render(self, scale):
        v = max(self.minimum, self.value * scale)
        return str(round(v)) if isinstance(self.value, int) else f"{v:g}"


@dataclass(frozen=True)
class Metric:
    label: str
    higher_is_better: bool
    get: Callable[[dict], float | None]
    digits: int = 0                        # decimals shown


@dataclass(frozen=True)
class Scenario:
    name: str
    describe: str
    args: tuple                            # loadgen arguments; Scaled values follow --scale
    metrics: tuple
    fresh: bool = False                    # measures memory: brokers bench.py started are restarted first
    tls: bool = False                      # over AMQPS: only against brokers bench.py started (--start-both)
    compare_runs: int = 1                  # a comparison runs it at least this often per broker

    def loadgen_args(self, scale):
        return [a.render(scale) if isinstance(a, Scaled) else str(a) for a in self.args]


def _get(*path, scale=1.0):
    def get(r):
        for key in path:
            r = r.get(key) if isinstance(r, dict) else None
        return None if r is None else r * scale
    return get


PUBLISH = Metric("published msgs/s", True, _get("publish_rate"))
CONSUME = Metric("consumed msgs/s", True, _get("consume_rate"))

# A latency p99 is the tail of one short run, and the tail is where this machine's noise lands: one
# broker's p99 at 10,000 msgs/s ranged 0.6-6 ms from run to run here. A comparison runs these
# scenarios at least LATENCY_RUNS times per broker, so that what hits one or two runs does not
# decide the median.
LATENCY_RUNS = 7

SCENARIOS = (
    Scenario("transient-1-1", "1 producer -> 1 consumer, transient, 100 B",
             ("--count", Scaled(200_000, 100)),
             (CONSUME, PUBLISH, Metric("broker peak RSS MiB", False, _get("broker_rss_kib", "peak", scale=1 / 1024))),
             fresh=True),
    Scenario("tls-transient-1-1", "1 producer -> 1 consumer, transient, 100 B, over TLS (AMQPS)",
             ("--count", Scaled(200_000, 100)), (CONSUME, PUBLISH), tls=True),
    Scenario("durable-confirms", "1 -> 1, durable queue, persistent, publisher confirms (window 100), 100 B",
             ("--count", Scaled(100_000, 100), "--confirms", "--persistent", "--durable"), (PUBLISH, CONSUME)),
    Scenario("confirms-8x8", "8 producers with confirms (window 100) -> 8 durable queues (each producer "
             "round-robin over all 8), persistent, 1 consumer each, 100 B",
             ("--producers", 8, "--queues", 8, "--consumers", 8, "--count", Scaled(12_500, 20), "--confirms",
              "--persistent", "--durable"), (PUBLISH, CONSUME)),
    Scenario("fanout-4", "1 producer -> fanout exchange -> 4 queues, 1 consumer each, 100 B",
             ("--count", Scaled(100_000, 100), "--exchange-type", "fanout", "--queues", 4, "--consumers", 4),
             (Metric("deliveries/s (4 per msg)", True, _get("consume_rate")), PUBLISH)),
    Scenario("topic-1000", "1 producer -> topic exchange, 1,000 bindings (4 match) -> 4 queues, 4 consumers, 100 B",
             ("--count", Scaled(100_000, 100), "--exchange-type", "topic", "--bindings", 1000, "--queues", 4,
              "--consumers", 4), (CONSUME, PUBLISH)),
    Scenario("4-4-one-queue", "4 producers -> one queue -> 4 consumers, 100 B",
             ("--producers", 4, "--consumers", 4, "--count", Scaled(50_000, 50)), (CONSUME, PUBLISH)),
    Scenario("size-10k", "1 -> 1, transient, 10 KiB bodies",
             ("--size", 10240, "--count", Scaled(100_000, 50)),
             (CONSUME, Metric("consumed MiB/s", True, _get("consume_rate", scale=10240 / 2**20)))),
    Scenario("size-1m", "1 -> 1, transient, 1 MiB bodies (in 128 KiB body frames)",
             ("--size", 1 << 20, "--count", Scaled(3_000, 10)),
             (Metric("consumed msgs/s", True, _get("consume_rate"), 1), PUBLISH)),
    Scenario("latency-1000", "1 -> 1 at a fixed 1,000 msgs/s, 100 B: latency publish -> deliver",
             ("--rate", 1000, "--count", Scaled(20_000, 200)),
             (Metric("latency p50 ms", False, _get("latency_ms", "p50"), 2),
              Metric("latency p99 ms", False, _get("latency_ms", "p99"), 2)),
             compare_runs=LATENCY_RUNS),
    Scenario("latency-10000", "1 -> 1 at a fixed 10,000 msgs/s, 100 B: latency publish -> deliver",
             ("--rate", 10_000, "--count", Scaled(100_000, 1000)),
             (Metric("latency p50 ms", False, _get("latency_ms", "p50"), 2),
              Metric("latency p99 ms", False, _get("latency_ms", "p99"), 2)),
             compare_runs=LATENCY_RUNS),
    Scenario("fair-100", "1 producer at a fixed 10,000 msgs/s round-robin over 100 queues, 1 consumer on each "
             "(100 consumers on 4 connections), 100 B: each queue's delivery rate",
             ("--rate", 10_000, "--count", Scaled(100_000, 1000), "--queues", 100, "--consumers", 4),
             (Metric("slowest queue / fastest", True, _get("queue_rates", "slowest_to_fastest"), 3),
              Metric("slowest queue msgs/s", True, _get("queue_rates", "slowest"), 1),
              Metric("latency p99 ms", False, _get("latency_ms", "p99"), 2))),
    Scenario("backlog-1m", "1,000,000 x 100 B published with no consumer, then drained by 1 consumer",
             ("--backlog", "--count", Scaled(1_000_000, 1000)),
             (Metric("fill msgs/s", True, _get("backlog", "fill_rate")),
              Metric("drain msgs/s", True, _get("backlog", "drain_rate")),
              Metric("broker peak RSS MiB", False, _get("broker_rss_kib", "peak", scale=1 / 1024)),
              Metric("RSS bytes per queued msg", False, _get("backlog", "rss_per_msg_bytes"))), fresh=True),
    Scenario("connections-1000", "1,000 connections (one channel each) opened one after another, held 10 s",
             ("--connections", Scaled(1000, 2), "--hold", Scaled(10.0, 0.2)),
             (Metric("time to open all s", False, _get("open_s"), 2),
              Metric("RSS KiB per connection", False, _get("rss_per_connection_kib"), 1)), fresh=True),
    Scenario("ttl-expire", "200,000 x 100 B into a queue with x-message-ttl 10 s and no consumer, until all have "
             "expired; meanwhile a probe at 1,000 msgs/s through another queue",
             ("--consumers", 0, "--count", Scaled(200_000, 100), "--message-ttl", Scaled(10_000, 200),
              "--probe-rate", 1000),
             (Metric("queue empty after last publish s", False, _get("expiry", "empty_after_s"), 2), PUBLISH,
              Metric("probe latency p99 ms", False, _get("probe", "latency_ms", "p99"), 2),
              Metric("broker CPU s", False, _get("broker_cpu_s"), 1),
              Metric("broker peak RSS MiB", False, _get("broker_rss_kib", "peak", scale=1 / 1024))), fresh=True),
    Scenario("priority", "2 producers -> queue with x-max-priority 10, priorities 0-9 at random -> 2 consumers, 100 B",
             ("--producers", 2, "--consumers", 2, "--count", Scaled(100_000, 50), "--max-priority", 10,
              "--priorities", 10), (CONSUME, PUBLISH)),
    Scenario("dead-letter", "1 producer -> queue with a dead-letter exchange, 1 consumer rejecting every message "
             "(requeue=false); 1 consumer drains the dead-letter queue, 100 B",
             ("--count", Scaled(100_000, 100), "--dead-letter"),
             (Metric("dead-lettered msgs/s", True, _get("dead_letter", "rate")), PUBLISH)),
)
BY_NAME = {s.name: s for s in SCENARIOS}


def accounted(r):
    """None when a loadgen result is complete and exact, else what is wrong with it."""
    if "error" in r:
        return r["error"]
    if r.get("mode") == "connections":
        return None if r["ok"] else f"{r['opened']} opened, {r['closed_ok']} closed cleanly of {r['connections']}"
    for part, r in (("probe: ", r.get("probe")), ("", r)):
        if r and not r["ok"]:
            return (f"{part}missing {r['missing']}, duplicates {r['duplicates']}, misrouted {r['misrouted']}, "
                    f"nacked {r['nacked']}")
    return None


# ---------------------------------------------------------------------------------------
# Brokers.

def listener_pid(port):
    """The PID of the local process listening on TCP `port` (None if not found or not readable)."""
    inodes = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with suppress(OSError), open(path) as f:
            for line in f.read().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:   # LISTEN
                    inodes.add(f"socket:[{fields[9]}]")
    for pid in (p for p in os.listdir("/proc") if p.isdigit()) if inodes else ():
        with suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                        return int(pid)
    return None


def local_pid(url):
    host, port = loadgen.parse_url(url)[:2]
    return listener_pid(port) if host in ("127.0.0.1", "localhost", "::1") else None


def process_name(pid):
    with suppress(OSError), open(f"/proc/{pid}/comm") as f:
        return f.read().strip()
    return None


class Target:
    """One broker under test: given by URL (and maybe PID), or started (and restartable) by us."""

    def __init__(self, label, url=None, pid=None, starter=None, log_dir=None, tls_url=None):
        self.label, self.url, self.pid, self.starter, self.log_dir = label, url, pid, starter, log_dir
        self.tls_url = tls_url             # its amqps:// URL, for the TLS scenarios
        self.started = 0
        self.used = False                  # has run a scenario since it was (re)started
        self._running = None

    @property
    def managed(self):
        return self.starter is not None

    def start(self):
        self.started += 1
        log = Path(self.log_dir) / f"{self.label.lower()}-{self.started}.log"
        running = self.starter(log)
        self.url = running.__enter__()
        self._running, self.used = running, False
        self.pid = local_pid(self.url)
        if self.label == "RabbitMQ" and self.pid and process_name(self.pid) != "beam.smp":
            print(f"warning: port {urlsplit(self.url).port} belongs to {process_name(self.pid)}, not beam.smp",
                  file=sys.stderr)

    def stop(self):
        if self._running is not None:
            running, self._running = self._running, None
            running.__exit__(None, None, None)

    def restart(self):
        self.stop()
        self.start()

    def product(self):
        with suppress(OSError, loadgen.AMQPError, ValueError):
            conn = loadgen.Conn(self.url, timeout=10)
            props = conn.server_properties
            conn.close()
            return f"{props.get('product', '?')} {props.get('version', '?')}"
        return "?"


def started_targets(log_dir, tls):
    """Our broker (python -m amqpbroker, fresh data directory) and a private RabbitMQ node,
    both on free ports, started by interop/brokers.py; with `tls`, each with an AMQPS listener
    too, its certificate from a CA made here (with trustme)."""
    sys.path.insert(0, str(ROOT))
    from interop import brokers
    targets = []
    for label, starter in (("ours", brokers.ours), ("RabbitMQ", brokers.rabbitmq)):
        tls_url = None
        if tls:
            listener = brokers.TLSListener(brokers.rabbitmq_node.free_port(), *tls_files(log_dir))
            starter = functools.partial(starter, tls=listener)
            tls_url = f"amqps://guest:guest@localhost:{listener.port}/?cacertfile={listener.cafile}"
        targets.append(Target(label, starter=starter, log_dir=log_dir, tls_url=tls_url))
    return targets


def tls_files(directory):
    """(certificate, key, CA) PEM files for a server on localhost, from a new CA."""
    import trustme                         # a test dependency; only the TLS scenarios need it
    ca = trustme.CA()
    paths = [str(Path(directory) / name) for name in ("server.pem", "server.key", "ca.pem")]
    certificate = ca.issue_cert("localhost", "127.0.0.1")
    certificate.cert_chain_pems[0].write_to_path(paths[0])
    certificate.private_key_pem.write_to_path(paths[1])
    ca.cert_pem.write_to_path(paths[2])
    return paths


# ---------------------------------------------------------------------------------------
# Running.

def run_loadgen(target, args, timeout, tls=False):
    url = target.tls_url if tls else target.url
    if url is None:
        return {"ok": False, "error": "no amqps:// URL: TLS scenarios run with --start-both"}, 0.0
    cmd = [sys.executable, str(LOADGEN), "--url", url, "--json", "--timeout", str(timeout), *args]
    if target.pid:
        cmd += ["--broker-pid", str(target.pid)]
    t = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": "loadgen ran for over an hour"}, time.monotonic() - t
    lines = proc.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        result = {"ok": False, "error": f"loadgen exited with {proc.returncode}: {tail or 'no output'}"}
    return result, time.monotonic() - t


def reproduce(scenario, scale):
    url = "$AMQPS_URL" if scenario.tls else "$URL"
    return f"python tools/loadgen.py --url {url} " + shlex.join(scenario.loadgen_args(scale))


def fmt(value, digits):
    return "—" if value is None else f"{value:,.{digits}f}"


def summarize(scenarios, targets, runs):
    """Rows: (scenario, metric, per target median or None, ratio or None, failures note)."""
    rows = []
    for s in scenarios:
        for m in s.metrics:
            medians = []
            for t in targets:
                values = [v for r in runs[s.name][t.label] if not accounted(r) and (v := m.get(r)) is not None]
                medians.append(statistics.median(values) if values else None)
            ratio = medians[0] / medians[1] if len(medians) == 2 and None not in medians and medians[1] else None
            rows.append((s, m, medians, ratio))
    return rows


def table_lines(rows, targets, markdown=False):
    head = ["scenario", "metric", "better"] + [t.label for t in targets]
    if len(targets) == 2:
        head.append(f"{targets[0].label}/{targets[1].label}")
    body = []
    for s, m, medians, ratio in rows:
        line = [s.name, m.label, "higher" if m.higher_is_better else "lower"]
        line += [fmt(v, m.digits) for v in medians]
        if len(targets) == 2:
            line.append("—" if ratio is None else f"{ratio:.2f}x")
        body.append(line)
    if markdown:
        right = [False, False, False] + [True] * (len(head) - 3)
        out = ["| " + " | ".join(head) + " |", "| " + " | ".join("---:" if r else "---" for r in right) + " |"]
        return out + ["| " + " | ".join(line) + " |" for line in body]
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    just = [str.ljust] * 3 + [str.rjust] * (len(head) - 3)
    render = lambda line: "  ".join(j(c, w) for j, c, w in zip(just, line, widths)).rstrip()  # noqa: E731
    return [render(head), "  ".join("-" * w for w in widths)] + [render(line) for line in body]


def behind(rows):
    """The rows where the first broker (ours) does worse than the second, worst first."""
    worse = [(ratio if m.higher_is_better else 1 / ratio, s, m, ratio) for s, m, _, ratio in rows
             if ratio and (ratio < 1 if m.higher_is_better else ratio > 1)]
    return [f"{s.name} {m.label} {ratio:.2f}x" for _, s, m, ratio in sorted(worse, key=lambda w: w[0])]


def failures(scenarios, targets, runs):
    out = []
    for s in scenarios:
        for t in targets:
            for i, r in enumerate(runs[s.name][t.label]):
                problem = accounted(r)
                if problem:
                    out.append(f"{s.name} on {t.label}, run {i + 1}: {problem}")
    return out


def congestion_control():
    """The kernel's default TCP congestion control: whether it paces sends (BBR) moves the large-message
    figures, and amqpbroker turns pacing off for clients on its own host (see README)."""
    try:
        return Path("/proc/sys/net/ipv4/tcp_congestion_control").read_text().strip()
    except OSError:
        return "unknown"


QUIET_BEFORE = 3.0
"""Seconds the machine's CPU use is measured for before the brokers start."""
BUSY = 0.2
"""The share of the CPUs in use before the start above which other work was running."""


def cpu_ticks():
    """The machine's CPU time so far, from /proc/stat: (in use, stolen by the hypervisor, all), in
    ticks; None where there is no /proc/stat."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = fields + [0] * (8 - len(fields))
    return user + nice + system + irq + softirq, steal, sum((user, nice, system, idle, iowait, irq, softirq, steal))


def cpu_shares(before, after):
    """{"busy", "steal"}: the shares of all CPU time between two `cpu_ticks` readings that was in use
    and that the hypervisor gave to other machines; None without both readings."""
    if before is None or after is None or after[2] <= before[2]:
        return None
    total = after[2] - before[2]
    return {"busy": round((after[0] - before[0]) / total, 3), "steal": round((after[1] - before[1]) / total, 3)}


def steal_line(runs):
    """How much CPU time the hypervisor took during the runs, where /proc/stat tells."""
    shares = [(r["bench"]["steal"], r["bench"]["scenario"], r["bench"]["broker"], r["bench"]["run"])
              for by_broker in runs.values() for results in by_broker.values() for r in results
              if r.get("bench", {}).get("steal") is not None]
    if not shares:
        return None
    worst = max(shares)
    return (f"CPU time stolen by the hypervisor during the runs: median {statistics.median(s[0] for s in shares):.1%}, "
            f"at most {worst[0]:.1%} ({worst[1]} on {worst[2]}, run {worst[3]}).")


def runs_per_broker(scenario, repeat, comparing):
    """How often each broker runs `scenario`: --repeat times, or a comparison's minimum if more."""
    return max(repeat, scenario.compare_runs if comparing else 1)


def more_runs(scenarios, repeat):
    """What a comparison ran more often than --repeat asked, as ` (latency-1000 7)`, or ""."""
    counts = [(s.name, runs_per_broker(s, repeat, True)) for s in scenarios]
    more = [f"{name} {count}" for name, count in counts if count > repeat]
    return f" ({', '.join(more)})" if more else ""


def write_markdown(path, args, scenarios, targets, rows, runs, info):
    lines = [f"# Benchmark: {' vs '.join(t.label for t in targets)}", ""]
    lines += [f"Run {info['date']} with `{info['command']}` — {info['elapsed']:.0f} s in all.", ""]
    lines += [f"- {t.label}: {info['products'][t.label]}" for t in targets]
    # The CPU use before the start is the machine's own; after it, the brokers and load generators
    # count in the load average. A load average at the start still counts work that ended before it.
    before = info["cpu_before"]
    busy = before["busy"] >= BUSY if before else info["load_start"] >= 1.0
    lines += [f"- machine: {info['cpus']} CPUs, TCP congestion control {info['congestion_control']} by default, "
              + (f"CPUs {before['busy']:.0%} in use and {before['steal']:.0%} stolen by the hypervisor in the "
                 f"{QUIET_BEFORE:g} s before the start, " if before else "")
              + f"load average (1 min) {info['load_start']:.2f} at the start, "
              f"{info['load_end']:.2f} at the end, {info['load_max']:.2f} at most between runs "
              + ("(other work was running at the start: figures are noisy)" if busy else
                 "(the benchmark's own brokers and load generators count in the later figures)"),
              f"- scale {args.scale:g}, {args.repeat} run(s) per broker and scenario"
              + (more_runs(scenarios, args.repeat) + ", the first broker alternating from round to round; "
                 "each figure is the median" if len(targets) == 2 else ""),
              "- " + ("brokers started by bench.py; " + ", ".join(s.name for s in scenarios if s.fresh)
                      + " ran on freshly started brokers" if info["fresh"] else "brokers were already running "
                      "(memory figures include what earlier runs left behind)"),
              ""]
    if len(targets) == 2:
        lines += [f"Ratio = {targets[0].label} / {targets[1].label}. Where higher is better (rates), above 1.00x "
                  f"means {targets[0].label} is ahead; where lower is better (latency, time, memory), below 1.00x "
                  f"means {targets[0].label} is ahead.", ""]
    lines += table_lines(rows, targets, markdown=True)
    stolen = steal_line(runs)
    if stolen:
        lines += ["", stolen]
    if len(targets) == 2:
        lines += ["", f"{targets[0].label} behind {targets[1].label}, worst first: "
                  + (", ".join(behind(rows)) or "nowhere") + "."]
    lines += ["", "## Scenarios and the command for each", ""]
    lines += ["| scenario | what | reproduce |", "| --- | --- | --- |"]
    lines += [f"| {s.name} | {s.describe} | `{reproduce(s, args.scale)}` |" for s in scenarios]
    bad = failures(scenarios, targets, runs)
    if bad:
        lines += ["", "## Failed runs (left out of the medians)", ""] + [f"- {b}" for b in bad]
    Path(path).write_text("\n".join(lines) + "\n")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="Run named loadgen scenarios against a broker, or compare "
                                             "amqpbroker with RabbitMQ.")
    ap.add_argument("--url", help=f"single mode: the broker (default {DEFAULT_URL})")
    ap.add_argument("--broker-pid", type=int, help="single mode: its PID, for RSS/CPU (default: the local process "
                                                   "listening on the URL's port, when readable)")
    ap.add_argument("--compare", action="store_true", help="compare ours with RabbitMQ (needs --ours and "
                                                           "--rabbitmq, or --start-both)")
    ap.add_argument("--ours", help="compare mode: amqpbroker's URL")
    ap.add_argument("--rabbitmq", help="compare mode: RabbitMQ's URL")
    ap.add_argument("--ours-pid", type=int, help="default: found from the URL's port")
    ap.add_argument("--rabbitmq-pid", type=int, help="default: found from the URL's port (beam.smp)")
    ap.add_argument("--start-both", action="store_true", help="start our broker and a private RabbitMQ node, "
                                                              "each on a free port, and stop them at the end")
    ap.add_argument("--scenarios", help=f"comma-separated subset of: {', '.join(BY_NAME)}")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply message and connection counts (e.g. 0.1)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per broker and scenario; the median is shown")
    ap.add_argument("--timeout", type=float, default=60, help="loadgen --timeout: fail a run after this many "
                                                              "seconds without progress")
    ap.add_argument("--markdown", help="also write the table as Markdown to this file")
    ap.add_argument("--json", help="also write every run's loadgen result to this file")
    ap.add_argument("--log-dir", help="for the logs of brokers bench.py starts (default: a new temporary "
                                      "directory)")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = ap.parse_args(argv)
    if args.start_both:
        args.compare = True
    if args.compare:
        if args.url or args.broker_pid:
            ap.error("--url/--broker-pid are for single mode; use --ours and --rabbitmq")
        if not args.start_both and not (args.ours and args.rabbitmq):
            ap.error("--compare needs --ours URL and --rabbitmq URL, or --start-both")
        if args.start_both and (args.ours or args.rabbitmq):
            ap.error("--start-both starts both brokers: drop --ours/--rabbitmq")
    elif args.ours or args.rabbitmq:
        ap.error("--ours/--rabbitmq need --compare")
    # TLS scenarios need the AMQPS listeners of brokers bench.py starts: by default they run only then.
    default = ",".join(name for name, s in BY_NAME.items() if args.start_both or not s.tls)
    names = [n.strip() for n in (args.scenarios or default).split(",") if n.strip()]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        ap.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    args.chosen = [BY_NAME[n] for n in names]
    if args.scale <= 0 or args.repeat < 1:
        ap.error("--scale must be > 0 and --repeat >= 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.list:
        for s in SCENARIOS:
            print(f"{s.name:18} {s.describe}\n{'':18} {reproduce(s, args.scale)}")
        return 0
    started_at, t0 = datetime.now(timezone.utc), time.monotonic()
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="bench-logs-")
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    if args.start_both:
        targets = started_targets(log_dir, any(s.tls for s in args.chosen))
    elif args.compare:
        targets = [Target("ours", args.ours, args.ours_pid or local_pid(args.ours)),
                   Target("RabbitMQ", args.rabbitmq, args.rabbitmq_pid or local_pid(args.rabbitmq))]
    else:
        url = args.url or DEFAULT_URL
        targets = [Target("broker", url, args.broker_pid or local_pid(url))]
    runs = {s.name: {t.label: [] for t in targets} for s in args.chosen}
    start = cpu_ticks()
    time.sleep(QUIET_BEFORE)
    cpu_before = cpu_shares(start, cpu_ticks())
    load = [os.getloadavg()[0]]
    products = {}
    try:
        for t in targets:
            if t.managed:
                try:
                    t.start()
                except Exception as e:  # noqa: BLE001 - interop.brokers.BrokerError, OSError, ...
                    print(f"bench: cannot start {t.label}: {e}", file=sys.stderr)
                    return 2
            products[t.label] = t.product()
            print(f"{t.label}: {products[t.label]} at {loadgen.redact(t.url)}, PID {t.pid or 'unknown (no RSS/CPU)'}",
                  flush=True)
        rounds = {s.name: runs_per_broker(s, args.repeat, len(targets) == 2) for s in args.chosen}
        total, n = sum(rounds.values()) * len(targets), 0
        for s in args.chosen:
            for r in range(rounds[s.name]):
                # Alternately (ours, RabbitMQ; RabbitMQ, ours; ...): neither is always the one to
                # run after the other.
                for t in (targets if r % 2 == 0 else targets[::-1]):
                    n += 1
                    if s.fresh and t.managed and t.used:
                        t.restart()                                  # memory figures from a fresh broker
                    load.append(os.getloadavg()[0])
                    ticks = cpu_ticks()
                    result, took = run_loadgen(t, s.loadgen_args(args.scale), args.timeout, s.tls)
                    during = cpu_shares(ticks, cpu_ticks())
                    t.used = True
                    result["bench"] = {"run": n, "scenario": s.name, "broker": t.label, "seconds": round(took, 1),
                                       "load_1min": load[-1], "steal": during and during["steal"]}
                    runs[s.name][t.label].append(result)
                    problem = accounted(result)
                    head = s.metrics[0]
                    shown = f"{head.label} {fmt(head.get(result), head.digits)}" if not problem else f"FAILED: {problem}"
                    stolen = f", steal {during['steal']:.0%}" if during else ""
                    print(f"[{n}/{total}] {s.name:17} {t.label:9} {shown}  ({took:.1f} s, load {load[-1]:.2f}{stolen})",
                          flush=True)
                    if problem and t.managed:
                        t.restart()                                  # do not let one failure spoil the rest
    except KeyboardInterrupt:
        print("interrupted: the table covers the runs so far", file=sys.stderr)
    finally:
        for t in targets:
            t.stop()
    load.append(os.getloadavg()[0])
    elapsed = time.monotonic() - t0
    done = [s for s in args.chosen if all(runs[s.name][t.label] for t in targets)]
    rows = summarize(done, targets, runs)
    print()
    print("\n".join(table_lines(rows, targets)))
    if len(targets) == 2:
        print(f"ratio = {targets[0].label}/{targets[1].label}: for 'higher' rows above 1.00x favours "
              f"{targets[0].label}, for 'lower' rows below 1.00x does")
        print(f"{targets[0].label} behind, worst first: {', '.join(behind(rows)) or 'nowhere'}")
    print("\nreproduce (URL = the broker's amqp:// URL, AMQPS_URL its amqps:// one with ?cacertfile=CA.pem; "
          "add --broker-pid PID for RSS/CPU):")
    for s in done:
        print(f"  {s.name:17} {reproduce(s, args.scale)}")
    bad = failures(done, targets, runs)
    for b in bad:
        print(f"FAILED: {b}")
    stolen = steal_line(runs)
    if stolen:
        print(stolen)
    in_use = f"; CPUs {cpu_before['busy']:.0%} in use before the start" if cpu_before else ""
    print(f"\n{elapsed:.0f} s{in_use}; load average (1 min) {load[0]:.2f} at the start, {load[-1]:.2f} at the end, "
          f"{max(load):.2f} at most" + (f"; broker logs in {log_dir}" if any(t.managed for t in targets) else ""))
    info = {"date": started_at.strftime("%Y-%m-%d %H:%M UTC"), "elapsed": elapsed, "products": products,
            "cpus": os.cpu_count(), "congestion_control": congestion_control(),
            "load_start": load[0], "load_end": load[-1], "load_max": max(load), "cpu_before": cpu_before,
            "command": "python tools/bench.py " + shlex.join(
                loadgen.redact(a) if a.startswith("amqp://") else a for a in (argv if argv is not None else sys.argv[1:])),
            "fresh": any(t.managed for t in targets)}
    if args.markdown:
        write_markdown(args.markdown, args, done, targets, rows, runs, info)
    if args.json:
        Path(args.json).write_text(json.dumps({"info": info, "scale": args.scale, "repeat": args.repeat,
                                               "runs": runs}, indent=1))
    return 1 if bad or len(done) < len(args.chosen) else 0


if __name__ == "__main__":
    sys.exit(main())
