"""The organizer's pages in Chromium against a real stack: publish an event, watch a
customer's purchase arrive on the dashboard (numbers, chart, recent bookings), download the
attendees' CSV; edit and cancel an event; resources; webhooks to a local receiver (register,
rotate the secret, the delivery log); customers kept out."""

from __future__ import annotations

import csv
import hashlib
import hmac
import http.server
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from web_service.tests.pages import hold, log_in, pay
from web_service.tests.stack import WebStack

pytestmark = pytest.mark.slow

SOLD_COLOUR = (0x1D, 0x6B, 0x34)


def chart_pixels(page: Page, rgb: tuple[int, int, int]) -> int:
    """How many pixels of the chart's canvas are drawn in this colour (give or take
    antialiasing): a line that was drawn, not an empty canvas."""
    return int(
        page.evaluate(
            """([r, g, b]) => {
                const canvas = document.querySelector('#sales-chart canvas');
                if (!canvas) return 0;
                const data = canvas.getContext('2d')
                    .getImageData(0, 0, canvas.width, canvas.height).data;
                let count = 0;
                for (let i = 0; i < data.length; i += 4) {
                    if (Math.abs(data[i] - r) < 12 && Math.abs(data[i + 1] - g) < 12
                        && Math.abs(data[i + 2] - b) < 12 && data[i + 3] > 200) count++;
                }
                return count;
            }""",
            list(rgb),
        )
    )


def test_an_organizer_publishes_an_event_sees_a_sale_arrive_and_downloads_the_attendees(
    new_page: Callable[..., Page],
    stack: WebStack,
    organizer: dict[str, Any],
    customer: dict[str, Any],
) -> None:
    name = f"Harbour Jazz {uuid.uuid4().hex[:6]}"
    board = new_page()
    log_in(board, organizer["email"])
    board.get_by_role("link", name="Organizer", exact=True).click()
    board.get_by_role("link", name="New event").click()
    board.get_by_label("Name").fill(name)
    board.get_by_label("Description").fill("Standards by the water.")
    board.get_by_label("Date").fill("2031-07-04")
    board.get_by_label("Time").fill("19:30")
    board.get_by_label("Location").fill("Pier 4")
    board.get_by_label("Tickets").fill("10")
    board.get_by_label("Price a ticket").fill("25.00")
    board.get_by_role("button", name="Publish the event").click()
    board.wait_for_url("**/organizer/events/*/")
    event_id = int(board.url.rstrip("/").rsplit("/", 1)[1])
    expect(board.get_by_role("heading", level=1)).to_contain_text(name)
    expect(board.get_by_text(f"“{name}” is published.")).to_be_visible()
    expect(board.locator("[data-stat=sold]")).to_have_text("0")
    expect(board.locator("[data-stat=available]")).to_have_text("10")

    # A customer, in a browser of their own, buys two while the dashboard stays open.
    shop = new_page()
    log_in(shop, customer["email"])
    booking_id = hold(shop, event_id, 2)
    pay(shop, "4242 4242 4242 4242")
    expect(shop.get_by_text("Payment received")).to_be_visible()

    # htmx brings the sale to the open dashboard, without a reload.
    expect(board.locator("[data-stat=sold]")).to_have_text("2", timeout=20_000)
    expect(board.locator("[data-stat=held]")).to_have_text("0")
    expect(board.locator("[data-stat=available]")).to_have_text("8")
    expect(board.locator("[data-stat=revenue]")).to_have_text("50.00 USD")
    recent = board.locator(f"tr[data-booking='{booking_id}']")
    expect(recent).to_contain_text("confirmed")
    expect(recent).to_contain_text("50.00 USD")

    # The chart is drawn from the sales series: a canvas with the sold line on it.
    board.reload()
    expect(board.locator("#sales-chart canvas")).to_have_count(1)
    points = int(board.locator("#sales-chart").get_attribute("data-points") or 0)
    assert points >= 2, points
    assert chart_pixels(board, SOLD_COLOUR) > 50

    board.get_by_role("link", name="Attendees", exact=True).click()
    rows = board.locator("tr[data-ticket]")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text(customer["id"])
    with board.expect_download() as downloading:
        board.get_by_role("link", name="Download the list (CSV)").click()
    download = downloading.value
    assert download.suggested_filename == f"event-{event_id}-attendees.csv"
    with Path(download.path()).open(newline="") as file:
        table = list(csv.reader(file))
    assert table[0] == ["ticket", "number", "booking", "user_id", "status", "checked_in_at"]
    assert sorted((r[1], r[2], r[3], r[4], r[5]) for r in table[1:]) == [
        ("1", str(booking_id), customer["id"], "valid", ""),
        ("2", str(booking_id), customer["id"], "valid", ""),
    ]
    on_page = {rows.nth(i).get_attribute("data-ticket") for i in range(2)}
    assert {r[0] for r in table[1:]} == on_page


