"""`amqpbroker ctl` against a live embedded broker's management API: every verb, and errors."""

from __future__ import annotations

import json

import pika
import pytest

from amqpbroker import Broker, cli
from amqpbroker.ctl import table


@pytest.fixture(scope="module")
def broker():
    with Broker(http_port=0) as broker:
        broker.add_vhost("other")
        yield broker


@pytest.fixture
def channel(broker):
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    channel = connection.channel()
    yield channel
    if connection.is_open:
        connection.close()


def ctl(broker: Broker, capsys, *argv: str) -> tuple[int, str, str]:
    """Runs `amqpbroker ctl --api URL ARGV...`: its exit status, output and error output."""
    status = cli.main(["ctl", "--api", broker.http_url, *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def rows(output: str) -> list[dict[str, str]]:
    """An aligned table back into rows, cut at the headings' columns."""
    heading, *lines = output.rstrip("\n").split("\n")
    names = heading.split()
    starts = [heading.index(f"{name}") if index == 0 else heading.index(f"  {name}") + 2
              for index, name in enumerate(names)]
    ends = [*starts[1:], None]
    return [{name: line[start:end].strip() for name, start, end in zip(names, starts, ends)} for line in lines]


def test_table_aligns_every_column_to_its_widest_cell() -> None:
    text = table([{"name": "a-long-name", "n": 1, "on": True}, {"name": "b", "n": 22, "on": None}],
                 [("name", "name"), ("n", "n"), ("on", "on")])
    assert text.split("\n") == [
        "name         n   on",
        "a-long-name  1   true",
        "b            22",
    ]


def test_list_queues_shows_depth_and_consumers(broker, channel, capsys) -> None:
    channel.queue_declare("ctl-depth")
    for body in (b"1", b"2"):
        channel.basic_publish("", "ctl-depth", body)
    status, out, _ = ctl(broker, capsys, "list", "queues")
    assert status == 0
    [row] = [row for row in rows(out) if row["name"] == "ctl-depth"]
    assert row == {"vhost": "/", "name": "ctl-depth", "type": "classic", "durable": "false", "messages": "2",
                   "ready": "2", "unacked": "0", "consumers": "0"}
    channel.queue_delete("ctl-depth")


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("exchanges", {"name": "ctl-x", "type": "fanout"}),
        ("bindings", {"source": "ctl-x", "destination": "ctl-bound", "destination_type": "queue"}),
        ("connections", {"user": "guest", "vhost": "/", "protocol": "AMQP 0-9-1", "channels": "1"}),
        ("channels", {"user": "guest", "consumers": "1", "prefetch": "7"}),
        ("consumers", {"queue": "ctl-bound", "consumer_tag": "ctl-tag", "ack_required": "true", "prefetch": "7"}),
        ("users", {"name": "guest", "tags": "administrator"}),
        ("vhosts", {"name": "other"}),
    ],
)
def test_list(broker, channel, capsys, kind: str, expected: dict[str, str]) -> None:
    channel.exchange_declare("ctl-x", "fanout")
    channel.queue_declare("ctl-bound", exclusive=True)
    channel.queue_bind("ctl-bound", "ctl-x")
    channel.basic_qos(prefetch_count=7)
    channel.basic_consume("ctl-bound", lambda *delivery: None, consumer_tag="ctl-tag")
    status, out, _ = ctl(broker, capsys, "list", kind)
    assert status == 0
    assert any(expected.items() <= row.items() for row in rows(out)), out
    channel.exchange_delete("ctl-x")


def test_list_in_one_vhost(broker, capsys) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(broker.vhost_url("other")))
    connection.channel().queue_declare("ctl-elsewhere")
    connection.close()
    status, out, _ = ctl(broker, capsys, "list", "queues", "--vhost", "other")
    assert status == 0
    assert [(row["vhost"], row["name"]) for row in rows(out)] == [("other", "ctl-elsewhere")]
    status, out, _ = ctl(broker, capsys, "--vhost", "/", "list", "queues")
    assert "ctl-elsewhere" not in out


def test_purge(broker, channel, capsys) -> None:
    channel.queue_declare("ctl-purge")
    for body in (b"1", b"2", b"3"):
        channel.basic_publish("", "ctl-purge", body)
    assert ctl(broker, capsys, "purge", "ctl-purge") == (0, "purged queue 'ctl-purge'\n", "")
    assert channel.queue_declare("ctl-purge", passive=True).method.message_count == 0
    channel.queue_delete("ctl-purge")


