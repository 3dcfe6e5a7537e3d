"""TLS for the listeners: the server's SSL context from its PEM files, and the user a client
certificate names."""

from __future__ import annotations

import ssl

import trio


def server_context(certfile: str, keyfile: str, cafile: str | None = None, verify_peer: bool = False) -> ssl.SSLContext:
    """With a `cafile`, a client certificate is verified against it when sent, and required with
    `verify_peer` (RabbitMQ's `verify_peer` with `fail_if_no_peer_cert`). OSError or ssl.SSLError
    if a file cannot be read or does not hold what it should."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    if cafile is not None:
        context.load_verify_locations(cafile)
        context.verify_mode = ssl.CERT_REQUIRED if verify_peer else ssl.CERT_OPTIONAL
    return context


def certificate_login(certificate: dict | None) -> str | None:
    """The user a verified peer certificate (`SSLObject.getpeercert()`) logs in with EXTERNAL: its
    subject's CN, as RabbitMQ's `rabbitmq_auth_mechanism_ssl` with `ssl_cert_login_from = common_name`.
    None without a certificate (EXTERNAL is not offered); '' for one without a CN, which no user has."""
    if not certificate:
        return None
    for relative_name in certificate.get("subject", ()):
        for attribute, value in relative_name:
            if attribute == "commonName":
                return value
    return ""


def transport_socket(stream: trio.SocketStream | trio.SSLStream) -> trio.socket.SocketType:
    """The socket under a plain or TLS stream."""
    return stream.transport_stream.socket if isinstance(stream, trio.SSLStream) else stream.socket
