"""`amqpbroker ctl`: a command-line client of a running broker's management HTTP API.

Each verb is one or two API requests; lists print as aligned tables, one row per object. An answer
the API refuses is printed with its reason (`{"error": ..., "reason": ...}`), exit status 1; a
command line argparse refuses exits 2.
"""

from __future__ import annotations

import argparse
import base64
import json
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

DEFAULT_API = "http://localhost:15672"

_POLICY_COLUMNS = (
    ("vhost", "vhost"), ("name", "name"), ("pattern", "pattern"), ("apply_to", "apply-to"), ("priority", "priority"),
    ("definition", "definition"),
)
# What `list` shows of each kind: the API's path (all vhosts, then one) and its columns, each a
# heading and the dotted path of a field.
_LISTS: dict[str, tuple[str, str | None, tuple[tuple[str, str], ...]]] = {
    "queues": ("/api/queues", "/api/queues/{vhost}", (
        ("vhost", "vhost"), ("name", "name"), ("type", "type"), ("durable", "durable"), ("messages", "messages"),
        ("ready", "messages_ready"), ("unacked", "messages_unacknowledged"), ("consumers", "consumers"),
    )),
    "exchanges": ("/api/exchanges", "/api/exchanges/{vhost}", (
        ("vhost", "vhost"), ("name", "name"), ("type", "type"), ("durable", "durable"),
        ("auto_delete", "auto_delete"), ("internal", "internal"),
    )),
    "bindings": ("/api/bindings", "/api/bindings/{vhost}", (
        ("vhost", "vhost"), ("source", "source"), ("destination", "destination"),
        ("destination_type", "destination_type"), ("routing_key", "routing_key"), ("arguments", "arguments"),
    )),
    "connections": ("/api/connections", "/api/vhosts/{vhost}/connections", (
        ("name", "name"), ("user", "user"), ("vhost", "vhost"), ("protocol", "protocol"), ("channels", "channels"),
    )),
    "channels": ("/api/channels", "/api/vhosts/{vhost}/channels", (
        ("name", "name"), ("user", "user"), ("vhost", "vhost"), ("consumers", "consumer_count"),
        ("unacked", "messages_unacknowledged"), ("prefetch", "prefetch_count"),
    )),
    "consumers": ("/api/consumers", "/api/consumers/{vhost}", (
        ("vhost", "queue.vhost"), ("queue", "queue.name"), ("consumer_tag", "consumer_tag"),
        ("channel", "channel_details.name"), ("ack_required", "ack_required"), ("prefetch", "prefetch_count"),
    )),
    "users": ("/api/users", None, (("name", "name"), ("tags", "tags"))),
    "vhosts": ("/api/vhosts", None, (("name", "name"), ("messages", "messages"))),
    "policies": ("/api/policies", "/api/policies/{vhost}", _POLICY_COLUMNS),
    "operator-policies": ("/api/operator-policies", "/api/operator-policies/{vhost}", _POLICY_COLUMNS),
    "vhost-limits": ("/api/vhost-limits", "/api/vhost-limits/{vhost}", (("vhost", "vhost"), ("limits", "value"))),
    "user-limits": ("/api/user-limits", None, (("user", "user"), ("limits", "value"))),
    "topic-permissions": ("/api/topic-permissions", "/api/vhosts/{vhost}/topic-permissions", (
        ("vhost", "vhost"), ("user", "user"), ("exchange", "exchange"), ("write", "write"), ("read", "read"),
    )),
}
# The kinds `list --of-user` narrows to one user's, and the API's path for them.
_USER_LISTS = {
    "topic-permissions": "/api/users/{user}/topic-permissions",
    "user-limits": "/api/user-limits/{user}",
}


class ApiError(Exception):
    """The API refused a request, or could not be reached: the one line to print."""