@pytest.mark.parametrize("kind", ["queue", "exchange"])
def test_delete(broker, channel, capsys, kind: str) -> None:
    if kind == "queue":
        channel.queue_declare("ctl-gone")
    else:
        channel.exchange_declare("ctl-gone", "direct")
    assert ctl(broker, capsys, "delete", kind, "ctl-gone") == (0, f"deleted {kind} 'ctl-gone'\n", "")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        (channel.queue_declare if kind == "queue" else channel.exchange_declare)("ctl-gone", passive=True)
    assert closed.value.reply_code == 404


def test_add_user_and_set_permissions(broker, capsys) -> None:
    assert ctl(broker, capsys, "add", "user", "ctl-ops", "s3cret", "--tags", "monitoring,policymaker")[0] == 0
    assert ctl(broker, capsys, "set", "permissions", "ctl-ops", "^ops-", ".*", ".*", "--vhost", "other")[0] == 0
    _, out, _ = ctl(broker, capsys, "list", "users")
    assert {"name": "ctl-ops", "tags": "monitoring,policymaker"} in rows(out)
    connection = pika.BlockingConnection(
        pika.URLParameters(broker.vhost_url("other").replace("guest:guest", "ctl-ops:s3cret"))
    )
    channel = connection.channel()
    channel.queue_declare("ops-allowed", exclusive=True)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        channel.queue_declare("not-allowed")
    assert refused.value.reply_code == 403
    connection.close()


def test_close_connection(broker, capsys) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    _, out, _ = ctl(broker, capsys, "list", "connections")
    [name] = [row["name"] for row in rows(out)]
    assert ctl(broker, capsys, "close", "connection", name, "--reason", "maintenance") == (
        0, f"closed connection '{name}'\n", ""
    )
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
        connection.process_data_events(time_limit=5)
        connection.channel()
    assert closed.value.reply_code == 320
    assert "maintenance" in closed.value.reply_text


def test_an_api_error_prints_its_reason_and_fails(broker, capsys) -> None:
    status, out, err = ctl(broker, capsys, "delete", "queue", "ctl-never-declared")
    assert (status, out) == (1, "")
    assert err == "amqpbroker ctl: error: DELETE /api/queues/%2F/ctl-never-declared: 404 Object Not Found: Not Found\n"


def test_bad_credentials_are_reported(broker, capsys) -> None:
    status, _, err = ctl(broker, capsys, "--user", "guest", "--password", "wrong", "list", "queues")
    assert status == 1
    assert err == "amqpbroker ctl: error: GET /api/queues: 401 not_authorized: Login failed\n"


def test_an_unreachable_api_is_reported(capsys) -> None:
    status = cli.main(["ctl", "--api", "http://127.0.0.1:1", "list", "queues"])
    assert status == 1
    assert capsys.readouterr().err.startswith("amqpbroker ctl: error: cannot reach the API at http://127.0.0.1:1: ")


def test_a_policy_definition_that_is_not_json_is_refused_before_any_request(broker, capsys) -> None:
    status, _, err = ctl(broker, capsys, "set", "policy", "p", ".*", "{max-length: 1}")
    assert status == 1
    assert err.startswith("amqpbroker ctl: error: the definition is not JSON: ")


def test_set_policy_lists_it_and_it_applies(broker, channel, capsys) -> None:
    assert ctl(broker, capsys, "set", "policy", "ctl-limit", "^ctl-limited$", '{"max-length": 1}',
               "--apply-to", "queues", "--priority", "2") == (0, "set policy 'ctl-limit' in vhost '/'\n", "")
    _, out, _ = ctl(broker, capsys, "list", "policies")
    assert {"vhost": "/", "name": "ctl-limit", "pattern": "^ctl-limited$", "apply_to": "queues", "priority": "2",
            "definition": '{"max-length":1}'} in rows(out)
    channel.queue_declare("ctl-limited")
    channel.basic_publish("", "ctl-limited", b"dropped")
    channel.basic_publish("", "ctl-limited", b"kept")
    assert channel.queue_declare("ctl-limited", passive=True).method.message_count == 1
    channel.queue_delete("ctl-limited")


