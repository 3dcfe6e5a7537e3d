"""The server's limits, with RabbitMQ's defaults: what a client may send, how long it may take to
connect, how much disk space must stay free, and how long shutdown waits for the store."""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol import MAX_MESSAGE_SIZE


@dataclass(frozen=True)
class Limits:
    max_message_size: int = MAX_MESSAGE_SIZE
    """Body bytes above which a publish is refused with 406 PRECONDITION_FAILED (RabbitMQ's
    `max_message_size`, 128 MiB; at most 512 MiB)."""
    handshake_timeout: float = 10.0
    """Seconds from accept to connection.open-ok; a client slower than that is dropped (RabbitMQ's
    `handshake_timeout`)."""
    disk_free_limit: int | None = 50_000_000
    """Free bytes on the data directory's disk below which publishers are blocked (RabbitMQ's
    `disk_free_limit`); None for no check."""
    shutdown_timeout: float = 30.0
    """Seconds shutdown waits for the store's last writes before it exits without them."""
