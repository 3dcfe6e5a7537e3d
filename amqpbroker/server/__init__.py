"""The trio glue: sockets, tasks, timers and shutdown around the protocol layer and the core."""

from .app import Server, single_error
from .limits import Limits

__all__ = ["Limits", "Server", "single_error"]
