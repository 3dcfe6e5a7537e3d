"""`/api/bindings`: every form of the path, the default exchange's implicit bindings, POST with
Location, and DELETE by properties key."""

from __future__ import annotations

from .client import ApiClient, segment

BINDING_KEYS = {"source", "vhost", "destination", "destination_type", "routing_key", "arguments", "properties_key"}


def _pair(api: ApiClient, unique, cleanup) -> tuple[str, str]:
    exchange, queue = cleanup.exchange(unique("x")), cleanup.queue(unique("q"))
    assert api.put(f"/api/exchanges/%2F/{segment(exchange)}", {"type": "topic"}).status == 201
    assert api.put(f"/api/queues/%2F/{segment(queue)}").status == 201
    return exchange, queue


def test_post_is_201_with_location_and_properties_keys(api: ApiClient, unique, cleanup) -> None:
    exchange, queue = _pair(api, unique, cleanup)
    between = f"/api/bindings/%2F/e/{segment(exchange)}/q/{segment(queue)}"
    plain = api.post(between, {"routing_key": "a.c"})
    assert plain.status == 201
    assert plain.headers["location"] == f"{segment(queue)}/a.c"
    assert api.post(between, {}).headers["location"] == f"{segment(queue)}/~"
    with_arguments = api.post(between, {"routing_key": "a.b", "arguments": {"x": 1}})
    assert with_arguments.headers["location"].startswith(f"{segment(queue)}/a.b~")
    bindings = api.get(between).json
    assert all(BINDING_KEYS <= binding.keys() for binding in bindings)
    keys = {binding["routing_key"]: binding["properties_key"] for binding in bindings}
    assert keys["a.c"] == "a.c" and keys[""] == "~" and keys["a.b"] == with_arguments.headers["location"].split("/")[1]
    one = api.get(f"{between}/a.c")
    assert one.status == 200
    assert one.json == {"source": exchange, "vhost": "/", "destination": queue, "destination_type": "queue",
                        "routing_key": "a.c", "arguments": {}, "properties_key": "a.c"}


def test_delete_by_properties_key(api: ApiClient, amqp, unique, cleanup) -> None:
    exchange, queue = _pair(api, unique, cleanup)
    between = f"/api/bindings/%2F/e/{segment(exchange)}/q/{segment(queue)}"
    key = api.post(between, {"routing_key": "a.b", "arguments": {"x": 1}}).headers["location"].split("/")[1]
    api.post(between, {"routing_key": "a.c"})
    assert api.delete(f"{between}/{key}").status == 204
    assert api.delete(f"{between}/{key}").status == 404
    assert [binding["routing_key"] for binding in api.get(between).json] == ["a.c"]
    channel = amqp.channel()
    channel.basic_publish(exchange, "a.b", b"unbound")
    channel.basic_publish(exchange, "a.c", b"bound")
    assert channel.basic_get(queue, auto_ack=True)[2] == b"bound"


def test_default_exchange_bindings_are_listed(api: ApiClient, unique, cleanup) -> None:
    queue = cleanup.queue(unique("q"))
    api.put(f"/api/queues/%2F/{segment(queue)}")
    implicit = {"source": "", "vhost": "/", "destination": queue, "destination_type": "queue",
                "routing_key": queue, "arguments": {}, "properties_key": queue}
    assert implicit in api.get("/api/bindings/%2F").json
    assert implicit in api.get("/api/bindings").json
    assert api.get(f"/api/queues/%2F/{segment(queue)}/bindings").json == [implicit]


def test_exchange_to_exchange_bindings(api: ApiClient, unique, cleanup) -> None:
    exchange, queue = _pair(api, unique, cleanup)
    reply = api.post(f"/api/bindings/%2F/e/{segment(exchange)}/e/amq.direct", {"routing_key": "k"})
    assert (reply.status, reply.headers["location"]) == (201, "amq.direct/k")
    expected = {"source": exchange, "vhost": "/", "destination": "amq.direct", "destination_type": "exchange",
                "routing_key": "k", "arguments": {}, "properties_key": "k"}
    assert api.get(f"/api/exchanges/%2F/{segment(exchange)}/bindings/source").json == [expected]
    assert expected in api.get("/api/exchanges/%2F/amq.direct/bindings/destination").json
    assert api.delete(f"/api/bindings/%2F/e/{segment(exchange)}/e/amq.direct/k").status == 204


def test_binding_the_default_exchange_is_refused(api: ApiClient, unique, cleanup) -> None:
    queue = cleanup.queue(unique("q"))
    api.put(f"/api/queues/%2F/{segment(queue)}")
    assert api.post(f"/api/bindings/%2F/e/amq.default/q/{segment(queue)}", {"routing_key": "k"}).status == 401


def test_binding_a_missing_exchange_or_queue_is_404(api: ApiClient, unique, cleanup) -> None:
    exchange, queue = _pair(api, unique, cleanup)
    assert api.post(f"/api/bindings/%2F/e/{unique('missing')}/q/{segment(queue)}", {}).status == 404
    assert api.post(f"/api/bindings/%2F/e/{segment(exchange)}/q/{unique('missing')}", {}).status == 404


def test_routing_keys_are_encoded_in_properties_keys(api: ApiClient, unique, cleanup) -> None:
    exchange, queue = _pair(api, unique, cleanup)
    between = f"/api/bindings/%2F/e/{segment(exchange)}/q/{segment(queue)}"
    for routing_key in ("a.*", "a b%", "~x"):
        api.post(between, {"routing_key": routing_key})
    keys = {binding["routing_key"]: binding["properties_key"] for binding in api.get(between).json}
    assert keys == {"a.*": "a.%2A", "a b%": "a+b%25", "~x": "%7Ex"}
    # rabbitmqadmin quotes whatever it is given: the routing key itself, or the properties key.
    assert api.delete(f"{between}/{segment('a.*')}").status == 204
    assert api.delete(f"{between}/{segment('a+b%25')}").status == 204
    assert [binding["routing_key"] for binding in api.get(between).json] == ["~x"]
