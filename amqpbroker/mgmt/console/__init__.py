"""The web console: static HTML, CSS and JavaScript served at `/` by the API's own server, without
credentials; the pages call the API with the basic-auth credentials of their login form, as
RabbitMQ's management UI does. No build step: the files here are what the browser runs."""

from __future__ import annotations

from importlib import resources

from ... import core
from ..api import PUBLIC, Request, Response, Routes, not_found

routes = Routes()

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
# The console runs only its own scripts and styles, and is never framed: an injected tag would
# not run even where escaping failed.
_HEADERS = [
    ("content-security-policy", "default-src 'self'; frame-ancestors 'none'"),
    ("x-content-type-options", "nosniff"),
    ("cache-control", "no-cache"),
]


def _files() -> dict[str, bytes]:
    found = {}
    for entry in resources.files(__package__).iterdir():
        suffix = entry.name[entry.name.rfind("."):]
        if entry.is_file() and suffix in _CONTENT_TYPES:
            found[entry.name] = entry.read_bytes()
    return found


_FILES = _files()


def _serve(name: str) -> Response:
    body = _FILES.get(name)
    if body is None:
        raise not_found()
    content_type = _CONTENT_TYPES[name[name.rfind("."):]]
    return Response(200, body, [("content-type", content_type), *_HEADERS])


@routes.get("/", access=PUBLIC)
def index(request: Request, broker: core.Broker) -> Response:
    return _serve("index.html")


@routes.get("/{file}", access=PUBLIC)
def static_file(request: Request, broker: core.Broker) -> Response:
    return _serve(request.params["file"])
