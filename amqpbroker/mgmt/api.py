"""The management API's request handling, as RabbitMQ's management plugin answers: routing,
basic authentication and tag gating, JSON in and out, errors, `?columns=`.

Resources live in their own modules, each with a `Routes` of its handlers. A handler is a plain
function `handler(request, broker) -> result` run on the broker's trio loop: it reads state, or
changes it through the same core operations AMQP uses, and returns JSON-able data (200), or a
`Response` for another status, or raises `HTTPError`. One that lists objects without bound (queues,
exchanges, bindings, connections, channels, consumers) returns an iterator of their JSON instead,
and the API takes it, and encodes the answer, in turns (`in_turns`). One that must wait (for message
bodies read back from the store) is a coroutine function instead. A change that the store must
commit is answered once its batch is committed, as a channel's reply to a durable declaration is
(for a coroutine, the batch of whatever the journal gathered while it ran).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import decimal
import inspect
import json
import re
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterable, Iterator, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import trio

from .. import core
from ..core.permissions import Access
from ..core.users import User
from ..server.persister import committed
from .http import HTTPRequest, HTTPResponse

if TYPE_CHECKING:
    from .shovels import ShovelView

log = logging.getLogger("amqpbroker.mgmt")

_WWW_AUTHENTICATE = ("www-authenticate", 'Basic realm="RabbitMQ Management"')
_JSON = ("content-type", "application/json")
_ENCODER = json.JSONEncoder(separators=(",", ":"))

TURN = 0.001
"""Seconds a listing is built or encoded for before the broker's other tasks get a turn: listing
a thousand queues takes tens of milliseconds, which no delivery should wait for."""

T = TypeVar("T")

# Who may call a route, by the user's tags, and RabbitMQ's words for those who may not.
MANAGEMENT = "management"
MONITORING = "monitoring"
POLICYMAKER = "policymaker"
ADMINISTRATOR = "administrator"
PUBLIC = "public"
"""A route anyone may call, without credentials: the console's static files."""
_ACCESS = {
    MANAGEMENT: ({"management", "policymaker", "monitoring", "administrator"}, "Not management user"),
    MONITORING: ({"monitoring", "administrator"}, "Not monitor user"),
    POLICYMAKER: ({"policymaker", "administrator"}, "Not policymaker user"),
    ADMINISTRATOR: ({"administrator"}, "Not administrator user"),
}


class HTTPError(Exception):
    """Answers `status` with RabbitMQ's `{"error": error, "reason": reason}`."""

    def __init__(self, status: int, error: str, reason: Any) -> None:
        super().__init__(reason)
        self.status = status
        self.error = error
        self.reason = reason


def check_object_access(request: Request, level: str) -> None:
    """401 unless `request`'s user has a tag of `level` (POLICYMAKER, MONITORING ...), worded as
    RabbitMQ words a refusal of an object rather than of a route: for routes any management user
    may read but only some may change."""
    if not _ACCESS[level][0].intersection(request.user.tags):
        raise HTTPError(401, "not_authorised", "User not authorised to access object")


def not_found(reason: str = "Not Found") -> HTTPError:
    return HTTPError(404, "Object Not Found", reason)


def bad_request(reason: Any) -> HTTPError:
    return HTTPError(400, "bad_request", reason)


@dataclass
class Response:
    """A result other than 200 with JSON: `body` None sends no body, bytes are sent as they are
    (with their content-type in `headers`)."""

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
    alarms: Callable[[], Collection[str]] = frozenset
    """The resources whose alarm is on: "memory", "disk"."""
    disk_free: Callable[[], int | None] = lambda: None
    """Free bytes on the data directory's disk as last checked; None when it is not checked."""
    disk_free_limit: int | None = None
    started_at: float = field(default_factory=time.monotonic)
    shovels: ShovelView | None = None
    """The running shovels; None where there are none."""


