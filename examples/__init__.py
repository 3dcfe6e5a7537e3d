"""Applications that use amqpbroker, each with its tests; `shop` is also runnable: `python -m examples.shop`."""
