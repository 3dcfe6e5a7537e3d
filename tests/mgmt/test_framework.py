"""What every request goes through: authentication, tag gating, errors, paths and columns;
and the overview and whoami resources."""

from __future__ import annotations

import pytest

from .client import ApiClient

# The overview's keys that tools (rabbitmqadmin, Flower, test helpers) read.
OVERVIEW_KEYS = {
    "management_version", "rabbitmq_version", "cluster_name", "node", "object_totals", "queue_totals",
    "message_stats", "listeners", "exchange_types",
}


def test_overview_has_the_keys_tools_read(api: ApiClient) -> None:
    reply = api.get("/api/overview")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("application/json")
    overview = reply.json
    assert OVERVIEW_KEYS <= overview.keys()
    assert {"connections", "channels", "queues", "exchanges", "consumers"} <= overview["object_totals"].keys()
    assert {"messages", "messages_ready", "messages_unacknowledged"} <= overview["queue_totals"].keys()
    assert {"direct", "fanout", "topic", "headers"} <= {t["name"] for t in overview["exchange_types"]}
    assert {"amqp", "http"} <= {listener["protocol"] for listener in overview["listeners"]}
    assert all(isinstance(listener["port"], int) for listener in overview["listeners"])
    assert isinstance(overview["message_stats"], dict)


def test_overview_counts_a_declared_queue(api: ApiClient, amqp, unique, cleanup) -> None:
    before = api.get("/api/overview").json["object_totals"]["queues"]
    channel = amqp.channel()
    channel.queue_declare(cleanup.queue(unique("counted")))
    assert api.get("/api/overview").json["object_totals"]["queues"] >= before + 1


def test_whoami(api: ApiClient) -> None:
    reply = api.get("/api/whoami")
    assert reply.status == 200
    assert reply.json["name"] == "guest"
    assert "administrator" in reply.json["tags"]


def test_columns_keep_only_the_named_keys(api: ApiClient) -> None:
    reply = api.get("/api/overview?columns=node,object_totals.queues")
    assert reply.status == 200
    assert set(reply.json) == {"node", "object_totals"}
    assert "queues" in reply.json["object_totals"]


def test_trailing_slash_is_the_same_resource(api: ApiClient) -> None:
    assert api.get("/api/overview/").status == 200


def test_unknown_path_is_404_with_rabbitmqs_body(api: ApiClient) -> None:
    reply = api.get("/api/no-such-resource")
    assert reply.status == 404
    assert reply.json == {"error": "Object Not Found", "reason": "Not Found"}


def test_unsupported_method_is_405_with_allow(api: ApiClient) -> None:
    reply = api.request("PATCH", "/api/overview")
    assert reply.status == 405
    assert "GET" in reply.headers["allow"]


def test_no_credentials_is_401_with_basic_challenge(api: ApiClient) -> None:
    reply = api.get("/api/overview", auth=None)
    assert reply.status == 401
    assert reply.headers["www-authenticate"] == 'Basic realm="RabbitMQ Management"'


@pytest.mark.parametrize("credentials", [("guest", "wrong"), ("no-such-user-mgmt", "guest")])
def test_wrong_credentials_are_401_login_failed(api: ApiClient, credentials: tuple[str, str]) -> None:
    reply = api.get("/api/overview", auth=credentials)
    assert reply.status == 401
    assert reply.headers["www-authenticate"] == 'Basic realm="RabbitMQ Management"'
    assert reply.json == {"error": "not_authorized", "reason": "Login failed"}


def test_other_authorization_schemes_are_refused(api: ApiClient) -> None:
    reply = api.get("/api/overview", auth=None, headers={"Authorization": "Bearer token"})
    assert reply.status == 401


def test_a_user_without_tags_is_refused_everywhere(make_user) -> None:
    client = make_user([])
    for path in ("/api/overview", "/api/whoami"):
        reply = client.get(path)
        assert reply.status == 401, path
        assert reply.json == {"error": "not_authorised", "reason": "Not management user"}


@pytest.mark.parametrize("tag", ["management", "policymaker", "monitoring", "administrator"])
def test_every_management_tag_may_read_the_overview(make_user, tag: str) -> None:
    client = make_user([tag])
    assert client.get("/api/overview").status == 200
    whoami = client.get("/api/whoami").json
    assert whoami["name"] == client.user
    assert whoami["tags"] == [tag]


def test_lists_sort_by_a_key_and_reverse(api: ApiClient) -> None:
    exchanges = api.get("/api/exchanges/%2F?sort=type&columns=name,type").json
    assert [e["type"] for e in exchanges] == sorted(e["type"] for e in exchanges)
    reverse = api.get("/api/exchanges/%2F?sort=name&sort_reverse=true&columns=name").json
    assert [e["name"] for e in reverse] == sorted((e["name"] for e in reverse), reverse=True)


def test_lists_paginate_with_a_name_filter(api: ApiClient) -> None:
    query = "/api/exchanges/%2F?page={}&page_size=1&name=^amq%5C.(topic|fanout)$&use_regex=true&sort=name&columns=name"
    first = api.get(query.format(1)).json
    assert {k: v for k, v in first.items() if k != "total_count"} == {
        "filtered_count": 2, "item_count": 1, "items": [{"name": "amq.fanout"}], "page": 1, "page_count": 2,
        "page_size": 1}
    assert api.get(query.format(2)).json["items"] == [{"name": "amq.topic"}]
    assert api.get(query.format(3)).json["items"] == []
    beyond = api.get(query.format(4))
    assert beyond.status == 400 and beyond.json["error"] == "page_out_of_range"
    assert api.get("/api/exchanges/%2F?page=0").json["error"] == "invalid_pagination_parameters"
    assert api.get("/api/exchanges/%2F?page=x").status == 400


def test_cluster_name_is_the_overviews(api: ApiClient) -> None:
    assert api.get("/api/cluster-name").json == {"name": api.get("/api/overview").json["cluster_name"]}
