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
    pytest.param(["--count", "90", "--queues", "3", "--consumers", "2"], id="3-queues-default-exchange"),
    pytest.param(["--count", "100", "--exchange-type", "fanout", "--queues", "3", "--consumers", "3"], id="fanout"),
    pytest.param(["--count", "100", "--exchange-type", "fanout", "--queues", "4", "--consumers", "2", "--confirms",
                  "--persistent", "--durable", "--confirm-window", "10"], id="fanout-2-queues-per-consumer"),
    pytest.param(["--count", "100", "--exchange-type", "direct", "--queues", "2", "--consumers", "2",
                  "--bindings", "20"], id="direct"),
    pytest.param(["--count", "200", "--exchange-type", "topic", "--queues", "4", "--consumers", "4",
                  "--bindings", "300"], id="topic-300-bindings"),
    pytest.param(["--count", "300", "--backlog"], id="backlog"),
    pytest.param(["--count", "100", "--backlog", "--exchange-type", "fanout", "--queues", "2", "--consumers", "1",
                  "--prefetch", "10"], id="backlog-fanout"),
    pytest.param(["--client", "pika", "--count", "60", "--exchange-type", "topic", "--queues", "2", "--consumers", "1",
                  "--backlog"], id="pika-topic-backlog"),
    pytest.param(["--producers", "2", "--consumers", "2", "--count", "100", "--max-priority", "10", "--priorities", "10"],
                 id="priority"),
    pytest.param(["--count", "200", "--dead-letter"], id="dead-letter"),
    pytest.param(["--count", "100", "--dead-letter", "--exchange-type", "direct", "--queues", "2", "--consumers", "2",
                  "--prefetch", "20", "--ack-every", "10"], id="dead-letter-2-queues-nack-multiple"),
    pytest.param(["--client", "pika", "--count", "50", "--dead-letter", "--max-priority", "5", "--priorities", "6"],
                 id="pika-dead-letter-priority"),
    pytest.param(["--count", "200", "--probe-rate", "200"], id="probe"),
]


@pytest.mark.parametrize("args", SCENARIOS)
def test_every_message_consumed_exactly_once(amqp_url, args):
    returncode, r = run_loadgen(amqp_url, *args)
    published = r["producers"] * r["count"]
    copies = r["queues"] if r["exchange_type"] == "fanout" else 1
    dead_letter = r.get("dead_letter")
    expected = published * (copies + bool(dead_letter))              # each message rejected, then dead-lettered
    assert (r["published"], r["expected"], r["consumed"], r["unique"]) == (published, expected, expected, expected), r
    assert (r["duplicates"], r["missing"], r["misrouted"], r["nacked"], r["foreign"]) == (0, 0, 0, 0, 0), r
    assert r["ok"] and returncode == 0, r
    assert set(r["latency_ms"]) == {"p50", "p95", "p99", "max"}
    if r["mode"] == "backlog":
        b = r["backlog"]
        assert b["queued"] == b["queued_reported"] == expected, r
        assert b["fill_rate"] and b["drain_rate"], r
    if dead_letter:
        assert r["queue_arguments"] == {"x-dead-letter-exchange": dead_letter["exchange"]} | (
            {"x-max-priority": 5} if "--max-priority" in args else {}), r
        assert dead_letter["dead_lettered"] == published and dead_letter["rate"], r
    if "--probe-rate" in args:
        assert r["probe"]["ok"] and r["probe"]["consumed"] == r["probe"]["published"], r


def test_messages_carry_random_priorities(amqp_url):
    import pika

    queue = f"loadgen-test-priorities-{os.getpid()}"
    returncode, r = run_loadgen(amqp_url, "--consumers", "0", "--count", "300", "--queue", queue,
                                "--max-priority", "10", "--priorities", "10")
    assert returncode == 0 and r["queue_arguments"] == {"x-max-priority": 10}, r
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = conn.channel()
        priorities = []
        while (got := channel.basic_get(queue, auto_ack=True))[0] is not None:
            priorities.append(got[1].priority)
        channel.queue_delete(queue)
    finally:
        conn.close()
    assert len(priorities) == 300 and set(priorities) == set(range(10))
    assert priorities == sorted(priorities, reverse=True)              # the queue delivers the highest first


