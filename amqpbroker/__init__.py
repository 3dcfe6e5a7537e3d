"""amqpbroker: a message broker that speaks AMQP 0-9-1, so RabbitMQ clients connect unchanged."""

# Set before the imports below: the management API, which they import, reports it.
__version__ = "0.1.0"

from .testing import Broker  # noqa: E402

__all__ = ["Broker", "__version__"]
