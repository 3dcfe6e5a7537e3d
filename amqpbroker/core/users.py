"""Users: names, password hashes as RabbitMQ computes them, and tags.

A hash is stored the way RabbitMQ stores it, `base64(salt + H(salt + password))` with a 4-byte random
salt, so a definitions file exported from RabbitMQ imports here and its users log in unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Iterator

from ..store.base import DeleteRecord, PutRecord

if TYPE_CHECKING:
    from .journal import Journal

USER = "user"
"""The store record kind of a user, keyed by name."""
SHA256 = "rabbit_password_hashing_sha256"
_ALGORITHMS = {
    SHA256: hashlib.sha256,
    "rabbit_password_hashing_sha512": hashlib.sha512,
    "rabbit_password_hashing_md5": hashlib.md5,
}


def known_algorithm(algorithm: str) -> bool:
    return algorithm in _ALGORITHMS


def hash_password(password: str, algorithm: str = SHA256, salt: bytes | None = None) -> str:
    salt = os.urandom(4) if salt is None else salt
    digest = _ALGORITHMS[algorithm](salt + password.encode()).digest()
    return base64.b64encode(salt + digest).decode()


@dataclass
class User:
    name: str
    password_hash: str
    """Empty: the user cannot log in with a password."""
    tags: list[str] = field(default_factory=list)
    hashing_algorithm: str = SHA256
    limits: dict[str, int] = field(default_factory=dict)
    """`max-connections`, `max-channels` (see `limits`); a missing one is no limit."""

    def check_password(self, password: str) -> bool:
        if not self.password_hash or self.hashing_algorithm not in _ALGORITHMS:
            return False
        try:
            stored = base64.b64decode(self.password_hash, validate=True)
        except ValueError:
            return False
        expected = hash_password(password, self.hashing_algorithm, stored[:4])
        return hmac.compare_digest(expected, self.password_hash)

    def record(self) -> dict:
        return {
            "password_hash": self.password_hash,
            "hashing_algorithm": self.hashing_algorithm,
            "tags": self.tags,
            "limits": self.limits,
        }

    @classmethod
    def from_record(cls, name: str, value: dict) -> User:
        # Records written before users had limits have none.
        return cls(name, value["password_hash"], list(value["tags"]), value["hashing_algorithm"], value.get("limits", {}))


class Users:
    """The broker's users by name, written to the journal as `user` records.

    Users in `loopback_users` may log in only from a loopback address (RabbitMQ's `loopback_users`,
    `guest` by default), so a broker listening on every interface is not open to guest/guest.
    """

    def __init__(self, journal: Journal, loopback_users: Iterable[str] = ("guest",)) -> None:
        self.users: dict[str, User] = {}
        self.loopback_users = frozenset(loopback_users)
        self._journal = journal

    def put(self, user: User) -> None:
        """Adds `user`, or replaces the user of that name."""
        self.users[user.name] = user
        self._journal.append(PutRecord(USER, (user.name,), user.record()))

    def delete(self, name: str) -> bool:
        """Removes the user `name`; False if there was none."""
        if self.users.pop(name, None) is None:
            return False
        self._journal.append(DeleteRecord(USER, (name,)))
        return True

    def restore(self, record: PutRecord) -> None:
        """A user recovered from the store."""
        self.users[record.key[0]] = User.from_record(record.key[0], record.value)

    def get(self, name: str) -> User | None:
        return self.users.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self.users

    def __iter__(self) -> Iterator[User]:
        return iter(list(self.users.values()))

    def authenticate(self, name: str, password: str, address: str | None = None) -> User | None:
        """The user `name` if `password` is theirs and they may log in from `address` (the client's
        IP address; None for a caller that is not a network client)."""
        user = self.users.get(name)
        if user is None or not user.check_password(password):
            return None
        return user if address is None or self.may_log_in_from(name, address) else None

    def may_log_in_from(self, name: str, address: str) -> bool:
        """False for a loopback-only user at an address that is not loopback (or unknown: '')."""
        return name not in self.loopback_users or is_loopback(address)


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback
