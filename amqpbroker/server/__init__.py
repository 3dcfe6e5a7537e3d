"""The trio glue: sockets, tasks, timers and shutdown around the protocol layer and the core."""

from .app import Server

__all__ = ["Server"]
