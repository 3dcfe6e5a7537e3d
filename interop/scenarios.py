"""The scenario list every client implements, and the numbers the scenarios share.

A scenario is named here once; each client program says which of these names it implements
(`--list`). The Node.js and Java programs restate the numbers below; keep them in step.
"""

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    plugin: str | None = None
    """The RabbitMQ plugin the scenario needs, which the reference broker lacks: the scenario then
    runs against amqpbroker only."""
    provisioned: bool = False
    """Whether the scenario needs what the runner gives the brokers it starts before any client runs
    (a user of DEFINITIONS, OPERATOR_POLICIES): against a broker at --url it does not apply."""


SCENARIOS = (
    Scenario("connect", "connect and authenticate as the URL's user, open a channel, close cleanly"),
    Scenario("auth_refused", "a wrong password is refused and the client reports it"),
    Scenario(
        "routing",
        "direct, fanout and topic exchanges and the default exchange route to bound queues",
    ),
    Scenario("ack", "publish 3, consume with manual ack, ack each: nothing is left to requeue"),
    Scenario("requeue", "reject and nack with requeue: the message comes back marked redelivered"),
    Scenario("discard", "reject and nack without requeue: the messages are gone"),
    Scenario("prefetch", "prefetch 2: only 2 of 5 are delivered until an ack frees a slot"),
    Scenario("confirms", "publisher confirms: 10 publishes are all acked by the broker"),
    Scenario("mandatory", "an unroutable mandatory publish comes back as basic.return 312 NO_ROUTE"),
    Scenario("rpc", "request and reply through reply_to and correlation_id"),
    Scenario("large_message", "a 5 MiB body crosses many frames and arrives intact"),
    Scenario("many_channels", "100 channels open at once on one connection, each one used"),
    Scenario("not_found", "passive declare of a missing queue fails with 404; the connection lives"),
    Scenario("precondition_failed", "redeclaring a queue with other flags fails with 406"),
    Scenario("heartbeat", "a 2 s heartbeat is negotiated and the connection outlives 8 s of idling"),
    Scenario("consumer_cancel", "deleting a consumed queue makes the server cancel the consumer"),
    Scenario(
        "dead_letter_ttl",
        "x-message-ttl and a per-message expiration dead-letter to the queue's DLX with x-death (expired)",
    ),
    Scenario("dead_letter_reject", "reject without requeue dead-letters to the DLX with x-death (rejected)"),
    Scenario(
        "max_length",
        "x-max-length 2 drops the oldest; with x-overflow reject-publish a third publish is nacked",
    ),
    Scenario("priority", "x-max-priority 10: a backlog of priorities 5, none, 9, 1 is delivered highest first"),
    Scenario(
        "single_active_consumer",
        "x-single-active-consumer: the first consumer gets everything, the second takes over on cancel",
    ),
    Scenario("alternate_exchange", "an unroutable mandatory publish goes to the alternate exchange, not back"),
    Scenario(
        "quorum_queue",
        "a durable quorum queue with x-delivery-limit 1: redelivery counts, then dead-letters (delivery_limit)",
    ),
    Scenario(
        "consumer_priority",
        "consumers with x-priority 10 and 0 and room to spare: every message goes to the higher one",
    ),
    Scenario("cc_bcc", "CC and BCC headers route copies to more keys; the copies keep CC and lose BCC"),
    Scenario("queue_expires", "a queue with x-expires 300 left unused is deleted: a passive declare then fails 404"),
    Scenario(
        "max_length_bytes",
        "x-max-length-bytes 10 holds two 5-byte messages: a third drops the oldest (drop-head)",
    ),
    Scenario(
        "reject_publish_dlx",
        "x-overflow reject-publish-dlx: a publish over x-max-length 2 is nacked and dead-lettered (maxlen)",
    ),
    Scenario(
        "quorum_declare_rules",
        "a quorum queue declared non-durable, exclusive, auto-delete or with x-max-priority is refused with 406",
    ),
    Scenario(
        "stream",
        "a stream read with x-stream-offset first, 3 and next: every reader gets its part, offsets in a header",
    ),
    Scenario(
        "topic_permissions",
        "a user with topic permissions on amq.topic: a publish with an allowed key arrives, one with a key "
        "only reading allows and a binding with a refused key fail with 403 and its text; the connection lives",
        provisioned=True,
    ),
    Scenario(
        "operator_policy",
        "an operator policy's max-length 3 caps a queue's own x-max-length 10: of 5 published, the newest 3 stay",
        provisioned=True,
    ),
    Scenario(
        "deduplication",
        "a queue with x-message-deduplication and an x-message-deduplication exchange drop a message whose "
        "x-deduplication-header they have seen; every publish is confirmed",
        plugin="rabbitmq_message_deduplication",
    ),
    Scenario(
        "delayed_message",
        "an x-delayed-message exchange (x-delayed-type direct) holds a message for its x-delay: one published "
        "after it without delay arrives first, and it arrives with x-delay negated",
        plugin="rabbitmq_delayed_message_exchange",
    ),
)

NAMES = tuple(scenario.name for scenario in SCENARIOS)

# routing: (exchange type, routing key, body); "default" publishes to the default exchange with
# queue "a" as the routing key. Queue "a" is bound with key "red" (direct) and "stock.*.nyse" (topic),
# queue "b" with key "green" (direct) and "stock.#" (topic); both are bound to the fanout exchange.
ROUTING_BINDINGS = {"a": {"direct": "red", "topic": "stock.*.nyse"}, "b": {"direct": "green", "topic": "stock.#"}}
ROUTING_PUBLISHES = (
    ("direct", "red", "direct-red"),
    ("direct", "green", "direct-green"),
    ("direct", "blue", "direct-blue"),
    ("fanout", "", "fanout"),
    ("topic", "stock.ibm.nyse", "topic-nyse"),
    ("topic", "stock.ibm", "topic-ibm"),
    ("default", "a", "default"),
)
ROUTING_EXPECTED = {
    "a": ["direct-red", "fanout", "topic-nyse", "default"],
    "b": ["direct-green", "fanout", "topic-nyse", "topic-ibm"],
}

ACK_MESSAGES = 3
PREFETCH_COUNT = 2
PREFETCH_MESSAGES = 5
CONFIRMED_MESSAGES = 10
# Byte i of the large body is i % 251, so a shifted or truncated frame shows.
LARGE_MESSAGE_SIZE = 5 * 1024 * 1024
CHANNELS = 100
HEARTBEAT = 2
# Longer than pika's heartbeat check (timeout + 5 s), so a broker that sends no heartbeats is caught.
IDLE = 8
# Dead-lettering: every scenario's DLX is a direct exchange; its queue is bound with this key, which
# the dead-lettering queues name in x-dead-letter-routing-key.
DEAD_LETTER_KEY = "dead"
# dead_letter_ttl: "queue-ttl" goes to a queue with x-message-ttl, "message-ttl" with this expiration
# to a queue without one.
QUEUE_TTL = 200  # ms
MESSAGE_EXPIRATION = "100"  # ms
# max_length: m0..m2 go to a queue of at most 2; drop-head keeps the newest, reject-publish nacks m2.
MAX_LENGTH = 2
# priority: (priority, body) published in this order before a consumer attaches; None sets none.
MAX_PRIORITY = 10
PRIORITY_PUBLISHES = ((5, "p5"), (None, "none"), (9, "p9"), (1, "p1"))
PRIORITY_EXPECTED = ("p9", "p5", "p1", "none")
# single_active_consumer: m0..m2 reach the first consumer; after it cancels, m3 and m4 the second.
SAC_FIRST = 3
SAC_REST = 2
# quorum_queue: rejected with requeue once (redelivered with x-delivery-count 1), then again: dead.
DELIVERY_LIMIT = 1

# consumer_priority: each consumer's prefetch holds all the messages, so the high one never runs out
# of credit and the low one gets nothing.
CONSUMER_PRIORITIES = {"high": 10, "low": 0}
CONSUMER_PRIORITY_MESSAGES = 3
# cc_bcc: queues bound to a direct exchange with their own name as the key; one publish with key "a"
# and these headers reaches all three, and every copy arrives with CC_BCC_DELIVERED as its headers.
CC_BCC_QUEUES = ("a", "b", "c")
CC_BCC_HEADERS = {"CC": ["b"], "BCC": ["c"]}
CC_BCC_DELIVERED = {"CC": ["b"]}
# queue_expires: declared, then left alone for EXPIRES_WAIT (several times its x-expires).
QUEUE_EXPIRES = 300  # ms
EXPIRES_WAIT = 1.0  # s
# max_length_bytes: the bodies are 5 bytes each, so the queue holds the last two.
MAX_LENGTH_BYTES = 10
MAX_LENGTH_BYTES_BODIES = ("msg-0", "msg-1", "msg-2")
# reject_publish_dlx: m0..m2 to a queue of at most MAX_LENGTH; m2 is nacked and dead-lettered.
# quorum_declare_rules: declarations of a quorum queue, as (flags other than durable=True, arguments other
# than x-queue-type), each with the start of RabbitMQ's reply text, which goes on " for queue '<name>' ...".
QUORUM_REFUSALS = (
    ({"durable": False}, {}, "PRECONDITION_FAILED - invalid property 'non-durable'"),
    ({"exclusive": True}, {}, "PRECONDITION_FAILED - invalid property 'exclusive-owner'"),
    ({"auto_delete": True}, {}, "PRECONDITION_FAILED - invalid property 'auto-delete'"),
    ({}, {"x-max-priority": 5}, "PRECONDITION_FAILED - invalid arg 'x-max-priority'"),
)
# stream: STREAM_MESSAGES published with confirms (s0 ...); a reader from "first" gets them all with
# x-stream-offset 0.., one from STREAM_OFFSET the rest, one from "next" only the one published after.
# Each reader's prefetch is what it should get, and it acks everything, which takes nothing away.
STREAM_MESSAGES = 5
STREAM_OFFSET = 3
# topic_permissions: TOPIC_USER (its password is its name) may do anything in vhost "/", but on
# TOPIC_EXCHANGE publish only with keys "allowed.…" (TOPIC_WRITE) and bind only with keys "allowed.…"
# and "readable.…" (TOPIC_READ). A queue bound with an allowed and a readable key gets a message
# published with the allowed one; a publish with the readable one and a binding with a refused key
# ("refused.…") are refused with 403 and TOPIC_REFUSAL. Every key ends with the scenario's names, as
# every client uses amq.topic at once.
TOPIC_USER = "interop-topic"
TOPIC_EXCHANGE = "amq.topic"
TOPIC_WRITE = r"^allowed\."
TOPIC_READ = r"^(allowed|readable)\."
TOPIC_REFUSAL = (
    f"ACCESS_REFUSED - access to topic '{{}}' in exchange '{TOPIC_EXCHANGE}' in vhost '/' "
    f"refused for user '{TOPIC_USER}'"
)
# What the brokers the runner starts are given, in RabbitMQ's definitions format, before any client
# runs; guest stays as it is.
DEFINITIONS = {
    "users": [{"name": TOPIC_USER, "password": TOPIC_USER, "tags": ""}],
    "permissions": [{"user": TOPIC_USER, "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}],
    "topic_permissions": [
        {"user": TOPIC_USER, "vhost": "/", "exchange": TOPIC_EXCHANGE, "write": TOPIC_WRITE, "read": TOPIC_READ},
    ],
}

# operator_policy: the brokers the runner starts have OPERATOR_POLICIES, whose one policy caps the
# max-length of the queues named OPERATOR_POLICY_QUEUES… at OPERATOR_POLICY_CAP. Each client declares
# such a queue with x-max-length OPERATOR_POLICY_ARGUMENT and publishes OPERATOR_POLICY_PUBLISHES there
# (with confirms where it can): the smaller limit holds, so drop-head leaves OPERATOR_POLICY_KEPT. A
# broker that ignored the policy would keep them all.
OPERATOR_POLICY_QUEUES = "interop.oppol."
OPERATOR_POLICY_CAP = 3
OPERATOR_POLICY_ARGUMENT = 10
OPERATOR_POLICY_PUBLISHES = ("m0", "m1", "m2", "m3", "m4")
OPERATOR_POLICY_KEPT = OPERATOR_POLICY_PUBLISHES[-OPERATOR_POLICY_CAP:]
# As RabbitMQ's definitions list policies; the brokers the runner starts are given these too.
OPERATOR_POLICIES = (
    {
        "vhost": "/",
        "name": "interop-cap",
        "pattern": "^" + re.escape(OPERATOR_POLICY_QUEUES),
        "apply-to": "queues",
        "definition": {"max-length": OPERATOR_POLICY_CAP},
        "priority": 0,
    },
)

# deduplication: DEDUP_PUBLISHES as (body, x-deduplication-header) go with confirms to a queue with
# x-message-deduplication, then to an exchange of type x-message-deduplication (x-cache-size
# DEDUP_CACHE_SIZE) with one queue bound; each queue then holds DEDUP_EXPECTED.
DEDUP_PUBLISHES = (("m0", "order-1"), ("m1", "order-1"), ("m2", "order-2"))
DEDUP_EXPECTED = ("m0", "m2")
DEDUP_CACHE_SIZE = 10
# delayed_message: "late" is published with x-delay DELAY to a delayed exchange bound with key
# DELAYED_KEY, then "now" without one; a consumer gets "now", then "late" with x-delay -DELAY.
DELAY = 300  # ms
DELAYED_KEY = "k"

# How long a client waits for something the broker should do promptly.
PATIENCE = 10
# How long a client waits to be sure that something does not happen.
QUIET = 0.5
