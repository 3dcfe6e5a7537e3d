"""AMQP errors raised by the broker core.

A `ChannelException` closes only the channel it happened on; a `ConnectionException` closes the whole
connection. Both carry the reply code and the reply text a RabbitMQ user would see, including
RabbitMQ's habit of prefixing the text with the reply code's name.
"""

from __future__ import annotations

from ..protocol import ReplyCode


class AMQPException(Exception):
    """An error that is reported to the client with a reply code."""

    def __init__(self, reply_code: int, text: str | None) -> None:
        self.reply_code = reply_code
        name = ReplyCode(reply_code).name
        # Without a text, the code's name alone: what RabbitMQ sends when a channel process crashed.
        self.reply_text = name if text is None else f"{name} - {text}"
        super().__init__(self.reply_text)


class ChannelException(AMQPException):
    """A soft error: the channel is closed, the connection lives on."""

    @classmethod
    def access_refused(cls, text: str) -> ChannelException:
        return cls(403, text)

    @classmethod
    def not_found(cls, text: str) -> ChannelException:
        return cls(404, text)

    @classmethod
    def resource_locked(cls, text: str) -> ChannelException:
        return cls(405, text)

    @classmethod
    def precondition_failed(cls, text: str) -> ChannelException:
        return cls(406, text)


class ConnectionException(AMQPException):
    """A hard error: the whole connection is closed."""

    @classmethod
    def not_allowed(cls, text: str) -> ConnectionException:
        return cls(530, text)

    @classmethod
    def not_implemented(cls, text: str) -> ConnectionException:
        return cls(540, text)

    @classmethod
    def internal_error(cls) -> ConnectionException:
        """RabbitMQ's answer when its channel crashed on a value it did not expect: 541 without a text."""
        return cls(541, None)

    @classmethod
    def command_invalid(cls, text: str) -> ConnectionException:
        return cls(503, text)

    @classmethod
    def channel_error(cls, text: str) -> ConnectionException:
        return cls(504, text)