class Client:
    """Requests to the API at `base` with basic-auth credentials; JSON in and out."""

    def __init__(self, base: str, user: str, password: str, context: ssl.SSLContext | None = None) -> None:
        self._base = base.rstrip("/")
        self._authorization = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self._context = context

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        """The answer's JSON (None for an empty one); ApiError with the API's reason."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self._base + path, data=data, method=method)
        request.add_header("Authorization", self._authorization)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, context=self._context, timeout=30) as response:
                answer = response.read()
        except urllib.error.HTTPError as exc:
            raise ApiError(f"{method} {path}: {exc.code} {_reason(exc.read()) or exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise ApiError(f"cannot reach the API at {self._base}: {reason}") from None
        return json.loads(answer) if answer.strip() else None


def _reason(body: bytes) -> str:
    try:
        answer = json.loads(body)
    except ValueError:
        return body.decode(errors="replace").strip()
    if isinstance(answer, dict) and "reason" in answer:
        return f"{answer.get('error', '')}: {answer['reason']}".lstrip(": ")
    return str(answer)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """`rows` as aligned text: a heading line, then one line per row; a column as wide as its widest cell."""
    cells = [[heading for heading, _ in columns]]
    cells += [[_cell(_field(row, path)) for _, path in columns] for row in rows]
    widths = [max(len(line[index]) for line in cells) for index in range(len(columns))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells)


def _field(row: dict[str, Any], path: str) -> Any:
    value: Any = row
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ",".join(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _path(template: str, **names: str) -> str:
    return template.format(**{name: quote(value, safe="") for name, value in names.items()})


# Verbs: each takes the client and the parsed arguments, and returns what to print.


def _list(client: Client, args: argparse.Namespace) -> str:
    every, one, columns = _LISTS[args.kind]
    path = every if args.vhost is None or one is None else _path(one, vhost=args.vhost)
    if args.of_user is not None:
        if args.kind not in _USER_LISTS:
            raise ApiError(f"--of-user lists only {' and '.join(_USER_LISTS)}")
        path = _path(_USER_LISTS[args.kind], user=args.of_user)
    return table(client.request("GET", path), columns)


def _purge(client: Client, args: argparse.Namespace) -> str:
    client.request("DELETE", _path("/api/queues/{vhost}/{name}/contents", vhost=_vhost(args), name=args.queue))
    return f"purged queue '{args.queue}'"


def _delete(client: Client, args: argparse.Namespace) -> str:
    path = "/api/queues/{vhost}/{name}" if args.kind == "queue" else "/api/exchanges/{vhost}/{name}"
    client.request("DELETE", _path(path, vhost=_vhost(args), name=args.name))
    return f"deleted {args.kind} '{args.name}'"


def _add_user(client: Client, args: argparse.Namespace) -> str:
    tags = [tag.strip() for tag in args.tags.split(",") if tag.strip()]
    client.request("PUT", _path("/api/users/{user}", user=args.name), {"password": args.password, "tags": tags})
    return f"added user '{args.name}'"


def _set_permissions(client: Client, args: argparse.Namespace) -> str:
    body = {"configure": args.configure, "write": args.write, "read": args.read}
    client.request("PUT", _path("/api/permissions/{vhost}/{user}", vhost=_vhost(args), user=args.user), body)
    return f"set permissions of user '{args.user}' in vhost '{_vhost(args)}'"


def _topic_permissions_path(args: argparse.Namespace, exchange: str | None = None) -> str:
    """The path of the user's topic permissions in the vhost, or of those on `exchange` only."""
    path = _path("/api/topic-permissions/{vhost}/{user}", vhost=_vhost(args), user=args.user)
    return path if exchange is None else path + _path("/{exchange}", exchange=exchange)


def _set_topic_permissions(client: Client, args: argparse.Namespace) -> str:
    body = {"exchange": args.exchange, "write": args.write, "read": args.read}
    client.request("PUT", _topic_permissions_path(args), body)
    return f"set topic permissions of user '{args.user}' on exchange '{args.exchange}' in vhost '{_vhost(args)}'"


def _clear_topic_permissions(client: Client, args: argparse.Namespace) -> str:
    client.request("DELETE", _topic_permissions_path(args, args.exchange))
    which = "" if args.exchange is None else f" on exchange '{args.exchange}'"
    return f"cleared topic permissions of user '{args.user}'{which} in vhost '{_vhost(args)}'"


# A policy's or an operator policy's path in the API (after the vhost and name), by `set`'s and
# `clear`'s WHAT.
_POLICY_PATHS = {"policy": "/api/policies/{vhost}/{name}", "operator-policy": "/api/operator-policies/{vhost}/{name}"}


