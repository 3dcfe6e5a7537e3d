"""The trio glue: sockets, tasks, timers and shutdown around the protocol layer and the core."""

from .app import ListenError, Server, single_error
from .limits import Limits

__all__ = ["Limits", "ListenError", "Server", "single_error"]
