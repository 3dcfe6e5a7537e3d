"""`/api/vhost-limits*` and `/api/user-limits*`, and the limits they set enforced over AMQP, the HTTP
API and definitions imports, with RabbitMQ 3.10's statuses, reasons and reply texts."""

from __future__ import annotations

from collections.abc import Callable

import pika
import pytest

from amqpbroker.testing import Broker

from .client import ApiClient, segment
from .test_users_vhosts import Made, amqp_connect, made  # noqa: F401 (the fixture)


def vhost_limits(api: ApiClient, vhost: str) -> list:
    return api.get(f"/api/vhost-limits/{segment(vhost)}").json


def user_limits(api: ApiClient, user: str) -> list:
    return api.get(f"/api/user-limits/{segment(user)}").json


def set_vhost_limit(api: ApiClient, vhost: str, name: str, value: object) -> int:
    return api.put(f"/api/vhost-limits/{segment(vhost)}/{name}", {"value": value}).status


def set_user_limit(api: ApiClient, user: str, name: str, value: object) -> int:
    return api.put(f"/api/user-limits/{segment(user)}/{name}", {"value": value}).status


@pytest.fixture
def member(api: ApiClient, made: Made, amqp_url: str) -> Callable[[str], pika.BlockingConnection]:  # noqa: F811
    """A new user with every permission in a new vhost and in `/`: `connect(vhost)` opens a
    connection of theirs; `member.user` and `member.vhost` are their names."""
    user, vhost = made.user("pw"), made.vhost()
    for where in (vhost, "/"):
        permission = {"configure": ".*", "write": ".*", "read": ".*"}
        assert api.put(f"/api/permissions/{segment(where)}/{segment(user)}", permission).status == 201

    def connect(where: str = vhost) -> pika.BlockingConnection:
        return amqp_connect(amqp_url, user, "pw", where)

    connect.user, connect.vhost = user, vhost
    return connect


def refused_connection(connect: Callable[[], pika.BlockingConnection]) -> str:
    """What pika says of a connection refused at connection.open: the close's code and text."""
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as refused:
        connect()
    return str(refused.value)


# vhost limits over the API


def test_vhost_limits_are_set_listed_exported_and_cleared(api: ApiClient, made: Made) -> None:  # noqa: F811
    vhost = made.vhost()
    assert vhost_limits(api, vhost) == []
    assert set_vhost_limit(api, vhost, "max-connections", 10) == 204
    assert set_vhost_limit(api, vhost, "max-queues", 20) == 204
    expected = {"vhost": vhost, "value": {"max-connections": 10, "max-queues": 20}}
    assert vhost_limits(api, vhost) == [expected]
    assert expected in api.get("/api/vhost-limits").json
    # RabbitMQ keeps them as the vhost's runtime parameter `vhost-limits`/`limits`.
    parameter = {"value": expected["value"], "vhost": vhost, "component": "vhost-limits", "name": "limits"}
    assert parameter in api.get("/api/definitions").json["parameters"]
    assert parameter in api.get(f"/api/definitions/{segment(vhost)}").json["parameters"]
    assert set_vhost_limit(api, vhost, "max-queues", -1) == 204
    assert vhost_limits(api, vhost)[0]["value"] == {"max-connections": 10, "max-queues": -1}
    assert api.delete(f"/api/vhost-limits/{segment(vhost)}/max-connections").status == 204
    assert vhost_limits(api, vhost)[0]["value"] == {"max-queues": -1}
    # Deleting the vhost forgets its limits: a vhost made again under its name has none.
    api.delete(f"/api/vhosts/{segment(vhost)}")
    assert api.put(f"/api/vhosts/{segment(vhost)}", {}).status == 201
    assert vhost_limits(api, vhost) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"value": "3"}, 'Validation failed\n\nmax-queues should be a number, actually was <<"3">>\n'),
        ({"value": 1.5}, "Validation failed\n\nmax-queues should be a number, actually was 1.5\n"),
        ({"value": None}, "Validation failed\n\nmax-queues should be a number, actually was null\n"),
        ({}, "[{key_missing,value}]"),
    ],
)
def test_a_malformed_vhost_limit_is_refused(api: ApiClient, made: Made, body: dict, reason: str) -> None:  # noqa: F811
    vhost = made.vhost()
    reply = api.put(f"/api/vhost-limits/{segment(vhost)}/max-queues", body)
    assert (reply.status, reply.json["reason"]) == (400, reason)
    assert vhost_limits(api, vhost) == []


def test_a_vhost_limit_of_another_name_or_vhost_is_refused(api: ApiClient, made: Made, unique) -> None:  # noqa: F811
    vhost = made.vhost()
    reply = api.put(f"/api/vhost-limits/{segment(vhost)}/max-channels", {"value": 3})
    assert (reply.status, reply.json["reason"]) == (
        400, 'Validation failed\n\nUnrecognised terms [{<<"max-channels">>,3}] in limits\n'
    )
    missing = unique("vhost")
    reply = api.put(f"/api/vhost-limits/{segment(missing)}/max-queues", {"value": 3})
    assert (reply.status, reply.json["reason"]) == (404, "vhost_not_found")
    assert api.get(f"/api/vhost-limits/{segment(missing)}").status == 404


