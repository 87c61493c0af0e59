"""A customer's pages in Chromium against a real stack: register, log in, find an event,
hold, watch the countdown, pay, see the tickets' QR codes; a hold left to expire; my
bookings; a resource's slot; the inbox; the profile; refusals shown readably."""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from web_service.tests.conftest import PHONE
from web_service.tests.pages import (
    countdown_seconds,
    decode_qr,
    hold,
    log_in,
    pay,
    verify_ticket_code,
)
from web_service.tests.stack import HOLD_SECONDS, PASSWORD, WebStack

pytestmark = pytest.mark.slow


def test_a_customer_registers_finds_an_event_holds_pays_and_sees_verifiable_qr_tickets(
    page: Page, stack: WebStack, organizer: dict[str, Any]
) -> None:
    word = uuid.uuid4().hex[:6]
    event = stack.create_event(
        organizer["access"], name=f"Harbour Lights {word}", date="2031-03-14", total_tickets=10
    )
    stack.create_event(organizer["access"], name=f"Harbour Lights {word} II", date="2031-09-01")
    email = f"ann-{word}@example.com"

    page.goto("/register")
    page.get_by_label("Name").fill("Ann Example")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_text("Your account is ready")).to_be_visible()
    expect(page.get_by_label("Email")).to_have_value(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("link", name="Ann Example")).to_be_visible()

    # Search by name, then narrow by dates: only the March event is left.
    page.get_by_label("Search").fill(f"Harbour Lights {word}")
    page.get_by_role("button", name="Find events").click()
    expect(page.locator(".card")).to_have_count(2)
    page.get_by_label("From").fill("2031-03-01")
    page.get_by_label("To").fill("2031-03-31")
    page.get_by_role("button", name="Find events").click()
    expect(page.locator(".card")).to_have_count(1)
    page.get_by_role("link", name=f"Harbour Lights {word}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Harbour Lights {word}")
    expect(page.locator("[data-available]")).to_have_text("10")

    booking_id = hold(page, event["id"], 2)
    expect(page.get_by_text("2 tickets for")).to_be_visible()
    countdown = page.locator("[data-countdown]")
    expect(countdown).to_have_text(re.compile(r"^\d\d:\d\d$"))
    first = countdown_seconds(page)
    assert 0 < first <= HOLD_SECONDS
    page.wait_for_timeout(1100)
    assert countdown_seconds(page) < first

    # The declined card says so in words, and the booking is still there to pay.
    pay(page, "4000 0000 0000 0002")
    expect(page.locator(".message-error")).to_have_text("Your card was declined. Try another card.")
    pay(page, "4242 4242 4242 4242")
    expect(page.get_by_text("Payment received: your booking is confirmed.")).to_be_visible()
    assert page.url.endswith(f"/bookings/{booking_id}/")
    expect(page.locator("[data-status]")).to_have_text("confirmed")

    tickets = page.locator("[data-ticket]")
    expect(tickets).to_have_count(2)
    for number in (1, 2):
        ticket = page.locator(".ticket", has_text=f"Ticket {number}")
        code = decode_qr(page, f".ticket:has-text('Ticket {number}') svg")
        claims = verify_ticket_code(stack, code)
        assert claims["bid"] == booking_id
        assert claims["eid"] == event["id"]
        assert claims["n"] == number
        assert claims["tid"] == ticket.get_attribute("data-ticket")


