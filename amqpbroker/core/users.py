"""Users: names, password hashes as RabbitMQ computes them, and tags.

A hash is stored the way RabbitMQ stores it, `base64(salt + H(salt + password))` with a 4-byte random
salt, so a definitions file exported from RabbitMQ imports here and its users log in unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass, field

SHA256 = "rabbit_password_hashing_sha256"
_ALGORITHMS = {
    SHA256: hashlib.sha256,
    "rabbit_password_hashing_sha512": hashlib.sha512,
    "rabbit_password_hashing_md5": hashlib.md5,
}


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

    def check_password(self, password: str) -> bool:
        if not self.password_hash or self.hashing_algorithm not in _ALGORITHMS:
            return False
        try:
            stored = base64.b64decode(self.password_hash, validate=True)
        except ValueError:
            return False
        expected = hash_password(password, self.hashing_algorithm, stored[:4])
        return hmac.compare_digest(expected, self.password_hash)


class Users:
    """The broker's users by name; `guest`/`guest`, tagged administrator, unless told otherwise."""

    def __init__(self, passwords: dict[str, str] | None = None) -> None:
        self.users: dict[str, User] = {}
        for name, password in ({"guest": "guest"} if passwords is None else passwords).items():
            self.put(User(name, hash_password(password), ["administrator"]))

    def put(self, user: User) -> None:
        self.users[user.name] = user

    def get(self, name: str) -> User | None:
        return self.users.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self.users

    def authenticate(self, name: str, password: str) -> User | None:
        """The user `name` if `password` is theirs."""
        user = self.users.get(name)
        return user if user is not None and user.check_password(password) else None