def test_a_ttl_backlog_expires_while_the_probe_flows(amqp_url):
    returncode, r = run_loadgen(amqp_url, "--consumers", "0", "--count", "300", "--message-ttl", "200",
                                "--probe-rate", "200")
    assert returncode == 0 and r["ok"] and r["mode"] == "expire", r
    e, probe = r["expiry"], r["probe"]
    assert (e["ttl_ms"], e["queued"], r["queue_arguments"]) == (200, 300, {"x-message-ttl": 200}), r
    assert e["empty_after_s"] is not None and e["left_at_last_publish"] <= 300, r
    assert probe["ok"] and probe["consumed"] == probe["published"] and probe["missing"] == 0, r


@pytest.mark.parametrize("args", [["--dead-letter", "--auto-ack"], ["--dead-letter", "--consumers", "0"],
                                  ["--dead-letter", "--backlog"], ["--dead-letter", "--exchange-type", "fanout"],
                                  ["--priorities", "0"], ["--message-ttl", "-1"], ["--probe-rate", "0"]])
def test_queue_feature_options_are_checked(args):
    lg = load_module()
    with pytest.raises(SystemExit):
        lg.parse_args(args)

def test_connections_mode(amqp_url):
    embedded = "AMQP_TEST_URL" not in os.environ             # then the broker runs in this process
    pid = ["--broker-pid", str(os.getpid())] if embedded else []
    returncode, r = run_loadgen(amqp_url, "--connections", "30", "--connectors", "2", "--hold", "0.3", *pid)
    assert returncode == 0 and r["ok"], r
    if embedded:
        assert r["broker_rss_kib"]["held"] and r["rss_per_connection_kib"] is not None, r
    assert r["mode"] == "connections" and r["opened"] == r["closed_ok"] == 30, r
    assert set(r["open_latency_ms"]) == {"p50", "p95", "p99", "max"} and r["open_s"] > 0


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
    lg.plan(cfg, cfg.queue)
    a, b = lg.Tally(7, cfg.count), lg.Tally(7, cfg.count)
    for tally, seq in ((a, 0), (a, 1), (b, 1)):           # seq 1 twice, 2 and 3 never
        tally.add(2_000_000, 1_000_000, 7 << 48 | seq)
    b.add(2_000_000, 1_000_000, 9 << 48)                  # another run's message
    done = {("producer", 0): {"published": 4, "nacked": 0, "start": 0, "end": 10**9, "cpu": 0.0},
            ("consumer", 0): dict(a.result(), cpu=0.0), ("consumer", 1): dict(b.result(), cpu=0.0)}
    r = lg.report(cfg, done)
    assert (r["consumed"], r["unique"], r["duplicates"], r["missing"], r["foreign"]) == (3, 2, 1, 2, 1)
    assert r["ok"] is False
    assert r["latency_ms"]["max"] == 1.0


