#!/usr/bin/env python3
"""Load generator for any AMQP 0-9-1 broker: prints published/consumed msgs/s and latency.

    python tools/loadgen.py --url amqp://guest:guest@127.0.0.1:5672/ --count 200000

Each producer and each consumer runs in its own OS process, speaking AMQP through the
small blocking client below (hand-built frames, one sendall per batch of publishes,
incoming frames parsed in bulk), so the client side stays cheap and the broker is what
gets measured.  `--client pika` runs the same scenario through pika's BlockingConnection
for comparison.  Self-contained on purpose: it does not use amqpbroker.protocol.

Every message body starts with 16 bytes: the producer's time.monotonic_ns() (the
clock is system-wide, so consumer-side latency is valid across processes on one machine)
and a message id = run tag << 48 | producer << 32 | sequence number, from which the
consumers prove every message arrived exactly once.  See tools/README.md.
"""

import argparse
import array
import json
import multiprocessing as mp
import os
import queue as queue_mod
import random
import socket
import struct
import sys
import time
from urllib.parse import unquote, urlsplit, urlunsplit

FRAME_HDR = struct.Struct(">BHI")          # type, channel, payload size
CLASS_METHOD = struct.Struct(">HH")
STAMP = struct.Struct(">QQ")               # body prefix: send time (ns), message id
TAG_FLAGS = struct.Struct(">QB")           # basic.ack / basic.nack arguments
U64 = struct.Struct(">Q")
ACK = struct.Struct(">BHIHHQBB")           # a whole basic.ack frame on channel 1
FRAME_END = 0xCE
MAX_FRAME = 131072
RECV_SIZE = 1 << 18
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
        elif isinstance(value, dict):
            out += b"F" + table(value)
        else:
            out += b"S" + longstr(str(value).encode())
    return longstr(out)


def frame(ftype, channel, payload):
    return FRAME_HDR.pack(ftype, channel, len(payload)) + payload + b"\xce"


def method_frame(channel, cls, mid, args=b""):
    return frame(1, channel, CLASS_METHOD.pack(cls, mid) + args)


def parse_url(url):
    """amqp://user:pass@host:port/vhost -> (host, port, user, password, vhost)."""
    u = urlsplit(url)
    if u.scheme != "amqp":
        raise ValueError(f"only amqp:// URLs are supported, not {url!r}")
    vhost = unquote(u.path[1:]) if len(u.path) > 1 else "/"
    return (u.hostname or "localhost", u.port or 5672,
            unquote(u.username or "guest"), unquote(u.password or "guest"), vhost)


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
        self.buf = b""
        self.sock.sendall(b"AMQP\x00\x00\x09\x01")
        self.expect(10, 10)                                          # connection.start
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

    def queue_declare(self, name, durable=False):
        args = self.rpc(50, 10, b"\0\0" + shortstr(name) + bytes([durable << 1]) + table({}))
        n = args[0]
        return struct.unpack_from(">II", args, 1 + n)               # message count, consumer count

    def close_channel(self):
        self.rpc(20, 40, struct.pack(">H", 200) + shortstr("") + struct.pack(">HH", 0, 0))

    def close(self):
        try:
            self.sock.settimeout(5)
            self.send(0, 10, 50, struct.pack(">H", 200) + shortstr("") + struct.pack(">HH", 0, 0))
            self.expect(10, 51)
        except (OSError, AMQPError):
            pass
        self.sock.close()


# ---------------------------------------------------------------------------------------
# Producers.

