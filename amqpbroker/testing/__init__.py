"""Run the broker inside a test process: `Broker` for sync code, `serve_broker` for trio."""

from ._embedded import Broker

__all__ = ["Broker"]
