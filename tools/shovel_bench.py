#!/usr/bin/env python3
"""Shovel throughput and recovery: amqpbroker's shovel next to RabbitMQ's own, moving the same
messages between the same two brokers (amqpbroker -> a private RabbitMQ node), ack-mode on-confirm.

    python tools/shovel_bench.py --count 100000 --repeat 3

Both brokers are started here on free ports: `python -m amqpbroker` on a fresh data directory and a
RabbitMQ node with the shovel plugin (Debian's rabbitmq-server). Each run fills a durable queue on
amqpbroker with --count persistent messages (tools/loadgen.py, confirms), then one shovel moves
them into a durable queue on RabbitMQ: ours (PUT /api/parameters/shovel on amqpbroker) or
RabbitMQ's (`rabbitmqctl set_parameter shovel` on the node), alternately; the rate is messages over
the time from creating the shovel to the last one counted at the destination. Then recovery: with
our shovel feeding RabbitMQ, the node is killed (SIGKILL) and restarted; reported is the time from
the node accepting connections again to the shovel running, and to the first message arriving.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pika

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from amqpbroker.testing.rabbitmq import RabbitMQNode, free_port  # noqa: E402
from tests.links.support import api, wait_for  # noqa: E402

LOADGEN = ROOT / "tools" / "loadgen.py"


class Ours:
    """`python -m amqpbroker` on a fresh data directory, with its management API."""

    def __init__(self, base: Path) -> None:
        self.port, self.http_port = free_port(), free_port()
        (base / "data").mkdir()
        self.log = open(base / "amqpbroker.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "amqpbroker", "--host", "127.0.0.1", "--port", str(self.port),
             "--http-port", str(self.http_port), "--data-dir", str(base / "data"), "--log-level", "warning"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT,
        )
        wait_for(self._up, "amqpbroker")

    def _up(self) -> bool:
        try:
            return api(self.http_url, "GET", "/api/overview")[0] == 200
        except OSError:
            return False

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        self.log.close()


def fill(url: str, queue: str, count: int) -> None:
    subprocess.run(
        [sys.executable, str(LOADGEN), "--url", url + "/%2F", "--queue", queue, "--consumers", "0",
         "--count", str(count), "--durable", "--persistent", "--confirms", "--json"],
        check=True, capture_output=True, timeout=600,
    )


def queue_length(channel, queue: str) -> int:
    return channel.queue_declare(queue, durable=True, passive=True).method.message_count


def wait_length(connection: pika.BlockingConnection, queue: str, count: int) -> float:
    """Polls `queue` until it holds `count` messages; returns when that was seen (monotonic)."""
    channel = connection.channel()
    while queue_length(channel, queue) < count:
        connection.sleep(0.02)
    return time.monotonic()


def value(ours: Ours, node: RabbitMQNode, source: str, dest: str, prefetch: int) -> dict:
    return {"src-uri": ours.url, "src-queue": source, "dest-uri": node.url.rstrip("/"), "dest-queue": dest,
            "ack-mode": "on-confirm", "prefetch-count": prefetch, "src-delete-after": "never"}


def run(shovel: str, ours: Ours, node: RabbitMQNode, count: int, number: int, prefetch: int) -> float:
    """Messages/s for one run of `shovel` ("amqpbroker" or "RabbitMQ")."""
    source, dest = f"bench-{shovel}-src-{number}", f"bench-{shovel}-dest-{number}"
    fill(ours.url, source, count)
    remote = pika.BlockingConnection(pika.URLParameters(node.url))
    remote.channel().queue_declare(dest, durable=True)
    definition = value(ours, node, source, dest, prefetch)
    started = time.monotonic()
    if shovel == "amqpbroker":
        api(ours.http_url, "PUT", f"/api/parameters/shovel/%2F/{source}", {"value": definition})
    else:
        node.ctl("set_parameter", "shovel", source, json.dumps(definition))
    done = wait_length(remote, dest, count)
    if shovel == "amqpbroker":
        api(ours.http_url, "DELETE", f"/api/parameters/shovel/%2F/{source}")
    else:
        node.ctl("clear_parameter", "shovel", source)
    remote.channel().queue_delete(dest)
    remote.close()
    return count / (done - started)


def recovery(ours: Ours, node: RabbitMQNode, prefetch: int) -> tuple[float, float]:
    """Kill and restart the node under a running shovel fed at a steady rate; seconds from the node
    being back to the shovel running, and to the first message arriving after the restart."""
    source, dest = "bench-recovery-src", "bench-recovery-dest"
    shovel = {**value(ours, node, source, dest, prefetch), "reconnect-delay": 1}
    api(ours.http_url, "PUT", "/api/parameters/shovel/%2F/recovery", {"value": shovel})
    feeder = subprocess.Popen(
        [sys.executable, str(LOADGEN), "--url", ours.url + "/%2F", "--queue", source, "--consumers", "0",
         "--duration", "120", "--rate", "2000", "--durable", "--persistent", "--confirms", "--json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        def state() -> list[str]:
            return [s["state"] for s in api(ours.http_url, "GET", "/api/shovels")[1] if s["name"] == "recovery"]

        wait_for(lambda: state() == ["running"], "the shovel to run")
        time.sleep(2)
        node.kill()
        wait_for(lambda: state() != ["running"], "the shovel to notice")
        node.start()
        back = time.monotonic()
        remote = pika.BlockingConnection(pika.URLParameters(node.url))
        channel = remote.channel()
        channel.queue_declare(dest, durable=True)
        channel.queue_purge(dest)
        wait_for(lambda: state() == ["running"], "the shovel to run again")
        running = time.monotonic()
        while queue_length(channel, dest) == 0:
            remote.sleep(0.01)
        first = time.monotonic()
        remote.close()
        return running - back, first - back
    finally:
        feeder.terminate()
        feeder.wait()
        api(ours.http_url, "DELETE", "/api/parameters/shovel/%2F/recovery")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=50000, help="messages per run (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per shovel, alternating (default %(default)s)")
    parser.add_argument("--prefetch", type=int, default=1000, help="prefetch-count (default: RabbitMQ's 1000)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="shovel-bench-"))
    node = RabbitMQNode(base / "rabbitmq", plugins=("rabbitmq_shovel",)).start()
    ours = Ours(base)
    try:
        rates: dict[str, list[float]] = {"amqpbroker": [], "RabbitMQ": []}
        for number in range(args.repeat):
            for shovel, values in rates.items():
                values.append(run(shovel, ours, node, args.count, number, args.prefetch))
            print(f"run {number + 1}: amqpbroker {rates['amqpbroker'][-1]:,.0f} msgs/s, "
                  f"RabbitMQ {rates['RabbitMQ'][-1]:,.0f} msgs/s", flush=True)
        to_running, to_first = recovery(ours, node, args.prefetch)
        print(f"\n{args.count:,} persistent 100 B messages, amqpbroker -> RabbitMQ, on-confirm, "
              f"prefetch {args.prefetch}, median of {args.repeat}:")
        for name, values in rates.items():
            print(f"  {name} shovel: {statistics.median(values):,.0f} msgs/s")
        print(f"recovery after a RabbitMQ SIGKILL and restart (reconnect-delay 1 s): running {to_running:.2f} s, "
              f"first message {to_first:.2f} s after the node accepted connections again")
    finally:
        ours.stop()
        node.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