def test_set_operator_policy_caps_a_queue_and_clear_lifts_it(broker, channel, capsys) -> None:
    assert ctl(broker, capsys, "set", "operator-policy", "ctl-cap", "^ctl-capped$", '{"max-length": 1}',
               "--apply-to", "queues") == (0, "set operator policy 'ctl-cap' in vhost '/'\n", "")
    _, out, _ = ctl(broker, capsys, "list", "operator-policies")
    assert {"vhost": "/", "name": "ctl-cap", "pattern": "^ctl-capped$", "apply_to": "queues", "priority": "0",
            "definition": '{"max-length":1}'} in rows(out)
    channel.queue_declare("ctl-capped", arguments={"x-max-length": 5})
    channel.basic_publish("", "ctl-capped", b"dropped")
    channel.basic_publish("", "ctl-capped", b"kept")
    assert channel.queue_declare("ctl-capped", passive=True).method.message_count == 1
    assert ctl(broker, capsys, "clear", "operator-policy", "ctl-cap") == (
        0, "cleared operator policy 'ctl-cap' in vhost '/'\n", ""
    )
    channel.basic_publish("", "ctl-capped", b"kept too")
    assert channel.queue_declare("ctl-capped", passive=True).method.message_count == 2
    status, _, err = ctl(broker, capsys, "clear", "operator-policy", "ctl-cap")
    assert (status, err) == (1, "amqpbroker ctl: error: DELETE /api/operator-policies/%2F/ctl-cap: 404 Object Not "
                                "Found: Not Found\n")
    channel.queue_delete("ctl-capped")


def test_clear_policy(broker, capsys) -> None:
    assert ctl(broker, capsys, "set", "policy", "ctl-gone", "^nothing$", '{"max-length": 1}')[0] == 0
    assert ctl(broker, capsys, "clear", "policy", "ctl-gone") == (0, "cleared policy 'ctl-gone' in vhost '/'\n", "")
    _, out, _ = ctl(broker, capsys, "list", "policies")
    assert "ctl-gone" not in out


def test_a_policy_the_api_refuses_prints_its_reason(broker, capsys) -> None:
    status, _, err = ctl(broker, capsys, "set", "policy", "ctl-bad", ".*", '{"max-priority": 10}')
    assert status == 1
    assert err.startswith("amqpbroker ctl: error: PUT /api/policies/%2F/ctl-bad: 400 bad_request: ")
    assert "max-priority" in err


def test_export_then_import(broker, channel, capsys, tmp_path) -> None:
    channel.queue_declare("ctl-kept", durable=True)
    path = tmp_path / "definitions.json"
    assert ctl(broker, capsys, "export", str(path)) == (0, f"exported definitions to {path}\n", "")
    assert "ctl-kept" in [queue["name"] for queue in json.loads(path.read_text())["queues"]]
    channel.queue_delete("ctl-kept")
    assert ctl(broker, capsys, "import", str(path)) == (0, f"imported definitions from {path}\n", "")
    assert channel.queue_declare("ctl-kept", passive=True).method.queue == "ctl-kept"
    channel.queue_delete("ctl-kept")


def test_import_of_a_file_the_api_refuses(broker, capsys, tmp_path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"queues": [{"name": "q", "vhost": "no-such-vhost", "durable": True,
                                            "auto_delete": False, "arguments": {}}]}))
    status, _, err = ctl(broker, capsys, "import", str(path))
    assert status == 1
    assert err.startswith("amqpbroker ctl: error: POST /api/definitions: 400 bad_request: ")


def test_set_list_and_clear_limits(broker, capsys) -> None:
    assert ctl(broker, capsys, "set", "vhost-limit", "max-queues", "5", "--vhost", "other") == (
        0, "set max-queues of vhost 'other' to 5\n", "")
    assert ctl(broker, capsys, "set", "user-limit", "guest", "max-channels", "-1")[0] == 0
    _, out, _ = ctl(broker, capsys, "list", "vhost-limits")
    assert rows(out) == [{"vhost": "other", "limits": '{"max-queues":5}'}]
    _, out, _ = ctl(broker, capsys, "list", "user-limits")
    assert rows(out) == [{"user": "guest", "limits": '{"max-channels":-1}'}]
    assert ctl(broker, capsys, "clear", "vhost-limit", "max-queues", "-p", "other") == (
        0, "cleared max-queues of vhost 'other'\n", "")
    assert ctl(broker, capsys, "clear", "user-limit", "guest", "max-channels")[0] == 0
    assert ctl(broker, capsys, "list", "user-limits")[1] == "user  limits\n"
    status, _, err = ctl(broker, capsys, "set", "vhost-limit", "max-channels", "1")
    assert status == 1
    assert "400 bad_request: Validation failed" in err


