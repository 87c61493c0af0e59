"""Every customer page, on a desktop and on a 375 px phone: axe-core finds no serious or
critical violation, and nothing is wider than the screen. The keyboard reaches the skip link
first.

With WEB_SCREENSHOTS_DIR set (`WEB_SCREENSHOTS_DIR=docs/web python3 dev.py test web --
-k pages_pass`), the walk also keeps a screenshot of each page there: the ones in docs/web/.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from web_service.tests.conftest import DESKTOP, PHONE
from web_service.tests.pages import (
    SHOWCASE_EVENT,
    SHOWCASE_RESOURCE,
    assert_fits,
    axe_violations,
    go,
    log_in,
)
from web_service.tests.stack import WebStack

pytestmark = pytest.mark.slow

SCREENSHOTS = os.environ.get("WEB_SCREENSHOTS_DIR", "")
PHONE_SCREENSHOTS = {"events", "checkout", "booking-tickets"}


@pytest.fixture(scope="module")
def shop(stack: WebStack) -> dict[str, Any]:
    """An organizer's event and resource, and a customer with a paid booking and a
    notification about it."""
    organizer = stack.register("organizer")
    customer = stack.register("customer")
    event = stack.create_event(
        organizer["access"],
        **SHOWCASE_EVENT,
        total_tickets=120,
        price_per_ticket="30.00",
    )
    status, resource = stack.call(
        "POST",
        "booking",
        "/api/resources/",
        {**SHOWCASE_RESOURCE, "description": "Clay court, lights until ten."},
        organizer["access"],
    )
    assert status == 201, resource
    booking = stack.paid_booking(customer["access"], event["id"], 2)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        _, inbox = stack.call(
            "GET", "notifications", "/api/notifications/", token=customer["access"]
        )
        if any(n["title"].startswith("Booking confirmed") for n in inbox["results"]):
            break
        time.sleep(0.3)
    return {"customer": customer, "event": event, "resource": resource, "booking": booking}


def _pages(stack: WebStack, shop: dict[str, Any]) -> list[tuple[str, Callable[[Page], None]]]:
    """(name, how to get there) for every customer page, in the order a person meets them."""
    event, resource, booking = shop["event"], shop["resource"], shop["booking"]

    def checkout(page: Page) -> None:
        # A fresh hold, so that its countdown runs while the page is checked.
        status, held = stack.call(
            "POST", "booking", "/api/bookings/", {"event": event["id"], "tickets_booked": 2},
            shop["customer"]["access"],
        )  # fmt: skip
        assert status == 201, held
        page.goto(f"/checkout/{held['id']}/")
        expect(page.locator("[data-countdown]")).not_to_have_text("--:--")

    return [
        ("login", go("/login")),
        ("register", go("/register")),
        ("events", go("/?q=harbour")),
        ("event", go(f"/events/{event['id']}/")),
        ("checkout", checkout),
        ("bookings", go("/bookings/")),
        ("booking-tickets", go(f"/bookings/{booking['id']}/")),
        ("resources", go("/resources/")),
        ("resource-slots", go(f"/resources/{resource['id']}/")),
        ("notifications", go("/notifications/")),
        ("profile", go("/profile")),
    ]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_customer_pages_pass_axe_and_fit_the_screen(
    new_page: Callable[..., Page], stack: WebStack, shop: dict[str, Any], viewport: dict[str, int]
) -> None:
    page = new_page(viewport)
    findings: dict[str, list[str]] = {}
    for name, open_it in _pages(stack, shop):
        if name == "events":  # the pages after the login form's own are a customer's
            log_in(page, shop["customer"]["email"])
        open_it(page)
        page.wait_for_load_state("load")
        violations = axe_violations(page)
        if violations:
            findings[name] = violations
        assert_fits(page, name, viewport)
        if SCREENSHOTS and (viewport is DESKTOP or name in PHONE_SCREENSHOTS):
            suffix = "" if viewport is DESKTOP else "-phone"
            _screenshot(page, Path(SCREENSHOTS) / f"{name}{suffix}.png")
    assert not findings, findings


def _screenshot(page: Page, path: Path) -> None:
    """The whole page as a small PNG (a palette of 64 colours is plenty for these pages)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.open(io.BytesIO(page.screenshot(full_page=True)))
    image.convert("RGB").quantize(colors=64).save(path, optimize=True)


def test_the_keyboard_reaches_the_skip_link_first_and_it_jumps_to_the_content(
    page: Page,
) -> None:
    page.goto("/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
