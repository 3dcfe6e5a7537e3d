"""Users, vhosts, permissions and topic permissions in RabbitMQ's definitions format (`/api/definitions`,
`load_definitions`).

`export_access` writes them as RabbitMQ 3.10 does; `import_access` reads what RabbitMQ writes, from
3.x files back to those without a `hashing_algorithm` (then MD5 up to 3.5, as RabbitMQ assumes).
"""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING, Any, Callable, Mapping

from .limits import check_user_limits
from .users import SHA256, User, hash_password, known_algorithm

if TYPE_CHECKING:
    from .broker import Broker

# rabbit_versions whose files hash with MD5 and do not say so.
_MD5_VERSIONS = re.compile(r"2\.|3\.[1-5]\.")


class InvalidDefinitions(ValueError):
    """A definition that cannot be imported; the message says which and why."""


def export_access(broker: Broker) -> dict[str, list[dict[str, Any]]]:
    """`{"users": [...], "vhosts": [...], "permissions": [...], "topic_permissions": [...]}` as RabbitMQ
    3.10 exports them."""
    return {
        "users": [
            {
                "name": user.name,
                "password_hash": user.password_hash,
                "hashing_algorithm": user.hashing_algorithm,
                "tags": list(user.tags),
                "limits": dict(sorted(user.limits.items())),
            }
            for user in broker.users
        ],
        # RabbitMQ 3.10 exports a vhost's name only, not its description or tags.
        "vhosts": [{"name": name} for name in broker.vhosts],
        "permissions": [
            {
                "user": permission.user,
                "vhost": permission.vhost,
                "configure": permission.configure,
                "write": permission.write,
                "read": permission.read,
            }
            for permission in broker.permissions
        ],
        "topic_permissions": [permission.as_json() for permission in broker.topic_permissions],
    }


def import_access(broker: Broker, definitions: Mapping[str, Any], acting_user: str | None = None) -> None:
    """Adds (or replaces) the users, vhosts, permissions and topic permissions of a definitions document,
    in that order.

    A new vhost gives `acting_user` every permission in it, as an import through RabbitMQ's HTTP API
    does (None, as at boot, gives nobody any). Raises InvalidDefinitions for a malformed item or a
    permission whose user or vhost does not exist; what came before it stays imported, as in RabbitMQ.
    """
    version = str(definitions.get("rabbit_version") or definitions.get("rabbitmq_version") or "")
    default_algorithm = "rabbit_password_hashing_md5" if _MD5_VERSIONS.match(version) else SHA256
    for item in _items(definitions, "users"):
        save_user(broker, user_from_definition(_text(item, "name"), item, default_algorithm))
    for item in _items(definitions, "vhosts"):
        name = _text(item, "name")
        created = name not in broker.vhosts
        broker.add_vhost(name, granted_to=acting_user)
        if created and ("description" in item or "tags" in item):
            broker.describe_vhost(name, _text(item, "description", ""), parse_tags(item.get("tags", [])), False)
    for item in _items(definitions, "permissions"):
        set_permission(
            broker, _text(item, "vhost"), _text(item, "user"),
            _text(item, "configure"), _text(item, "write"), _text(item, "read"),
        )
    for item in _items(definitions, "topic_permissions"):
        set_topic_permission(
            broker, _text(item, "vhost"), _text(item, "user"),
            _text(item, "exchange"), _text(item, "write"), _text(item, "read"),
        )


def user_from_definition(name: str, item: Mapping[str, Any], default_algorithm: str = SHA256) -> User:
    """A user from a definitions item or an HTTP API body, with RabbitMQ's rules: `tags` (a list or a
    comma-separated string) must be there; `password` (hashed here) or `password_hash` with
    `hashing_algorithm`, or neither for a user who cannot log in with a password; `limits` may be."""
    if "tags" not in item:
        raise InvalidDefinitions("tags_not_present")
    tags = parse_tags(item["tags"])
    limits = item.get("limits") or {}
    try:
        check_user_limits(limits)
    except ValueError as exc:
        raise InvalidDefinitions(str(exc)) from None
    if "password" in item and "password_hash" in item:
        raise InvalidDefinitions("both_password_and_password_hash_are_provided")
    if "password" in item:
        return User(name, hash_password(_text(item, "password")), tags, limits=dict(limits))
    password_hash = _text(item, "password_hash", "")
    try:
        base64.b64decode(password_hash, validate=True)
    except ValueError:
        raise InvalidDefinitions(f"not_base64: '{password_hash}'") from None
    algorithm = _text(item, "hashing_algorithm", default_algorithm)
    if not known_algorithm(algorithm):
        raise InvalidDefinitions(f"unknown hashing_algorithm '{algorithm}'")
    return User(name, password_hash, tags, algorithm, dict(limits))


def save_user(broker: Broker, user: User) -> None:
    """Adds `user`, or replaces the user of that name, who keeps the limits `user` does not set, as
    RabbitMQ keeps them."""
    existing = broker.users.get(user.name)
    if existing is not None:
        user.limits = {**existing.limits, **user.limits}
    broker.users.put(user)


def set_permission(broker: Broker, vhost: str, user: str, configure: str, write: str, read: str) -> None:
    """Grants a permission after RabbitMQ's checks: the user and the vhost exist, the expressions compile."""
    _grant(broker, vhost, user, lambda: broker.permissions.set(vhost, user, configure, write, read))


def set_topic_permission(broker: Broker, vhost: str, user: str, exchange: str, write: str, read: str) -> None:
    """Grants a topic permission after the same checks as a permission's."""
    _grant(broker, vhost, user, lambda: broker.topic_permissions.set(vhost, user, exchange, write, read))


def _grant(broker: Broker, vhost: str, user: str, grant: Callable[[], object]) -> None:
    if user not in broker.users:
        raise InvalidDefinitions(f"no_such_user: '{user}'")
    if vhost not in broker.vhosts:
        raise InvalidDefinitions(f"no_such_vhost: '{vhost}'")
    try:
        grant()
    except re.error as exc:
        raise InvalidDefinitions(f"invalid_regexp: '{exc.pattern}': {exc.msg}") from None


def parse_tags(tags: object) -> list[str]:
    """Tags as RabbitMQ takes them: a list, or a string of comma-separated names."""
    if isinstance(tags, str):
        return [tag.strip() for tag in tags.split(",") if tag.strip()]
    if isinstance(tags, list) and all(isinstance(tag, str) for tag in tags):
        return list(tags)
    raise InvalidDefinitions(f"tags must be a list or a comma-separated string, not {tags!r}")


def _items(definitions: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    items = definitions.get(key) or []
    if not isinstance(items, list) or not all(isinstance(item, Mapping) for item in items):
        raise InvalidDefinitions(f"'{key}' must be a list of objects")
    return items


_REQUIRED = object()


def _text(item: Mapping[str, Any], key: str, default: Any = _REQUIRED) -> str:
    value = item.get(key, default)
    if value is _REQUIRED:
        raise InvalidDefinitions(f"'{key}' is missing from {dict(item)!r}")
    if not isinstance(value, str):
        raise InvalidDefinitions(f"'{key}' must be a string in {dict(item)!r}")
    return value