@dataclass
class Request:
    method: str
    params: dict[str, str]
    """The route's path parameters, percent-decoded."""
    query: dict[str, str]
    headers: dict[str, str]
    """Lower-case names."""
    body: bytes
    user: User | None
    """None only on a `PUBLIC` route."""
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
        self.routes.append(Route(method, tuple(part for part in path.split("/") if part), handler, access))

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
        if isinstance(body, bytes):
            return HTTPResponse(status, body, headers)
        return HTTPResponse(status, (await encode(body)).encode(), [_JSON, *headers])

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
        user = None if route.access == PUBLIC else self._authorise(http, route)
        query = dict(parse_qsl(target.query, keep_blank_values=True))
        request = Request(http.method, params, query, http.headers, http.body, user, self.node)
        with self.broker.commits.change() as change:
            try:
                result = route.handler(request, self.broker)
                if inspect.isawaitable(result):
                    result = await result
            except core.AMQPException as exc:
                raise _from_amqp(exc) from None
        if change.batch is not None and not await committed(self.broker.commits, change.batch):
            raise HTTPError(500, "internal_server_error", "the store failed to commit the change")
        if isinstance(result, Iterator):
            # Outside the change: what the journal gathers meanwhile is other tasks' to wait for.
            result = await in_turns(result)
        if isinstance(result, Response):
            return result.status, result.body, result.headers
        return 200, listing(result, query), []

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

    def _authorise(self, http: HTTPRequest, route: Route) -> User:
        """The user the request authenticates as, if the route's tags let them call it."""
        user = self._authenticate(http.headers.get("authorization"), http.peer_address)
        for level in {MANAGEMENT, route.access}:
            tags, refusal = _ACCESS[level]
            if not tags.intersection(user.tags):
                raise HTTPError(401, "not_authorised", refusal)
        return user

    def _authenticate(self, header: str | None, address: str) -> User:
        if header is None:
            raise _Unauthorised()
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


def _from_amqp(exc: core.AMQPException) -> HTTPError:
    """A core refusal as RabbitMQ's management plugin reports it: access refused is 401, a missing
    object 404, anything else (inequivalent arguments, an object in use, ...) 400, with the reply
    text less its code's name."""
    reason = exc.reply_text.partition(" - ")[2]
    if exc.reply_code == 403:
        return HTTPError(401, "not_authorised", "Access refused.")
    if exc.reply_code == 404:
        return HTTPError(404, "not_found", reason)
    return bad_request(reason)


class _Unauthorised(HTTPError):
    """No credentials: RabbitMQ answers 401 without a body."""

    def __init__(self) -> None:
        super().__init__(401, "", "")


async def in_turns(items: Iterable[T]) -> list[T]:
    """`items` taken into a list, with a checkpoint whenever a `TURN` has passed since the last, so
    that a long listing keeps the broker's other tasks waiting a `TURN` at a time, not throughout.
    What a listing shows of each object is as of the turn that took it, as in RabbitMQ, whose
    statistics are not one snapshot either."""
    taken: list[T] = []
    turn_ends = time.perf_counter() + TURN
    for item in items:
        taken.append(item)
        if time.perf_counter() >= turn_ends:
            await trio.lowlevel.checkpoint()
            turn_ends = time.perf_counter() + TURN
    return taken


async def encode(body: Any) -> str:
    """`body` as compact JSON, as `json.dumps(body, separators=(",", ":"))` writes it, encoded in
    turns an item at a time where it is a list, or an object with lists as values (a page)."""
    if isinstance(body, list):
        return "[" + ",".join(await in_turns(map(_ENCODER.encode, body))) + "]"
    if isinstance(body, dict) and all(isinstance(key, str) for key in body):
        members = [
            _ENCODER.encode(key) + ":" + (await encode(value) if isinstance(value, list) else _ENCODER.encode(value))
            for key, value in body.items()
        ]
        return "{" + ",".join(members) + "}"
    return _ENCODER.encode(body)


def listing(result: Any, query: dict[str, str]) -> Any:
    """A 200's JSON as the query asks: a list sorted (`?sort=key&sort_reverse=true`) and paginated
    (`?page=N&page_size=M`, filtered by `?name=` as a substring or with `use_regex=true` a regular
    expression, in RabbitMQ's envelope); then only `?columns=`."""
    columns = query.get("columns")
    if not isinstance(result, list):
        return select_columns(result, columns)
    if "sort" in query:
        key = query["sort"]
        result = sorted(result, key=lambda item: _sort_value(item, key), reverse=query.get("sort_reverse") == "true")
    if "page" in query:
        return _page(result, query, columns)
    return select_columns(result, columns)


def _sort_value(item: Any, key: str) -> tuple:
    """`item`'s value at a dotted key, comparable with any other's: numbers before strings."""
    for part in key.split("."):
        item = item.get(part) if isinstance(item, dict) else None
    if isinstance(item, (int, float)) and not isinstance(item, bool):
        return (1, item, "")
    return (0, 0, "" if item is None else str(item))


