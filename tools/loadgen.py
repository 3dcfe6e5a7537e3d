#!/usr/bin/env python3
"""Load generator for any AMQP 0-9-1 broker: prints published/consumed msgs/s and latency.

    python tools/loadgen.py --url amqp://guest:guest@127.0.0.1:5672/ --count 200000
    python tools/loadgen.py --exchange-type fanout --queues 4 --consumers 4    # each message 4 times
    python tools/loadgen.py --backlog --count 1000000    # fill the queue first, then drain it
    python tools/loadgen.py --connections 1000 --hold 10 # open and hold idle connections
    python tools/loadgen.py --consumers 0 --message-ttl 10000 --probe-rate 1000   # a TTL'd backlog expiring
    python tools/loadgen.py --dead-letter                # consumers reject, a dead-letter queue drains
    python tools/loadgen.py --url 'amqps://guest:guest@localhost:5671/?cacertfile=ca.pem'   # over TLS

Each producer and each consumer runs in its own OS process, speaking AMQP through the
small blocking client below (hand-built frames, one sendall per batch of publishes,
incoming frames parsed in bulk), so the client side stays cheap and the broker is what
gets measured.  `--client pika` runs the same scenario through pika's BlockingConnection
for comparison.  Self-contained on purpose: it does not use amqpbroker.protocol.

Every message body starts with 16 bytes: the producer's time.monotonic_ns() (the
clock is system-wide, so consumer-side latency is valid across processes on one machine)
and a message id = run tag << 48 | producer << 32 | sequence number, from which the
consumers prove every message arrived exactly once in every queue it is routed to (the
message's routing key is the sequence number modulo the number of keys, so the coordinator
knows which queues must receive it).  See tools/README.md.
"""

import argparse
import array
import copy
import functools
import json
import multiprocessing as mp
import os
import queue as queue_mod
import random
import resource
import select
import socket
import ssl
import struct
import sys
import time
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

FRAME_HDR = struct.Struct(">BHI")          # type, channel, payload size
CLASS_METHOD = struct.Struct(">HH")
STAMP = struct.Struct(">QQ")               # body prefix: send time (ns), message id
TAG_FLAGS = struct.Struct(">QB")           # basic.ack / basic.nack arguments
U64 = struct.Struct(">Q")
ACK = struct.Struct(">BHIHHQBB")           # a whole basic.ack frame on channel 1
FRAME_END = 0xCE
MAX_FRAME = 131072
RECV_SIZE = 1 << 18
GO, STOP, DRAIN, PROBE_STOP = 0, 1, 2, 3   # flags at the start of the shared array
HEADER = 4                                 # then 4 slots per process: ready, progress
now_ns = time.monotonic_ns


class AMQPError(Exception):
    pass


# ---------------------------------------------------------------------------------------
# Encoding: just the handful of methods a load generator needs.

def shortstr(s):
    b = s.encode()
    if len(b) > 255:
        raise ValueError(f"short string too long: {s!r}")
    return bytes([len(b)]) + b


def longstr(b):
    return struct.pack(">I", len(b)) + b


def table(d):
    out = b""
    for key, value in d.items():
        out += shortstr(key)
        if isinstance(value, bool):
            out += b"t" + bytes([value])
        elif isinstance(value, int):
            out += b"l" + struct.pack(">q", value)
        elif isinstance(value, dict):
            out += b"F" + table(value)
        else:
            out += b"S" + longstr(str(value).encode())
    return longstr(out)


def decode_table(data):
    """A field table's payload (without its length) -> dict; stops at a type it does not know."""
    fixed = {b"t": ">B", b"b": ">b", b"B": ">B", b"s": ">h", b"u": ">H", b"I": ">i", b"i": ">I",
             b"l": ">q", b"f": ">f", b"d": ">d", b"T": ">Q"}
    out, p = {}, 0
    while p < len(data):
        key = data[p + 1:p + 1 + data[p]].decode(errors="replace")
        p += 1 + data[p]
        kind, p = data[p:p + 1], p + 1
        if kind in fixed:
            value = struct.unpack_from(fixed[kind], data, p)[0]
            p += struct.calcsize(fixed[kind])
            value = bool(value) if kind == b"t" else value
        elif kind in (b"S", b"x", b"F", b"A"):
            size = struct.unpack_from(">I", data, p)[0]
            raw, p = data[p + 4:p + 4 + size], p + 4 + size
            value = decode_table(raw) if kind == b"F" else raw.decode(errors="replace") if kind == b"S" else raw
        elif kind == b"V":
            value = None
        else:
            break
        out[key] = value
    return out


def frame(ftype, channel, payload):
    return FRAME_HDR.pack(ftype, channel, len(payload)) + payload + b"\xce"


def method_frame(channel, cls, mid, args=b""):
    return frame(1, channel, CLASS_METHOD.pack(cls, mid) + args)


def parse_url(url):
    """amqp[s]://user:pass@host:port/vhost -> (host, port, user, password, vhost)."""
    u = urlsplit(url)
    if u.scheme not in ("amqp", "amqps"):
        raise ValueError(f"only amqp:// and amqps:// URLs are supported, not {url!r}")
    vhost = unquote(u.path[1:]) if len(u.path) > 1 else "/"
    return (u.hostname or "localhost", u.port or (5671 if u.scheme == "amqps" else 5672),
            unquote(u.username or "guest"), unquote(u.password or "guest"), vhost)


def tls_context(url):
    """For an amqps:// URL, a client TLS context verifying the broker against the URL's
    `cacertfile` query parameter (RabbitMQ's URI spec), or the system's CAs; else None."""
    u = urlsplit(url)
    if u.scheme != "amqps":
        return None
    cafile = parse_qs(u.query).get("cacertfile", [None])[0]
    return ssl.create_default_context(cafile=cafile)


