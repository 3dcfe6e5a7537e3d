"""The trio glue: sockets, tasks, timers and shutdown around the protocol layer and the core."""

from .app import Server, single_error

__all__ = ["Server", "single_error"]
