"""How long until a freshly started broker accepts connections: the embedded one, and RabbitMQ.

    python tools/embedded_start.py               # amqpbroker.Broker(port=0).start(), median of 20
    python tools/embedded_start.py --rabbitmq 5  # also a second RabbitMQ node, median of 5 starts

Ours: from the `start()` call to a TCP connect that succeeds. RabbitMQ: from spawning
`rabbitmq-server` (a node of its own: name, ports, data and log directories in a temporary
directory) to a TCP connect on its AMQP port that succeeds, then an AMQP handshake to confirm it;
the node is stopped again after each start. Running RabbitMQ needs root (it runs as `rabbitmq`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
RABBITMQCTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def time_ours() -> float:
    from amqpbroker import Broker

    broker = Broker(port=0)
    started = time.perf_counter()
    broker.start()
    while not connects(broker.port):
        pass
    elapsed = time.perf_counter() - started
    broker.stop()
    return elapsed


def time_rabbitmq() -> float:
    import pika

    base = tempfile.mkdtemp(prefix="rabbitmq-start-")
    shutil.chown(base, "rabbitmq", "rabbitmq")
    plugins = os.path.join(base, "enabled_plugins")
    with open(plugins, "w") as file:
        file.write("[].\n")
    node = f"startbench{os.getpid()}@{socket.gethostname().split('.')[0]}"
    port = free_port()
    env = {
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(free_port()),
        "RABBITMQ_MNESIA_BASE": os.path.join(base, "mnesia"),
        "RABBITMQ_LOG_BASE": os.path.join(base, "log"),
        "RABBITMQ_PID_FILE": os.path.join(base, "pid"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": plugins,
        "RABBITMQ_PLUGINS_EXPAND_DIR": os.path.join(base, "plugins-expand"),
        "RABBITMQ_CONFIG_FILE": os.path.join(base, "rabbitmq"),  # none there: defaults only
        "HOME": "/var/lib/rabbitmq",
    }
    as_rabbitmq = ["runuser", "-u", "rabbitmq", "--", "env", *(f"{k}={v}" for k, v in env.items())]
    started = time.perf_counter()
    server = subprocess.Popen(
        [*as_rabbitmq, RABBITMQ_SERVER], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        while not connects(port):
            if server.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited with {server.returncode}; see {base}/log")
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        pika.BlockingConnection(pika.URLParameters(f"amqp://guest:guest@127.0.0.1:{port}/")).close()
        return elapsed
    finally:
        subprocess.run([*as_rabbitmq, RABBITMQCTL, "-n", node, "stop"], capture_output=True, timeout=60)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        shutil.rmtree(base, ignore_errors=True)


def report(name: str, times: list[float]) -> None:
    ms = sorted(t * 1000 for t in times)
    if len(ms) == 1:
        print(f"{name}: {ms[0]:.1f} ms")
        return
    print(f"{name}: median {statistics.median(ms):.1f} ms, min {ms[0]:.1f} ms, max {ms[-1]:.1f} ms ({len(ms)} starts)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="starts of the embedded broker (default: 20)")
    parser.add_argument("--rabbitmq", type=int, default=0, metavar="N", help="also time N starts of RabbitMQ")
    args = parser.parse_args()
    started = time.perf_counter()
    import amqpbroker  # noqa: F401

    print(f"import amqpbroker: {(time.perf_counter() - started) * 1000:.1f} ms")
    report("first Broker(port=0).start() in the process to TCP connect", [time_ours()])
    report("Broker(port=0).start() to TCP connect", [time_ours() for _ in range(args.runs)])
    if args.rabbitmq:
        report("rabbitmq-server to TCP connect on its AMQP port", [time_rabbitmq() for _ in range(args.rabbitmq)])


if __name__ == "__main__":
    main()