def test_a_hold_left_to_expire_says_so_and_its_tickets_come_back(
    page: Page, stack: WebStack, organizer: dict[str, Any], customer: dict[str, Any]
) -> None:
    event = stack.create_event(organizer["access"], total_tickets=5)
    log_in(page, customer["email"])
    hold(page, event["id"], 3)
    expect(page.locator("[data-countdown]")).to_have_text(re.compile(r"^00:(0\d|1\d)$"))
    expired = page.locator("#hold-expired")
    expect(expired).to_be_hidden()

    expect(page.locator("[data-countdown]")).to_have_text(
        "00:00", timeout=(HOLD_SECONDS + 5) * 1000
    )
    expect(expired).to_be_visible()
    expect(expired).to_contain_text("Your hold ran out")
    expect(page.get_by_role("button", name=re.compile("^Pay"))).to_be_disabled()
    expect(page.locator("#hold-release")).to_have_text(
        "The tickets were released: they are back on sale.", timeout=10_000
    )

    # The sweeper has released them: the event's live availability shows all five.
    page.get_by_role("link", name="Back to the event").click()
    expect(page.locator("[data-available]")).to_have_text("5", timeout=15_000)
    expect(page.locator("[data-held]")).to_have_text("0")


def test_my_bookings_change_the_count_while_pending_then_cancel(
    page: Page, stack: WebStack, organizer: dict[str, Any], customer: dict[str, Any]
) -> None:
    event = stack.create_event(organizer["access"], price_per_ticket="10.00")
    log_in(page, customer["email"])
    booking_id = hold(page, event["id"], 2)

    page.get_by_role("link", name="My bookings").click()
    row = page.locator("tr", has_text=f"#{booking_id}")
    expect(row).to_contain_text("pending")
    expect(row).to_contain_text("20.00")
    row.get_by_role("link", name=f"#{booking_id}").click()

    page.get_by_label("Tickets").select_option("3")
    page.get_by_role("button", name="Change the count").click()
    expect(page.get_by_text("Your booking now holds 3 tickets.")).to_be_visible()
    expect(page.get_by_text("Amount: 30.00")).to_be_visible()
    _, availability = stack.call("GET", "booking", f"/api/availability/?event={event['id']}")
    assert availability["held"] == 3

    page.get_by_role("button", name="Cancel this booking").click()
    expect(page.get_by_text("Your booking is canceled.")).to_be_visible()
    expect(page.locator("[data-status]")).to_have_text("canceled")
    _, availability = stack.call("GET", "booking", f"/api/availability/?event={event['id']}")
    assert availability["held"] == 0


def test_the_slot_picker_books_a_slot_of_a_resource(
    page: Page, stack: WebStack, organizer: dict[str, Any], customer: dict[str, Any]
) -> None:
    name = f"Court {uuid.uuid4().hex[:6]}"
    status, resource = stack.call(
        "POST",
        "booking",
        "/api/resources/",
        {
            "name": name,
            "timezone": "Europe/Berlin",
            "opening_time": "08:00",
            "closing_time": "12:00",
            "slot_minutes": 60,
            "price_per_slot": "20.00",
        },
        organizer["access"],
    )
    assert status == 201, resource
    log_in(page, customer["email"])
    page.get_by_role("link", name="Resources").click()
    page.get_by_role("link", name=name).click()
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).date().isoformat()
    page.get_by_label("Day", exact=True).fill(tomorrow)
    page.get_by_role("button", name="Show slots").click()
    slots = page.locator(".slots button")
    expect(slots).to_have_count(4)
    page.get_by_role("button", name="Book 09:00 to 10:00").click()
    page.wait_for_url("**/checkout/*/")
    expect(page.get_by_text(name)).to_be_visible()
    pay(page, "4242 4242 4242 4242")
    expect(page.locator("[data-status]")).to_have_text("confirmed")

    page.goto(f"/resources/{resource['id']}/?date={tomorrow}")
    expect(slots).to_have_count(3)
    expect(page.get_by_role("button", name="Book 09:00 to 10:00")).to_have_count(0)


def test_the_inbox_shows_the_bookings_notification(
    page: Page, stack: WebStack, organizer: dict[str, Any], customer: dict[str, Any]
) -> None:
    event = stack.create_event(organizer["access"])
    stack.paid_booking(customer["access"], event["id"], 1)
    log_in(page, customer["email"])
    title = f"Booking confirmed: {event['name']}"
    deadline = time.monotonic() + 20
    page.goto("/notifications/")
    while not page.get_by_text(title).count() and time.monotonic() < deadline:
        page.wait_for_timeout(500)
        page.reload()
    expect(page.get_by_role("heading", name=title)).to_be_visible()
    page.get_by_role("button", name="Mark all as read").click()
    expect(page.get_by_text(re.compile(r"Marked \d+ as read"))).to_be_visible()
    expect(page.locator(".unread")).to_have_count(0)


