"""The door: staff named by the organizer scan a ticket in Chromium. The QR image is the one
the customer's ticket page renders, handed to the scanner as a photo and decoded in the page
by the vendored jsQR (the camera's frames take the same path); the first scan checks the
ticket in, a second is refused with the time of the first, and the count goes 0 → 1 of 2."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import FilePayload, Page, expect

from web_service.organizer.scanner import code_event
from web_service.tests.pages import log_in
from web_service.tests.stack import WebStack

pytestmark = pytest.mark.slow


def show_photo(page: Page, png: bytes) -> None:
    photo: FilePayload = {"name": "ticket.png", "mimeType": "image/png", "buffer": png}
    page.get_by_label("Or read a photo of a ticket").set_input_files(files=[photo])


def test_door_staff_scan_the_ticket_pages_qr_once_and_a_second_scan_is_refused_with_the_time(
    new_page: Callable[..., Page], stack: WebStack
) -> None:
    organizer = stack.register("organizer")
    customer = stack.register("customer")
    door = stack.register("customer")
    event = stack.create_event(organizer["access"], name="Door test night")
    booking_id = stack.paid_booking(customer["access"], event["id"], 2)["id"]

    # The customer's ticket page: the first ticket's QR code, as the screen shows it.
    wallet = new_page()
    log_in(wallet, customer["email"])
    wallet.goto(f"/bookings/{booking_id}/")
    first_ticket = wallet.locator("[data-ticket]").first
    expect(first_ticket).to_contain_text("Ticket 1")
    qr_png = first_ticket.locator("svg").screenshot()

    # The door staff member finds their user id; the organizer names them.
    scanner = new_page()
    log_in(scanner, door["email"])
    scanner.get_by_role("link", name="Scan", exact=True).click()
    user_id = scanner.locator("[data-user-id]").inner_text()
    assert user_id == door["id"]
    response = scanner.goto(f"/scan/{event['id']}/")
    assert response is not None
    assert response.status == 404  # not named yet

    board = new_page()
    log_in(board, organizer["email"])
    board.goto(f"/organizer/events/{event['id']}/staff")
    board.get_by_label("User id").fill(user_id)
    board.get_by_role("button", name="Add to the door staff").click()
    expect(board.locator(f"tr[data-staff='{user_id}']")).to_be_visible()

    scanner.goto(f"/scan/{event['id']}/")
    expect(scanner.get_by_role("heading", level=1)).to_have_text("Scan: Door test night")
    expect(scanner.locator("[data-checked-in]")).to_have_text("0")
    expect(scanner.locator("[data-expected]")).to_have_text("2")
    # Headless Chromium on Linux has no BarcodeDetector: the page reads codes with jsQR.
    if not scanner.evaluate("'BarcodeDetector' in window"):
        expect(scanner.locator("[data-scanner]")).to_have_attribute("data-decoder", "jsQR")

    show_photo(scanner, qr_png)
    result = scanner.locator("[data-result]")
    expect(result).to_have_attribute("data-result", "ok")
    expect(result).to_contain_text("Checked in")
    expect(result).to_contain_text(f"Ticket 1 of booking #{booking_id}")
    expect(scanner.locator("[data-checked-in]")).to_have_text("1")
    expect(scanner.locator("[data-expected]")).to_have_text("2")

    tickets = stack.tickets(customer["access"], booking_id)
    by_number = {t["number"]: t for t in tickets}
    assert by_number[1]["status"] == "checked_in"
    assert by_number[2]["status"] == "valid"
    first_at = by_number[1]["checked_in_at"]

    # The same ticket again (a new scan, a new nonce): refused, with the first scan's time.
    show_photo(scanner, qr_png)
    expect(result).to_have_attribute("data-result", "again")
    expect(result.locator(".scan-headline")).to_have_text(
        f"Already checked in at {first_at[11:16]}"
    )
    expect(scanner.locator("[data-checked-in]")).to_have_text("1")

    # Typed codes: garbage is invalid; the second ticket's code checks it in.
    scanner.get_by_label("Ticket code").fill("not-a-ticket")
    scanner.get_by_role("button", name="Check in").click()
    expect(result).to_have_attribute("data-result", "invalid")
    expect(result).to_contain_text("Invalid code")
    scanner.get_by_label("Ticket code").fill(by_number[2]["code"])
    scanner.get_by_role("button", name="Check in").click()
    expect(result).to_have_attribute("data-result", "ok")
    expect(result).to_contain_text("Ticket 2")
    expect(scanner.locator("[data-checked-in]")).to_have_text("2")

    # The ticket page says so too.
    wallet.reload()
    expect(first_ticket).to_contain_text("Checked in at")

    # Removed from the door staff, the scanner is theirs no more.
    board.reload()
    board.get_by_role("button", name=f"Remove {user_id}").click()
    expect(board.locator(f"tr[data-staff='{user_id}']")).to_have_count(0)
    response = scanner.goto(f"/scan/{event['id']}/")
    assert response is not None
    assert response.status == 404
    expect(scanner.get_by_role("heading", level=1)).to_have_text("This scanner is not yours.")


def test_a_ticket_of_another_event_is_not_checked_in_here(page: Page, stack: WebStack) -> None:
    """The organizer of two events scans a ticket of the other one at this door: refused
    before anything is sent, so it is not checked in at the wrong door."""
    organizer = stack.register("organizer")
    customer = stack.register("customer")
    here = stack.create_event(organizer["access"], name="Here")
    there = stack.create_event(organizer["access"], name="There")
    booking_id = stack.paid_booking(customer["access"], there["id"], 1)["id"]
    tickets = stack.tickets(customer["access"], booking_id)
    log_in(page, organizer["email"])
    page.goto(f"/scan/{here['id']}/")
    page.get_by_label("Ticket code").fill(tickets[0]["code"])
    page.get_by_role("button", name="Check in").click()
    result = page.locator("[data-result]")
    expect(result).to_have_attribute("data-result", "invalid")
    expect(result).to_contain_text(f"This ticket is for event #{there['id']}")
    _, summary = stack.call(
        "GET", "booking", f"/api/events/{there['id']}/checkins/summary", token=organizer["access"]
    )
    assert summary == {"checked_in": 0, "expected": 1}


def test_a_canceled_bookings_ticket_is_void_at_the_door(page: Page, stack: WebStack) -> None:
    organizer = stack.register("organizer")
    customer = stack.register("customer")
    event = stack.create_event(organizer["access"])
    booking_id = stack.paid_booking(customer["access"], event["id"], 1)["id"]
    tickets = stack.tickets(customer["access"], booking_id)
    status, canceled = stack.call(
        "DELETE", "booking", f"/api/bookings/{booking_id}/", token=customer["access"]
    )
    assert status == 200, canceled
    assert canceled["status"] == "canceled"
    log_in(page, organizer["email"])
    page.goto(f"/scan/{event['id']}/")
    expect(page.locator("[data-expected]")).to_have_text("0")
    page.get_by_label("Ticket code").fill(tickets[0]["code"])
    page.get_by_role("button", name="Check in").click()
    result = page.locator("[data-result]")
    expect(result).to_have_attribute("data-result", "void")
    expect(result.locator(".scan-headline")).to_have_text("Void ticket")
    expect(page.locator("[data-checked-in]")).to_have_text("0")


def test_the_scanner_works_without_scripts_through_its_form(
    new_page: Callable[..., Page], browser: Any, stack: WebStack
) -> None:
    organizer = stack.register("organizer")
    customer = stack.register("customer")
    event = stack.create_event(organizer["access"])
    booking_id = stack.paid_booking(customer["access"], event["id"], 1)["id"]
    tickets = stack.tickets(customer["access"], booking_id)
    context = browser.new_context(base_url=stack.web, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto("/login")
        page.get_by_label("Email").fill(organizer["email"])
        page.get_by_label("Password").fill(organizer["password"])
        page.get_by_role("button", name="Log in").click()
        page.goto(f"/scan/{event['id']}/")
        page.get_by_label("Ticket code").fill(tickets[0]["code"])
        page.get_by_role("button", name="Check in").click()
        expect(page.locator("[data-result]")).to_have_attribute("data-result", "ok")
        expect(page.locator("[data-checked-in]")).to_have_text("1")
    finally:
        context.close()


def test_the_event_a_code_names_is_read_without_trusting_it() -> None:
    claims = "eyJ0aWQiOiJ4IiwiYmlkIjozLCJlaWQiOjcsIm4iOjF9"  # {"tid":"x","bid":3,"eid":7,"n":1}
    assert code_event(f"header.{claims}.signature") == 7
    assert code_event("not-a-code") is None
    assert code_event("a.!!!.c") is None
    assert code_event("a.InRydWUi.c") is None  # "true": no claims at all
