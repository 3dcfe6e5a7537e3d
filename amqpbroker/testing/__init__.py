"""Run the broker inside a test process: `Broker` for sync and asyncio code, `serve_broker` for trio.

The pytest plugin (`amqpbroker.testing.plugin`, loaded automatically once amqpbroker is installed)
builds its fixtures on `Broker`.
"""

from ._embedded import Broker
from ._served import (
    BindingInfo,
    ConnectionInfo,
    Event,
    ExchangeInfo,
    MessageInfo,
    QueueInfo,
    TrioBroker,
    serve_broker,
)

__all__ = [
    "BindingInfo",
    "Broker",
    "ConnectionInfo",
    "Event",
    "ExchangeInfo",
    "MessageInfo",
    "QueueInfo",
    "TrioBroker",
    "serve_broker",
]