def test_accounting_is_per_queue():
    """Fanout to 2 queues: a message is due once in each; one seen twice in one queue is a duplicate
    even though it is missing from the other, and a topic message in the wrong queue is misrouted."""
    lg = load_module()
    cfg = lg.parse_args(["--count", "3", "--consumers", "2", "--exchange-type", "fanout", "--queues", "2"])
    cfg.queue, cfg.run_tag = "q", 7
    lg.plan(cfg, cfg.queue)
    a, b = lg.Tally(7, cfg.count), lg.Tally(7, cfg.count)
    for seq in (0, 1, 2):
        a.add(2, 1, 7 << 48 | seq, 0)                      # queue 0 complete
    for seq in (0, 0, 1):
        b.add(2, 1, 7 << 48 | seq, 1)                      # queue 1: seq 0 twice, seq 2 never
    done = {("producer", 0): {"published": 3, "nacked": 0, "start": 0, "end": 10**9, "cpu": 0.0},
            ("consumer", 0): dict(a.result(), cpu=0.0), ("consumer", 1): dict(b.result(), cpu=0.0)}
    r = lg.report(cfg, done)
    assert (r["expected"], r["consumed"], r["unique"], r["duplicates"], r["missing"], r["misrouted"]) == (6, 6, 5, 1, 1, 0)
    assert r["ok"] is False

    cfg = lg.parse_args(["--count", "4", "--consumers", "1", "--exchange-type", "topic", "--queues", "2",
                         "--bindings", "50"])
    cfg.queue, cfg.run_tag = "q", 7
    lg.plan(cfg, cfg.queue)
    assert cfg.routes == [(0,), (1,)] and cfg.matching_bindings == 2 and len(cfg.binding_list) == 50
    c = lg.Tally(7, cfg.count)
    for seq, queue in ((0, 0), (1, 1), (2, 0), (3, 0)):   # seq 3 has key 1: it belongs in queue 1
        c.add(2, 1, 7 << 48 | seq, queue)
    done = {("producer", 0): {"published": 4, "nacked": 0, "start": 0, "end": 10**9, "cpu": 0.0},
            ("consumer", 0): dict(c.result(), cpu=0.0)}
    r = lg.report(cfg, done)
    assert (r["expected"], r["unique"], r["duplicates"], r["missing"], r["misrouted"]) == (4, 4, 0, 1, 1)
    assert r["ok"] is False


def test_topic_matches():
    lg = load_module()
    assert lg.topic_matches("lg.k1.*", "lg.k1.x") and not lg.topic_matches("lg.k1.*", "lg.k1.x.y")
    assert lg.topic_matches("#", "a.b.c") and lg.topic_matches("a.#", "a") and lg.topic_matches("#.x", "lg.k0.x")
    assert not lg.topic_matches("*.n1.*", "lg.k1.x") and not lg.topic_matches("#.w5", "lg.k1.x")
    cfg = lg.parse_args(["--exchange-type", "topic", "--queues", "4", "--bindings", "1000"])
    lg.plan(cfg, "q")
    assert len({key for _, key in cfg.binding_list}) == 1000                 # all distinct
    assert cfg.matching_bindings == 4 and cfg.routes == [(0,), (1,), (2,), (3,)]


def test_server_properties_are_decoded():
    lg = load_module()
    encoded = lg.table({"product": "X", "capabilities": {"publisher_confirms": True}, "x-max-priority": 10})
    assert lg.decode_table(encoded[4:]) == {"product": "X", "capabilities": {"publisher_confirms": True},
                                            "x-max-priority": 10}


def test_parse_url():
    lg = load_module()
    assert lg.parse_url("amqp://u:p%40ss@example:5673/%2f") == ("example", 5673, "u", "p@ss", "/")
    assert lg.parse_url("amqp://h") == ("h", 5672, "guest", "guest", "/")
    assert lg.parse_url("amqp://h/vh")[4] == "vh"
    assert lg.parse_url("amqps://h/?cacertfile=ca.pem") == ("h", 5671, "guest", "guest", "/")
    assert lg.redact("amqp://u:secret@h/") == "amqp://u:***@h/"


@pytest.mark.parametrize("args", [["--count", "200"], ["--count", "200", "--confirms", "--confirm-window", "10"]])
def test_over_tls(tmp_path, args):
    import trustme

    from amqpbroker.testing import Broker
    from amqpbroker.server.tls import server_context

    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    ca.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    context = server_context(str(tmp_path / "server.pem"), str(tmp_path / "server.pem"))
    with Broker(tls_context=context) as broker:
        url = f"amqps://guest:guest@localhost:{broker.tls_port}/?cacertfile={tmp_path / 'ca.pem'}"
        code, r = run_loadgen(url, *args)
    assert code == 0
    assert r["consumed"] == r["unique"] == r["expected"] == 200