def test_profile_edit_and_logout(page: Page, stack: WebStack, customer: dict[str, Any]) -> None:
    log_in(page, customer["email"])
    page.get_by_role("link", name="Web Customer").click()
    page.get_by_label("Name").fill("Renamed Person")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Your profile is saved.")).to_be_visible()
    expect(page.get_by_role("link", name="Renamed Person")).to_be_visible()
    status, me = stack.call(
        "GET", "users", "/api/users/me", token=stack.login(customer["email"])["access"]
    )
    assert (status, me["name"]) == (200, "Renamed Person")

    # An email change without the current password is refused, readably.
    page.get_by_label("Email").fill(f"new-{customer['email']}")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".problem")).to_contain_text("current password")

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_text("You are logged out.")).to_be_visible()
    page.goto("/bookings/")
    page.wait_for_url("**/login?next=%2Fbookings%2F")


def test_refusals_are_readable_messages(
    page: Page, stack: WebStack, organizer: dict[str, Any], customer: dict[str, Any]
) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(customer["email"])
    page.get_by_label("Password").fill("not-the-password-1")
    page.get_by_role("button", name="Log in").click()
    problem = page.locator(".problem")
    expect(problem).to_be_visible()
    assert "{" not in problem.inner_text()

    event = stack.create_event(organizer["access"], total_tickets=3)
    log_in(page, customer["email"])
    page.goto(f"/events/{event['id']}/")
    page.get_by_label("Number of tickets").select_option("5")
    page.get_by_role("button", name="Hold tickets").click()
    message = page.locator(".message-error").first
    expect(message).to_be_visible()
    text = message.inner_text()
    assert "{" not in text, text
    assert "urn:problem" not in text, text
    assert page.url.endswith(f"/events/{event['id']}/")

    page.goto("/events/999999999/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert "{" not in page.locator("main").inner_text()


def test_availability_is_live_on_the_list_and_the_event_page(
    new_page: Any, stack: WebStack, organizer: dict[str, Any], customer: dict[str, Any]
) -> None:
    """Another buyer's hold shows on an open page within a few seconds, without a reload."""
    event = stack.create_event(organizer["access"], total_tickets=8)
    listing, detail = new_page(), new_page()
    listing.goto(f"/?q={event['name'].replace(' ', '+')}")
    detail.goto(f"/events/{event['id']}/")
    expect(listing.locator("[data-available]")).to_have_text("8")
    expect(detail.locator("[data-available]")).to_have_text("8")

    status, booking = stack.call(
        "POST", "booking", "/api/bookings/", {"event": event["id"], "tickets_booked": 3},
        customer["access"],
    )  # fmt: skip
    assert status == 201, booking

    expect(detail.locator("[data-available]")).to_have_text("5", timeout=10_000)
    expect(detail.locator("[data-held]")).to_have_text("3")
    expect(listing.locator("[data-available]")).to_have_text("5", timeout=12_000)


def test_a_phone_sized_screen_buys_a_ticket(
    new_page: Any, stack: WebStack, organizer: dict[str, Any], customer: dict[str, Any]
) -> None:
    page = new_page(PHONE)
    event = stack.create_event(organizer["access"])
    log_in(page, customer["email"])
    booking_id = hold(page, event["id"], 1)
    expect(page.locator("[data-countdown]")).to_be_in_viewport()
    pay(page, "4242424242424242")
    expect(page.locator("[data-status]")).to_have_text("confirmed")
    assert page.url.endswith(f"/bookings/{booking_id}/")
    qr = page.locator(".ticket svg")
    expect(qr).to_be_visible()
    assert qr.bounding_box()["width"] <= PHONE["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
