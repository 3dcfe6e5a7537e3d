"""A small client for the management API (http.client, one connection per request), raw-socket
helpers for requests no client library would send, and this machine's non-loopback address."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar
from urllib.parse import quote, urlsplit

TIMEOUT = 10.0

T = TypeVar("T")


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    """Lower-case names."""
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def segment(name: str) -> str:
    """A path segment as tools send it: `/` and everything else reserved percent-encoded."""
    return quote(name, safe="")


class ApiClient:
    """Requests to `http://HOST:PORT`, as `user`:`password` unless told otherwise."""

    def __init__(self, url: str, user: str = "guest", password: str = "guest") -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.user = parts.username or user
        self.password = parts.password or password

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def as_user(self, user: str, password: str) -> ApiClient:
        return ApiClient(self.url, user, password)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        auth: tuple[str, str] | None | bool = True,
        raw_body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """`body` is sent as JSON; `auth=None` sends no credentials, a pair sends those instead."""
        sent = dict(headers or {})
        if auth is True:
            auth = (self.user, self.password)
        if auth:
            sent["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        data = raw_body
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        connection = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
        try:
            connection.request(method, path, data, sent)
            response = connection.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Reply:
        return self.request("PUT", path, body, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Reply:
        return self.request("POST", path, body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Reply:
        return self.request("DELETE", path, **kwargs)


def raw_exchange(host: str, port: int, data: bytes, timeout: float = TIMEOUT) -> bytes:
    """Sends `data` on a fresh connection and returns everything the server sends until it closes."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def status_of(response: bytes) -> int:
    """The status code of a raw HTTP/1.1 response."""
    return int(response.split(b" ", 2)[1])


def eventually(check: Callable[[], T], timeout: float = 15.0) -> T:
    """`check()`'s result once it stops failing an assertion or missing a key. RabbitMQ's management
    API shows counts and connections from statistics it gathers every few seconds (a new queue has
    no `messages` key until then); ours are current."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (AssertionError, KeyError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def non_loopback_address() -> str | None:
    """An IPv4 address of this machine other than a loopback one, to connect from; None if it has none."""
    try:
        addresses = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=10).stdout.split()
    except OSError:
        return None
    return next((a for a in addresses if "." in a and not a.startswith("127.")), None)
