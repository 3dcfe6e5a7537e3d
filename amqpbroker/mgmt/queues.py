"""`/api/queues`: queues with their depth and consumers; declare, delete, purge, and peek at
messages with `POST .../get` as RabbitMQ's management plugin does."""

from __future__ import annotations

import base64
from typing import Any, Iterator

from .. import core
from ..protocol import DECODE_ERRORS, BasicProperties
from ..core.contents import Contents
from ..core.message import QueueEntry
from ..core.permissions import QUEUE
from ..server.bodies import read_back
from .api import (
    CREATED,
    NO_CONTENT,
    HTTPError,
    Node,
    Request,
    Routes,
    access,
    bad_request,
    boolean,
    integer,
    jsonable,
    not_found,
    required,
    vhost,
    vhosts,
)
from . import message_stats
from .connections import consumer_json, session_of
from .policies import applied_json

routes = Routes()

# What `POST .../get` does with the messages it took: acknowledge or reject them, and requeue or not.
_ACKMODES = {
    "ack_requeue_true": True,
    "reject_requeue_true": True,
    "ack_requeue_false": False,
    "reject_requeue_false": False,
}


def queue_json(queue: core.Queue, node: Node, contents: Contents) -> dict[str, Any]:
    consumers = queue.consumers
    exclusive_tag = consumers[0].tag if consumers and consumers[0].exclusive else None
    single_active = consumers.single_active
    return {
        "name": queue.name,
        "vhost": queue.vhost,
        "durable": queue.durable,
        "auto_delete": queue.auto_delete,
        "exclusive": queue.exclusive,
        "arguments": jsonable(queue.arguments),
        "node": node.name,
        "type": queue.settings.queue_type,
        "state": "running",
        "consumers": len(consumers),
        **_capacity_json(queue),
        "exclusive_consumer_tag": exclusive_tag,
        "single_active_consumer_tag": single_active.tag if single_active is not None else None,
        **applied_json(queue.settings),
        "messages": queue.messages_ready + queue.unacked_count,
        "messages_ready": queue.messages_ready,
        "messages_unacknowledged": queue.unacked_count,
        **_contents_json(queue, contents),
        **message_stats.idle_since(queue.stats, queue.timers),
        **message_stats.of(queue.stats),
    }


def _capacity_json(queue: core.Queue) -> dict[str, Any]:
    """The consumers' capacity (see `core.queue.Consumers`), under both of RabbitMQ's names for it;
    a stream reports none."""
    capacity = queue.consumer_capacity()
    return {} if capacity is None else {"consumer_capacity": capacity, "consumer_utilisation": capacity}


def _contents_json(queue: core.Queue, contents: Contents) -> dict[str, Any]:
    """What the queue's messages take up: RabbitMQ's fields for a queue of its type (a stream has none)."""
    queue_type = queue.settings.queue_type
    if queue_type == "stream":
        return {}
    found = contents.of(queue)
    sizes = {
        "message_bytes": found.message_bytes,
        "message_bytes_ready": queue.ready_bytes,
        "message_bytes_unacknowledged": found.message_bytes_unacknowledged,
        "message_bytes_ram": found.message_bytes_ram,
        "message_bytes_persistent": queue.persistent_bytes,
        "messages_ram": found.messages_ram,
        "messages_persistent": queue.persistent_count,
    }
    if queue_type == "quorum":
        return sizes
    return {
        **sizes,
        "message_bytes_paged_out": found.message_bytes_paged_out,
        "messages_ready_ram": found.messages_ready_ram,
        "messages_unacknowledged_ram": found.messages_unacknowledged_ram,
        "messages_paged_out": found.messages_paged_out,
        "head_message_timestamp": found.head_message_timestamp,
    }


def find_queue(request: Request, broker: core.Broker, name: str | None = None) -> core.Queue:
    """The queue `name` (by default the path's `{name}`) in the path's vhost; 404 if there is none."""
    queue = vhost(request, broker).queues.get(request.params["name"] if name is None else name)
    if queue is None:
        raise not_found()
    return queue


@routes.get("/api/queues")
def list_queues(request: Request, broker: core.Broker) -> Iterator[dict[str, Any]]:
    contents = Contents(broker)
    return (found for where in vhosts(request, broker) for found in _sorted(where, request.node, contents))


@routes.get("/api/queues/{vhost}")
def vhost_queues(request: Request, broker: core.Broker) -> Iterator[dict[str, Any]]:
    return _sorted(vhost(request, broker), request.node, Contents(broker))


def _sorted(where: core.VHost, node: Node, contents: Contents) -> Iterator[dict[str, Any]]:
    queues = sorted(where.queues.values(), key=lambda queue: queue.name)
    return (queue_json(queue, node, contents) for queue in queues)


@routes.get("/api/queues/{vhost}/{name}")
def get_queue(request: Request, broker: core.Broker) -> dict[str, Any]:
    queue = find_queue(request, broker)
    found = queue_json(queue, request.node, Contents(broker))
    found["consumer_details"] = [
        consumer_json(consumer, session_of(consumer), request.node) for consumer in queue.consumers
    ]
    found["deliveries"] = []
    found["incoming"] = []
    return found


@routes.put("/api/queues/{vhost}/{name}")
def put_queue(request: Request, broker: core.Broker) -> object:
    """Declares the queue: 201 if it is new, 204 if it was there with the same properties."""
    body = request.json()
    where = vhost(request, broker)
    name = request.params["name"]
    existed = name in where.queues
    arguments = body.get("arguments") or {}
    if not isinstance(arguments, dict):
        raise bad_request("arguments must be an object")
    access(request, broker, where).declare(QUEUE, name, not existed, arguments)
    queue = where.declare_queue(
        name,
        None,
        durable=boolean(body.get("durable", False)),
        auto_delete=boolean(body.get("auto_delete", False)),
        arguments=arguments,
    )
    broker.queue_declared(queue)
    return NO_CONTENT if existed else CREATED


@routes.delete("/api/queues/{vhost}/{name}")
def delete_queue(request: Request, broker: core.Broker) -> object:
    """Deletes the queue; `?if-empty=true` and `?if-unused=true` as queue.delete's flags."""
    queue = find_queue(request, broker)
    where = vhost(request, broker)
    access(request, broker, where).delete(QUEUE, queue.name)
    what = f"queue '{queue.name}' in vhost '{queue.vhost}'"
    if boolean(request.query.get("if-unused", "false")) and queue.consumers:
        raise bad_request(f"{what} in use")
    if boolean(request.query.get("if-empty", "false")) and queue.message_count:
        raise bad_request(f"{what} not empty")
    broker.delete_queue(where, queue)
    return NO_CONTENT


@routes.delete("/api/queues/{vhost}/{name}/contents")
def purge_queue(request: Request, broker: core.Broker) -> object:
    queue = find_queue(request, broker)
    access(request, broker, vhost(request, broker)).read_queue(queue.name)
    queue.purge()
    return NO_CONTENT


@routes.post("/api/queues/{vhost}/{name}/get")
async def get_messages(request: Request, broker: core.Broker) -> list[dict[str, Any]]:
    """Takes up to `count` messages, then acknowledges, rejects (dead-lettering them) or requeues
    them, where they were, marked redelivered. Bodies only in the store are read back off the
    event loop meanwhile; the messages taken stay their queue's (as unacknowledged ones do), so
    nothing else takes them, and the store keeps them."""
    queue = find_queue(request, broker)
    try:
        access(request, broker, vhost(request, broker)).read_queue(queue.name)
    except core.ChannelException as exc:
        # RabbitMQ gets through a channel of its own, and reports what closed it.
        raise HTTPError(401, "not_authorised", exc.reply_text) from None
    body = request.json()
    required(body, "count", "ackmode", "encoding")
    count = integer(body["count"])
    requeue = _ACKMODES.get(body["ackmode"])
    if requeue is None:
        raise bad_request(f"Unsupported ackmode {body['ackmode']!r}. Please use one of {', '.join(_ACKMODES)}.")
    encoding = body["encoding"]
    if encoding not in ("auto", "base64"):
        raise bad_request("Unsupported encoding. Please use auto or base64.")
    truncate = integer(body["truncate"]) if body.get("truncate") not in (None, "") else None
    reject = body["ackmode"].startswith("reject")
    taken: list[QueueEntry] = []
    # The queue's message count after each was taken, which its JSON reports.
    counts: list[int] = []
    while len(taken) < count and (entry := queue.take()) is not None:
        taken.append(entry)
        counts.append(queue.message_count)
    payloads: list[bytes | None] = []
    try:
        payloads = await read_back(broker.bodies, [entry.message for entry in taken])
    finally:
        if None in payloads or len(payloads) < len(taken):
            # Cancelled, or the store failed: the client sees none of them.
            queue.give_back(taken)
    if None in payloads:
        raise HTTPError(500, "internal_server_error", "could not read a message from the store")
    found = [
        _message_json(entry, payload, message_count, encoding, truncate)
        for entry, payload, message_count in zip(taken, payloads, counts)
    ]
    if queue.deleted:
        for entry in taken:
            queue.forget(entry)
    elif requeue:
        queue.requeue(taken)
        queue.dispatch()
    else:
        for entry in taken:
            if reject:
                queue.drop(entry, "rejected")
            else:
                queue.forget(entry)
    return found


def _message_json(
    entry: QueueEntry, payload: bytes, message_count: int, encoding: str, truncate: int | None
) -> dict[str, Any]:
    message = entry.message
    size = len(payload)
    if truncate is not None:
        payload = payload[:truncate]
    payload_encoding = "base64"
    text = None
    if encoding == "auto":
        try:
            text = payload.decode("utf-8")
            payload_encoding = "string"
        except UnicodeDecodeError:
            pass
    return {
        "payload_bytes": size,
        "redelivered": entry.redelivered,
        "exchange": message.exchange,
        "routing_key": message.routing_key,
        "message_count": message_count,
        "properties": properties_json(message.properties),
        "payload": text if text is not None else base64.b64encode(payload).decode(),
        "payload_encoding": payload_encoding,
    }


def properties_json(encoded: bytes) -> dict[str, Any]:
    """The message's properties by name; malformed ones (nothing checked them at publish) as none."""
    try:
        properties = BasicProperties.decode(encoded)
    except DECODE_ERRORS:
        return {}
    return {
        name: jsonable(getattr(properties, name))
        for name in BasicProperties.__slots__
        if getattr(properties, name) is not None
    }