def recv_ready(sock):
    """What the broker has sent already, without waiting: None when nothing, b"" at EOF."""
    if isinstance(sock, ssl.SSLSocket):
        # MSG_DONTWAIT is refused on a TLS socket: ask select, and OpenSSL for what it decrypted already.
        if not sock.pending() and not select.select([sock], [], [], 0)[0]:
            return None
        return sock.recv(65536)
    try:
        return sock.recv(65536, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return None


def redact(url):
    u = urlsplit(url)
    if u.password is None:
        return url
    netloc = u.netloc.replace(":" + u.password + "@", ":***@", 1)
    return urlunsplit(u._replace(netloc=netloc))


class Conn:
    """A minimal blocking AMQP 0-9-1 connection with one channel (number 1).

    Synchronous calls (rpc) use self.buf; the hot loops of producers and consumers
    read the socket themselves and leave any unparsed tail in self.buf.
    """

    def __init__(self, url, timeout=30.0):
        host, port, user, password, vhost = parse_url(url)
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        context = tls_context(url)
        if context is not None:
            self.sock = context.wrap_socket(self.sock, server_hostname=host)
        self.buf = b""
        self.sock.sendall(b"AMQP\x00\x00\x09\x01")
        start = self.expect(10, 10)                                  # connection.start
        try:
            size = struct.unpack_from(">I", start, 2)[0]
            self.server_properties = decode_table(start[6:6 + size])
        except (struct.error, IndexError, UnicodeDecodeError):
            self.server_properties = {}
        props = {"product": "amqpbroker-loadgen",
                 "capabilities": {"consumer_cancel_notify": True, "authentication_failure_close": True}}
        self.send(0, 10, 11, table(props) + shortstr("PLAIN")
                  + longstr(f"\0{user}\0{password}".encode()) + shortstr("en_US"))
        channel_max, frame_max, _heartbeat = struct.unpack_from(">HIH", self.expect(10, 30))
        self.frame_max = min(frame_max or MAX_FRAME, MAX_FRAME)
        self.send(0, 10, 31, struct.pack(">HIH", channel_max, self.frame_max, 0))  # no heartbeats
        self.send(0, 10, 40, shortstr(vhost) + shortstr("") + b"\0")
        self.expect(10, 41)                                          # connection.open-ok
        self.rpc(20, 10, shortstr(""))                               # channel.open

    def send(self, channel, cls, mid, args=b""):
        self.sock.sendall(method_frame(channel, cls, mid, args))

    def read_frame(self):
        while True:
            buf = self.buf
            if buf[:1] == b"A":
                raise AMQPError(f"broker rejected the protocol header, offering {buf[:8]!r}")
            if len(buf) >= 7:
                ftype, channel, size = FRAME_HDR.unpack_from(buf)
                if len(buf) > 7 + size:
                    if buf[7 + size] != FRAME_END:
                        raise AMQPError("malformed frame (bad frame-end octet)")
                    self.buf = buf[8 + size:]
                    return ftype, channel, buf[7:7 + size]
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("broker closed the connection")
            self.buf += data

    def expect(self, cls, mid):
        """Read until method cls.mid arrives; return its arguments.  Skips content frames."""
        while True:
            ftype, channel, payload = self.read_frame()
            if ftype == 1:
                c, m = CLASS_METHOD.unpack_from(payload)
                if (c, m) == (cls, mid):
                    return payload[4:]
                self.on_method(c, m, payload[4:])

    def on_method(self, cls, mid, args):
        """An asynchronous method outside the hot path: fail on close/cancel, else ignore."""
        if (cls, mid) in ((10, 50), (20, 40)):                       # connection/channel.close
            code = struct.unpack_from(">H", args)[0]
            text = args[3:3 + args[2]].decode(errors="replace")
            channel = 0 if cls == 10 else 1
            try:
                self.send(channel, cls, 51 if cls == 10 else 41)     # close-ok
            except OSError:
                pass
            raise AMQPError(f"{'connection' if cls == 10 else 'channel'} closed by broker: {code} {text}")
        if (cls, mid) == (60, 30):
            raise AMQPError("consumer cancelled by broker (queue deleted?)")

    def rpc(self, cls, mid, args=b""):
        self.send(1, cls, mid, args)
        return self.expect(cls, mid + 1)

    def queue_declare(self, name, durable=False, passive=False, arguments=None):
        args = self.rpc(50, 10, b"\0\0" + shortstr(name) + bytes([durable << 1 | passive]) + table(arguments or {}))
        n = args[0]
        return struct.unpack_from(">II", args, 1 + n)               # message count, consumer count

    def exchange_declare(self, name, kind, durable=False, passive=False):
        self.rpc(40, 10, b"\0\0" + shortstr(name) + shortstr(kind) + bytes([durable << 1 | passive]) + table({}))

    def queue_bind_many(self, bindings):
        """queue.bind for every (queue, exchange, routing key), pipelined: one write, then the bind-oks."""
        if bindings:
            self.sock.sendall(b"".join(method_frame(1, 50, 20, b"\0\0" + shortstr(q) + shortstr(x) + shortstr(k)
                                                    + b"\0" + table({})) for q, x, k in bindings))
            for _ in bindings:
                self.expect(50, 21)

    def queue_delete(self, name):
        self.rpc(50, 40, b"\0\0" + shortstr(name) + b"\0")

    def exchange_delete(self, name):
        self.rpc(40, 20, b"\0\0" + shortstr(name) + b"\0")

    def close_channel(self):
        self.rpc(20, 40, struct.pack(">H", 200) + shortstr("") + struct.pack(">HH", 0, 0))

    def close(self):
        """Close the connection; True when the broker answered with connection.close-ok."""
        ok = False
        try:
            self.sock.settimeout(5)
            self.send(0, 10, 50, struct.pack(">H", 200) + shortstr("") + struct.pack(">HH", 0, 0))
            self.expect(10, 51)
            ok = True
        except (OSError, AMQPError):
            pass
        self.sock.close()
        return ok


# ---------------------------------------------------------------------------------------
# Topology: queues, exchange and bindings, and which queues each routing key reaches.

# Topic patterns that match none of the keys published ("lg.k<q>.x"), in several shapes
# (sharing the keys' first words, with "*", with "#"), so the broker's matcher has work to do.
NON_MATCHING = ("lg.k{q}.y{i}", "lg.*.z{i}", "lg.n{i}.#", "*.n{i}.*", "other.{i}.#", "#.w{i}")


def topic_matches(pattern, key):
    """The topic rule: words split on ".", "*" matches one word, "#" zero or more."""
    pw, kw = pattern.split("."), key.split(".")

    def match(i, j):
        if i == len(pw):
            return j == len(kw)
        if pw[i] == "#":
            return any(match(i + 1, k) for k in range(j, len(kw) + 1))
        return j < len(kw) and pw[i] in ("*", kw[j]) and match(i + 1, j + 1)

    return match(0, 0)


def plan(cfg, base):
    """Name the queues and choose the routing keys and bindings.

    Sets cfg.queue_names, cfg.keys (message seq is published with key seq % len(keys)),
    cfg.binding_list [(queue index, binding key)] and cfg.routes (per key, the queue indexes
    that receive it): the exactly-once check is per queue, against these routes.
    """
    n, kind = cfg.queues, cfg.exchange_type
    cfg.queue_names = [base] if n == 1 else [f"{base}-{i}" for i in range(n)]
    if not kind:                           # default exchange: round-robin over the queues by name
        cfg.keys, binds = list(cfg.queue_names), []
    elif kind == "fanout":
        cfg.keys, binds = ["lg"], [(q, "") for q in range(n)]
    elif kind == "direct":
        cfg.keys = [f"lg.k{q}" for q in range(n)]
        binds = [(q, cfg.keys[q]) for q in range(n)] + [(i % n, f"lg.n{i}") for i in range(n, cfg.bindings)]
    else:
        cfg.keys = [f"lg.k{q}.x" for q in range(n)]
        binds = [(q, f"lg.k{q}.*") for q in range(n)] + [
            (i % n, NON_MATCHING[i % len(NON_MATCHING)].format(q=i % n, i=i)) for i in range(n, cfg.bindings)]

    def reaches(pattern, key):
        return kind == "fanout" or (pattern == key if kind == "direct" else topic_matches(pattern, key))

    cfg.binding_list = binds
    if kind:
        cfg.routes = [tuple(sorted({q for q, pattern in binds if reaches(pattern, key)})) for key in cfg.keys]
    else:
        cfg.routes = [(q,) for q in range(n)]
    cfg.matching_bindings = sum(any(reaches(pattern, key) for key in cfg.keys) for _, pattern in binds)
    if cfg.dead_letter:                    # every message is rejected once, then dead-lettered into queue n
        cfg.dead_letter_exchange = base + "-dlx"
        cfg.queue_names.append(base + "-dlq")
        cfg.routes = [route + (n,) for route in cfg.routes]


def queue_arguments(cfg):
    """The x- arguments of the queues the producers publish to (not of the dead-letter queue)."""
    args = {"x-message-ttl": cfg.message_ttl, "x-max-priority": cfg.max_priority,
            "x-dead-letter-exchange": cfg.dead_letter_exchange if cfg.dead_letter else None}
    return {key: value for key, value in args.items() if value is not None}


def expected_copies(cfg, published):
    """Deliveries due for messages 0..published-1 of one producer (fanout: one per queue)."""
    per_key = [len(r) for r in cfg.routes]
    full, rest = divmod(published, len(per_key))
    return full * sum(per_key) + sum(per_key[:rest])


def declare(cfg):
    """Declare the exchanges, the queues and the bindings; return the messages already queued."""
    conn = Conn(cfg.url, timeout=cfg.timeout)
    try:
        if cfg.exchange:
            conn.exchange_declare(cfg.exchange, cfg.exchange_type, cfg.durable, passive=cfg.exchange.startswith("amq."))
        bindings = [(cfg.queue_names[q], cfg.exchange, key) for q, key in cfg.binding_list]
        if cfg.dead_letter:
            conn.exchange_declare(cfg.dead_letter_exchange, "fanout", cfg.durable)
            bindings.append((cfg.queue_names[-1], cfg.dead_letter_exchange, ""))
        args = queue_arguments(cfg)
        stale = sum(conn.queue_declare(name, durable=cfg.durable, arguments=args if q < cfg.queues else None)[0]
                    for q, name in enumerate(cfg.queue_names))
        conn.queue_bind_many(bindings)
    finally:
        conn.close()
    return stale


# ---------------------------------------------------------------------------------------
# Producers.

def priority_draws(cfg, idx):
    """--priorities P: message seq gets priority draws[seq % len(draws)], drawn at random from 0..P-1."""
    if not cfg.priorities:
        return None
    rng = random.Random(cfg.run_tag << 16 | idx)
    return bytes(rng.randrange(cfg.priorities) for _ in range(4093))


class RawPublisher:
    def __init__(self, cfg, idx):
        self.conn = conn = Conn(cfg.url, cfg.timeout)
        self.confirms = cfg.confirms
        if cfg.confirms:
            conn.rpc(85, 10, b"\0")                                  # confirm.select
        self.window = cfg.confirm_window
        self.floor, self.singles, self.confirmed, self.nacked = 0, set(), 0, 0
        # One message = method frame + header frame + body frame(s), one template per
        # routing key (message seq uses key seq % K).  The batch buffer holds the templates
        # cycled for batch + K - 1 messages, so a batch starting at any seq is one slice of
        # it; messages are stamped (and given their priority) in place before each sendall.
        self.priorities = priority_draws(cfg, idx)
        flags = (0x1000 if cfg.persistent else 0) | (0x0800 if self.priorities else 0)   # delivery-mode, priority
        props = struct.pack(">H", flags) + b"\x02" * cfg.persistent + b"\x00" * bool(self.priorities)
        header = frame(2, 1, struct.pack(">HHQ", 60, 0, cfg.size) + props)
        chunk = conn.frame_max - 8
        body = b"".join(frame(3, 1, bytes(min(chunk, cfg.size - i))) for i in range(0, cfg.size, chunk))
        pubs = [method_frame(1, 60, 40, b"\0\0" + shortstr(cfg.exchange) + shortstr(key) + b"\0")
                for key in cfg.keys]
        keys = len(pubs)
        batch = max(1, min(cfg.batch, (1 << 20) // (max(map(len, pubs)) + len(header) + len(body))))
        if cfg.confirms:
            batch = min(batch, self.window)
        self.batch, self.keys = batch, keys
        self.offsets, self.stamps, self.priority_at, parts, off = [], [], [], [], 0
        for i in range(batch + keys - 1):
            pub = pubs[i % keys]
            self.offsets.append(off)
            self.stamps.append(off + len(pub) + len(header) + 7)
            self.priority_at.append(off + len(pub) + len(header) - 2)   # the header's last octet
            parts += (pub, header, body)
            off += len(pub) + len(header) + len(body)
        self.offsets.append(off)
        self.buf = bytearray(b"".join(parts))
        self.view = memoryview(self.buf)
        self.id_base = cfg.run_tag << 48 | idx << 32
        conn.sock.settimeout(None)   # blocking: a slow broker throttles us through TCP

    def publish(self, seq, n):
        """Publish up to n messages numbered from seq; return how many were sent."""
        if self.confirms:
            while seq - self.confirmed >= self.window:
                self.drain(block=True)
            n = min(n, self.window - (seq - self.confirmed))
        n = min(n, self.batch)
        pack, buf, ts = STAMP.pack_into, self.buf, now_ns()
        first, ident = seq % self.keys, self.id_base | seq
        for i, off in enumerate(self.stamps[first:first + n]):
            pack(buf, off, ts, ident + i)
        if self.priorities:
            draws = self.priorities
            for i, off in enumerate(self.priority_at[first:first + n], seq):
                buf[off] = draws[i % len(draws)]
        self.conn.sock.sendall(self.view[self.offsets[first]:self.offsets[first + n]])
        self.drain(block=False)
        return n

    def drain(self, block):
        """Process whatever the broker sent: confirms, or a close that fails the run."""
        conn = self.conn
        data = conn.sock.recv(65536) if block else recv_ready(conn.sock)
        if data is None:
            return
        if not data:
            raise ConnectionError("broker closed the connection")
        buf = conn.buf + data
        p, n = 0, len(buf)
        while n - p >= 8:
            ftype, _, size = FRAME_HDR.unpack_from(buf, p)
            end = p + 7 + size
            if end >= n:
                break
            if buf[end] != FRAME_END:
                raise AMQPError("malformed frame (bad frame-end octet)")
            if ftype == 1:
                cls, mid = CLASS_METHOD.unpack_from(buf, p + 7)
                if cls == 60 and mid in (80, 120):                   # basic.ack / basic.nack
                    tag, flags = TAG_FLAGS.unpack_from(buf, p + 11)
                    self.on_confirm(tag, flags & 1, mid == 120)
                else:
                    conn.on_method(cls, mid, buf[p + 11:end])
            p = end + 1
        conn.buf = buf[p:]

    def on_confirm(self, tag, multiple, nack):
        if tag <= self.floor or (not multiple and tag in self.singles):
            return
        if multiple:
            below = {t for t in self.singles if t <= tag}
            newly = tag - self.floor - len(below)
            self.singles -= below
            self.floor = tag
        else:
            newly = 1
            self.singles.add(tag)
        while self.floor + 1 in self.singles:
            self.floor += 1
            self.singles.discard(self.floor)
        self.confirmed += newly
        self.nacked += newly if nack else 0

    def finish(self, published):
        while self.confirms and self.confirmed < published:
            self.drain(block=True)
        self.conn.close_channel()    # channel.close-ok: the broker has handled every publish

    def close(self):
        self.conn.close()


class PikaPublisher:
    """pika's BlockingConnection, one basic_publish per message (confirms: window of 1)."""

    def __init__(self, cfg, idx):
        import pika
        self.conn = pika.BlockingConnection(pika.URLParameters(cfg.url))
        self.ch = self.conn.channel()
        self.confirms = cfg.confirms
        if cfg.confirms:
            self.ch.confirm_delivery()
        self.delivery_mode = 2 if cfg.persistent else None
        self.priorities = priority_draws(cfg, idx)
        self.properties = pika.BasicProperties
        self.exchange, self.keys = cfg.exchange, cfg.keys
        self.pad, self.id_base = bytes(cfg.size - STAMP.size), cfg.run_tag << 48 | idx << 32
        self.nacked = 0
        self.nack_error = pika.exceptions.NackError

    def publish(self, seq, n):
        for i in range(n):
            body = STAMP.pack(now_ns(), self.id_base | (seq + i)) + self.pad
            priority = self.priorities[(seq + i) % len(self.priorities)] if self.priorities else None
            props = self.properties(delivery_mode=self.delivery_mode, priority=priority)
            try:
                self.ch.basic_publish(self.exchange, self.keys[(seq + i) % len(self.keys)], body, props)
            except self.nack_error:
                self.nacked += 1
        return n

    def finish(self, published):
        self.ch.close()

    def close(self):
        self.conn.close()


def producer_main(cfg, idx, shared, slot):
    pub = (PikaPublisher if cfg.client == "pika" else RawPublisher)(cfg, idx)
    shared[slot] = 1                                                 # ready
    while not shared[GO] and not shared[STOP]:
        time.sleep(0.001)
    start = now_ns()
    deadline = start + int(cfg.duration * 1e9) if cfg.duration else None
    limit = cfg.count if cfg.count else (1 << 32) - 1
    # --rate: publish in small batches, sleeping whenever ahead of schedule.
    batch = max(1, min(cfg.batch, int(cfg.rate / 1000))) if cfg.rate else cfg.batch
    seq = 0
    while seq < limit and not (shared[STOP] or shared[cfg.stop_flag]) and (deadline is None or now_ns() < deadline):
        if cfg.rate:
            ahead = start + seq * 1e9 / cfg.rate - now_ns()
            if ahead > 0:
                time.sleep(ahead / 1e9)
        seq += pub.publish(seq, min(batch, limit - seq))
        shared[slot + 1] = seq
    pub.finish(seq)
    end = now_ns()
    pub.close()
    return {"published": seq, "nacked": pub.nacked, "start": start, "end": end, "cpu": time.process_time()}


# ---------------------------------------------------------------------------------------
# Consumers.

class Tally:
    """Counts one consumer's messages: exactly-once bitmaps per (queue, producer), latencies,
    and per queue the count and the first and last receive times (for fairness)."""

    def __init__(self, run_tag, count):
        self.run_tag, self.count = run_tag, count
        self.lat = array.array("q")
        self.seen = {}
        self.per_queue = {}                  # queue -> [count, first ns, last ns]
        self.own = self.foreign = self.first = self.last = 0

    def add(self, now, ts, ident, queue=0):
        if ident >> 48 != self.run_tag:
            self.foreign += 1                                        # not from this run
            return
        seq = ident & 0xFFFFFFFF
        key = queue << 32 | ident >> 32                              # queue, run tag, producer
        bitmap = self.seen.get(key)
        if bitmap is None:
            bitmap = self.seen[key] = bytearray(self.count or 1 << 16)
        if seq >= len(bitmap):
            bitmap.extend(bytes(max(seq + 1 - len(bitmap), len(bitmap))))
        bitmap[seq] = 1                      # duplicates show up as consumed > unique
        self.lat.append(now - ts)
        mine = self.per_queue.get(queue)
        if mine is None:
            self.per_queue[queue] = [1, now, now]
        else:
            mine[0] += 1
            mine[2] = now
        self.own += 1
        self.first = self.first or now
        self.last = now

    def result(self):
        return {"consumed": self.own, "foreign": self.foreign,
                "first": self.first, "last": self.last, "lat": self.lat.tobytes(), "per_queue": self.per_queue,
                "seen": {(k >> 32, k & 0xFFFF): bytes(v) for k, v in self.seen.items()}}


def consumer_processes(cfg):
    """--consumers, plus with --dead-letter the one consumer of the dead-letter queue."""
    return cfg.consumers + cfg.dead_letter


def consumer_queues(cfg, idx):
    """The queue indexes consumer idx subscribes to: consumers spread round-robin over queues
    (with --dead-letter, the last consumer takes the dead-letter queue, number cfg.queues)."""
    if idx == cfg.consumers:
        return [cfg.queues]
    if cfg.consumers >= cfg.queues:
        return [idx % cfg.queues]
    return list(range(idx, cfg.queues, cfg.consumers))


def rejects(cfg, queues):
    """With --dead-letter, the consumers of the source queues reject every message (requeue=false)."""
    return cfg.dead_letter and queues[0] < cfg.queues


def wait_for_drain(cfg, shared, slot):
    """Mark the consumer ready; in --backlog mode, wait until the producers have finished."""
    shared[slot] = 1
    while cfg.backlog and not shared[DRAIN] and not shared[STOP]:
        time.sleep(0.005)


def raw_consume(cfg, tally, shared, slot, queues):
    conn = Conn(cfg.url, cfg.timeout)
    conn.rpc(60, 10, struct.pack(">IHB", 0, cfg.prefetch, 0))       # basic.qos
    if cfg.backlog:
        wait_for_drain(cfg, shared, slot)
    # basic.consume per queue (consumer tag = queue index), in one write: the consume-oks are
    # read by the loop below along with the deliveries that may follow them at once.
    conn.sock.sendall(b"".join(method_frame(1, 60, 20, b"\0\0" + shortstr(cfg.queue_names[q]) + shortstr(str(q))
                                            + bytes([cfg.auto_ack << 1]) + table({})) for q in queues))
    sock = conn.sock
    sock.settimeout(None)
    # Blocking recv that gives up after 50 ms (to look at the stop flag); sends stay blocking. Over
    # TLS, OpenSSL would retry a recv that timed out for ever: select waits the 50 ms instead.
    tls = isinstance(sock, ssl.SSLSocket)
    if not tls:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 50000))
    if not cfg.backlog:
        wait_for_drain(cfg, shared, slot)
    manual, ack_every = not cfg.auto_ack, cfg.ack_every
    # With --dead-letter the source queues' consumers settle by rejecting (requeue=false):
    # basic.reject per message, or basic.nack multiple=true per --ack-every messages.
    settle = 80 if not rejects(cfg, queues) else 90 if ack_every == 1 else 120
    q, by_tag = queues[0], {str(q).encode(): q for q in queues} if len(queues) > 1 else None
    buf, add = conn.buf, tally.add
    unpack_hdr, unpack_cm, unpack_u64, unpack_stamp = (
        FRAME_HDR.unpack_from, CLASS_METHOD.unpack_from, U64.unpack_from, STAMP.unpack_from)
    tag = pending = body_left = 0
    fresh = False
    ts = ident = 0
    data = buf                # frames read already, if any, are parsed before the first recv
    buf = b""
    while not shared[STOP]:
        if not data:
            if tls and not sock.pending() and not select.select([sock], [], [], 0.05)[0]:
                continue
            try:
                data = sock.recv(RECV_SIZE)
            except (BlockingIOError, TimeoutError):
                continue
            if not data:
                raise ConnectionError("broker closed the connection")
        now = now_ns()        # one receive time for the whole batch of frames
        buf = buf + data if buf else data
        data = b""
        p, n, acks = 0, len(buf), []
        while n - p >= 8:
            ftype, _, size = unpack_hdr(buf, p)
            end = p + 7 + size
            if end >= n:
                break
            if buf[end] != FRAME_END:
                raise AMQPError("malformed frame (bad frame-end octet)")
            done = False
            if ftype == 3:                                           # body
                if fresh:
                    fresh = False
                    ts, ident = unpack_stamp(buf, p + 7) if size >= 16 else (0, 0)
                body_left -= size
                done = body_left <= 0
            elif ftype == 2:                                         # content header
                body_left = unpack_u64(buf, p + 11)[0]
                fresh, ts, ident = True, 0, 0
                done = body_left == 0
            elif ftype == 1:
                cls, mid = unpack_cm(buf, p + 7)
                if cls == 60 and mid == 60:                          # basic.deliver
                    tag = unpack_u64(buf, p + 12 + buf[p + 11])[0]
                    if by_tag:
                        q = by_tag[buf[p + 12:p + 12 + buf[p + 11]]]
                else:
                    conn.on_method(cls, mid, buf[p + 11:end])
            if done:
                add(now, ts, ident, q)
                if manual:
                    pending += 1
                    if pending >= ack_every:
                        acks.append(ACK.pack(1, 1, 13, 60, settle, tag, ack_every > 1, FRAME_END))
                        pending = 0
            p = end + 1
        buf = buf[p:]
        if acks:
            sock.sendall(b"".join(acks))
        shared[slot + 1] = tally.own
    if pending:
        sock.sendall(ACK.pack(1, 1, 13, 60, settle, tag, 1, FRAME_END))
    conn.buf = buf
    conn.close()


def pika_consume(cfg, tally, shared, slot, queues):
    import pika
    conn = pika.BlockingConnection(pika.URLParameters(cfg.url))
    ch = conn.channel()
    ch.basic_qos(prefetch_count=cfg.prefetch)
    pending = 0
    multiple = cfg.ack_every > 1
    if rejects(cfg, queues):
        settle = functools.partial(ch.basic_nack, multiple=True, requeue=False) if multiple else \
            functools.partial(ch.basic_reject, requeue=False)
    else:
        settle = functools.partial(ch.basic_ack, multiple=multiple)

    def on_message(q, channel, deliver, properties, body):
        nonlocal pending
        now = now_ns()
        ts, ident = STAMP.unpack_from(body) if len(body) >= 16 else (0, 0)
        tally.add(now, ts, ident, q)
        if not cfg.auto_ack:
            pending += 1
            if pending >= cfg.ack_every:
                settle(deliver.delivery_tag)
                pending = 0

    if cfg.backlog:
        wait_for_drain(cfg, shared, slot)
    for q in queues:
        ch.basic_consume(cfg.queue_names[q], functools.partial(on_message, q), auto_ack=cfg.auto_ack,
                         consumer_tag=str(q))
    if not cfg.backlog:
        wait_for_drain(cfg, shared, slot)
    while not shared[STOP]:
        conn.process_data_events(time_limit=0.05)
        shared[slot + 1] = tally.own
    conn.close()


def consumer_main(cfg, idx, shared, slot):
    tally = Tally(cfg.run_tag, cfg.count)
    (pika_consume if cfg.client == "pika" else raw_consume)(cfg, tally, shared, slot, consumer_queues(cfg, idx))
    return dict(tally.result(), cpu=time.process_time())


# ---------------------------------------------------------------------------------------
# Connections mode: open --connections connections (one channel each), hold them, close.

def raise_fd_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed if hard == resource.RLIM_INFINITY else min(needed, hard), hard))