def _set_policy(client: Client, args: argparse.Namespace) -> str:
    try:
        definition = json.loads(args.definition)
    except ValueError as exc:
        raise ApiError(f"the definition is not JSON: {exc}") from None
    body = {"pattern": args.pattern, "definition": definition, "priority": args.priority, "apply-to": args.apply_to}
    client.request("PUT", _path(_POLICY_PATHS[args.what], vhost=_vhost(args), name=args.name), body)
    return f"set {args.what.replace('-', ' ')} '{args.name}' in vhost '{_vhost(args)}'"


def _clear_policy(client: Client, args: argparse.Namespace) -> str:
    client.request("DELETE", _path(_POLICY_PATHS[args.what], vhost=_vhost(args), name=args.name))
    return f"cleared {args.what.replace('-', ' ')} '{args.name}' in vhost '{_vhost(args)}'"


def _limit_path(args: argparse.Namespace) -> str:
    if args.what == "vhost-limit":
        return _path("/api/vhost-limits/{vhost}/{name}", vhost=_vhost(args), name=args.name)
    return _path("/api/user-limits/{user}/{name}", user=args.user, name=args.name)


def _limit_owner(args: argparse.Namespace) -> str:
    return f"vhost '{_vhost(args)}'" if args.what == "vhost-limit" else f"user '{args.user}'"


def _set_limit(client: Client, args: argparse.Namespace) -> str:
    client.request("PUT", _limit_path(args), {"value": args.value})
    return f"set {args.name} of {_limit_owner(args)} to {args.value}"


def _clear_limit(client: Client, args: argparse.Namespace) -> str:
    client.request("DELETE", _limit_path(args))
    return f"cleared {args.name} of {_limit_owner(args)}"


def _export(client: Client, args: argparse.Namespace) -> str:
    definitions = client.request("GET", "/api/definitions")
    with open(args.file, "w", encoding="utf-8") as file:
        json.dump(definitions, file, indent=2)
    return f"exported definitions to {args.file}"