def test_set_list_and_clear_topic_permissions(broker, capsys) -> None:
    assert ctl(broker, capsys, "add", "user", "ctl-topics", "s3cret")[0] == 0
    assert ctl(broker, capsys, "set", "permissions", "ctl-topics", ".*", ".*", ".*", "-p", "other")[0] == 0
    assert ctl(broker, capsys, "set", "topic-permissions", "ctl-topics", "amq.topic", r"^{username}\.", "^ops\\.",
               "-p", "other") == (
        0, "set topic permissions of user 'ctl-topics' on exchange 'amq.topic' in vhost 'other'\n", "")
    assert ctl(broker, capsys, "set", "topic-permissions", "ctl-topics", "logs", "", ".*", "-p", "other")[0] == 0
    assert ctl(broker, capsys, "set", "topic-permissions", "guest", "amq.topic", "^guest\\.", "")[0] == 0
    every = [
        {"vhost": "/", "user": "guest", "exchange": "amq.topic", "write": "^guest\\.", "read": ""},
        {"vhost": "other", "user": "ctl-topics", "exchange": "amq.topic", "write": r"^{username}\.", "read": "^ops\\."},
        {"vhost": "other", "user": "ctl-topics", "exchange": "logs", "write": "", "read": ".*"},
    ]
    assert rows(ctl(broker, capsys, "list", "topic-permissions")[1]) == every
    assert rows(ctl(broker, capsys, "list", "topic-permissions", "-p", "other")[1]) == every[1:]
    assert rows(ctl(broker, capsys, "list", "topic-permissions", "--of-user", "guest")[1]) == every[:1]
    # Enforced: the user may publish to amq.topic only with keys starting with their name.
    url = broker.vhost_url("other").replace("guest:guest", "ctl-topics:s3cret")
    connection = pika.BlockingConnection(pika.URLParameters(url))
    connection.channel().basic_publish("amq.topic", "ctl-topics.allowed", b"m")
    channel = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        channel.basic_publish("amq.topic", "other.key", b"m")
        channel.basic_qos(prefetch_count=1)
    assert refused.value.reply_code == 403
    connection.close()
    assert ctl(broker, capsys, "clear", "topic-permissions", "ctl-topics", "logs", "-p", "other") == (
        0, "cleared topic permissions of user 'ctl-topics' on exchange 'logs' in vhost 'other'\n", "")
    assert rows(ctl(broker, capsys, "list", "topic-permissions", "-p", "other")[1]) == every[1:2]
    assert ctl(broker, capsys, "clear", "topic-permissions", "guest") == (
        0, "cleared topic permissions of user 'guest' in vhost '/'\n", "")
    assert ctl(broker, capsys, "clear", "topic-permissions", "ctl-topics", "-p", "other")[0] == 0
    assert ctl(broker, capsys, "list", "topic-permissions")[1] == "vhost  user  exchange  write  read\n"
    status, _, err = ctl(broker, capsys, "clear", "topic-permissions", "guest")
    assert (status, err) == (
        1, "amqpbroker ctl: error: DELETE /api/topic-permissions/%2F/guest: 404 Object Not Found: Not Found\n")


def test_of_user_narrows_only_the_lists_of_a_user(broker, capsys) -> None:
    assert ctl(broker, capsys, "set", "user-limit", "guest", "max-channels", "100")[0] == 0
    assert rows(ctl(broker, capsys, "list", "user-limits", "--of-user", "guest")[1]) == [
        {"user": "guest", "limits": '{"max-channels":100}'}]
    assert ctl(broker, capsys, "clear", "user-limit", "guest", "max-channels")[0] == 0
    status, _, err = ctl(broker, capsys, "list", "queues", "--of-user", "guest")
    assert (status, err) == (1, "amqpbroker ctl: error: --of-user lists only topic-permissions and user-limits\n")
