"""Brokers the runner starts itself: a private RabbitMQ node (the reference) or our own broker.

Each is a context manager that yields the broker's URL once it accepts AMQP connections and stops
the broker, with everything it started, on exit. Both listen on 127.0.0.1 on a free port, so they
never collide with a broker that is already running. Either can be given definitions (RabbitMQ's
JSON format) and operator policies, both in place before the URL is yielded.
"""

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import amqp.exceptions
import kombu

from amqpbroker.testing import rabbitmq as rabbitmq_node
from interop.clients import INTEROP_DIR

_STARTUP = 90
_CTL = 60  # seconds `amqpbroker ctl` may take


class BrokerError(Exception):
    pass


@dataclass(frozen=True)
class TLSListener:
    """An AMQPS listener for a started broker: its port and PEM files (no client certificates asked)."""

    port: int
    certfile: str
    keyfile: str
    cafile: str


def server_product(url: str) -> str:
    """The product and version the broker announces in connection.start."""
    with kombu.Connection(url, connect_timeout=5) as connection:
        connection.connect()
        properties = connection.connection.server_properties
    return f"{properties.get('product', '?')} {properties.get('version', '?')}"


@contextmanager
def _process(argv: list[str], log: Path, url: str, **popen) -> Iterator[str]:
    """Run a broker in its own process group; yield `url` once it accepts connections."""
    with log.open("wb") as output:
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, start_new_session=True, **popen)
    try:
        deadline = time.monotonic() + _STARTUP
        while True:
            if process.poll() is not None:
                raise BrokerError(f"{argv[0]} exited with {process.returncode}; see {log}")
            try:
                server_product(url)
                break
            except (OSError, amqp.exceptions.AMQPError):
                if time.monotonic() > deadline:
                    raise BrokerError(f"{argv[0]} did not accept connections within {_STARTUP} s; see {log}") from None
                time.sleep(0.5)
        yield url
    finally:
        rabbitmq_node.stop_group(process)


def _definitions_file(directory: str | Path, definitions: dict) -> Path:
    path = Path(directory) / "definitions.json"
    path.write_text(json.dumps(definitions))
    return path


def _policy_arguments(policy: dict) -> list[str]:
    """A policy (as RabbitMQ's definitions list one) as the arguments of the command that sets it:
    rabbitmqctl's set_operator_policy and our ctl's `set operator-policy` take the same."""
    return [
        "--vhost", policy["vhost"], "--priority", str(policy["priority"]), "--apply-to", policy["apply-to"],
        policy["name"], policy["pattern"], json.dumps(policy["definition"]),
    ]


def _rabbitmqctl(node: rabbitmq_node.RabbitMQNode, *args: str) -> None:
    try:
        node.ctl(*args)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        raise BrokerError(f"RabbitMQ refused or did not finish {args[0]}: {exc}") from None


@contextmanager
def rabbitmq(
    log: Path, tls: TLSListener | None = None, definitions: dict | None = None, operator_policies: Sequence[dict] = ()
) -> Iterator[str]:
    """A private RabbitMQ node: its own name, ports, data and logs, no plugins, no management listener
    (`amqpbroker.testing.rabbitmq`); with `tls`, AMQPS too.

    `definitions` are imported once the node runs, with `rabbitmqctl import_definitions`, which
    returns when they are: configured to load at boot (`load_definitions`) instead, RabbitMQ 3.10
    would not create guest and vhost "/" (rabbit:maybe_insert_default_data). Then each of
    `operator_policies` is set, with `rabbitmqctl set_operator_policy`."""
    if not rabbitmq_node.installed():
        raise BrokerError(f"{rabbitmq_node.SERVER} not found (install rabbitmq-server)")
    with tempfile.TemporaryDirectory(prefix="interop-rabbitmq-") as home:
        node = rabbitmq_node.RabbitMQNode(Path(home), log=log)
        if tls is not None:
            (node.base / "rabbitmq.conf").write_text(
                f"listeners.ssl.default = {tls.port}\n"
                f"ssl_options.certfile = {tls.certfile}\n"
                f"ssl_options.keyfile = {tls.keyfile}\n"
                f"ssl_options.cacertfile = {tls.cafile}\n"
                "ssl_options.verify = verify_none\n"
                "ssl_options.fail_if_no_peer_cert = false\n"
            )
        try:
            node.start()
        except RuntimeError as exc:
            raise BrokerError(f"{exc}; see {log}") from None
        try:
            if definitions is not None:
                _rabbitmqctl(node, "import_definitions", str(_definitions_file(home, definitions)))
            for policy in operator_policies:
                _rabbitmqctl(node, "set_operator_policy", *_policy_arguments(policy))
            yield f"amqp://guest:guest@127.0.0.1:{node.port}/%2F"
        finally:
            node.stop()


def _ctl(api: str, *args: str) -> None:
    """`amqpbroker ctl ARGS...` against our management API at `api`."""
    argv = [sys.executable, "-m", "amqpbroker", "ctl", "--api", api, *args]
    try:
        result = subprocess.run(argv, cwd=INTEROP_DIR.parent, capture_output=True, text=True, timeout=_CTL)
    except subprocess.TimeoutExpired:
        raise BrokerError(f"amqpbroker ctl {' '.join(args)} did not finish within {_CTL} s") from None
    if result.returncode != 0:
        raise BrokerError(f"amqpbroker ctl {' '.join(args)} failed: {result.stderr or result.stdout}")


@contextmanager
def ours(
    log: Path, tls: TLSListener | None = None, definitions: dict | None = None, operator_policies: Sequence[dict] = ()
) -> Iterator[str]:
    """amqpbroker from this checkout, as a subprocess with a fresh data directory; with `tls`, AMQPS too.
    With `definitions` or `operator_policies` it serves the management API too, and once the broker
    accepts connections the definitions are imported through it (`amqpbroker ctl import`: loaded at
    the start instead, they would replace guest and vhost "/", as in RabbitMQ), then each operator
    policy set (`amqpbroker ctl set operator-policy`)."""
    port = rabbitmq_node.free_port()
    with tempfile.TemporaryDirectory(prefix="interop-amqpbroker-") as home:
        data = Path(home) / "data"
        http_port = rabbitmq_node.free_port()
        api = f"http://127.0.0.1:{http_port}"
        http = ["--http-port", str(http_port)] if definitions is not None or operator_policies else ["--no-http"]
        argv = [sys.executable, "-m", "amqpbroker", *http, "--no-metrics", "--host", "127.0.0.1",
                "--port", str(port), "--data-dir", str(data)]
        if tls is not None:
            argv += ["--tls-port", str(tls.port), "--tls-certfile", tls.certfile, "--tls-keyfile", tls.keyfile,
                     "--tls-cafile", tls.cafile]
        with _process(argv, log, f"amqp://guest:guest@127.0.0.1:{port}/%2F", cwd=INTEROP_DIR.parent) as url:
            if definitions is not None:
                _ctl(api, "import", str(_definitions_file(home, definitions)))
            for policy in operator_policies:
                _ctl(api, "set", "operator-policy", *_policy_arguments(policy))
            yield url