# user limits over the API


def test_user_limits_are_set_listed_exported_and_cleared(api: ApiClient, made: Made) -> None:  # noqa: F811
    user = made.user()
    assert user_limits(api, user) == []
    assert set_user_limit(api, user, "max-connections", 2) == 204
    assert set_user_limit(api, user, "max-channels", 1) == 204
    value = {"max-channels": 1, "max-connections": 2}
    assert user_limits(api, user) == [{"user": user, "value": value}]
    assert {"user": user, "value": value} in api.get("/api/user-limits").json
    assert api.get(f"/api/users/{segment(user)}").json["limits"] == value
    exported = [item for item in api.get("/api/definitions").json["users"] if item["name"] == user]
    assert exported[0]["limits"] == value
    # Replacing the user keeps the limits the body does not set.
    assert api.put(f"/api/users/{segment(user)}", {"password": "pw", "tags": "", "limits": {"max-channels": 5}}).status == 204
    assert user_limits(api, user)[0]["value"] == {"max-channels": 5, "max-connections": 2}
    assert api.delete(f"/api/user-limits/{segment(user)}/max-channels").status == 204
    assert user_limits(api, user)[0]["value"] == {"max-connections": 2}
    assert api.delete(f"/api/user-limits/{segment(user)}/max-connections").status == 204
    assert user_limits(api, user) == []


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("max-channels", "3", 'max-channels should be a number, actually was <<"3">>'),
        ("max-connections", 1.5, "max-connections should be a number, actually was 1.5"),
        ("max-queues", 3, 'Unrecognised terms [{<<"max-queues">>,3}] in user-limits'),
    ],
)
def test_a_malformed_user_limit_is_refused(api: ApiClient, made: Made, name: str, value: object, reason: str) -> None:  # noqa: F811
    user = made.user()
    reply = api.put(f"/api/user-limits/{segment(user)}/{name}", {"value": value})
    assert (reply.status, reply.json["reason"]) == (400, reason)
    assert user_limits(api, user) == []


def test_a_limit_of_a_missing_user_is_refused(api: ApiClient, unique) -> None:
    name = unique("user")
    reply = api.put(f"/api/user-limits/{segment(name)}/max-channels", {"value": 3})
    assert (reply.status, reply.json["reason"]) == (400, ["no_such_user", name])
    assert api.get(f"/api/user-limits/{segment(name)}").status == 404


def test_management_users_read_limits_and_administrators_change_them(
    api: ApiClient, made: Made, make_user  # noqa: F811
) -> None:
    vhost, user = made.vhost(), made.user()
    assert set_vhost_limit(api, vhost, "max-queues", 5) == 204
    assert set_user_limit(api, user, "max-channels", 5) == 204
    reader = make_user(["management"])
    assert api.put(f"/api/permissions/{segment(vhost)}/{segment(reader.user)}",
                   {"configure": "", "write": "", "read": ""}).status == 201
    assert vhost_limits(reader, vhost) == [{"vhost": vhost, "value": {"max-queues": 5}}]
    assert {"user": user, "value": {"max-channels": 5}} in reader.get("/api/user-limits").json
    for reply in (
        reader.put(f"/api/vhost-limits/{segment(vhost)}/max-queues", {"value": 1}),
        reader.delete(f"/api/vhost-limits/{segment(vhost)}/max-queues"),
        reader.put(f"/api/user-limits/{segment(user)}/max-channels", {"value": 1}),
        reader.delete(f"/api/user-limits/{segment(user)}/max-channels"),
    ):
        assert (reply.status, reply.json["reason"]) == (401, "Not administrator user")
    assert make_user([]).get("/api/vhost-limits").status == 401


def test_definitions_import_sets_vhost_and_user_limits(api: ApiClient, made: Made, unique) -> None:  # noqa: F811
    vhost, user = made.vhost(), made.user()
    definitions = {
        "users": [{"name": user, "password": "pw", "tags": [], "limits": {"max-connections": 7}}],
        "parameters": [{"vhost": vhost, "component": "vhost-limits", "name": "limits", "value": {"max-queues": 2}}],
    }
    assert api.post("/api/definitions", definitions).status == 204
    assert user_limits(api, user) == [{"user": user, "value": {"max-connections": 7}}]
    assert vhost_limits(api, vhost) == [{"vhost": vhost, "value": {"max-queues": 2}}]
    malformed = {"parameters": [{**definitions["parameters"][0], "value": {"max-queues": "x"}}]}
    reply = api.post("/api/definitions", malformed)
    assert reply.status == 400
    assert vhost_limits(api, vhost) == [{"vhost": vhost, "value": {"max-queues": 2}}]


# enforced