def _page(items: list[Any], query: dict[str, str], columns: str | None) -> dict[str, Any]:
    page, size = query["page"], query.get("page_size", "100")
    if not (page.isdigit() and size.isdigit()):
        raise bad_request("Pagination parameters are invalid")
    number, page_size = int(page), int(size)
    if number < 1 or not 1 <= page_size <= 500:
        raise HTTPError(400, "invalid_pagination_parameters",
                        f"Invalid pagination parameters: page number {number}, page size {page_size}")
    name = query.get("name")
    filtered = items
    if name:
        if query.get("use_regex") == "true":
            try:
                pattern = re.compile(name)
            except re.error as exc:
                raise bad_request(f"invalid regular expression {name!r}: {exc}") from None
            filtered = [item for item in items if pattern.search(str(item.get("name", "")))]
        else:
            filtered = [item for item in items if name in str(item.get("name", ""))]
    start = (number - 1) * page_size
    # As RabbitMQ: the page just past the end is empty, the ones after it out of range.
    if number > 1 and start > len(filtered):
        raise HTTPError(400, "page_out_of_range",
                        f"Page out of range, page: {number} page size: {page_size}, len: {len(filtered)}")
    shown = filtered[start:start + page_size]
    return {
        "filtered_count": len(filtered),
        "item_count": len(shown),
        "items": select_columns(shown, columns),
        "page": number,
        "page_count": -(-len(filtered) // page_size),
        "page_size": page_size,
        "total_count": len(items),
    }


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


def required(body: dict[str, Any], *keys: str) -> None:
    """400 naming every missing key, in RabbitMQ's words."""
    missing = [key for key in keys if key not in body]
    if missing:
        raise bad_request("[" + ",".join(f"{{key_missing,{key}}}" for key in missing) + "]")


def strings(body: dict[str, Any], *keys: str) -> list[str]:
    """The values of `keys`, which must all be there (400 naming those missing, as `required`) and be
    strings."""
    required(body, *keys)
    values = [body[key] for key in keys]
    if not all(isinstance(value, str) for value in values):
        raise bad_request(f"{', '.join(keys[:-1])} and {keys[-1]} must be strings")
    return values


def boolean(value: Any) -> bool:
    """A flag as tools send them: JSON true or false, or the strings "true" and "false"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    raise bad_request(["not_boolean", value])


def integer(value: Any) -> int:
    """A number as tools send them: JSON, or a string of digits ("1")."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise bad_request(["not_integer", value])


def jsonable(value: Any) -> Any:
    """An AMQP field value (arguments, headers) as JSON: byte strings as text, timestamps as seconds."""
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.datetime):
        return int(value.timestamp())
    return value


def vhost(request: Request, broker: core.Broker, name: str | None = None) -> core.VHost:
    """The vhost named `name` (by default the path's `{vhost}`); 404 if there is none, and 401 for a
    user other than an administrator without a permission in it, as RabbitMQ answers. Handlers find
    a path's vhost here and list through `vhosts`, so what a user may see is decided in these two."""
    found = broker.vhosts.get(request.params["vhost"] if name is None else name)
    if found is None:
        raise not_found()
    user = request.user
    if ADMINISTRATOR not in user.tags and broker.permissions.get(found.name, user.name) is None:
        raise HTTPError(401, "not_authorised", "User not authorised to access virtual host")
    return found


def vhosts(request: Request, broker: core.Broker) -> list[core.VHost]:
    """The vhosts whose queues, exchanges and bindings `request`'s user sees in listings, by name:
    all of them for administrators; for others, monitoring users too, as in RabbitMQ, those they hold
    a permission in."""
    user = request.user
    names = sorted(broker.vhosts)
    if ADMINISTRATOR not in user.tags:
        names = [name for name in names if broker.permissions.get(name, user.name) is not None]
    return [broker.vhosts[name] for name in names]


def access(request: Request, broker: core.Broker, where: core.VHost) -> Access:
    """What `request`'s user may do in `where`, checked as for an AMQP connection of theirs: a
    refusal is 401 "Access refused.", as RabbitMQ's management plugin answers it."""
    return broker.permissions.access(where.name, request.user.name)


def exchange_name(name: str) -> str:
    """The management API names the default exchange `amq.default`."""
    return "" if name == "amq.default" else name
