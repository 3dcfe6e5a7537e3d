"""amqpbroker: a message broker that speaks AMQP 0-9-1, so RabbitMQ clients connect unchanged."""

from .testing import Broker

__version__ = "0.1.0"

__all__ = ["Broker", "__version__"]
