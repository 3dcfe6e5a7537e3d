"""The interop suite: the same scenarios run by many real AMQP 0-9-1 clients against any broker.

RabbitMQ is the reference: the suite is right when RabbitMQ passes every applicable cell.
"""
