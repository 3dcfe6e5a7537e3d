"""The exclusive hold of one broker on its data directory.

Two brokers writing one LMDB environment would each believe their own idea of the queues and
overwrite the other's. The hold is a `flock` on a file in the directory: the kernel drops it when
the process ends, however it ends (kill -9 included), so a crash never leaves a stale lock behind.
A `flock` also conflicts between two opens in one process, so two embedded brokers are kept apart.
"""

from __future__ import annotations

import fcntl
import os

from .base import StoreError

LOCK_FILE = "amqpbroker.lock"


class DirectoryLock:
    """Held from creation until `release()`; raises StoreError if another broker holds it."""

    def __init__(self, directory: str) -> None:
        path = os.path.join(directory, LOCK_FILE)
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            self.created = True
        except FileExistsError:
            self._fd = os.open(path, os.O_RDWR)
            self.created = False
        except OSError as exc:
            raise StoreError(f"cannot create {path}: {exc.strerror}") from None
        self._path = path
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(self._fd, 32).decode(errors="replace").strip()
            os.close(self._fd)
            process = f" (process {holder})" if holder.isdigit() else ""
            raise StoreError(
                f"data directory {directory} is in use by another broker{process}; "
                "stop it first, or use another data directory"
            ) from None
        except OSError as exc:
            os.close(self._fd)
            raise StoreError(f"cannot lock {path}: {exc.strerror}") from None
        # Who holds it, for the message another broker prints; the lock itself is the flock.
        os.ftruncate(self._fd, 0)
        os.write(self._fd, b"%d\n" % os.getpid())

    def release(self, *, remove: bool = False) -> None:
        """Lets another broker in; `remove` also deletes the lock file (while it is still held)."""
        if remove:
            os.unlink(self._path)
        os.close(self._fd)
