"""A durable queue much larger than what the broker keeps in memory: past half its memory limit,
committed bodies live only in the store, so the broker's resident memory stays well under the
data it holds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
from pika.adapters.select_connection import SelectConnection

from .conftest import BrokerProcess

MESSAGES = 50_000
BODY_SIZE = 1024
WINDOW = 2000  # publishes awaiting their confirm, at most
MEMORY_LIMIT = 2 * 1024 * 1024  # a twenty-fifth of the data


@pytest.fixture
def broker_process(tmp_path: Path) -> Iterator[BrokerProcess]:
    """A broker subprocess on `tmp_path/data` whose memory limit is far below the queue's data."""
    process = BrokerProcess(tmp_path / "data", tmp_path, options=("--memory-limit", str(MEMORY_LIMIT)))
    process.start()
    yield process
    process.kill()


def body(seq: int) -> bytes:
    head = b"%08d:" % seq
    return head + bytes([seq % 251]) * (BODY_SIZE - len(head))


def fill(params: pika.ConnectionParameters, queue: str, count: int) -> None:
    """Publishes `count` persistent messages with confirms, keeping up to WINDOW outstanding."""
    state = {"sent": 0, "confirmed": 0}
    problems: list[str] = []
    properties = pika.BasicProperties(delivery_mode=2)

    def on_open(connection: SelectConnection) -> None:
        connection.channel(on_open_callback=on_channel)

    def on_channel(channel: pika.channel.Channel) -> None:
        channel.confirm_delivery(lambda frame: on_confirm(channel, frame), callback=lambda _: top_up(channel))

    def top_up(channel: pika.channel.Channel) -> None:
        while state["sent"] < count and state["sent"] - state["confirmed"] < WINDOW:
            channel.basic_publish("", queue, body(state["sent"]), properties)
            state["sent"] += 1

    def on_confirm(channel: pika.channel.Channel, frame: pika.frame.Method) -> None:
        if not isinstance(frame.method, pika.spec.Basic.Ack):
            problems.append(f"not acked: {frame.method}")
        state["confirmed"] = frame.method.delivery_tag
        if state["confirmed"] == count:
            connection.close()
        else:
            top_up(channel)

    def give_up() -> None:
        problems.append(f"only {state['confirmed']} of {count} confirmed in time")
        connection.close()

    connection = SelectConnection(params, on_open_callback=on_open,
                                  on_open_error_callback=lambda _c, error: problems.append(repr(error)),
                                  on_close_callback=lambda *_: connection.ioloop.stop())
    connection.ioloop.call_later(300, give_up)
    connection.ioloop.start()
    assert problems == []


def mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


def data_file_size(broker: BrokerProcess) -> int:
    return (broker.data_dir / "data.mdb").stat().st_size


@pytest.mark.slow
def test_a_queue_bigger_than_memory_use_is_kept_and_given_back_in_order(broker_process: BrokerProcess) -> None:
    connection = broker_process.connect()
    connection.channel().queue_declare("large", durable=True)
    connection.close()
    baseline = broker_process.status()

    fill(broker_process.params(), "large", MESSAGES)
    filled = broker_process.status()
    data = MESSAGES * BODY_SIZE
    print(
        f"\ndata {mb(data)}, data.mdb {mb(data_file_size(broker_process))}; broker VmRSS "
        f"{mb(baseline['VmRSS'])} (anonymous {mb(baseline['RssAnon'])}) at start, {mb(filled['VmRSS'])} when full "
        f"(anonymous {mb(filled['RssAnon'])}, file-backed {mb(filled['RssFile'])}), peak {mb(filled['VmHWM'])}"
    )
    # Were the bodies still in memory, anonymous memory alone would have grown by more than the data.
    # (VmRSS is not compared: it also counts the data file's mapped pages, 40-70 MB here, page cache
    # the kernel may take back, which put it within a few MB of the data on a busy machine.)
    assert filled["RssAnon"] < baseline["RssAnon"] + data * 3 // 4

    # Recovery reads every entry and header, but no body.
    started = time.monotonic()
    broker_process.restart("kill")
    recovered = broker_process.status()
    print(
        f"recovered after kill -9 in {time.monotonic() - started:.1f} s: VmRSS {mb(recovered['VmRSS'])} "
        f"(anonymous {mb(recovered['RssAnon'])})"
    )
    # VmRSS now also counts pages of the memory-mapped data file that recovery touched (or that the
    # kernel mapped around them): page cache the kernel may take back, not the broker's own memory.
    assert recovered["RssAnon"] < baseline["RssAnon"] + data * 3 // 4

    connection = broker_process.connect()
    channel = connection.channel()
    channel.basic_qos(prefetch_count=500)
    expected = 0
    for method, _, received in channel.consume("large", inactivity_timeout=30):
        assert method is not None, f"only {expected} of {MESSAGES} messages came"
        assert received == body(expected), f"message {expected} is not the one expected"
        assert method.redelivered  # after a kill -9 any recovered message may have been delivered
        expected += 1
        if expected % 250 == 0:
            channel.basic_ack(method.delivery_tag, multiple=True)
        if expected == MESSAGES:
            break
    channel.cancel()
    drained = broker_process.status()
    print(
        f"after consuming: VmRSS {mb(drained['VmRSS'])} (anonymous {mb(drained['RssAnon'])}), "
        f"peak {mb(drained['VmHWM'])}; data.mdb {mb(data_file_size(broker_process))}"
    )
    # Bodies read back on delivery go out and are not kept.
    assert drained["RssAnon"] < baseline["RssAnon"] + data * 3 // 4
    assert channel.queue_declare("large", passive=True).method.message_count == 0
    connection.close()
