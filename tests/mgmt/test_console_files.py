"""The web console's files: served at `/` by the API's server without credentials, each with its
content type and the headers that keep the console to its own scripts; nothing else of the package
is served."""

from __future__ import annotations

import pytest

from .client import ApiClient


@pytest.fixture
def ours(api: ApiClient, embedded) -> ApiClient:
    """The console is ours: RabbitMQ's UI is another program."""
    return api


@pytest.mark.parametrize("path, content_type", [
    ("/", "text/html; charset=utf-8"),
    ("/index.html", "text/html; charset=utf-8"),
    ("/console.js", "text/javascript; charset=utf-8"),
    ("/console.css", "text/css; charset=utf-8"),
    ("/favicon.svg", "image/svg+xml"),
])
def test_files_are_served_without_credentials(ours: ApiClient, path: str, content_type: str) -> None:
    reply = ours.get(path, auth=None)
    assert reply.status == 200
    assert reply.headers["content-type"] == content_type
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.headers["content-security-policy"] == "default-src 'self'; frame-ancestors 'none'"
    assert int(reply.headers["content-length"]) == len(reply.body) > 0


def test_the_page_loads_its_script_and_style(ours: ApiClient) -> None:
    page = ours.get("/", auth=None).body.decode()
    assert '<script type="module" src="console.js"></script>' in page
    assert '<link rel="stylesheet" href="console.css">' in page


def test_head_answers_headers_only(ours: ApiClient) -> None:
    reply = ours.request("HEAD", "/console.js", auth=None)
    assert reply.status == 200 and reply.body == b""
    assert int(reply.headers["content-length"]) == len(ours.get("/console.js", auth=None).body)


@pytest.mark.parametrize("path", ["/missing.js", "/__init__.py", "/..%2F__init__.py", "/..%2Fapi.py", "/console"])
def test_nothing_else_is_served(ours: ApiClient, path: str) -> None:
    assert ours.get(path, auth=None).status == 404


def test_the_api_still_asks_for_credentials(ours: ApiClient) -> None:
    assert ours.get("/api/overview", auth=None).status == 401
    assert ours.post("/console.js", {}, auth=None).status == 405