def _import(client: Client, args: argparse.Namespace) -> str:
    try:
        with open(args.file, encoding="utf-8") as file:
            definitions = json.load(file)
    except OSError as exc:
        raise ApiError(f"{args.file}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ApiError(f"{args.file}: not JSON: {exc}") from None
    client.request("POST", "/api/definitions", definitions)
    return f"imported definitions from {args.file}"


def _close_connection(client: Client, args: argparse.Namespace) -> str:
    client.request("DELETE", _path("/api/connections/{name}", name=args.name), headers={"X-Reason": args.reason})
    return f"closed connection '{args.name}'"


def _vhost(args: argparse.Namespace) -> str:
    return "/" if args.vhost is None else args.vhost


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="amqpbroker ctl", description="Talks to a running broker's management API.")
    parser.add_argument("--api", default=DEFAULT_API, help="the API's base URL (default: %(default)s)")
    # Other dests than the verbs' own `user` and `password` arguments.
    parser.add_argument("--user", dest="api_user", default="guest", metavar="USER", help="(default: %(default)s)")
    parser.add_argument("--password", dest="api_password", default="guest", metavar="PASSWORD",
                        help="(default: %(default)s)")
    parser.add_argument("--cafile", metavar="FILE", help="CA certificates (PEM) to verify an https API with")
    parser.add_argument("--certfile", metavar="FILE",
                        help="a client certificate and its key (PEM), for an https API that requires one")
    # Accepted before the verb and after it; a value after it wins.
    vhost = argparse.ArgumentParser(add_help=False)
    vhost.add_argument("--vhost", "-p", default=argparse.SUPPRESS,
                       help="the virtual host (default: all for list, '/' for the rest)")
    parser.add_argument("--vhost", "-p", default=None, help=argparse.SUPPRESS)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(subparsers: Any, name: str, run: Callable[[Client, argparse.Namespace], str], help: str,
             ) -> argparse.ArgumentParser:
        command = subparsers.add_parser(name, parents=[vhost], help=help, description=help)
        command.set_defaults(run=run)
        return command

    list_ = verb(verbs, "list", _list, "list objects of one kind")
    list_.add_argument("kind", choices=list(_LISTS))
    list_.add_argument("--of-user", metavar="USER", help=f"only this user's ({', '.join(_USER_LISTS)})")
    verb(verbs, "purge", _purge, "purge a queue's ready messages").add_argument("queue")
    delete = verb(verbs, "delete", _delete, "delete a queue or an exchange")
    delete.add_argument("kind", choices=["queue", "exchange"])
    delete.add_argument("name")

    add = verbs.add_parser("add", help="add a user").add_subparsers(dest="what", required=True, metavar="WHAT")
    user = verb(add, "user", _add_user, "add a user, or change an existing one's password and tags")
    user.add_argument("name")
    user.add_argument("password")
    user.add_argument("--tags", default="", help="comma-separated, e.g. administrator")

    set_ = verbs.add_parser("set", help="set permissions, topic permissions, a policy or a limit").add_subparsers(
        dest="what", required=True, metavar="WHAT")
    permissions = verb(set_, "permissions", _set_permissions, "set a user's permissions in the vhost")
    permissions.add_argument("user")
    for kind in ("configure", "write", "read"):
        permissions.add_argument(kind, help=f"a regular expression of the names the user may {kind}")
    topic_permissions = verb(set_, "topic-permissions", _set_topic_permissions,
                             "set a user's topic permissions on a topic exchange in the vhost")
    topic_permissions.add_argument("user")
    topic_permissions.add_argument("exchange")
    topic_permissions.add_argument("write", help="a regular expression of the routing keys the user may publish with")
    topic_permissions.add_argument("read", help="a regular expression of the routing keys the user may bind with")
    for what, help in (
        ("policy", "set a policy in the vhost"),
        ("operator-policy", "set an operator policy in the vhost: limits that cap what queues and policies ask"),
    ):
        policy = verb(set_, what, _set_policy, help)
        policy.add_argument("name")
        policy.add_argument("pattern", help="a regular expression of the queue or exchange names it applies to")
        policy.add_argument("definition", help='JSON, e.g. \'{"max-length": 1000}\'')
        policy.add_argument("--priority", type=int, default=0, help="(default: %(default)s)")
        policy.add_argument("--apply-to", default="all", choices=["all", "queues", "exchanges"],
                            help="(default: %(default)s)")
    value_help = "how many; negative for no limit, 0 for none"
    vhost_limit = verb(set_, "vhost-limit", _set_limit, "set a limit of the vhost")
    vhost_limit.add_argument("name", help="max-connections or max-queues")
    vhost_limit.add_argument("value", type=int, help=value_help)
    user_limit = verb(set_, "user-limit", _set_limit, "set a limit of a user")
    user_limit.add_argument("user")
    user_limit.add_argument("name", help="max-connections or max-channels")
    user_limit.add_argument("value", type=int, help=value_help)

    clear = verbs.add_parser("clear", help="clear a policy, a limit or topic permissions").add_subparsers(
        dest="what", required=True, metavar="WHAT")
    verb(clear, "policy", _clear_policy, "clear a policy of the vhost").add_argument("name")
    verb(clear, "operator-policy", _clear_policy, "clear an operator policy of the vhost").add_argument("name")
    clear_topic_permissions = verb(clear, "topic-permissions", _clear_topic_permissions,
                                   "clear a user's topic permissions in the vhost, or on one exchange only")
    clear_topic_permissions.add_argument("user")
    clear_topic_permissions.add_argument("exchange", nargs="?")
    verb(clear, "vhost-limit", _clear_limit, "clear a limit of the vhost").add_argument("name")
    clear_user_limit = verb(clear, "user-limit", _clear_limit, "clear a limit of a user")
    clear_user_limit.add_argument("user")
    clear_user_limit.add_argument("name")

    verb(verbs, "export", _export, "write every definition to a JSON file").add_argument("file")
    verb(verbs, "import", _import, "import definitions from a JSON file").add_argument("file")
    close = verbs.add_parser("close", help="close a connection").add_subparsers(
        dest="what", required=True, metavar="WHAT")
    connection = verb(close, "connection", _close_connection, "close a client connection, by its name")
    connection.add_argument("name")
    connection.add_argument("--reason", default="Closed via amqpbroker ctl", help="(default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    context = None
    if args.cafile or args.certfile:
        context = ssl.create_default_context(cafile=args.cafile)
        if args.certfile:
            context.load_cert_chain(args.certfile)
    try:
        print(args.run(Client(args.api, args.api_user, args.api_password, context), args))
    except ApiError as exc:
        print(f"amqpbroker ctl: error: {exc}", file=sys.stderr)
        return 1
    return 0
