"""The management API's HTTP/1.1 I/O: h11 over trio sockets, and nothing of what requests mean.

Each connection serves one request at a time (keep-alive as the client asks). What a client may
send is bounded: a request head of at most `max_head` bytes (431 past that), a body of at most
`max_body` bytes (413, decided from Content-Length before the body is read when it is given), all
of it within `request_timeout` seconds of its first byte; a keep-alive connection idle for
`idle_timeout` seconds, or a client that does not read its response within `request_timeout`, is
dropped. A request that breaks HTTP gets 400 (or h11's hint) and the connection is closed. At most
`max_connections` are served at once; more are closed as they arrive. None of this can reach the
AMQP side: a failure costs its own HTTP connection.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Awaitable, Callable

import h11
import trio

log = logging.getLogger("amqpbroker.http")

_RECEIVE_SIZE = 64 * 1024
# After an error reply to a request not read to its end, what the client still sends is read and
# dropped for this long and this much at most before the socket is closed: closed with unread
# bytes, it would be reset, and the client might lose the reply before reading it.
_LINGER_SECONDS = 1.0
_LINGER_BYTES = 1024 * 1024
_SERVER = b"amqpbroker"


@dataclass(frozen=True)
class HTTPLimits:
    max_head: int = 64 * 1024
    """Bytes of a request line and headers."""
    max_body: int = 20 * 1024 * 1024
    """Bytes of a request body: RabbitMQ's `management.http.max_body_size` default, 20 MiB."""
    request_timeout: float = 30.0
    """Seconds a request has from its first byte to its last, and its response to be taken."""
    idle_timeout: float = 60.0
    """Seconds a keep-alive connection may wait for its next request."""
    max_connections: int = 256


@dataclass(frozen=True)
class HTTPRequest:
    method: str
    target: str
    """The request target as sent: a percent-encoded path and query."""
    headers: dict[str, str]
    """Lower-case names; a repeated header keeps its last value."""
    body: bytes
    peer_address: str = ""
    """The client's IP address ('' if unknown), for users who may log in only from loopback."""


@dataclass
class HTTPResponse:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


Handler = Callable[[HTTPRequest], Awaitable[HTTPResponse]]


class _Reject(Exception):
    """The request cannot be served: answer `status` and close the connection."""

    def __init__(self, status: int) -> None:
        self.status = status


class _Gone(Exception):
    """The client did not take its response in time: the connection is dropped."""


class HTTPServer:
    def __init__(self, handle: Handler, limits: HTTPLimits = HTTPLimits()) -> None:
        self._handle = handle
        self.limits = limits
        self.open_connections = 0

    async def serve(self, listeners: list[trio.SocketListener]) -> None:
        """Serves on `listeners` until cancelled."""
        await trio.serve_listeners(self._serve_connection, listeners)

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        if self.open_connections >= self.limits.max_connections:
            await stream.aclose()
            return
        self.open_connections += 1
        try:
            await _Connection(stream, self._handle, self.limits).run()
        except (trio.BrokenResourceError, trio.ClosedResourceError, _Gone):
            pass
        except Exception:
            # A bug must cost one HTTP connection, not the broker.
            log.exception("HTTP connection failed")
        finally:
            self.open_connections -= 1
            with trio.move_on_after(1) as cleanup:
                cleanup.shield = True
                await stream.aclose()


class _Connection:
    def __init__(self, stream: trio.SocketStream, handle: Handler, limits: HTTPLimits) -> None:
        self._stream = stream
        self._handle = handle
        self._limits = limits
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_head)
        # Over HTTPS the socket is under the TLS stream.
        sock = getattr(stream, "transport_stream", stream).socket
        try:
            self._peer_address = sock.getpeername()[0]
        except OSError:
            self._peer_address = ""

    async def run(self) -> None:
        while True:
            try:
                request = await self._read_request()
            except _Reject as rejected:
                await self._send_error(rejected.status)
                await self._linger()
                return
            except h11.RemoteProtocolError as exc:
                await self._send_error(exc.error_status_hint)
                await self._linger()
                return
            if request is None:
                return
            await self._send(await self._handle(request), request.method)
            if self._h11.our_state is h11.MUST_CLOSE:
                return
            self._h11.start_next_cycle()

    async def _linger(self) -> None:
        """Stops sending, then drops what the client still sends (see _LINGER_SECONDS)."""
        stream = self._stream
        if not isinstance(stream, trio.SocketStream):
            return  # TLS has no half-close; its close_notify goes with the reply's end
        with trio.move_on_after(_LINGER_SECONDS):
            await stream.send_eof()
            dropped = 0
            while dropped < _LINGER_BYTES:
                data = await stream.receive_some(_RECEIVE_SIZE)
                if not data:
                    return
                dropped += len(data)

    async def _read_request(self) -> HTTPRequest | None:
        """The next whole request; None when the client closed or went idle between requests."""
        limits = self._limits
        conn = self._h11
        head: h11.Request | None = None
        body = bytearray()
        started = False
        with trio.CancelScope(deadline=trio.current_time() + limits.idle_timeout) as scope:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    if conn.they_are_waiting_for_100_continue:
                        await self._stream.send_all(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
                    data = await self._stream.receive_some(_RECEIVE_SIZE)
                    if not started and data:
                        started = True
                        scope.deadline = trio.current_time() + limits.request_timeout
                    conn.receive_data(data)
                elif isinstance(event, h11.Request):
                    # h11 bounds a head still arriving; one that came whole in a chunk is measured here.
                    if _head_size(event) > limits.max_head:
                        raise _Reject(431)
                    head = event
                    length = _content_length(event)
                    if length is not None and length > limits.max_body:
                        raise _Reject(413)
                elif isinstance(event, h11.Data):
                    body += event.data
                    if len(body) > limits.max_body:
                        raise _Reject(413)
                elif isinstance(event, h11.EndOfMessage):
                    assert head is not None
                    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in head.headers}
                    method, target = head.method.decode("ascii"), head.target.decode("latin-1")
                    return HTTPRequest(method, target, headers, bytes(body), self._peer_address)
                elif isinstance(event, h11.ConnectionClosed):
                    return None
        # Timed out: a client that sent part of a request is told, one that sent nothing is not.
        if started:
            raise _Reject(408)
        return None

    async def _send_error(self, status: int) -> None:
        if self._h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            await self._send(HTTPResponse(status, headers=[("connection", "close")]))

    async def _send(self, response: HTTPResponse, method: str = "") -> None:
        conn = self._h11
        headers = [("server", "amqpbroker"), *response.headers]
        if response.status not in (204, 304):
            headers.append(("content-length", str(len(response.body))))
        reason = HTTPStatus(response.status).phrase.encode()
        data = conn.send(h11.Response(status_code=response.status, headers=headers, reason=reason))
        # A response to HEAD has the headers of one to GET and no body.
        if response.body and method != "HEAD" and response.status not in (204, 304):
            data += conn.send(h11.Data(data=response.body))
        data += conn.send(h11.EndOfMessage())
        with trio.move_on_after(self._limits.request_timeout):
            await self._stream.send_all(data)
            return
        raise _Gone


def _head_size(request: h11.Request) -> int:
    """About the bytes the request line and headers took on the wire."""
    line = len(request.method) + len(request.target) + len(" HTTP/1.1\r\n") + 1
    return line + sum(len(name) + len(value) + 4 for name, value in request.headers) + 2


def _content_length(request: h11.Request) -> int | None:
    for name, value in request.headers:
        if name == b"content-length":
            return int(value)
    return None
