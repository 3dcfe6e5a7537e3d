"""AMQPS and HTTPS with a CA the test creates: pika and aio-pika over TLS, certificates a client must
refuse, client certificates (required with verify_peer), EXTERNAL, and a stalled TLS handshake."""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import os
import socket
import ssl
import urllib.request

import aio_pika
import pika
import pytest
import trustme

from amqpbroker import Broker, cli
from amqpbroker.server.tls import server_context

from .test_cli import start_broker

EXTERNAL_REFUSED = (
    "ACCESS_REFUSED - Login was refused using authentication mechanism EXTERNAL. For details see the broker logfile."
)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def files(ca: trustme.CA, tmp_path_factory) -> dict[str, str]:
    """PEM files: the CA, a valid server certificate, one from an untrusted CA, an expired one."""
    directory = tmp_path_factory.mktemp("tls")
    past = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    certificates = {
        "valid": ca.issue_cert("localhost", "127.0.0.1"),
        "untrusted": trustme.CA().issue_cert("localhost", "127.0.0.1"),
        "expired": ca.issue_cert("localhost", "127.0.0.1", not_before=past, not_after=past + datetime.timedelta(days=1)),
    }
    paths = {"ca": str(directory / "ca.pem")}
    ca.cert_pem.write_to_path(paths["ca"])
    for name, certificate in certificates.items():
        paths[name] = str(directory / f"{name}.pem")
        certificate.private_key_and_cert_chain_pem.write_to_path(paths[name])
    return paths


def serving(files: dict[str, str], certificate: str = "valid", **options) -> Broker:
    """A broker serving AMQPS (and, with http_tls, HTTPS) with one of the server certificates."""
    verify_peer = options.pop("verify_peer", False)
    context = server_context(files[certificate], files[certificate], files["ca"], verify_peer)
    return Broker(tls_context=context, **options)


def client_context(files: dict[str, str], ca: trustme.CA, common_name: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=files["ca"])
    if common_name is not None:
        ca.issue_cert(f"{common_name}@example.com", common_name=common_name).configure_cert(context)
    return context


def pika_parameters(broker: Broker, context: ssl.SSLContext, **options) -> pika.ConnectionParameters:
    return pika.ConnectionParameters(
        "127.0.0.1", broker.tls_port, ssl_options=pika.SSLOptions(context, "localhost"), **options
    )


def round_trip(connection: pika.BlockingConnection) -> bytes:
    channel = connection.channel()
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.basic_publish("", queue, b"over TLS")
    method, _, body = channel.basic_get(queue, auto_ack=True)
    connection.close()
    return body


def test_pika_over_tls_with_a_trusted_certificate(files, ca) -> None:
    with serving(files) as broker:
        parameters = pika_parameters(broker, client_context(files, ca), credentials=pika.PlainCredentials("guest", "guest"))
        assert round_trip(pika.BlockingConnection(parameters)) == b"over TLS"


def test_large_bodies_over_tls_arrive_intact(files, ca) -> None:
    # A TLS stream is no plain socket: a large body is copied into its buffer frame by frame.
    bodies = [os.urandom(size) for size in (1024 * 1024 + 1, 3 * 1024 * 1024 + 17)]
    with serving(files) as broker:
        connection = pika.BlockingConnection(pika_parameters(broker, client_context(files, ca)))
        channel = connection.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        for body in bodies:
            channel.basic_publish("", queue, body)
        received = []
        while len(received) < len(bodies):
            method, _, body = channel.basic_get(queue, auto_ack=True)
            if method is not None:
                received.append(body)
        connection.close()
    assert received == bodies


def test_aio_pika_over_tls_with_a_trusted_certificate(files, ca) -> None:
    async def main(broker: Broker) -> bytes:
        async with await aio_pika.connect(
            host="localhost", port=broker.tls_port, ssl=True, ssl_context=client_context(files, ca)
        ) as connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(exclusive=True)
            await channel.default_exchange.publish(aio_pika.Message(b"over TLS"), routing_key=queue.name)
            message = await queue.get(timeout=5)
            await message.ack()
            return message.body

    with serving(files) as broker:
        assert asyncio.run(main(broker)) == b"over TLS"


REFUSALS = [("untrusted", "unable to get local issuer certificate"), ("expired", "certificate has expired")]


@pytest.mark.parametrize(("certificate", "reason"), REFUSALS)
def test_pika_refuses_an_untrusted_or_expired_server_certificate(files, ca, certificate: str, reason: str) -> None:
    with serving(files, certificate) as broker:
        with pytest.raises(ssl.SSLCertVerificationError, match=reason):
            pika.BlockingConnection(pika_parameters(broker, client_context(files, ca), connection_attempts=1))


@pytest.mark.parametrize(("certificate", "reason"), REFUSALS)
def test_aio_pika_refuses_an_untrusted_or_expired_server_certificate(files, ca, certificate: str, reason: str) -> None:
    async def main(broker: Broker) -> None:
        await aio_pika.connect(host="localhost", port=broker.tls_port, ssl=True, ssl_context=client_context(files, ca))

    with serving(files, certificate) as broker:
        with pytest.raises(aio_pika.exceptions.AMQPConnectionError, match=reason) as refused:
            asyncio.run(main(broker))
        assert isinstance(refused.value.__cause__, ssl.SSLCertVerificationError)


