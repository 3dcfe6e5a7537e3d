"""AMQP errors raised by the broker core.

A `ChannelException` closes only the channel it happened on; a `ConnectionException` closes the whole
connection. Both carry the reply code and the reply text a RabbitMQ user would see, including
RabbitMQ's habit of prefixing the text with the reply code's name.
"""

from __future__ import annotations

_NAMES = {
    311: "CONTENT_TOO_LARGE",
    312: "NO_ROUTE",
    313: "NO_CONSUMERS",
    320: "CONNECTION_FORCED",
    402: "INVALID_PATH",
    403: "ACCESS_REFUSED",
    404: "NOT_FOUND",
    405: "RESOURCE_LOCKED",
    406: "PRECONDITION_FAILED",
    501: "FRAME_ERROR",
    502: "SYNTAX_ERROR",
    503: "COMMAND_INVALID",
    504: "CHANNEL_ERROR",
    505: "UNEXPECTED_FRAME",
    506: "RESOURCE_ERROR",
    530: "NOT_ALLOWED",
    540: "NOT_IMPLEMENTED",
    541: "INTERNAL_ERROR",
}


class AMQPException(Exception):
    """An error that is reported to the client with a reply code."""

    def __init__(self, reply_code: int, text: str) -> None:
        self.reply_code = reply_code
        self.reply_text = f"{_NAMES[reply_code]} - {text}"
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
    def command_invalid(cls, text: str) -> ConnectionException:
        return cls(503, text)

    @classmethod
    def channel_error(cls, text: str) -> ConnectionException:
        return cls(504, text)