def connector_main(cfg, idx, shared, slot):
    share = cfg.connections // cfg.connectors + (idx < cfg.connections % cfg.connectors)
    raise_fd_limit(share + 64)
    shared[slot] = 1                                                 # ready
    while not shared[GO] and not shared[STOP]:
        time.sleep(0.001)
    conns, lat = [], array.array("q")
    start = now_ns()
    try:
        while len(conns) < share and not shared[STOP]:
            t = now_ns()
            conns.append(Conn(cfg.url, cfg.timeout))                 # connection + channel.open
            lat.append(now_ns() - t)
            shared[slot + 1] = len(conns)
        end = now_ns()
        while not shared[STOP]:                                      # hold them until told to stop
            time.sleep(0.02)
    finally:
        closed = sum(conn.close() for conn in conns)
    return {"opened": len(conns), "closed_ok": closed, "start": start, "end": end, "lat": lat.tobytes(),
            "cpu": time.process_time()}


# ---------------------------------------------------------------------------------------
# Coordinator.

def child(fn, role, cfg, idx, shared, slot, results):
    try:
        results.put(("ok", role, idx, fn(cfg, idx, shared, slot)))
    except BaseException as e:  # noqa: BLE001 - reported to the coordinator
        results.put(("error", role, idx, f"{type(e).__name__}: {e}"))
        sys.exit(1)


