"""Permissions set over the API and enforced on AMQP, seen from pika: 403 ACCESS_REFUSED with RabbitMQ's
texts; and guest, over AMQP and over the API, from loopback addresses only."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pika
import pytest

from .client import ApiClient, non_loopback_address, segment
from .test_users_vhosts import amqp_connect


@pytest.fixture
def restricted(api: ApiClient, amqp_url: str, unique, cleanup) -> Iterator[Callable[..., pika.BlockingConnection]]:
    """`restricted(configure, write, read)`: a connection to `/` of a new user with those permissions."""
    names: list[str] = []

    def connect(configure: str, write: str, read: str) -> pika.BlockingConnection:
        name = unique("restricted")
        names.append(name)
        assert api.put(f"/api/users/{segment(name)}", {"password": "pw", "tags": ""}).status == 201
        permission = {"configure": configure, "write": write, "read": read}
        assert api.put(f"/api/permissions/%2F/{segment(name)}", permission).status == 201
        return amqp_connect(amqp_url, name, "pw")

    yield connect
    for name in names:
        api.delete(f"/api/users/{segment(name)}")


def refusal(raised: pytest.ExceptionInfo) -> tuple[int, str]:
    return raised.value.reply_code, raised.value.reply_text


def publish_and_wait(channel, exchange: str) -> None:
    """Publishes, then waits for the reply to a synchronous method: a refused publish closes the channel first."""
    channel.basic_publish(exchange, "any", b"not allowed")
    channel.basic_qos(prefetch_count=1)


def test_without_write_a_publish_is_refused(restricted, amqp, unique, cleanup) -> None:
    exchange = cleanup.exchange(unique("x"))
    amqp.channel().exchange_declare(exchange, "fanout")
    connection = restricted(".*", "^allowed-", ".*")
    user = connection._impl.params.credentials.username
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        publish_and_wait(connection.channel(), exchange)
    assert refusal(refused) == (403, f"ACCESS_REFUSED - access to exchange '{exchange}' in vhost '/' refused for user '{user}'")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as default:
        publish_and_wait(connection.channel(), "")
    assert refusal(default) == (403, f"ACCESS_REFUSED - access to exchange 'amq.default' in vhost '/' refused for user '{user}'")
    connection.close()


def test_without_read_a_consume_and_a_get_are_refused(restricted, amqp, unique, cleanup) -> None:
    queue = cleanup.queue(unique("q"))
    amqp.channel().queue_declare(queue)
    connection = restricted(".*", ".*", "")
    user = connection._impl.params.credentials.username
    expected = (403, f"ACCESS_REFUSED - access to queue '{queue}' in vhost '/' refused for user '{user}'")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as consume:
        connection.channel().basic_consume(queue, lambda *args: None)
    assert refusal(consume) == expected
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as get:
        connection.channel().basic_get(queue)
    assert refusal(get) == expected
    # Writing is allowed: the message gets in, and stays for a reader.
    channel = connection.channel()
    channel.confirm_delivery()
    channel.basic_publish("", queue, b"for someone else", mandatory=True)
    connection.close()
    assert amqp.channel().basic_get(queue, auto_ack=True)[2] == b"for someone else"


def test_without_configure_a_declare_is_refused(restricted, amqp, unique, cleanup) -> None:
    queue, exchange = cleanup.queue(unique("q")), cleanup.exchange(unique("x"))
    connection = restricted("", ".*", ".*")
    user = connection._impl.params.credentials.username
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as queue_declare:
        connection.channel().queue_declare(queue)
    assert refusal(queue_declare) == (403, f"ACCESS_REFUSED - access to queue '{queue}' in vhost '/' refused for user '{user}'")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exchange_declare:
        connection.channel().exchange_declare(exchange, "direct")
    assert refusal(exchange_declare) == (
        403, f"ACCESS_REFUSED - access to exchange '{exchange}' in vhost '/' refused for user '{user}'"
    )
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as server_named:
        connection.channel().queue_declare("", exclusive=True)
    assert server_named.value.reply_text.startswith("ACCESS_REFUSED - access to queue 'amq.gen-")
    # A passive declare needs no permission.
    amqp.channel().queue_declare(queue)
    assert connection.channel().queue_declare(queue, passive=True).method.queue == queue
    connection.close()



@pytest.fixture
def all_interfaces(reference: bool, api: ApiClient, amqp_url: str) -> Iterator[tuple[int, int]]:
    """The AMQP and API ports of a broker listening on every interface: the reference, or an embedded one."""
    if reference:
        yield urlsplit(amqp_url).port or 5672, api.port
        return
    from amqpbroker.testing import Broker

    with Broker(host="0.0.0.0", port=0, http_port=0) as broker:
        yield broker.port, broker.http_port


def test_guest_logs_in_from_loopback_only(all_interfaces: tuple[int, int]) -> None:
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    amqp_port, api_port = all_interfaces
    amqp_connect(f"amqp://127.0.0.1:{amqp_port}/", "guest", "guest").close()
    # As RabbitMQ's loopback_users default: refused as a wrong password is, so the client cannot tell.
    with pytest.raises(pika.exceptions.ProbableAuthenticationError) as refused:
        amqp_connect(f"amqp://{address}:{amqp_port}/", "guest", "guest")
    assert "(403) 'ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN" in str(refused.value)
    assert ApiClient(f"http://127.0.0.1:{api_port}").get("/api/whoami").status == 200
    reply = ApiClient(f"http://{address}:{api_port}").get("/api/whoami")
    assert (reply.status, reply.json) == (401, {"error": "not_authorised", "reason": "User can only log in via localhost"})
