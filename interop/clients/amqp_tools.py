"""The scenarios with the C client, rabbitmq-c, through its command-line tools (Debian amqp-tools).

Each tool call is one connection on one channel. amqp-consume pipes each body to a command and acks
only after the command has exited successfully, so a command that never exits holds its message
unacked. The tools cannot declare exchanges, so `routing` binds to the predeclared amq.direct,
amq.fanout and amq.topic with routing keys unique to the run; they cannot passive-declare, so
`not_found` provokes 404 with basic.get on a missing queue; and they never reject or nack. They pass
no arguments to a declaration or a consume, set no priority and no array headers, so none of the
queue-feature scenarios (dead letters, length limits, priorities, single active consumer, alternate
exchange, quorum queues and their declaration rules, consumer priorities, CC/BCC, x-expires, streams)
applies. In `topic_permissions` a refused publish shows when amqp-publish closes its channel, and a
refused binding when amqp-consume binds its queue; as every tool call is a connection of its own,
the refusals' connections are not used again. `operator_policy` declares its queue without
x-max-length, so the operator policy alone caps it, and counts what the queue holds by getting it all.
"""

import os
import select
import signal
import subprocess
import time
from contextlib import ExitStack, contextmanager, suppress

from interop.clients.common import (
    Names,
    expect,
    large_body,
    main,
    nap,
    operator_policy_queue,
    poll,
    pump_until,
    topic_keys,
    topic_user,
    wrong_password,
)
from interop.scenarios import (
    ACK_MESSAGES,
    HEARTBEAT,
    IDLE,
    OPERATOR_POLICY_KEPT,
    OPERATOR_POLICY_PUBLISHES,
    PATIENCE,
    PREFETCH_COUNT,
    PREFETCH_MESSAGES,
    QUIET,
    ROUTING_BINDINGS,
    ROUTING_EXPECTED,
    ROUTING_PUBLISHES,
    TOPIC_EXCHANGE,
    TOPIC_REFUSAL,
)

_EMPTY = 2  # amqp-get's exit status for an empty queue
_HOLD = "exec sleep 600"  # a consumer command that never exits, so its message stays unacked


def _run(tool: str, url: str, *args: str, stdin: bytes = b"", check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([tool, f"--url={url}", *args], input=stdin, capture_output=True, timeout=PATIENCE)
    if check and result.returncode != 0:
        raise RuntimeError(f"{tool} exited with {result.returncode}: {result.stderr.decode().strip()}")
    return result


@contextmanager
def _consumer(url: str, *args: str, script: str):
    """amqp-consume in the background, running the shell `script` for each message."""
    # Unbuffered: a buffered readline could take two lines at once, and the select() in
    # _read_line would then wait for a second line that already arrived.
    process = subprocess.Popen(
        ["amqp-consume", f"--url={url}", *args, "--", "sh", "-c", script],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, bufsize=0,
    )
    try:
        yield process
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _read_line(process: subprocess.Popen) -> str:
    if not select.select([process.stdout], [], [], PATIENCE)[0]:
        raise TimeoutError(f"no output from the consumer within {PATIENCE} s")
    return process.stdout.readline().decode().strip()


def _refused(code: int, tool: str, url: str, *args: str, text: str = "") -> None:
    """`tool` fails with the reply `code` and a reply text that starts with `text`."""
    result = _run(tool, url, *args, check=False)
    stderr = result.stderr.decode().strip()
    refused = result.returncode != 0 and f"error {code}, message: {text}" in stderr
    expect(refused, True, f"{tool} fails with {code} {text!r} ({stderr!r})")


@contextmanager
def _queue(url: str, queue: str):
    _run("amqp-declare-queue", url, f"--queue={queue}")
    try:
        yield queue
    finally:
        _run("amqp-delete-queue", url, f"--queue={queue}", check=False)


def _publish(url: str, routing_key: str, body: bytes, exchange: str = "") -> None:
    _run("amqp-publish", url, f"--exchange={exchange}", f"--routing-key={routing_key}", stdin=body)


def _get(url: str, queue: str) -> bytes:
    """basic.get (with ack), retried while the queue is still empty."""

    def fetch() -> bytes | None:
        result = _run("amqp-get", url, f"--queue={queue}", check=False)
        if result.returncode == _EMPTY:
            return None
        if result.returncode != 0:
            raise RuntimeError(f"amqp-get exited with {result.returncode}: {result.stderr.decode().strip()}")
        return result.stdout

    return poll(fetch, nap, f"message on {queue}")


def _expect_empty(url: str, queue: str) -> None:
    result = _run("amqp-get", url, f"--queue={queue}", check=False)
    expect((result.returncode, result.stdout), (_EMPTY, b""), f"amqp-get on the drained queue {queue}")


def _binding(queue: str, exchange: str, routing_key: str) -> tuple[str, ...]:
    return f"--queue={queue}", f"--exchange={exchange}", f"--routing-key={routing_key}"


@contextmanager
def _bound_queue(url: str, queue: str, bindings: list[tuple[str, str]]):
    """A queue bound to amq.* exchanges, alive while the block runs.

    Only amqp-consume binds, and it declares the queue auto-delete, so the queue would vanish with the
    consumer that bound it. A holder consumer with prefetch 1 keeps it alive: it holds its marker
    unacked and takes nothing else. Each further binding is made by an amqp-consume that then
    consumes one marker, which proves that its binding exists.
    """
    (exchange, routing_key), *more = bindings
    holder_options = (*_binding(queue, exchange, routing_key), "--prefetch-count=1")

    def declared() -> bool:  # basic.get fails with 404 until the holder has declared the queue
        return _run("amqp-get", url, f"--queue={queue}", check=False).returncode == _EMPTY

    with _consumer(url, *holder_options, script=f"echo holding; {_HOLD}") as holder:
        pump_until(declared, nap, f"declaration of {queue}")
        _publish(url, queue, b"marker")
        expect(_read_line(holder), "holding", f"the holder of {queue}")
        for exchange, routing_key in more:
            _publish(url, queue, b"marker")
            _run("amqp-consume", url, *_binding(queue, exchange, routing_key), "--count=1", "--", "cat")
        yield


def connect(url: str, names: Names) -> None:
    server_named = _run("amqp-declare-queue", url, "--queue=").stdout.decode().strip()
    expect(server_named.startswith("amq.gen-"), True, f"server-named queue {server_named!r}")


def auth_refused(url: str, names: Names) -> None:
    _refused(403, "amqp-declare-queue", wrong_password(url), "--queue=")


def routing(url: str, names: Names) -> None:
    # The amq.* exchanges are shared, so every routing key carries this run's names.
    with ExitStack() as stack:
        for queue, keys in ROUTING_BINDINGS.items():
            # amqp-consume makes no binding for an empty key; fanout ignores the key anyway
            bindings = [("amq.fanout", names("any"))] + [(f"amq.{kind}", names(key)) for kind, key in keys.items()]
            stack.enter_context(_bound_queue(url, names(queue), bindings))
        for kind, key, body in ROUTING_PUBLISHES:
            exchange = "" if kind == "default" else f"amq.{kind}"
            _publish(url, names(key), body.encode(), exchange)
        for queue, expected in ROUTING_EXPECTED.items():
            expect([_get(url, names(queue)).decode() for _ in expected], expected, f"messages on queue {queue}")
            _expect_empty(url, names(queue))


def ack(url: str, names: Names) -> None:
    with _queue(url, names("q")) as queue:
        for n in range(ACK_MESSAGES):
            _publish(url, queue, f"m{n}".encode())
        script = ("sh", "-c", "cat; echo")
        consumed = _run("amqp-consume", url, f"--queue={queue}", f"--count={ACK_MESSAGES}", "--", *script)
        expect(consumed.stdout.decode().split(), [f"m{n}" for n in range(ACK_MESSAGES)], "consumed")
        _expect_empty(url, queue)


def prefetch(url: str, names: Names) -> None:
    """The consumer acks m0 and holds m1 unacked; with prefetch 2 it also takes m2, and leaves the rest."""
    with _queue(url, names("q")) as queue:
        for n in range(PREFETCH_MESSAGES):
            _publish(url, queue, f"m{n}".encode())
        script = f'body=$(cat); echo "$body"; [ "$body" = m0 ] || {_HOLD}'
        with _consumer(url, f"--queue={queue}", f"--prefetch-count={PREFETCH_COUNT}", script=script) as consumer:
            expect([_read_line(consumer), _read_line(consumer)], ["m0", "m1"], "consumed")
            time.sleep(QUIET)
            left = [_get(url, queue).decode() for _ in range(PREFETCH_MESSAGES - PREFETCH_COUNT - 1)]
            expect(left, [f"m{n}" for n in range(PREFETCH_COUNT + 1, PREFETCH_MESSAGES)], "left for basic.get")
            _expect_empty(url, queue)


def large_message(url: str, names: Names) -> None:
    body = large_body()
    with _queue(url, names("q")) as queue:
        _publish(url, queue, body)
        received = _get(url, queue)
        expect(received == body, True, f"received {len(received)} bytes equal to the {len(body)} sent")


def not_found(url: str, names: Names) -> None:
    _refused(404, "amqp-get", url, f"--queue={names('missing')}")
    connect(url, names)


def precondition_failed(url: str, names: Names) -> None:
    with _queue(url, names("q")) as queue:
        _refused(406, "amqp-declare-queue", url, f"--queue={queue}", "--durable")


def heartbeat(url: str, names: Names) -> None:
    with _queue(url, names("q")) as queue:
        with _consumer(url, f"--heartbeat={HEARTBEAT}", f"--queue={queue}", "--count=1", script="cat") as consumer:
            time.sleep(IDLE)
            _publish(url, queue, b"awake")
            stdout, stderr = consumer.communicate(timeout=PATIENCE)
        outcome = (consumer.returncode, stdout)
        expect(outcome, (0, b"awake"), f"consumer after {IDLE} s idle ({stderr.decode().strip()!r})")


def topic_permissions(url: str, names: Names) -> None:
    url = topic_user(url)
    allowed, readable, refused = topic_keys(names)
    exchange = f"--exchange={TOPIC_EXCHANGE}"
    with _bound_queue(url, names("q"), [(TOPIC_EXCHANGE, allowed), (TOPIC_EXCHANGE, readable)]):
        _publish(url, allowed, b"allowed", TOPIC_EXCHANGE)
        expect(_get(url, names("q")), b"allowed", "message published with the allowed key")
        _refused(403, "amqp-publish", url, exchange, f"--routing-key={readable}", text=TOPIC_REFUSAL.format(readable))
        binding = ("--exclusive", exchange, f"--routing-key={refused}", "--count=1", "--", "cat")
        _refused(403, "amqp-consume", url, *binding, text=TOPIC_REFUSAL.format(refused))
        _expect_empty(url, names("q"))


def operator_policy(url: str, names: Names) -> None:
    with _queue(url, operator_policy_queue(names)) as queue:
        for body in OPERATOR_POLICY_PUBLISHES:
            _publish(url, queue, body.encode())
        kept = [_get(url, queue).decode() for _ in OPERATOR_POLICY_KEPT]
        expect(kept, list(OPERATOR_POLICY_KEPT), "messages kept by drop-head")
        _expect_empty(url, queue)


if __name__ == "__main__":
    main({scenario.__name__: scenario for scenario in (
        connect, auth_refused, routing, ack, prefetch, large_message, not_found, precondition_failed, heartbeat,
        topic_permissions, operator_policy,
    )})
