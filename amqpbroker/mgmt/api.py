"""The management API's request handling, as RabbitMQ's management plugin answers: routing,
basic authentication and tag gating, JSON in and out, errors, `?columns=`.

Resources live in their own modules, each with a `Routes` of its handlers. A handler is a plain
function `handler(request, broker) -> result` run on the broker's trio loop: it reads state, or
changes it through the same core operations AMQP uses, and returns JSON-able data (200), or a
`Response` for another status, or raises `HTTPError`. A change that the store must commit is
answered once its batch is committed, as a channel's reply to a durable declaration is.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qsl, unquote, urlsplit

import trio

from .. import core
from ..core.commits import CommitTracker
from ..core.users import User
from .http import HTTPRequest, HTTPResponse

log = logging.getLogger("amqpbroker.mgmt")

_WWW_AUTHENTICATE = ("www-authenticate", 'Basic realm="RabbitMQ Management"')
_JSON = ("content-type", "application/json")

# Who may call a route, by the user's tags, and RabbitMQ's words for those who may not.
MANAGEMENT = "management"
MONITORING = "monitoring"
POLICYMAKER = "policymaker"
ADMINISTRATOR = "administrator"
_ACCESS = {
    MANAGEMENT: ({"management", "policymaker", "monitoring", "administrator"}, "Not management user"),
    MONITORING: ({"monitoring", "administrator"}, "Not monitor user"),
    POLICYMAKER: ({"policymaker", "administrator"}, "Not policymaker user"),
    ADMINISTRATOR: ({"administrator"}, "Not administrator user"),
}


class HTTPError(Exception):
    """Answers `status` with RabbitMQ's `{"error": error, "reason": reason}`."""

    def __init__(self, status: int, error: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.error = error
        self.reason = reason


def not_found(reason: str = "Not Found") -> HTTPError:
    return HTTPError(404, "Object Not Found", reason)


def bad_request(reason: str) -> HTTPError:
    return HTTPError(400, "bad_request", reason)


@dataclass
class Response:
    """A result other than 200 with JSON: `body` None sends no body."""

    status: int
    body: Any = None
    headers: list[tuple[str, str]] = field(default_factory=list)


CREATED = Response(201)
NO_CONTENT = Response(204)


@dataclass
class Node:
    """What the API says about the process serving it."""

    name: str
    listeners: list[dict[str, Any]]
    """RabbitMQ's shape: {node, protocol, ip_address, port}."""
    started_at: float = field(default_factory=time.monotonic)


@dataclass
class Request:
    method: str
    params: dict[str, str]
    """The route's path parameters, percent-decoded."""
    query: dict[str, str]
    body: bytes
    user: User
    node: Node

    def json(self) -> dict[str, Any]:
        """The body as a JSON object; an empty body is an empty object, anything else 400 as RabbitMQ."""
        if not self.body.strip():
            return {}
        try:
            value = json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise bad_request("not_json") from None
        if not isinstance(value, dict):
            raise bad_request("not_json")
        return value


Handler = Callable[[Request, core.Broker], Any]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: tuple[str, ...]
    handler: Handler
    access: str

    def match(self, segments: list[str]) -> dict[str, str] | None:
        if len(segments) != len(self.pattern):
            return None
        params = {}
        for part, segment in zip(self.pattern, segments):
            if part.startswith("{"):
                params[part[1:-1]] = segment
            elif part != segment:
                return None
        return params

    @property
    def specificity(self) -> tuple[bool, ...]:
        """Sorts a route with a literal where another has a parameter first."""
        return tuple(part.startswith("{") for part in self.pattern)


class Routes:
    """The routes of one resource, added with `@routes.get("/api/x/{vhost}")` and the like."""

    def __init__(self, *parts: Routes) -> None:
        self.routes: list[Route] = [route for part in parts for route in part.routes]

    def add(self, method: str, path: str, handler: Handler, access: str = MANAGEMENT) -> None:
        self.routes.append(Route(method, tuple(path.split("/")[1:]), handler, access))

    def _decorator(self, method: str, path: str, access: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add(method, path, handler, access)
            return handler

        return register

    def get(self, path: str, access: str = MANAGEMENT) -> Callable[[Handler], Handler]:
        return self._decorator("GET", path, access)

    def put(self, path: str, access: str = MANAGEMENT) -> Callable[[Handler], Handler]:
        return self._decorator("PUT", path, access)

    def post(self, path: str, access: str = MANAGEMENT) -> Callable[[Handler], Handler]:
        return self._decorator("POST", path, access)

    def delete(self, path: str, access: str = MANAGEMENT) -> Callable[[Handler], Handler]:
        return self._decorator("DELETE", path, access)


class Api:
    """Answers HTTP requests for `broker`; `handle` is the `HTTPServer`'s callback."""

    def __init__(self, broker: core.Broker, routes: Routes, node: Node) -> None:
        self.broker = broker
        self.node = node
        self._routes = sorted(routes.routes, key=lambda route: route.specificity)

    async def handle(self, http: HTTPRequest) -> HTTPResponse:
        try:
            status, body, headers = await self._dispatch(http)
        except HTTPError as exc:
            status, body, headers = exc.status, {"error": exc.error, "reason": exc.reason}, []
            if status == 401:
                headers = [_WWW_AUTHENTICATE]
                if isinstance(exc, _Unauthorised):
                    body = None
        except Exception as exc:
            log.exception("%s %s failed", http.method, http.target)
            status, body, headers = 500, {"error": "internal_server_error", "reason": str(exc)}, []
        if body is None:
            return HTTPResponse(status, b"", headers)
        return HTTPResponse(status, json.dumps(body, separators=(",", ":")).encode(), [_JSON, *headers])

    async def _dispatch(self, http: HTTPRequest) -> tuple[int, Any, list[tuple[str, str]]]:
        target = urlsplit(http.target)
        # Split before decoding, so that `%2F` is a vhost's name and not a separator; a trailing
        # slash is ignored, as RabbitMQ does.
        segments = [unquote(segment) for segment in target.path.split("/")[1:]]
        if segments and segments[-1] == "":
            segments.pop()
        method = "GET" if http.method == "HEAD" else http.method
        route, params, allowed = self._match(method, segments)
        if route is None:
            if not allowed:
                raise not_found()
            if "GET" in allowed:
                allowed.add("HEAD")
            return 405, None, [("allow", ", ".join(sorted(allowed)))]
        user = self._authenticate(http.headers.get("authorization"), http.peer_address)
        for level in {MANAGEMENT, route.access}:
            tags, refusal = _ACCESS[level]
            if not tags.intersection(user.tags):
                raise HTTPError(401, "not_authorised", refusal)
        query = dict(parse_qsl(target.query, keep_blank_values=True))
        request = Request(http.method, params, query, http.body, user, self.node)
        with self.broker.commits.change() as change:
            result = route.handler(request, self.broker)
        if change.batch is not None:
            await _committed(self.broker.commits, change.batch)
        if isinstance(result, Response):
            return result.status, result.body, result.headers
        return 200, select_columns(result, query.get("columns")), []

    def _match(self, method: str, segments: list[str]) -> tuple[Route | None, dict[str, str], set[str]]:
        allowed: set[str] = set()
        pattern = None
        for route in self._routes:
            if pattern is not None and route.pattern != pattern:
                continue
            params = route.match(segments)
            if params is None:
                continue
            pattern = route.pattern
            if route.method == method:
                return route, params, allowed
            allowed.add(route.method)
        return None, {}, allowed

    def _authenticate(self, header: str | None, address: str) -> User:
        if header is None:
            raise _unauthorised()
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "basic":
            raise HTTPError(401, "not_authorized", "Login failed")
        try:
            name, _, password = base64.b64decode(credentials.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise HTTPError(400, "bad_request", "malformed authorization header") from None
        users = self.broker.users
        user = users.authenticate(name, password)
        if user is None:
            raise HTTPError(401, "not_authorized", "Login failed")
        if not users.may_log_in_from(name, address):
            raise HTTPError(401, "not_authorised", "User can only log in via localhost")
        return user


class _Unauthorised(HTTPError):
    """No credentials: RabbitMQ answers 401 without a body."""


def _unauthorised() -> HTTPError:
    return _Unauthorised(401, "", "")


class _Commit:
    def __init__(self) -> None:
        self.done = trio.Event()
        self.ok = False

    def batch_resolved(self, batch: int, ok: bool) -> None:
        self.ok = ok
        self.done.set()


async def _committed(tracker: CommitTracker, batch: int) -> None:
    commit = _Commit()
    tracker.wait(commit, batch)
    try:
        await commit.done.wait()
    finally:
        tracker.forget(commit)
    if not commit.ok:
        raise HTTPError(500, "internal_server_error", "the store failed to commit the change")


def select_columns(result: Any, columns: str | None) -> Any:
    """`?columns=a,b.c`: only those keys of an object, or of each object in a list. As RabbitMQ,
    a dotted name keeps the whole of its first part."""
    if not columns:
        return result
    wanted = {column.split(".", 1)[0] for column in columns.split(",")}
    if isinstance(result, list):
        return [_columns(item, wanted) for item in result]
    return _columns(result, wanted)


def _columns(item: Any, wanted: set[str]) -> Any:
    if not isinstance(item, dict):
        return item
    return {key: value for key, value in item.items() if key in wanted}


def boolean(body: dict[str, Any], key: str, default: bool) -> bool:
    """A flag as rabbitmqadmin sends them: JSON true or false, or the strings "true" and "false"."""
    value = body.get(key, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise bad_request(f"{key} must be true or false, not {json.dumps(value)}")


def integer(body: dict[str, Any], key: str, default: int) -> int:
    """A number as rabbitmqadmin sends them: JSON, or a string of digits."""
    value = body.get(key, default)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise bad_request(f"{key} must be an integer, not {json.dumps(value)}")


def vhost(broker: core.Broker, name: str) -> core.VHost:
    found = broker.vhosts.get(name)
    if found is None:
        raise not_found()
    return found


def exchange_name(name: str) -> str:
    """The management API names the default exchange `amq.default`."""
    return "" if name == "amq.default" else name