def read_rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def read_cpu_s(pid):
    """utime + stime of a process, in seconds (None if unreadable)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def percentile(sorted_values, q):
    return sorted_values[max(0, min(len(sorted_values) - 1, -(-len(sorted_values) * q // 100) - 1))]


def latency_summary(lat_ns):
    lat = sorted(lat_ns)
    return {q: round((percentile(lat, int(q[1:])) if q != "max" else lat[-1]) / 1e6, 3)
            for q in ("p50", "p95", "p99", "max")} if lat else None


class RunError(Exception):
    pass


class BrokerStats:
    """The broker's RSS (VmRSS, KiB; sampled by the coordinator every 50 ms) and CPU time."""

    def __init__(self, pid):
        self.pid, self.rss, self.marks, self.cpu = pid, [], {}, []

    def sample(self):
        value = read_rss_kib(self.pid) if self.pid else None
        if value is not None:
            self.rss.append(value)
        return value

    def mark(self, name):
        """A named sample, e.g. "full" when a backlog is queued."""
        value = self.sample()
        if value is not None:
            self.marks[name] = value

    def mark_cpu(self):
        if self.pid:
            self.cpu.append(read_cpu_s(self.pid))

    def cpu_s(self):
        return round(self.cpu[1] - self.cpu[0], 2) if len(self.cpu) == 2 and None not in self.cpu else None

    def rss_kib(self):
        return {"start": self.rss[0], "peak": max(self.rss), "end": self.rss[-1]} if self.rss else None


