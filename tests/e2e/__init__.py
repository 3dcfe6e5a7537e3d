"""End-to-end tests: real clients against a real broker through a socket.

Every test here passes against RabbitMQ 3.10 (run with AMQP_TEST_URL set), which
makes this suite the executable specification of the behaviour we match.
"""