def test_a_vhost_connection_limit_refuses_connections_past_it(api: ApiClient, member) -> None:
    vhost, user = member.vhost, member.user
    assert set_vhost_limit(api, vhost, "max-connections", 2) == 204
    first, second = member(), member()
    assert (
        f"(530) \"NOT_ALLOWED - access to vhost '{vhost}' refused for user '{user}': connection limit (2) is reached\""
        in refused_connection(member)
    )
    # A lower limit closes nothing: the connections open stay usable.
    assert set_vhost_limit(api, vhost, "max-connections", 1) == 204
    for connection in (first, second):
        connection.channel().queue_declare("", exclusive=True)
    first.close()
    second.close()
    # Other vhosts are not limited by it; 0 refuses every connection, a negative limit none.
    member("/").close()
    assert set_vhost_limit(api, vhost, "max-connections", 0) == 204
    assert "connection limit (0) is reached" in refused_connection(member)
    assert set_vhost_limit(api, vhost, "max-connections", -1) == 204
    member().close()


def test_a_user_connection_limit_counts_their_connections_to_every_vhost(api: ApiClient, member) -> None:
    user = member.user
    assert set_user_limit(api, user, "max-connections", 2) == 204
    first, second = member(), member("/")
    expected = f"(530) \"NOT_ALLOWED - connection refused for user '{user}': user connection limit (2) is reached\""
    assert expected in refused_connection(member)
    assert expected in refused_connection(lambda: member("/"))
    first.close()
    member().close()
    second.close()


def test_a_vhost_connection_limit_is_checked_before_the_user_limit(api: ApiClient, member) -> None:
    assert set_vhost_limit(api, member.vhost, "max-connections", 0) == 204
    assert set_user_limit(api, member.user, "max-connections", 0) == 204
    assert f"access to vhost '{member.vhost}' refused" in refused_connection(member)
    assert "user connection limit (0) is reached" in refused_connection(lambda: member("/"))


def test_a_user_channel_limit_counts_the_channels_of_all_their_connections(api: ApiClient, member) -> None:
    assert set_user_limit(api, member.user, "max-channels", 2) == 204
    first, second = member(), member("/")
    first.channel()
    channel = second.channel()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as refused:
        first.channel()
    assert (refused.value.reply_code, refused.value.reply_text) == (
        530,
        f"NOT_ALLOWED - number of channels opened for user '{member.user}' has reached the maximum allowed "
        "user limit of (2)",
    )
    # The refusal closed one connection only; a channel closed leaves room for another.
    channel.close()
    second.channel().queue_declare("", exclusive=True)
    second.close()


def test_a_queue_limit_refuses_new_queues_declared_in_any_way(api: ApiClient, member, unique) -> None:
    vhost = member.vhost
    assert set_vhost_limit(api, vhost, "max-queues", 2) == 204
    connection = member()
    channel = connection.channel()
    channel.queue_declare("first", durable=True)
    channel.queue_declare("", exclusive=True)  # exclusive and server-named queues count too
    channel.queue_declare("first", durable=True)  # declaring an existing queue again is no new queue
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        channel.queue_declare("second")
    assert (refused.value.reply_code, refused.value.reply_text) == (
        406, f"PRECONDITION_FAILED - cannot declare queue 'second': queue limit in vhost '{vhost}' (2) is reached"
    )
    reply = api.put(f"/api/queues/{segment(vhost)}/third", {"durable": True})
    assert (reply.status, reply.json["reason"]) == (
        400, f"cannot declare queue 'third': queue limit in vhost '{vhost}' (2) is reached"
    )
    # An import that would go past the limit imports nothing.
    queues = [{"name": name, "vhost": vhost, "durable": True, "auto_delete": False, "arguments": {}}
              for name in ("first", "fourth")]
    assert api.post("/api/definitions", {"queues": queues}).status == 400
    assert sorted(queue["name"] for queue in api.get(f"/api/queues/{segment(vhost)}").json if
                  not queue["exclusive"]) == ["first"]
    # Lowering the limit below the count deletes nothing; deleting a queue makes room again.
    assert set_vhost_limit(api, vhost, "max-queues", 1) == 204
    channel = connection.channel()
    channel.queue_delete("first")
    connection.close()
    assert api.put(f"/api/queues/{segment(vhost)}/third", {"durable": True}).status == 201


def test_limits_survive_a_restart_and_are_enforced_after_it(tmp_path) -> None:
    with Broker(http_port=0, data_dir=str(tmp_path)) as broker:
        api = ApiClient(broker.http_url)
        assert api.put("/api/vhosts/limited", {}).status == 201
        assert set_vhost_limit(api, "limited", "max-queues", 0) == 204
        assert set_user_limit(api, "guest", "max-channels", 1) == 204
        broker.restart()
        assert vhost_limits(api, "limited") == [{"vhost": "limited", "value": {"max-queues": 0}}]
        assert user_limits(api, "guest") == [{"user": "guest", "value": {"max-channels": 1}}]
        assert api.put("/api/queues/limited/q", {}).status == 400
        connection = amqp_connect(broker.url, "guest", "guest")
        connection.channel()
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as refused:
            connection.channel()
        assert refused.value.reply_code == 530