class RawPublisher:
    def __init__(self, cfg, idx):
        self.conn = conn = Conn(cfg.url, cfg.timeout)
        self.confirms = cfg.confirms
        if cfg.confirms:
            conn.rpc(85, 10, b"\0")                                  # confirm.select
        self.window = cfg.confirm_window
        self.floor, self.singles, self.confirmed, self.nacked = 0, set(), 0, 0
        # One message = method frame + header frame + body frame(s); the batch buffer
        # is that template repeated, stamped in place before each sendall.
        pub = method_frame(1, 60, 40, b"\0\0" + shortstr("") + shortstr(cfg.queue) + b"\0")
        props = b"\x10\x00\x02" if cfg.persistent else b"\x00\x00"   # delivery-mode 2 / none
        header = frame(2, 1, struct.pack(">HHQ", 60, 0, cfg.size) + props)
        chunk = conn.frame_max - 8
        body = b"".join(frame(3, 1, bytes(min(chunk, cfg.size - i))) for i in range(0, cfg.size, chunk))
        template = pub + header + body
        self.per, self.stamp_at = len(template), len(pub) + len(header) + 7
        batch = max(1, min(cfg.batch, (1 << 20) // self.per))
        if cfg.confirms:
            batch = min(batch, self.window)
        self.batch = batch
        self.buf = bytearray(template * batch)
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
        pack, buf, per, ts = STAMP.pack_into, self.buf, self.per, now_ns()
        off, ident = self.stamp_at, self.id_base | seq
        for i in range(n):
            pack(buf, off, ts, ident + i)
            off += per
        self.conn.sock.sendall(self.view[:n * per])
        self.drain(block=False)
        return n

    def drain(self, block):
        """Process whatever the broker sent: confirms, or a close that fails the run."""
        conn = self.conn
        try:
            data = conn.sock.recv(65536, 0 if block else socket.MSG_DONTWAIT)
        except BlockingIOError:
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
        self.props = pika.BasicProperties(delivery_mode=2) if cfg.persistent else None
        self.queue, self.pad, self.id_base = cfg.queue, bytes(cfg.size - STAMP.size), cfg.run_tag << 48 | idx << 32
        self.nacked = 0
        self.nack_error = pika.exceptions.NackError

    def publish(self, seq, n):
        for i in range(n):
            body = STAMP.pack(now_ns(), self.id_base | (seq + i)) + self.pad
            try:
                self.ch.basic_publish("", self.queue, body, self.props)
            except self.nack_error:
                self.nacked += 1
        return n

    def finish(self, published):
        self.ch.close()

    def close(self):
        self.conn.close()


def producer_main(cfg, idx, shared):
    pub = (PikaPublisher if cfg.client == "pika" else RawPublisher)(cfg, idx)
    slot = 2 + 4 * idx
    shared[slot] = 1                                                 # ready
    while not shared[0] and not shared[1]:                           # wait for "go"
        time.sleep(0.001)
    start = now_ns()
    deadline = start + int(cfg.duration * 1e9) if cfg.duration else None
    limit = cfg.count if cfg.count else (1 << 32) - 1
    # --rate: publish in small batches, sleeping whenever ahead of schedule.
    batch = max(1, min(cfg.batch, int(cfg.rate / 1000))) if cfg.rate else cfg.batch
    seq = 0
    while seq < limit and not shared[1] and (deadline is None or now_ns() < deadline):
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
    """Counts one consumer's messages: exactly-once bitmaps per producer, latencies."""

    def __init__(self, run_tag, count):
        self.run_tag, self.count = run_tag, count
        self.lat = array.array("q")
        self.seen = {}
        self.own = self.foreign = self.first = self.last = 0

    def add(self, now, ts, ident):
        if ident >> 48 != self.run_tag:
            self.foreign += 1                                        # not from this run
            return
        seq = ident & 0xFFFFFFFF
        bitmap = self.seen.get(ident >> 32)
        if bitmap is None:
            bitmap = self.seen[ident >> 32] = bytearray(self.count or 1 << 16)
        if seq >= len(bitmap):
            bitmap.extend(bytes(max(seq + 1 - len(bitmap), len(bitmap))))
        bitmap[seq] = 1                      # duplicates show up as consumed > unique
        self.lat.append(now - ts)
        self.own += 1
        self.first = self.first or now
        self.last = now

    def result(self):
        return {"consumed": self.own, "foreign": self.foreign,
                "first": self.first, "last": self.last, "lat": self.lat.tobytes(),
                "seen": {k & 0xFFFF: bytes(v) for k, v in self.seen.items()}}


def raw_consume(cfg, tally, shared, slot):
    conn = Conn(cfg.url, cfg.timeout)
    conn.rpc(60, 10, struct.pack(">IHB", 0, cfg.prefetch, 0))       # basic.qos
    conn.rpc(60, 20, b"\0\0" + shortstr(cfg.queue) + shortstr("")   # basic.consume
             + bytes([cfg.auto_ack << 1]) + table({}))
    sock = conn.sock
    sock.settimeout(None)
    # Blocking recv that gives up after 50 ms (to look at the stop flag); sends stay blocking.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 50000))
    shared[slot] = 1                                                 # ready
    manual, ack_every = not cfg.auto_ack, cfg.ack_every
    buf, add = conn.buf, tally.add
    unpack_hdr, unpack_cm, unpack_u64, unpack_stamp = (
        FRAME_HDR.unpack_from, CLASS_METHOD.unpack_from, U64.unpack_from, STAMP.unpack_from)
    tag = pending = body_left = 0
    fresh = False
    ts = ident = 0
    while not shared[1]:
        try:
            data = sock.recv(RECV_SIZE)
        except (BlockingIOError, TimeoutError):
            continue
        if not data:
            raise ConnectionError("broker closed the connection")
        now = now_ns()        # one receive time for the whole batch of frames
        buf = buf + data if buf else data
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
                else:
                    conn.on_method(cls, mid, buf[p + 11:end])
            if done:
                add(now, ts, ident)
                if manual:
                    pending += 1
                    if pending >= ack_every:
                        acks.append(ACK.pack(1, 1, 13, 60, 80, tag, ack_every > 1, FRAME_END))
                        pending = 0
            p = end + 1
        buf = buf[p:]
        if acks:
            sock.sendall(b"".join(acks))
        shared[slot + 1] = tally.own
    if pending:
        sock.sendall(ACK.pack(1, 1, 13, 60, 80, tag, 1, FRAME_END))
    conn.buf = buf
    conn.close()


def pika_consume(cfg, tally, shared, slot):
    import pika
    conn = pika.BlockingConnection(pika.URLParameters(cfg.url))
    ch = conn.channel()
    ch.basic_qos(prefetch_count=cfg.prefetch)
    pending = 0

    def on_message(channel, deliver, properties, body):
        nonlocal pending
        now = now_ns()
        ts, ident = STAMP.unpack_from(body) if len(body) >= 16 else (0, 0)
        tally.add(now, ts, ident)
        if not cfg.auto_ack:
            pending += 1
            if pending >= cfg.ack_every:
                channel.basic_ack(deliver.delivery_tag, multiple=cfg.ack_every > 1)
                pending = 0

    ch.basic_consume(cfg.queue, on_message, auto_ack=cfg.auto_ack)
    shared[slot] = 1
    while not shared[1]:
        conn.process_data_events(time_limit=0.05)
        shared[slot + 1] = tally.own
    conn.close()


def consumer_main(cfg, idx, shared):
    tally = Tally(cfg.run_tag, cfg.count)
    slot = 2 + 4 * (cfg.producers + idx)
    (pika_consume if cfg.client == "pika" else raw_consume)(cfg, tally, shared, slot)
    return dict(tally.result(), cpu=time.process_time())


# ---------------------------------------------------------------------------------------
# Coordinator.

def child(fn, role, cfg, idx, shared, results):
    try:
        results.put(("ok", role, idx, fn(cfg, idx, shared)))
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


class RunError(Exception):
    pass


def run(cfg):
    cfg.run_tag = random.randint(1, 0xFFFF)
    own_queue = not cfg.queue
    cfg.queue = cfg.queue or f"loadgen-{os.getpid()}-{random.getrandbits(32):08x}"
    setup = Conn(cfg.url, timeout=cfg.timeout)
    stale = setup.queue_declare(cfg.queue, durable=cfg.durable)[0]
    setup.close()

    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    shared = ctx.RawArray("q", 2 + 4 * (cfg.producers + cfg.consumers))  # go, stop, per-process slots
    results = ctx.Queue()
    procs = {("consumer", i): ctx.Process(target=child, args=(consumer_main, "consumer", cfg, i, shared, results),
                                          daemon=True) for i in range(cfg.consumers)}
    procs.update({("producer", i): ctx.Process(target=child, args=(producer_main, "producer", cfg, i, shared, results),
                                               daemon=True) for i in range(cfg.producers)})
    for proc in procs.values():
        proc.start()
    done, rss = {}, []

    def poll(wait):
        try:
            status, role, idx, payload = results.get(timeout=wait)
        except queue_mod.Empty:
            for (role, idx), proc in procs.items():
                if proc.exitcode not in (None, 0) and (role, idx) not in done:
                    raise RunError(f"{role} {idx} died (exit code {proc.exitcode})")
            return
        if status == "error":
            raise RunError(f"{role} {idx}: {payload}")
        done[(role, idx)] = payload

    def sample_rss():
        if cfg.broker_pid:
            value = read_rss_kib(cfg.broker_pid)
            if value is not None:
                rss.append(value)

    try:
        deadline = time.monotonic() + cfg.timeout
        while sum(shared[2 + 4 * i] for i in range(cfg.producers + cfg.consumers)) < len(procs):
            poll(0.01)
            if time.monotonic() > deadline:
                raise RunError(f"clients not connected after {cfg.timeout} s")
        sample_rss()
        cpu = [read_cpu_s(cfg.broker_pid)] if cfg.broker_pid else []
        shared[0] = 1                                                # go
        progress, progress_at, backlog = None, time.monotonic(), 0
        while True:
            poll(0.05)
            sample_rss()
            published = sum(shared[3 + 4 * i] for i in range(cfg.producers))
            consumed = sum(shared[3 + 4 * (cfg.producers + i)] for i in range(cfg.consumers))
            backlog = max(backlog, published - consumed)
            producers_done = all(("producer", i) in done for i in range(cfg.producers))
            if producers_done and (consumed >= published or not cfg.consumers):
                cpu.append(read_cpu_s(cfg.broker_pid) if cfg.broker_pid else None)
                break
            if (published, consumed) != progress:
                progress, progress_at = (published, consumed), time.monotonic()
            elif time.monotonic() - progress_at > cfg.timeout:
                raise RunError(f"no progress for {cfg.timeout} s: published {published}, consumed {consumed}")
        shared[1] = 1                                                # stop
        deadline = time.monotonic() + cfg.timeout
        while len(done) < len(procs):
            poll(0.05)
            if time.monotonic() > deadline:
                raise RunError("consumers did not report back after stop")
    finally:
        shared[1] = 1
        deadline = time.monotonic() + 2
        for proc in procs.values():
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.terminate()
        if own_queue:
            try:
                cleanup = Conn(cfg.url, timeout=5)
                cleanup.rpc(50, 40, b"\0\0" + shortstr(cfg.queue) + b"\0")  # queue.delete
                cleanup.close()
            except (OSError, AMQPError):
                pass
    sample_rss()
    return report(cfg, done, rss, cpu, stale, backlog)


def report(cfg, done, rss, cpu, stale, backlog):
    prods = [done[("producer", i)] for i in range(cfg.producers)]
    cons = [done[("consumer", i)] for i in range(cfg.consumers)]
    published = sum(p["published"] for p in prods)
    t0 = min(p["start"] for p in prods)
    pub_elapsed = (max(p["end"] for p in prods) - t0) / 1e9
    consumed = sum(c["consumed"] for c in cons)
    unique = 0
    for producer in {k for c in cons for k in c["seen"]}:
        union = 0           # bitmaps hold one 0/1 byte per sequence number: OR them as ints
        for c in cons:
            union |= int.from_bytes(c["seen"].get(producer, b""), "little")
        unique += union.bit_count()
    last = max((c["last"] for c in cons if c["last"]), default=0)
    elapsed = (last - t0) / 1e9 if last else pub_elapsed
    lat = array.array("q")
    for c in cons:
        lat.frombytes(c["lat"])
    lat = sorted(lat)
    out = {
        "client": cfg.client, "url": redact(cfg.url), "queue": cfg.queue,
        "producers": cfg.producers, "consumers": cfg.consumers, "size": cfg.size,
        "count": cfg.count, "duration": cfg.duration, "confirms": cfg.confirms,
        "confirm_window": cfg.confirm_window if cfg.confirms else None,
        "persistent": cfg.persistent, "durable": cfg.durable, "auto_ack": cfg.auto_ack,
        "ack_every": None if cfg.auto_ack else cfg.ack_every, "prefetch": cfg.prefetch,
        "published": published, "nacked": sum(p["nacked"] for p in prods),
        "consumed": consumed, "unique": unique, "duplicates": consumed - unique,
        "missing": published - unique if cfg.consumers else 0,
        "foreign": sum(c["foreign"] for c in cons), "stale_at_start": stale,
        "max_backlog": backlog if cfg.consumers else None,
        "publish_elapsed_s": round(pub_elapsed, 4),
        "publish_rate": round(published / pub_elapsed, 1) if pub_elapsed > 0 else None,
        "elapsed_s": round(elapsed, 4),
        "consume_rate": round(consumed / elapsed, 1) if cons and elapsed > 0 else None,
        "latency_ms": {q: round((percentile(lat, int(q[1:])) if q != "max" else lat[-1]) / 1e6, 3)
                       for q in ("p50", "p95", "p99", "max")} if lat else None,
        "client_cpu_s": {"producers": round(sum(p["cpu"] for p in prods), 3),
                         "consumers": round(sum(c["cpu"] for c in cons), 3)},
        "broker_cpu_s": round(cpu[1] - cpu[0], 2) if len(cpu) == 2 and None not in cpu else None,
        "broker_rss_kib": {"start": rss[0], "peak": max(rss), "end": rss[-1]} if rss else None,
    }
    out["ok"] = out["missing"] == 0 and out["duplicates"] == 0 and out["nacked"] == 0
    return out


def print_human(r):
    mode = "auto-ack" if r["auto_ack"] else f"manual ack (every {r['ack_every']}), prefetch {r['prefetch']}"
    extra = [x for x, on in (("confirms", r["confirms"]), ("persistent", r["persistent"]),
                             ("durable queue", r["durable"])) if on]
    print(f"{r['client']} client, {r['producers']} producer(s) -> {r['consumers']} consumer(s), "
          f"{r['size']} B, {mode}{', ' + ', '.join(extra) if extra else ''}")
    print(f"published {r['published']:>10,} msgs in {r['publish_elapsed_s']:8.3f} s = "
          f"{r['publish_rate'] or 0:>10,.0f} msgs/s" + (f"  (nacked {r['nacked']})" if r["nacked"] else ""))
    if r["consumers"]:
        print(f"consumed  {r['consumed']:>10,} msgs in {r['elapsed_s']:8.3f} s = {r['consume_rate'] or 0:>10,.0f} msgs/s"
              f"  (missing {r['missing']}, duplicates {r['duplicates']}, foreign {r['foreign']})")
        print(f"backlog   max {r['max_backlog']:,} msgs published but not yet consumed (sampled every 50 ms)")
    if r["latency_ms"]:
        print("latency   " + "  ".join(f"{k} {v:.2f} ms" for k, v in r["latency_ms"].items()))
    if r["broker_rss_kib"]:
        m = r["broker_rss_kib"]
        print(f"broker CPU {r['broker_cpu_s']} s, RSS start {m['start'] / 1024:.1f} MiB, peak {m['peak'] / 1024:.1f} MiB, end {m['end'] / 1024:.1f} MiB")
    print("OK" if r["ok"] else "FAILED: messages lost, duplicated or nacked")


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
    ap.add_argument("--durable", action="store_true", help="declare the queue durable")
    ap.add_argument("--auto-ack", action="store_true", help="consume with no-ack (default: manual acks)")
    ap.add_argument("--ack-every", type=int, default=1, help="ack with multiple=true every N deliveries (1 = ack each)")
    ap.add_argument("--queue", help="queue name (default: a unique one, deleted afterwards)")
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