class Workers:
    """The client processes of one run, and the shared array they report through.

    shared[GO], shared[STOP], shared[DRAIN] are flags set by the coordinator; each process owns
    4 slots from its `slot`: [ready flag, progress (messages or connections so far), -, -].
    """

    def __init__(self, cfg, specs):
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        self.shared = ctx.RawArray("q", HEADER + 4 * len(specs))
        self.results = ctx.Queue()
        self.slots, self.procs, self.done = {}, {}, {}
        for n, (role, idx, fn) in enumerate(specs):
            slot = self.slots[(role, idx)] = HEADER + 4 * n
            self.procs[(role, idx)] = ctx.Process(target=child, args=(fn, role, cfg, idx, self.shared, slot,
                                                                      self.results), daemon=True)
        for proc in self.procs.values():
            proc.start()

    def poll(self, wait):
        """Collect one result (waiting up to `wait` s); raise RunError when a process failed."""
        try:
            status, role, idx, payload = self.results.get(timeout=wait)
        except queue_mod.Empty:
            for (role, idx), proc in self.procs.items():
                if proc.exitcode not in (None, 0) and (role, idx) not in self.done:
                    raise RunError(f"{role} {idx} died (exit code {proc.exitcode})") from None
            return
        if status == "error":
            raise RunError(f"{role} {idx}: {payload}")
        self.done[(role, idx)] = payload

    def progress(self, role):
        """Per process of this role, in index order: its progress counter."""
        return [self.shared[slot + 1] for (r, _), slot in sorted(self.slots.items()) if r == role]

    def finished(self, role):
        return all(key in self.done for key in self.slots if key[0] == role)

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while not all(self.shared[slot] for slot in self.slots.values()):
            self.poll(0.01)
            if time.monotonic() > deadline:
                raise RunError(f"clients not connected after {timeout} s")

    def collect(self, timeout):
        """Tell every process to stop and wait for all their results."""
        self.shared[STOP] = 1
        deadline = time.monotonic() + timeout
        while len(self.done) < len(self.procs):
            self.poll(0.05)
            if time.monotonic() > deadline:
                raise RunError("clients did not report back after stop")

    def close(self):
        self.shared[STOP] = 1
        deadline = time.monotonic() + 2
        for proc in self.procs.values():
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.terminate()


def run(cfg):
    cfg.run_tag = random.randint(1, 0xFFFF)
    stats = BrokerStats(cfg.broker_pid)
    if cfg.connections:
        return run_connections(cfg, stats)
    own_queue, own_exchange = not cfg.queue, bool(cfg.exchange_type and not cfg.exchange)
    unique_name = f"loadgen-{os.getpid()}-{random.getrandbits(32):08x}"
    cfg.queue = cfg.queue or unique_name
    cfg.exchange = cfg.exchange or (unique_name + "-x" if cfg.exchange_type else "")
    plan(cfg, cfg.queue)
    cfg.probe = probe_config(cfg, cfg.queue + "-probe") if cfg.probe_rate else None
    try:
        stale = declare(cfg)
        if cfg.probe:
            declare(cfg.probe)
        return run_messages(cfg, stats, stale)
    finally:
        if own_queue or own_exchange:
            try:
                queues = cfg.queue_names + (cfg.probe.queue_names if cfg.probe else []) if own_queue else []
                exchanges = [cfg.exchange] if own_exchange else []
                if own_queue and cfg.dead_letter:
                    exchanges.append(cfg.dead_letter_exchange)
                cleanup = Conn(cfg.url, timeout=5)
                for name in queues:
                    cleanup.queue_delete(name)
                for name in exchanges:
                    cleanup.exchange_delete(name)
                cleanup.close()
            except (OSError, AMQPError):
                pass


def probe_config(cfg, name):
    """--probe-rate: one producer at that rate -> queue `name` -> one consumer, beside the run, whose
    latency shows whether the broker keeps serving other connections while it works on the run."""
    probe = copy.copy(cfg)
    probe.queue, probe.queues, probe.producers, probe.consumers = name, 1, 1, 1
    probe.exchange, probe.exchange_type, probe.bindings = "", None, 1
    probe.rate, probe.count, probe.duration, probe.probe_rate = cfg.probe_rate, None, None, None
    probe.confirms = probe.persistent = probe.durable = probe.backlog = probe.dead_letter = False
    probe.message_ttl = probe.max_priority = probe.priorities = None
    probe.stop_flag = PROBE_STOP
    plan(probe, name)
    return probe


def as_probe(fn, cfg, idx, shared, slot):
    return fn(cfg.probe, idx, shared, slot)


def queued(conn, names):
    """The message count the queues report (passive queue.declare)."""
    return sum(conn.queue_declare(name, passive=True)[0] for name in names)


