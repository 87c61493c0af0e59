"""No request forgery through webhooks: the address is checked once and connected to, never
a redirect, and the log tells nothing about the network behind a refused URL.

Real HTTP(S) servers on 127.0.0.1, served from threads. The resolver (`socket.getaddrinfo`)
is the boundary the tests control: names resolve to what each test says, as often as it
says; `socket.create_connection` records where each connection went.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from notifications_service.testing import envelope
from notifications_service.webhooks import transport
from notifications_service.webhooks.models import WebhookDelivery, WebhookEndpoint
from notifications_service.webhooks.services import (
    webhook_deliveries_dispatch,
    webhook_deliveries_enqueue,
)

pytestmark = pytest.mark.django_db

HOST = "hooks.example"
PUBLIC = "93.184.215.14"  # a global unicast address; nothing here ever connects to it


@pytest.fixture(autouse=True)
def _settings(settings) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    settings.WEBHOOK_TIMEOUT_SECONDS = 2
    settings.WEBHOOK_DEADLINE_SECONDS = 3.0
    settings.DELIVERY_RETRY_BASE_SECONDS = 0.05
    settings.DELIVERY_RETRY_MAX_SECONDS = 0.1


@dataclass
class Net:
    """What names resolve to (successive answers; the last one repeats), the lookups made,
    where connections went, and where some of them are sent instead."""

    names: dict[str, list[list[str]]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)
    connections: list[tuple[str, int]] = field(default_factory=list)
    reroute: dict[str, tuple[str, int]] = field(default_factory=dict)


@pytest.fixture
def net(monkeypatch: pytest.MonkeyPatch) -> Net:
    state = Net()
    real_getaddrinfo = socket.getaddrinfo
    real_create_connection = socket.create_connection

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in state.names:
            return real_getaddrinfo(host, port, *args, **kwargs)
        state.lookups.append(host)
        answers = state.names[host]
        addresses = answers.pop(0) if len(answers) > 1 else answers[0]
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        state.connections.append(address)
        return real_create_connection(state.reroute.get(address[0], address), *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    return state


@dataclass
class Server:
    port: int
    connections: int = 0
    requests: list[dict[str, str]] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)  # TLS SNI

    def url(self, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}/hook"


@contextlib.contextmanager
def server(
    status: int = 204, headers: dict[str, str] | None = None, tls: ssl.SSLContext | None = None
) -> Iterator[Server]:
    class Handler(BaseHTTPRequestHandler):
        def setup(self) -> None:
            state.connections += 1
            super().setup()

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append(dict(self.headers.items()))
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = Server(port=httpd.server_address[1])
    if tls is not None:
        tls.sni_callback = lambda _sock, name, _ctx: state.server_names.append(name)
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def _delivery_to(url: str) -> WebhookDelivery:
    # Straight into the table: what registration would refuse is what delivery must refuse.
    organizer_id = str(uuid.uuid4())
    WebhookEndpoint.objects.create(organizer_id=organizer_id, url=url, secret="whsec_test")
    document = envelope("booking.confirmed", {"organizer_id": organizer_id, "booking_id": 1})
    webhook_deliveries_enqueue(
        organizer_id=organizer_id,
        message_id=uuid.UUID(document["id"]),
        message_type=document["type"],
        envelope=document,
    )
    return WebhookDelivery.objects.get(endpoint__organizer_id=organizer_id)


def _dispatched(delivery: WebhookDelivery) -> WebhookDelivery:
    webhook_deliveries_dispatch()
    delivery.refresh_from_db()
    return delivery


def _assert_refused(delivery: WebhookDelivery) -> None:
    assert delivery.status == "pending"
    assert delivery.last_status_code is None
    [attempt] = delivery.log.all()
    # Nothing about the network: no address, no system message, no timing.
    assert (attempt.error, attempt.status_code, attempt.duration_ms) == (
        "refused: address not allowed",
        None,
        0,
    )


def test_a_receiver_on_loopback_is_refused_without_a_connection(net: Net) -> None:
    with server() as receiver:
        delivery = _dispatched(_delivery_to(receiver.url()))
    _assert_refused(delivery)
    assert receiver.connections == 0
    assert net.connections == []


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.5",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104  (an address to refuse, not one to bind)
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "ff0e::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::127.0.0.1",
        "2002:7f00:1::",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::a00:1",  # local-use NAT64 to 10.0.0.1
        "::ffff:0:a00:1",  # SIIT-translated 10.0.0.1
        "fec0::1",  # site-local
    ],
)
def test_names_resolving_to_non_public_addresses_are_refused(address: str, net: Net) -> None:
    net.names[HOST] = [[address]]
    _assert_refused(_dispatched(_delivery_to(f"https://{HOST}/hook")))
    assert net.connections == []


def test_one_non_public_address_among_public_ones_refuses_the_name(net: Net) -> None:
    net.names[HOST] = [[PUBLIC, "127.0.0.1"]]
    _assert_refused(_dispatched(_delivery_to(f"https://{HOST}/hook")))
    assert net.connections == []


def test_a_name_that_does_not_resolve_reads_like_a_refused_one(net: Net) -> None:
    # Else the log would tell which internal names exist.
    net.names["db.internal"] = [[]]
    _assert_refused(_dispatched(_delivery_to("https://db.internal/hook")))


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::1111", "::ffff:93.184.215.14"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert transport.address_allowed(ipaddress.ip_address(address))


def test_the_connection_goes_to_the_checked_address_when_the_name_rebinds(net: Net) -> None:
    # The name answers a public address to the check, then loopback to anyone asking again.
    net.names[HOST] = [[PUBLIC], ["127.0.0.1"]]
    with server() as receiver:
        net.reroute[PUBLIC] = ("127.0.0.1", receiver.port)  # the "public" receiver
        delivery = _dispatched(_delivery_to(f"http://{HOST}:{receiver.port}/hook"))
    assert net.lookups == [HOST]  # resolved once
    assert net.connections == [(PUBLIC, receiver.port)]
    assert delivery.status == "succeeded"
    assert receiver.requests[0]["Host"] == f"{HOST}:{receiver.port}"


def test_the_host_header_names_the_url_host_while_the_connection_goes_to_its_address(
    settings, net: Net
) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    net.names[HOST] = [["127.0.0.1"]]
    with server() as receiver:
        delivery = _dispatched(_delivery_to(f"http://{HOST}:{receiver.port}/hook"))
    assert delivery.status == "succeeded"
    assert net.connections == [("127.0.0.1", receiver.port)]
    [headers] = receiver.requests
    assert headers["Host"] == f"{HOST}:{receiver.port}"


def _certificate_for(name: str, directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.mark.parametrize(("certified", "succeeds"), [(HOST, True), ("other.example", False)])
def test_tls_names_and_verifies_the_url_host_on_the_pinned_address(
    certified: str, succeeds: bool, settings, net: Net, tmp_path: Path, monkeypatch
) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    net.names[HOST] = [["127.0.0.1"]]
    cert_file, key_file = _certificate_for(certified, tmp_path)
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(cert_file, key_file)
    # The client trusts the test certificate, and nothing else.
    monkeypatch.setattr(
        transport, "_ssl_context", lambda: ssl.create_default_context(cafile=str(cert_file))
    )
    with server(tls=served) as receiver:
        delivery = _dispatched(_delivery_to(receiver.url(HOST, scheme="https")))
    assert net.connections == [("127.0.0.1", receiver.port)]
    assert receiver.server_names == [HOST]
    if succeeds:
        assert delivery.status == "succeeded"
        assert receiver.requests[0]["Host"] == f"{HOST}:{receiver.port}"
    else:  # a certificate for another name: the attempt fails before anything is sent
        assert delivery.status == "pending"
        assert delivery.last_error == "could not connect (connection or TLS handshake failed)"
        assert receiver.requests == []


def test_a_redirect_is_a_failed_attempt_and_is_not_followed(settings) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    with server() as elsewhere, server(302, {"Location": elsewhere.url()}) as receiver:
        delivery = _dispatched(_delivery_to(receiver.url()))
    assert len(receiver.requests) == 1
    assert elsewhere.connections == 0
    assert delivery.status == "pending"
    assert delivery.last_status_code == 302
    assert delivery.last_error == "HTTP 302"


def test_a_failed_connection_records_a_generic_reason(settings) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    delivery = _dispatched(_delivery_to(f"http://127.0.0.1:{port}/hook"))
    assert delivery.last_error == "could not connect (connection or TLS handshake failed)"