def test_an_organizer_edits_then_cancels_an_event_and_its_sale_is_refunded(
    page: Page, stack: WebStack, organizer: dict[str, Any], customer: dict[str, Any]
) -> None:
    event = stack.create_event(organizer["access"], total_tickets=6, price_per_ticket="10.00")
    status, booking = stack.call(
        "POST", "booking", "/api/bookings/", {"event": event["id"], "tickets_booked": 1},
        customer["access"],
    )  # fmt: skip
    assert status == 201, booking
    log_in(page, organizer["email"])
    page.goto(f"/organizer/events/{event['id']}/edit")
    expect(page.get_by_label("Name")).to_have_value(event["name"])
    page.get_by_label("Tickets").fill("0")
    page.get_by_label("Tickets").evaluate("field => field.removeAttribute('min')")
    page.get_by_role("button", name="Save").click()
    # The booking service's refusal, shown on the form with what was typed.
    expect(page.locator("#problem")).to_contain_text("total tickets")
    expect(page.get_by_label("Tickets")).to_have_value("0")
    page.get_by_label("Tickets").fill("8")
    page.get_by_label("Location").fill("The Old Boathouse")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("The event is saved.")).to_be_visible()
    status, saved = stack.call("GET", "booking", f"/api/events/{event['id']}/")
    assert (saved["total_tickets"], saved["location"]) == (8, "The Old Boathouse")
    assert saved["name"] == event["name"]

    page.goto(f"/organizer/events/{event['id']}/edit")
    page.get_by_role("link", name="Cancel this event…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Cancel {event['name']}?")
    page.get_by_role("button", name="Cancel the event").click()
    expect(page.get_by_text("is canceled")).to_be_visible()
    expect(page.locator("h1 .badge")).to_have_text("canceled")
    status, held = stack.call(
        "GET", "booking", f"/api/bookings/{booking['id']}/", token=customer["access"]
    )
    assert (held["status"], held["cancel_reason"]) == ("canceled", "event_canceled")

    # Still on the organizer's home (the public list leaves a canceled event out).
    page.get_by_role("link", name="Organizer", exact=True).click()
    expect(page.locator(f"tr[data-event-id='{event['id']}']")).to_contain_text("canceled")


def test_an_organizer_adds_edits_and_retires_a_resource(
    page: Page, stack: WebStack, organizer: dict[str, Any]
) -> None:
    name = f"Court {uuid.uuid4().hex[:6]}"
    log_in(page, organizer["email"])
    page.goto("/organizer/resources/new")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Time zone").fill("Mars/Olympus")
    page.get_by_role("button", name="Add the resource").click()
    expect(page.locator("#problem")).to_be_visible()
    expect(page.get_by_label("Name")).to_have_value(name)
    page.get_by_label("Time zone").fill("Europe/Berlin")
    page.get_by_label("Slot length (minutes)").fill("30")
    page.get_by_role("button", name="Add the resource").click()
    card = page.locator(".card", has_text=name)
    expect(card).to_contain_text("slots of 30 min")
    card.get_by_role("link", name=name, exact=True).click()
    page.get_by_label("Closes").fill("21:00")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".card", has_text=name)).to_contain_text("09:00 to 21:00")
    page.locator(".card", has_text=name).get_by_role("link", name=name, exact=True).click()
    page.get_by_role("link", name="Retire this resource…").click()
    page.get_by_role("button", name="Retire the resource").click()
    expect(page.get_by_text(f"“{name}” is retired.")).to_be_visible()
    expect(page.locator(".card", has_text=name)).to_have_count(0)


