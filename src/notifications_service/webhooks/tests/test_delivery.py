"""Webhook deliveries to a real HTTP server that fails twice, then succeeds."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from notifications_service.inbox.consumer import handle_envelope
from notifications_service.inbox.registry import consumer_specs
from notifications_service.testing import envelope
from notifications_service.webhooks.models import WebhookDelivery
from notifications_service.webhooks.services import (
    webhook_deliveries_dispatch,
    webhook_endpoint_create,
)
from notifications_service.webhooks.signing import SIGNATURE_HEADER, verify_signature
from servicekit.messages import decode_envelope as parse_envelope
from servicekit.messages.examples import example_data
from servicekit.testing import wait_until

pytestmark = pytest.mark.django_db


@dataclass
class Receiver:
    url: str
    fail_first: int = 2
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append(({k: v for k, v in self.headers.items()}, body))
            status = 500 if len(state.requests) <= state.fail_first else 204
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/turnstile"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _fast_retries(settings) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    settings.DELIVERY_RETRY_BASE_SECONDS = 0.05
    settings.DELIVERY_RETRY_MAX_SECONDS = 0.2


def _consume(document: dict[str, Any]) -> None:
    spec = next(spec for spec in consumer_specs() if spec.name == "webhooks")
    handle_envelope(spec, parse_envelope(json.dumps(document).encode()))


def test_failing_twice_then_succeeding_gets_the_message_signed(receiver: Receiver) -> None:
    organizer_id = str(uuid.uuid4())
    endpoint = webhook_endpoint_create(
        organizer_id=organizer_id, url=receiver.url, event_types=["booking.confirmed"]
    )
    document = envelope(
        "booking.confirmed",
        example_data(
            "booking.confirmed",
            booking_id=9,
            user_id=str(uuid.uuid4()),
            organizer_id=organizer_id,
        ),
    )
    _consume(document)
    _consume(document)  # redelivered: still one delivery
    _consume(
        envelope("payment.succeeded", example_data("payment.succeeded", organizer_id=organizer_id))
    )  # not subscribed
    _consume(
        envelope(
            "booking.confirmed",
            example_data("booking.confirmed", organizer_id=str(uuid.uuid4())),
        )
    )  # not theirs
    assert WebhookDelivery.objects.count() == 1

    def delivered() -> bool:
        webhook_deliveries_dispatch()
        return WebhookDelivery.objects.get().status == "succeeded"

    assert wait_until(delivered, 10, interval=0.05)
    assert len(receiver.requests) == 3
    delivery = WebhookDelivery.objects.get()
    assert delivery.attempts == 3
    assert delivery.last_status_code == 204
    assert [a.status_code for a in delivery.log.all()] == [500, 500, 204]

    headers, body = receiver.requests[-1]
    assert json.loads(body)["id"] == document["id"]
    assert json.loads(body)["data"]["booking_id"] == 9
    assert headers["Turnstile-Event-Id"] == document["id"]
    assert headers["Turnstile-Event-Type"] == "booking.confirmed"
    signature = headers[SIGNATURE_HEADER]
    assert verify_signature(secret=endpoint.secret, header=signature, body=body)
    # Every attempt sent the same bytes.
    assert {request[1] for request in receiver.requests} == {body}

    tampered = body.replace(b'"booking_id":9', b'"booking_id":10')
    assert tampered != body
    assert not verify_signature(secret=endpoint.secret, header=signature, body=tampered)
    assert not verify_signature(secret="whsec_wrong", header=signature, body=body)
    # Replayed much later: refused by the timestamp check.
    timestamp = int(signature.split(",")[0].removeprefix("t="))
    assert not verify_signature(
        secret=endpoint.secret, header=signature, body=body, now=timestamp + 3600
    )
    # Done: nothing more is sent.
    webhook_deliveries_dispatch()
    assert len(receiver.requests) == 3


def test_deliveries_log_is_visible_to_the_organizer(receiver: Receiver, new_caller) -> None:
    from rest_framework.test import APIClient

    organizer = new_caller("organizer")
    receiver.fail_first = 1
    endpoint = webhook_endpoint_create(
        organizer_id=organizer.user_id, url=receiver.url, event_types=[]
    )
    document = envelope(
        "event.canceled",
        example_data("event.canceled", organizer_id=organizer.user_id, name="Gig"),
    )
    _consume(document)
    assert wait_until(lambda: webhook_deliveries_dispatch().sent == 1 or False, 10, interval=0.05)
    response = APIClient().get(f"/api/webhooks/{endpoint.pk}/deliveries", **organizer.auth)
    [item] = response.json()["results"]
    assert (item["event_id"], item["event_type"]) == (document["id"], "event.canceled")
    assert item["status"] == "succeeded"
    assert [entry["status_code"] for entry in item["log"]] == [500, 204]


def test_a_private_address_is_refused_at_send_time_too(settings, receiver: Receiver) -> None:
    organizer_id = str(uuid.uuid4())
    webhook_endpoint_create(organizer_id=organizer_id, url=receiver.url, event_types=[])
    _consume(
        envelope("booking.confirmed", example_data("booking.confirmed", organizer_id=organizer_id))
    )
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    assert webhook_deliveries_dispatch().retried == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.last_error.startswith("refused:")
    assert receiver.requests == []
