"""Permissions over the API, as RabbitMQ's management plugin checks them: the same configure,
write and read checks as over AMQP (a refusal is 401 "Access refused."), and a vhost without a
permission in it is closed to all but administrators."""

from __future__ import annotations

import pytest

from .client import ApiClient, eventually, segment

REFUSED = {"error": "not_authorised", "reason": "Access refused."}
NO_VHOST = {"error": "not_authorised", "reason": "User not authorised to access virtual host"}


@pytest.fixture
def limited(api: ApiClient, make_user) -> ApiClient:
    """A management user who may configure, write and read only names starting `mgmt-ok-`."""
    client = make_user(["management"])
    allowed = {"configure": "^mgmt-ok-", "write": "^mgmt-ok-", "read": "^mgmt-ok-"}
    assert api.put(f"/api/permissions/%2F/{segment(client.user)}", allowed).status in (201, 204)
    return client


def test_declare_and_delete_need_configure(api: ApiClient, limited: ApiClient, unique, cleanup) -> None:
    allowed, refused = cleanup.queue(unique("ok")), cleanup.queue(unique("no"))
    assert limited.put(f"/api/queues/%2F/{allowed}").status == 201
    reply = limited.put(f"/api/queues/%2F/{refused}")
    assert (reply.status, reply.json) == (401, REFUSED)
    assert limited.put(f"/api/exchanges/%2F/{refused}", {"type": "direct"}).json == REFUSED
    api.put(f"/api/queues/%2F/{refused}")
    assert limited.delete(f"/api/queues/%2F/{refused}").json == REFUSED
    assert limited.delete(f"/api/queues/%2F/{allowed}").status == 204


def test_get_and_purge_need_read(api: ApiClient, limited: ApiClient, unique, cleanup) -> None:
    refused = cleanup.queue(unique("no"))
    api.put(f"/api/queues/%2F/{refused}")
    assert limited.delete(f"/api/queues/%2F/{refused}/contents").json == REFUSED
    get = {"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"}
    reply = limited.post(f"/api/queues/%2F/{refused}/get", get)
    # RabbitMQ gets through a channel, and passes on what closed it.
    assert (reply.status, reply.json) == (401, {"error": "not_authorised", "reason": (
        f"ACCESS_REFUSED - access to queue '{refused}' in vhost '/' refused for user '{limited.user}'")})


def test_publish_needs_write_on_the_exchange(api: ApiClient, limited: ApiClient, unique, cleanup) -> None:
    exchange = cleanup.exchange(unique("ok"))
    assert limited.put(f"/api/exchanges/%2F/{exchange}", {"type": "fanout"}).status == 201
    body = {"routing_key": "k", "payload": "x", "payload_encoding": "string", "properties": {}}
    assert limited.post(f"/api/exchanges/%2F/{exchange}/publish", body).json == {"routed": False}
    reply = limited.post("/api/exchanges/%2F/amq.default/publish", body)
    assert (reply.status, reply.json) == (400, {"error": "bad_request", "reason": (
        f"403 ACCESS_REFUSED - access to exchange 'amq.default' in vhost '/' refused for user '{limited.user}'")})


def test_binding_needs_write_on_the_destination_and_read_on_the_source(
    api: ApiClient, limited: ApiClient, unique, cleanup
) -> None:
    queue = cleanup.queue(unique("ok"))
    limited.put(f"/api/queues/%2F/{queue}")
    reply = limited.post(f"/api/bindings/%2F/e/amq.direct/q/{queue}", {"routing_key": "k"})
    assert (reply.status, reply.json) == (401, REFUSED)


def test_a_vhost_without_a_permission_is_closed(
    api: ApiClient, limited: ApiClient, make_user, other_vhost: str
) -> None:
    path = f"/api/queues/{segment(other_vhost)}"
    for client in (limited, make_user(["monitoring"])):
        for reply in (client.get(path), client.get(f"{path}/q"), client.put(f"{path}/new")):
            assert (reply.status, reply.json) == (401, NO_VHOST)
    assert other_vhost not in {queue["vhost"] for queue in limited.get("/api/queues").json}
    # Administrators see into every vhost (what they may change there is up to their permissions).
    assert api.get(f"{path}/q").status == 200


def test_only_administrators_list_the_contents_of_every_vhost(api: ApiClient, make_user, other_vhost: str) -> None:
    monitor = make_user(["monitoring"])
    eventually(lambda: _assert_in(other_vhost, {queue["vhost"] for queue in api.get("/api/queues").json}))
    for listing in ("/api/queues", "/api/exchanges", "/api/bindings"):
        assert other_vhost not in {item["vhost"] for item in monitor.get(listing).json}
    # Their totals are the whole broker's all the same.
    totals = eventually(lambda: _same_totals(api, monitor))
    assert totals["queues"] >= 1


def _same_totals(api: ApiClient, monitor: ApiClient) -> dict:
    totals = api.get("/api/overview").json["object_totals"]
    assert monitor.get("/api/overview").json["object_totals"] == totals
    return totals


def _assert_in(item: object, collection: set) -> None:
    assert item in collection