class Receiver:
    """A webhook receiver on 127.0.0.1: keeps every request's headers and raw body."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        received = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append((dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/turnstile"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


def signed_with(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The check docs/api/notifications.md gives receivers (timestamps aside)."""
    fields = dict(item.split("=", 1) for item in headers["Turnstile-Signature"].split(","))
    expected = hmac.new(
        secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


def test_webhooks_register_rotate_the_secret_and_show_the_delivery_log(
    page: Page, stack: WebStack, organizer: dict[str, Any], receiver: Receiver
) -> None:
    log_in(page, organizer["email"])
    page.goto("/organizer/")
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_label("URL").fill("ftp://example.com/nope")
    page.get_by_label("URL").evaluate("field => field.type = 'text'")
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#problem")).to_be_visible()

    page.get_by_label("URL").fill(receiver.url)
    page.get_by_label("Description").fill("Box office")
    page.get_by_label("event.created").check()
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_text("The webhook is registered.")).to_be_visible()
    first = page.locator("[data-secret]").inner_text()
    assert first.startswith("whsec_")
    webhook_url = page.url
    # Shown once: the page read again has no secret on it.
    page.goto(webhook_url)
    expect(page.locator("[data-secret]")).to_have_count(0)

    page.get_by_role("button", name="Rotate the secret").click()
    expect(page.get_by_text("A new secret is made")).to_be_visible()
    second = page.locator("[data-secret]").inner_text()
    assert second.startswith("whsec_")
    assert second != first

    # A message for this organizer is delivered, signed with the new secret, and logged.
    event = stack.create_event(organizer["access"], name="Webhook night")
    delivery = page.locator("tr[data-delivery]")
    for _ in range(40):
        page.goto(webhook_url)
        if delivery.count() and "succeeded" in delivery.first.inner_text():
            break
        page.wait_for_timeout(500)
    expect(delivery).to_have_count(1)
    expect(delivery.first).to_contain_text("event.created")
    expect(delivery.first).to_contain_text("succeeded")
    expect(delivery.first).to_contain_text("HTTP 204")
    assert len(receiver.requests) == 1
    headers, body = receiver.requests[0]
    assert headers["Turnstile-Event-Type"] == "event.created"
    assert str(event["id"]) in body.decode()
    assert signed_with(second, headers, body)
    assert not signed_with(first, headers, body)

    page.get_by_role("link", name="All webhooks").click()
    expect(page.locator("tr[data-webhook]")).to_contain_text(receiver.url)


def test_customers_are_told_the_organizer_pages_are_not_for_them(
    page: Page, customer: dict[str, Any]
) -> None:
    log_in(page, customer["email"])
    expect(page.get_by_role("link", name="Organizer", exact=True)).to_have_count(0)
    response = page.goto("/organizer/webhooks")
    assert response is not None
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("These pages are for organizers.")


def test_another_organizers_event_is_not_found_on_the_dashboard(
    page: Page, stack: WebStack, organizer: dict[str, Any]
) -> None:
    someone_else = stack.register("organizer")
    event = stack.create_event(someone_else["access"])
    log_in(page, organizer["email"])
    response = page.goto(f"/organizer/events/{event['id']}/")
    assert response is not None
    assert response.status == 404
    response = page.goto(f"/organizer/events/{event['id']}/attendees.csv")
    assert response is not None
    assert response.status == 404
