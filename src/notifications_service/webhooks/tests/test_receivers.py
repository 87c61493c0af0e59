"""Receivers that misbehave on the wire (real sockets on 127.0.0.1, served from a thread):
each costs its own delivery a failed attempt, within the deadline; the others go out."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from notifications_service.testing import envelope
from notifications_service.webhooks.models import WebhookDelivery
from notifications_service.webhooks.services import (
    webhook_deliveries_dispatch,
    webhook_deliveries_enqueue,
    webhook_endpoint_create,
)

pytestmark = pytest.mark.django_db

DEADLINE = 1.0
Answer = Callable[[socket.socket], None]


@pytest.fixture(autouse=True)
def _settings(settings) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    settings.WEBHOOK_TIMEOUT_SECONDS = 5  # per read: longer than the deadline
    settings.WEBHOOK_DEADLINE_SECONDS = DEADLINE
    settings.WEBHOOK_RESPONSE_MAX_BYTES = 64 * 1024
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    settings.DELIVERY_RETRY_BASE_SECONDS = 0.05
    settings.DELIVERY_RETRY_MAX_SECONDS = 0.1


def _read_request(sock: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)


@contextlib.contextmanager
def receiver(answer: Answer) -> Iterator[str]:
    """A TCP server that reads one HTTP request, then lets `answer` do what it likes."""

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            _read_request(self.request)
            with contextlib.suppress(OSError):  # the client hung up on it: fine
                answer(self.request)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def good_receiver() -> Iterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", bodies
    finally:
        server.shutdown()
        server.server_close()


def trickle(data: bytes, *, every: float = 0.2, at_most: float = 8.0) -> Answer:
    """Send `data` one byte at a time (and stop after `at_most` seconds, for the old code)."""

    def answer(sock: socket.socket) -> None:
        started = time.monotonic()
        for byte in data:
            if time.monotonic() - started > at_most:
                return
            sock.sendall(bytes([byte]))
            time.sleep(every)

    return answer


def slow_body(sock: socket.socket) -> None:
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
    trickle(b"y" * 100)(sock)


def endless_body(status: str) -> Answer:
    def answer(sock: socket.socket) -> None:
        sock.sendall(f"HTTP/1.1 {status}\r\nContent-Length: 1000000000\r\n\r\n".encode())
        started = time.monotonic()
        while time.monotonic() - started < 8:
            sock.sendall(b"x" * 65536)
            time.sleep(0.05)

    return answer


def garbage(sock: socket.socket) -> None:
    sock.sendall(b"\x00\xffthis is not HTTP at all\r\n\r\n")


def hang_up(sock: socket.socket) -> None:
    sock.close()


def _deliveries_to(*urls: str) -> dict[str, WebhookDelivery]:
    organizer_id = str(uuid.uuid4())
    for url in urls:
        webhook_endpoint_create(organizer_id=organizer_id, url=url, event_types=[])
    document = envelope("booking.confirmed", {"organizer_id": organizer_id, "booking_id": 1})
    webhook_deliveries_enqueue(
        organizer_id=organizer_id,
        message_id=uuid.UUID(document["id"]),
        message_type=document["type"],
        envelope=document,
    )
    return {d.endpoint.url: d for d in WebhookDelivery.objects.select_related("endpoint")}


def _dispatch_timed() -> float:
    started = time.monotonic()
    webhook_deliveries_dispatch()
    return time.monotonic() - started


def test_receivers_that_break_the_protocol_fail_alone_and_the_others_are_delivered() -> None:
    with (
        receiver(garbage) as garbled,
        receiver(hang_up) as silent,
        receiver(trickle(b"HTTP/1.1 200 OK\r\n\r\n")) as slow,
        good_receiver() as (good, bodies),
    ):
        deliveries = _deliveries_to(garbled, silent, slow, good)
        elapsed = _dispatch_timed()
        assert elapsed < DEADLINE + 2
        for delivery in deliveries.values():
            delivery.refresh_from_db()
        assert deliveries[good].status == "succeeded"
        assert len(bodies) == 1
        for url, error in [
            (garbled, "no valid HTTP answer"),
            (silent, "no valid HTTP answer"),
            (slow, "deadline exceeded"),
        ]:
            delivery = deliveries[url]
            assert delivery.status == "pending", url
            assert delivery.attempts == 1
            assert delivery.last_status_code is None
            assert delivery.last_error.startswith(error), delivery.last_error
            [attempt] = delivery.log.all()
            assert attempt.error == delivery.last_error
        # The next rounds retry them, then give up (WEBHOOK_MAX_ATTEMPTS = 2).
        time.sleep(0.2)
        webhook_deliveries_dispatch()
        assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {
            "succeeded",
            "failed",
        }
        assert WebhookDelivery.objects.filter(status="failed").count() == 3
        assert len(bodies) == 1


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), id="status"),
        pytest.param(slow_body, id="body"),
    ],
)
def test_a_receiver_that_trickles_is_cut_off_at_the_deadline(answer: Answer) -> None:
    with receiver(answer) as url:
        deliveries = _deliveries_to(url)
        elapsed = _dispatch_timed()
    assert DEADLINE <= elapsed < DEADLINE + 1
    delivery = deliveries[url]
    delivery.refresh_from_db()
    assert delivery.status == "pending"
    assert delivery.last_error == f"deadline exceeded: no complete answer within {DEADLINE:g}s"
    assert DEADLINE * 1000 <= delivery.log.get().duration_ms < (DEADLINE + 1) * 1000


def test_of_an_endless_answer_only_the_cap_is_read(settings) -> None:
    # Were the whole answer read, the attempt would run into the deadline instead.
    settings.WEBHOOK_DEADLINE_SECONDS = 3.0
    with receiver(endless_body("500 Internal Server Error")) as url:
        deliveries = _deliveries_to(url)
        elapsed = _dispatch_timed()
    assert elapsed < 1.5
    delivery = deliveries[url]
    delivery.refresh_from_db()
    assert delivery.status == "pending"
    assert delivery.last_status_code == 500
    # What the organizer sees: the status and the start of the answer, not all of it.
    assert delivery.last_error == "HTTP 500: " + "x" * 300
