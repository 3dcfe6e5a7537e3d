"""The client programs the runner knows: how to prepare each one and the command that starts it.

Every client program speaks the same command line (see `common.py`): `--list` prints the scenarios
it implements; `--url=URL --prefix=PREFIX SCENARIO...` runs them and prints one result line each.
"""

import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

INTEROP_DIR = Path(__file__).resolve().parent.parent
_NODE_DIR = INTEROP_DIR / "node"
_JAVA_DIR = INTEROP_DIR / "java"
_JAVA_BUILD = _JAVA_DIR / "build"
_JARS = Path("/usr/share/java")


class Unavailable(Exception):
    """The client's toolchain or library is missing; interop/setup.sh installs it."""


@dataclass(frozen=True)
class Client:
    name: str
    describe: str
    prepare: Callable[[], list[str]]  # returns the command, or raises Unavailable
    # A batch client runs all its scenarios in one process, each with its own time limit (`--timeout`).
    batch: bool = False


def _python(module: str) -> Callable[[], list[str]]:
    return lambda: [sys.executable, "-m", f"interop.clients.{module}"]


def _require(program: str, package: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise Unavailable(f"{program} not found (install {package})")
    return path


def _amqp_tools() -> list[str]:
    for tool in ("amqp-publish", "amqp-consume", "amqp-get", "amqp-declare-queue", "amqp-delete-queue"):
        _require(tool, "Debian amqp-tools")
    return _python("amqp_tools")()


def _node() -> list[str]:
    node = _require("node", "Node.js")
    if not (_NODE_DIR / "node_modules" / "amqplib").is_dir():
        raise Unavailable("amqplib not installed (run `npm ci` in interop/node)")
    return [node, str(_NODE_DIR / "scenarios.js")]


def _java() -> list[str]:
    java = _require("java", "a JDK")
    classpath = [_JARS / "amqp-client.jar", _JARS / "slf4j-api.jar", _JARS / "slf4j-nop.jar"]
    missing = [str(jar) for jar in classpath if not jar.is_file()]
    if missing:
        raise Unavailable(f"missing {', '.join(missing)} (install librabbitmq-client-java and libslf4j-java)")
    source, compiled = _JAVA_DIR / "Scenarios.java", _JAVA_BUILD / "Scenarios.class"
    library = ":".join(map(str, classpath))
    if not compiled.is_file() or compiled.stat().st_mtime < source.stat().st_mtime:
        javac = _require("javac", "a JDK (default-jdk-headless)")
        javac_argv = [javac, "-d", str(_JAVA_BUILD), "-cp", library, str(source)]
        build = subprocess.run(javac_argv, capture_output=True, text=True)
        if build.returncode != 0:
            raise Unavailable(f"javac failed: {build.stderr.strip()}")
    return [java, "-cp", f"{_JAVA_BUILD}:{library}", "Scenarios"]


CLIENTS = (
    Client("pika", "pika BlockingConnection", _python("pika_blocking")),
    Client("pika-asyncio", "pika AsyncioConnection (asynchronous adapter)", _python("pika_asyncio")),
    Client("aio-pika", "aio-pika (on aiormq)", _python("aio_pika_client")),
    Client("kombu", "kombu on py-amqp", _python("kombu_client")),
    Client("celery", "Celery; rpc is a task run by a real worker, result over rpc://", _python("celery_client")),
    Client("amqpstorm", "AMQPStorm", _python("amqpstorm_client")),
    Client("amqplib", "Node.js amqplib (promise API)", _node),
    Client("java", "RabbitMQ Java client (Debian librabbitmq-client-java), one JVM per run", _java, batch=True),
    Client("amqp-tools", "the C client rabbitmq-c through its command-line tools (Debian amqp-tools)", _amqp_tools),
)