class ExpiryWatch:
    """--message-ttl with no consumers: after the last publish, poll the queues' message counts
    until every message has expired; `empty_at` is when they first report none."""

    def __init__(self, cfg):
        self.cfg, self.conn = cfg, None
        self.first_left = self.left = self.empty_at = None

    def poll(self):
        if self.conn is None:
            self.conn = Conn(self.cfg.url, self.cfg.timeout)
        self.left = queued(self.conn, self.cfg.queue_names)
        self.first_left = self.left if self.first_left is None else self.first_left
        if self.left == 0:
            self.empty_at = now_ns()

    def close(self):
        if self.conn is not None:
            self.conn.close()


def probe_done(workers):
    """Stop the probe's producer; True once its consumer has received all it published."""
    workers.shared[PROBE_STOP] = 1
    finished = workers.done.get(("probe-producer", 0))
    return finished is not None and sum(workers.progress("probe-consumer")) >= finished["published"]


def run_messages(cfg, stats, stale):
    specs = [("consumer", i, consumer_main) for i in range(consumer_processes(cfg))]
    specs += [("producer", i, producer_main) for i in range(cfg.producers)]
    if cfg.probe:
        specs += [("probe-consumer", 0, functools.partial(as_probe, consumer_main)),
                  ("probe-producer", 0, functools.partial(as_probe, producer_main))]
    workers = Workers(cfg, specs)
    expiry = ExpiryWatch(cfg) if cfg.message_ttl is not None and not cfg.consumers else None
    # Waiting for messages to expire is progress for as long as their TTL.
    patience = cfg.timeout + (cfg.message_ttl or 0) / 1000
    fill = None
    try:
        workers.wait_ready(cfg.timeout)
        stats.mark("start")
        stats.mark_cpu()
        workers.shared[GO] = 1
        progress, progress_at, backlog, wait = None, time.monotonic(), 0, 0.05
        while True:
            workers.poll(wait)
            stats.sample()
            published = workers.progress("producer")
            expected = sum(expected_copies(cfg, n) for n in published)
            consumed = sum(workers.progress("consumer"))
            backlog = max(backlog, expected - consumed)
            producers_done = workers.finished("producer")
            if producers_done and cfg.backlog and fill is None:
                fill = start_drain(cfg, workers, stats, expected)
            if producers_done and expiry and expiry.empty_at is None:
                expiry.poll()
                wait = 0.01                  # times the moment the queues are empty more finely
            if (producers_done and (consumed >= expected or not cfg.consumers)
                    and (not expiry or expiry.empty_at) and (not cfg.probe or probe_done(workers))):
                stats.mark_cpu()
                break
            if (published, consumed, expiry and expiry.left) != progress:
                progress, progress_at = (published, consumed, expiry and expiry.left), time.monotonic()
            elif time.monotonic() - progress_at > patience:
                raise RunError(f"no progress for {patience:g} s: published {sum(published)}, consumed {consumed}"
                               + (f", {expiry.left} not expired" if expiry else ""))
        workers.collect(cfg.timeout)
    finally:
        workers.close()
        if expiry:
            expiry.close()
    stats.sample()
    return report(cfg, workers.done, stats, stale, backlog, fill, expiry)


def start_drain(cfg, workers, stats, expected):
    """--backlog: the producers are done.  Wait (up to 10 s) until the queues report every
    message, note the broker's RSS with the backlog queued, then let the consumers subscribe."""
    conn = Conn(cfg.url, cfg.timeout)
    try:
        deadline = time.monotonic() + min(cfg.timeout, 10)
        while True:
            count = queued(conn, cfg.queue_names)
            stats.sample()
            if count >= expected or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        conn.close()
    stats.mark("full")
    drain_start = now_ns()
    workers.shared[DRAIN] = 1
    return {"queued_reported": count, "drain_start": drain_start}