def test_verify_peer_refuses_a_client_without_a_certificate(files, ca) -> None:
    with serving(files, verify_peer=True) as broker:
        with pytest.raises(pika.exceptions.AMQPConnectionError):
            pika.BlockingConnection(pika_parameters(broker, client_context(files, ca), connection_attempts=1))
        with_certificate = pika_parameters(broker, client_context(files, ca, "guest"))
        assert round_trip(pika.BlockingConnection(with_certificate)) == b"over TLS"


def test_external_logs_in_the_user_the_certificate_names(files, ca) -> None:
    with serving(files, verify_peer=True, http_port=0) as broker:
        parameters = pika_parameters(
            broker, client_context(files, ca, "guest"), credentials=pika.credentials.ExternalCredentials()
        )
        connection = pika.BlockingConnection(parameters)
        [listed] = json.loads(_get(broker, "/api/connections", urllib.request.urlopen))
        assert listed["user"] == "guest"
        assert round_trip(connection) == b"over TLS"


def test_external_refuses_a_certificate_naming_no_user(files, ca) -> None:
    with serving(files) as broker:
        parameters = pika_parameters(
            broker, client_context(files, ca, "nobody"), credentials=pika.credentials.ExternalCredentials()
        )
        with pytest.raises(pika.exceptions.ProbableAuthenticationError) as refused:
            pika.BlockingConnection(parameters)
        assert EXTERNAL_REFUSED in str(refused.value)


def test_external_is_offered_only_with_a_client_certificate(files, ca) -> None:
    with serving(files) as broker:
        for parameters in (
            pika_parameters(broker, client_context(files, ca), credentials=pika.credentials.ExternalCredentials()),
            pika.ConnectionParameters("127.0.0.1", broker.port, credentials=pika.credentials.ExternalCredentials()),
        ):
            with pytest.raises(pika.exceptions.AuthenticationError, match="EXTERNAL"):
                pika.BlockingConnection(parameters)


def test_a_stalled_tls_handshake_is_dropped(files) -> None:
    with serving(files, handshake_timeout=0.2) as broker:
        with socket.create_connection(("127.0.0.1", broker.tls_port), timeout=30) as stalled:
            assert stalled.recv(1) == b""


def test_plain_amqp_is_served_beside_amqps(files, ca) -> None:
    with serving(files) as broker:
        assert round_trip(pika.BlockingConnection(pika.URLParameters(broker.url))) == b"over TLS"


def test_the_management_api_over_https(files, ca) -> None:
    with serving(files, http_port=0, http_tls=True) as broker:
        assert broker.http_url.startswith("https://")
        context = client_context(files, ca)
        overview = json.loads(_get(broker, "/api/overview", lambda request: urllib.request.urlopen(request, context=context)))
        assert {"protocol": "amqp/ssl", "port": broker.tls_port} in [
            {"protocol": listener["protocol"], "port": listener["port"]} for listener in overview["listeners"]
        ]
        assert "https" in [listener["protocol"] for listener in overview["listeners"]]
        console = _get(broker, "/", lambda request: urllib.request.urlopen(request, context=context))
        assert console.lstrip().lower().startswith(b"<!doctype html>")


def test_the_command_serves_only_amqps_from_a_config_file(files, ca, tmp_path) -> None:
    path = tmp_path / "amqpbroker.toml"
    path.write_text(
        f"[amqp]\nenabled = false\n[storage]\nin_memory = true\n"
        f"[tls]\nport = 0\ncertfile = '{files['valid']}'\nkeyfile = '{files['valid']}'\n"
    )
    process, port = start_broker("--config", str(path), listening="listening for AMQPS on")
    try:
        parameters = pika.ConnectionParameters(
            "127.0.0.1", port, ssl_options=pika.SSLOptions(client_context(files, ca), "localhost")
        )
        assert round_trip(pika.BlockingConnection(parameters)) == b"over TLS"
    finally:
        process.kill()
        process.stderr.close()


def test_ctl_over_https_with_a_client_certificate(files, ca, tmp_path, capsys) -> None:
    certificate = tmp_path / "client.pem"
    ca.issue_cert("ops@example.com", common_name="ops").private_key_and_cert_chain_pem.write_to_path(str(certificate))
    with serving(files, http_port=0, http_tls=True, verify_peer=True) as broker:
        api = broker.http_url.replace("127.0.0.1", "localhost")
        assert cli.main(["ctl", "--api", api, "--cafile", files["ca"], "--certfile", str(certificate),
                         "list", "users"]) == 0
        assert capsys.readouterr().out.split("\n")[1].split() == ["guest", "administrator"]
        assert cli.main(["ctl", "--api", api, "--cafile", files["ca"], "list", "users"]) == 1
        assert capsys.readouterr().err.startswith(f"amqpbroker ctl: error: cannot reach the API at {api}: ")


def _get(broker: Broker, path: str, open_url) -> bytes:
    url = broker.http_url.replace("127.0.0.1", "localhost") + path
    request = urllib.request.Request(url, headers={"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()})
    with open_url(request) as response:
        return response.read()