def account(cfg, prods, cons):
    """Publishes and deliveries of one set of producers and consumers, checked exactly once per queue."""
    published = sum(p["published"] for p in prods)
    expected = sum(expected_copies(cfg, p["published"]) for p in prods) if cons else 0
    consumed = sum(c["consumed"] for c in cons)
    # OR the consumers' bitmaps per (queue, producer) (one 0/1 byte per sequence number, so
    # OR-ing them as ints works), then count per routing key.
    unions = {}
    for c in cons:
        for key, bits in c["seen"].items():
            unions[key] = unions.get(key, 0) | int.from_bytes(bits, "little")
    unique = routed = 0
    nkeys = len(cfg.keys)
    for (q, _producer), union in unions.items():
        bits = union.to_bytes((union.bit_length() + 7) // 8, "little")
        for k in range(nkeys):
            n = bits[k::nkeys].count(1)
            unique += n
            routed += n if q in cfg.routes[k] else 0
    lat = array.array("q")
    for c in cons:
        lat.frombytes(c["lat"])
    out = {"published": published, "nacked": sum(p["nacked"] for p in prods),
           "expected": expected, "consumed": consumed, "unique": unique, "duplicates": consumed - unique,
           "missing": expected - routed, "misrouted": unique - routed,
           "foreign": sum(c["foreign"] for c in cons), "latency_ms": latency_summary(lat)}
    out["ok"] = out["missing"] == out["duplicates"] == out["misrouted"] == out["nacked"] == 0
    return out


def queue_rates(cons):
    """Fairness over several queues: each queue's delivery rate (its deliveries over the time
    from its first to its last), the slowest and fastest of them and their ratio."""
    merged = {}
    for c in cons:
        for q, (n, first, last) in c["per_queue"].items():
            m = merged.setdefault(q, [0, first, last])
            m[0], m[1], m[2] = m[0] + n, min(m[1], first), max(m[2], last)
    rates = [(n - 1) / ((last - first) / 1e9) for n, first, last in merged.values() if last > first]
    if len(rates) < 2:
        return None
    return {"queues": len(rates), "slowest": round(min(rates), 1), "fastest": round(max(rates), 1),
            "slowest_to_fastest": round(min(rates) / max(rates), 3)}


def report(cfg, done, stats=None, stale=0, backlog=0, fill=None, expiry=None):
    stats = stats or BrokerStats(None)
    prods = [done[("producer", i)] for i in range(cfg.producers)]
    cons = [done[("consumer", i)] for i in range(consumer_processes(cfg))]
    counts = account(cfg, prods, cons)
    published, expected, consumed = counts["published"], counts["expected"], counts["consumed"]
    t0 = min(p["start"] for p in prods)
    last_publish = max(p["end"] for p in prods)
    pub_elapsed = (last_publish - t0) / 1e9
    last = max((c["last"] for c in cons if c["last"]), default=0)
    elapsed = (last - t0) / 1e9 if last else pub_elapsed
    out = {
        "mode": "backlog" if cfg.backlog else "expire" if expiry else "flow",
        "client": cfg.client, "url": redact(cfg.url), "queue": cfg.queue, "queues": cfg.queues,
        "exchange": cfg.exchange, "exchange_type": cfg.exchange_type or "default",
        "bindings": len(cfg.binding_list), "matching_bindings": cfg.matching_bindings, "routing_keys": len(cfg.keys),
        "producers": cfg.producers, "consumers": cfg.consumers, "size": cfg.size,
        "count": cfg.count, "duration": cfg.duration, "confirms": cfg.confirms,
        "confirm_window": cfg.confirm_window if cfg.confirms else None,
        "persistent": cfg.persistent, "durable": cfg.durable, "auto_ack": cfg.auto_ack,
        "ack_every": None if cfg.auto_ack else cfg.ack_every, "prefetch": cfg.prefetch,
        "queue_arguments": queue_arguments(cfg), "priorities": cfg.priorities,
        **counts, "stale_at_start": stale,
        "max_backlog": backlog if cfg.consumers else None,
        "publish_elapsed_s": round(pub_elapsed, 4),
        "publish_rate": round(published / pub_elapsed, 1) if pub_elapsed > 0 else None,
        "elapsed_s": round(elapsed, 4),
        "consume_rate": round(consumed / elapsed, 1) if cons and elapsed > 0 else None,
        "client_cpu_s": {"producers": round(sum(p["cpu"] for p in prods), 3),
                         "consumers": round(sum(c["cpu"] for c in cons), 3)},
        "broker_cpu_s": stats.cpu_s(),
        "broker_rss_kib": stats.rss_kib(),
        "queue_rates": queue_rates(cons) if cfg.queues > 1 and cons else None,
    }
    queued = expected if cfg.consumers else sum(expected_copies(cfg, p["published"]) for p in prods)
    if cfg.backlog:
        start, full = stats.marks.get("start"), stats.marks.get("full")
        drain_s = (last - fill["drain_start"]) / 1e9 if fill and last else None
        out["backlog"] = {
            "queued": queued, "queued_reported": fill and fill["queued_reported"],
            "fill_s": round(pub_elapsed, 4), "fill_rate": out["publish_rate"],
            "drain_s": round(drain_s, 4) if drain_s else None,
            "drain_rate": round(consumed / drain_s, 1) if drain_s else None,
            "rss_full_kib": full,
            "rss_per_msg_bytes": round((full - start) * 1024 / queued, 1) if full and start and queued else None,
        }
    if expiry:
        empty_s = (expiry.empty_at - last_publish) / 1e9
        out["expiry"] = {"ttl_ms": cfg.message_ttl, "queued": queued, "left_at_last_publish": expiry.first_left,
                         "empty_after_s": round(empty_s, 4), "lag_s": round(empty_s - cfg.message_ttl / 1000, 4)}
    if cfg.dead_letter:
        dlq = cons[-1]
        dl_s = (dlq["last"] - t0) / 1e9 if dlq["last"] else None
        out["dead_letter"] = {"exchange": cfg.dead_letter_exchange, "queue": cfg.queue_names[-1],
                              "dead_lettered": dlq["consumed"], "elapsed_s": dl_s and round(dl_s, 4),
                              "rate": round(dlq["consumed"] / dl_s, 1) if dl_s else None}
    if cfg.probe:
        probe = account(cfg.probe, [done[("probe-producer", 0)]], [done[("probe-consumer", 0)]])
        out["probe"] = dict(probe, queue=cfg.probe.queue, rate=cfg.probe_rate)
        out["ok"] = out["ok"] and probe["ok"]
    return out


def run_connections(cfg, stats):
    workers = Workers(cfg, [("connector", i, connector_main) for i in range(cfg.connectors)])
    try:
        workers.wait_ready(cfg.timeout)
        stats.mark("start")
        stats.mark_cpu()
        workers.shared[GO] = 1
        progress, progress_at = 0, time.monotonic()
        while True:
            workers.poll(0.05)
            stats.sample()
            opened = sum(workers.progress("connector"))
            if opened >= cfg.connections:
                break
            if opened != progress:
                progress, progress_at = opened, time.monotonic()
            elif time.monotonic() - progress_at > cfg.timeout:
                raise RunError(f"no progress for {cfg.timeout} s: {opened} of {cfg.connections} connections open")
        stats.mark("open")
        hold_end = time.monotonic() + cfg.hold
        while time.monotonic() < hold_end:
            workers.poll(max(0.001, min(0.05, hold_end - time.monotonic())))
            stats.sample()
        stats.mark("held")
        stats.mark_cpu()
        workers.collect(cfg.timeout)
    finally:
        workers.close()
    stats.sample()
    return report_connections(cfg, workers.done, stats)


def report_connections(cfg, done, stats):
    parts = [done[("connector", i)] for i in range(cfg.connectors)]
    opened = sum(p["opened"] for p in parts)
    open_s = (max(p["end"] for p in parts) - min(p["start"] for p in parts)) / 1e9
    lat = array.array("q")
    for p in parts:
        lat.frombytes(p["lat"])
    start, held = stats.marks.get("start"), stats.marks.get("held")
    out = {
        "mode": "connections", "client": "raw", "url": redact(cfg.url),
        "connections": cfg.connections, "connectors": cfg.connectors, "hold_s": cfg.hold,
        "opened": opened, "closed_ok": sum(p["closed_ok"] for p in parts),
        "open_s": round(open_s, 4), "open_rate": round(opened / open_s, 1) if open_s > 0 else None,
        "open_latency_ms": latency_summary(lat),
        "client_cpu_s": {"connectors": round(sum(p["cpu"] for p in parts), 3)},
        "broker_cpu_s": stats.cpu_s(),
        "broker_rss_kib": dict(stats.rss_kib(), open=stats.marks.get("open"), held=held) if stats.rss else None,
        "rss_per_connection_kib": round((held - start) / opened, 2) if held and start and opened else None,
    }
    out["ok"] = out["opened"] == out["closed_ok"] == cfg.connections
    return out


def print_human(r):
    if r["mode"] == "connections":
        return print_connections(r)
    mode = "auto-ack" if r["auto_ack"] else f"manual ack (every {r['ack_every']}), prefetch {r['prefetch']}"
    extra = [x for x, on in (("confirms", r["confirms"]), ("persistent", r["persistent"]),
                             ("durable queue", r["durable"]), ("backlog: fill, then drain", r["mode"] == "backlog"))
             if on]
    print(f"{r['client']} client, {r['producers']} producer(s) -> {r['consumers']} consumer(s), "
          f"{r['size']} B, {mode}{', ' + ', '.join(extra) if extra else ''}")
    if r["exchange_type"] != "default" or r["queues"] > 1:
        via = (f"{r['exchange_type']} exchange {r['exchange']!r}, {r['bindings']} bindings ({r['matching_bindings']} "
               f"matching the {r['routing_keys']} routing keys)") if r["exchange_type"] != "default" else "default exchange"
        print(f"routing   {via} -> {r['queues']} queue(s); {r['expected']:,} deliveries expected")
    if r["queue_arguments"] or r["priorities"]:
        print(f"queues    {r['queue_arguments']}" + (f", priorities 0..{r['priorities'] - 1} at random"
                                                     if r["priorities"] else ""))
    print(f"published {r['published']:>10,} msgs in {r['publish_elapsed_s']:8.3f} s = "
          f"{r['publish_rate'] or 0:>10,.0f} msgs/s" + (f"  (nacked {r['nacked']})" if r["nacked"] else ""))
    if r["consumers"]:
        print(f"consumed  {r['consumed']:>10,} msgs in {r['elapsed_s']:8.3f} s = {r['consume_rate'] or 0:>10,.0f} msgs/s"
              f"  (missing {r['missing']}, duplicates {r['duplicates']}, misrouted {r['misrouted']}, "
              f"foreign {r['foreign']})")
        print(f"backlog   max {r['max_backlog']:,} msgs published but not yet consumed (sampled every 50 ms)")
    b = r.get("backlog")
    if b:
        print(f"fill      {b['queued']:,} msgs queued in {b['fill_s']:.3f} s = {b['fill_rate'] or 0:,.0f} msgs/s "
              f"(queues reported {b['queued_reported']})")
        if b["drain_rate"]:
            print(f"drain     {r['consumed']:,} msgs in {b['drain_s']:.3f} s = {b['drain_rate']:,.0f} msgs/s")
        if b["rss_per_msg_bytes"] is not None:
            print(f"memory    RSS with the backlog queued {b['rss_full_kib'] / 1024:.1f} MiB = "
                  f"{b['rss_per_msg_bytes']:,.0f} bytes per queued message over the start")
    e = r.get("expiry")
    if e:
        print(f"expiry    {e['queued']:,} msgs with a TTL of {e['ttl_ms']} ms ({e['left_at_last_publish']:,} left at the "
              f"last publish): queues empty {e['empty_after_s']:.3f} s after it (TTL {e['lag_s']:+.3f} s)")
    d = r.get("dead_letter")
    if d:
        print(f"dead-letter {d['dead_lettered']:,} msgs rejected to {d['exchange']!r} and consumed from {d['queue']!r} "
              f"in {d['elapsed_s'] or 0:.3f} s = {d['rate'] or 0:,.0f} msgs/s")
    p = r.get("probe")
    if p:
        print(f"probe     {p['consumed']:,} of {p['published']:,} msgs at {p['rate']:g} msgs/s through {p['queue']!r}"
              + (": latency " + "  ".join(f"{k} {v:.2f} ms" for k, v in p["latency_ms"].items())
                 if p["latency_ms"] else ""))
    if r["latency_ms"]:
        print("latency   " + "  ".join(f"{k} {v:.2f} ms" for k, v in r["latency_ms"].items()))
    if r["broker_rss_kib"]:
        m = r["broker_rss_kib"]
        print(f"broker CPU {r['broker_cpu_s']} s, RSS start {m['start'] / 1024:.1f} MiB, peak {m['peak'] / 1024:.1f} MiB, end {m['end'] / 1024:.1f} MiB")
    print("OK" if r["ok"] else "FAILED: messages lost, duplicated, misrouted or nacked")


def print_connections(r):
    print(f"connections {r['connections']:,} (one channel each) opened by {r['connectors']} process(es), "
          f"held {r['hold_s']} s")
    print(f"opened    {r['opened']:>10,} in {r['open_s']:8.3f} s = {r['open_rate'] or 0:>10,.0f} connections/s")
    if r["open_latency_ms"]:
        print("open time " + "  ".join(f"{k} {v:.2f} ms" for k, v in r["open_latency_ms"].items()))
    m = r["broker_rss_kib"]
    if m:
        print(f"broker CPU {r['broker_cpu_s']} s, RSS start {m['start'] / 1024:.1f} MiB, held {m['held'] / 1024:.1f} MiB, "
              f"peak {m['peak'] / 1024:.1f} MiB = {r['rss_per_connection_kib']:.1f} KiB per connection")
    print("OK" if r["ok"] else f"FAILED: only {r['closed_ok']} of {r['connections']} connections closed cleanly")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="Measure an AMQP 0-9-1 broker's throughput and latency.")
    ap.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/")
    ap.add_argument("--producers", type=int, default=1)
    ap.add_argument("--consumers", type=int, default=1)
    ap.add_argument("--size", type=int, default=100, help=f"body bytes (>= {STAMP.size})")
    run_len = ap.add_mutually_exclusive_group()
    run_len.add_argument("--count", type=int, help="messages per producer (default 100000)")
    run_len.add_argument("--duration", type=float, help="publish for this many seconds")
    ap.add_argument("--prefetch", type=int, default=100, help="basic.qos prefetch count (0 = unlimited)")
    ap.add_argument("--confirms", action="store_true", help="publisher confirms")
    ap.add_argument("--confirm-window", type=int, default=100, help="max unconfirmed publishes per producer")
    ap.add_argument("--persistent", action="store_true", help="delivery-mode 2")
    ap.add_argument("--durable", action="store_true", help="declare the queues (and exchange) durable")
    ap.add_argument("--auto-ack", action="store_true", help="consume with no-ack (default: manual acks)")
    ap.add_argument("--ack-every", type=int, default=1, help="ack with multiple=true every N deliveries (1 = ack each)")
    ap.add_argument("--queue", help="queue name, or name prefix with --queues (default: unique, deleted afterwards)")
    ap.add_argument("--queues", type=int, default=1, help="number of queues; consumers are spread over them")
    ap.add_argument("--exchange", help="publish to this exchange, declared and bound to the queues "
                                       "(default with --exchange-type: a unique one, deleted afterwards)")
    ap.add_argument("--exchange-type", choices=("direct", "fanout", "topic"),
                    help="default: the default exchange, round-robin over the queues")
    ap.add_argument("--bindings", type=int, help="direct/topic: bindings in all, of which one per queue matches "
                                                 "the published keys (default: one per queue)")
    ap.add_argument("--backlog", action="store_true",
                    help="publish everything first, then start the consumers and drain (fill and drain rates)")
    ap.add_argument("--message-ttl", type=int, metavar="MS", help="declare the queues with x-message-ttl; with "
                    "--consumers 0, wait until every message has expired")
    ap.add_argument("--max-priority", type=int, help="declare the queues with x-max-priority")
    ap.add_argument("--priorities", type=int, metavar="P", help="publish with priorities drawn at random from 0..P-1")
    ap.add_argument("--dead-letter", action="store_true", help="the consumers reject every message (requeue=false) "
                    "to a dead-letter exchange; one more consumer drains its dead-letter queue")
    ap.add_argument("--probe-rate", type=float, metavar="R", help="meanwhile, one producer at R msgs/s -> its own "
                    "queue -> one consumer: the latency other connections see")
    ap.add_argument("--connections", type=int, help="connections mode: open this many connections, hold, close")
    ap.add_argument("--hold", type=float, default=10.0, help="connections mode: seconds to hold them open")
    ap.add_argument("--connectors", type=int, default=1, help="connections mode: processes opening connections")
    ap.add_argument("--rate", type=float, help="limit each producer to this many msgs/s")
    ap.add_argument("--batch", type=int, default=100, help="publishes per sendall")
    ap.add_argument("--client", choices=("raw", "pika"), default="raw")
    ap.add_argument("--broker-pid", type=int, help="report this process's RSS (VmRSS), peak during the run")
    ap.add_argument("--timeout", type=float, default=30.0, help="fail after this many seconds without progress")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    cfg = ap.parse_args(argv)
    if cfg.count is None and cfg.duration is None:
        cfg.count = 100000
    if cfg.size < STAMP.size:
        ap.error(f"--size must be at least {STAMP.size} (timestamp + message id)")
    if cfg.producers < 1 or cfg.consumers < 0 or cfg.producers > 0xFFFF:
        ap.error("need 1..65535 producers and >= 0 consumers")
    if cfg.count is not None and not 0 < cfg.count < 1 << 32:
        ap.error("--count must be between 1 and 2**32-1")
    if min(cfg.batch, cfg.confirm_window, cfg.ack_every) < 1:
        ap.error("--batch, --confirm-window and --ack-every must be >= 1")
    if cfg.prefetch and not cfg.auto_ack and cfg.ack_every > cfg.prefetch:
        ap.error("--ack-every must not exceed --prefetch (the consumer would stall)")
    if cfg.exchange is not None and not cfg.exchange:
        ap.error("--exchange must not be empty (omit it to publish to the default exchange)")
    if cfg.exchange and not cfg.exchange_type:
        cfg.exchange_type = "direct"
    cfg.exchange = cfg.exchange or ""
    if not 1 <= cfg.queues <= 0xFFFF:
        ap.error("--queues must be between 1 and 65535")
    if cfg.bindings is not None and cfg.exchange_type not in ("direct", "topic"):
        ap.error("--bindings needs --exchange-type direct or topic")
    cfg.bindings = cfg.queues if cfg.bindings is None else cfg.bindings
    if cfg.bindings < cfg.queues:
        ap.error("--bindings must be at least --queues (one matching binding per queue)")
    if cfg.priorities is not None and not 1 <= cfg.priorities <= 256:
        ap.error("--priorities must be between 1 and 256")
    if cfg.message_ttl is not None and cfg.message_ttl < 0:
        ap.error("--message-ttl must be >= 0")
    if cfg.dead_letter and (cfg.consumers < 1 or cfg.auto_ack or cfg.backlog or cfg.exchange_type == "fanout"):
        ap.error("--dead-letter needs consumers that ack (no --auto-ack) and excludes --backlog and fanout")
    if cfg.probe_rate is not None and cfg.probe_rate <= 0:
        ap.error("--probe-rate must be > 0")
    cfg.probe, cfg.stop_flag = None, STOP
    if cfg.connections is not None:
        if cfg.connections < 1 or not 1 <= cfg.connectors <= cfg.connections:
            ap.error("--connections must be >= 1, and --connectors between 1 and --connections")
        if cfg.client != "raw" or cfg.backlog:
            ap.error("--connections uses the raw client and excludes --backlog")
        if cfg.hold < 0:
            ap.error("--hold must be >= 0")
    return cfg


def main(argv=None):
    cfg = parse_args(argv)
    try:
        r = run(cfg)
    except (RunError, AMQPError, OSError, ValueError) as e:
        msg = f"loadgen: {type(e).__name__}: {e}"
        print(json.dumps({"ok": False, "error": msg}) if cfg.json else msg, file=sys.stdout if cfg.json else sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    if cfg.json:
        print(json.dumps(r))
    else:
        print_human(r)
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
