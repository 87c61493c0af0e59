"""Every organizer and door-staff page, on a desktop and on a 375 px phone: axe-core finds no
serious or critical violation, and nothing is wider than the screen.

With WEB_SCREENSHOTS_DIR set (`WEB_SCREENSHOTS_DIR=docs/web python3 dev.py test web --
-k organizer_pages_pass`), the walk also keeps a screenshot of each page there.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
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
from web_service.tests.test_organizer_pages import Receiver

pytestmark = pytest.mark.slow

SCREENSHOTS = os.environ.get("WEB_SCREENSHOTS_DIR", "")


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


@pytest.fixture(scope="module")
def venue(stack: WebStack, receiver: Receiver) -> dict[str, Any]:
    """An organizer with an event that sold and held tickets, its door staff, a resource and
    a webhook; the sold tickets' codes."""
    organizer = stack.register("organizer")
    door = stack.register("customer")
    buyers = [stack.register("customer") for _ in range(2)]
    event = stack.create_event(
        organizer["access"],
        **SHOWCASE_EVENT,
        total_tickets=40,
        price_per_ticket="30.00",
    )

    def call(method: str, path: str, body: dict[str, Any], who: dict[str, Any]) -> Any:
        service = "notifications" if path.startswith("/api/webhooks") else "booking"
        status, answer = stack.call(method, service, path, body, who["access"])
        assert status in (200, 201), answer
        return answer

    call("POST", "/api/webhooks/", {"url": receiver.url, "description": "Box office"}, organizer)
    codes: list[str] = []
    for buyer, count in zip(buyers, (3, 2), strict=True):
        booking = call(
            "POST", "/api/bookings/", {"event": event["id"], "tickets_booked": count}, buyer
        )
        call(
            "POST", "/api/payments/", {"booking": booking["id"], "payment_token": "tok_visa"}, buyer
        )
        codes += [ticket["code"] for ticket in stack.tickets(buyer["access"], booking["id"])]
    call("POST", "/api/bookings/", {"event": event["id"], "tickets_booked": 1}, buyers[0])
    call("POST", f"/api/events/{event['id']}/staff/", {"user_id": door["id"]}, organizer)
    resource = call(
        "POST",
        "/api/resources/",
        SHOWCASE_RESOURCE,
        organizer,
    )
    _, hooks = stack.call("GET", "notifications", "/api/webhooks/", token=organizer["access"])
    return {
        "organizer": organizer,
        "door": door,
        "event": event,
        "resource": resource,
        "webhook": hooks["results"][0],
        "codes": codes,
    }


def _pages(venue: dict[str, Any]) -> list[tuple[str, str, Callable[[Page], None]]]:
    """(name, who, how to get there) for every organizer and door page."""
    event, resource, webhook = venue["event"], venue["resource"], venue["webhook"]

    def dashboard(page: Page) -> None:
        page.goto(f"/organizer/events/{event['id']}/")
        expect(page.locator("#sales-chart canvas")).to_have_count(1)

    def scanner(page: Page) -> None:
        # The first walk checks a ticket in; the second finds it checked in already.
        page.goto(f"/scan/{event['id']}/")
        page.get_by_label("Ticket code").fill(venue["codes"][0])
        page.get_by_role("button", name="Check in").click()
        expect(page.locator("[data-result]")).to_be_visible()

    base = "/organizer/events"
    return [
        ("organizer", "organizer", go("/organizer/")),
        ("organizer-event-new", "organizer", go(f"{base}/new")),
        ("organizer-dashboard", "organizer", dashboard),
        ("organizer-attendees", "organizer", go(f"{base}/{event['id']}/attendees")),
        ("organizer-staff", "organizer", go(f"{base}/{event['id']}/staff")),
        ("organizer-event-edit", "organizer", go(f"{base}/{event['id']}/edit")),
        ("organizer-event-cancel", "organizer", go(f"{base}/{event['id']}/cancel")),
        ("organizer-resource-new", "organizer", go("/organizer/resources/new")),
        ("organizer-resource-edit", "organizer", go(f"/organizer/resources/{resource['id']}/edit")),
        ("organizer-webhooks", "organizer", go("/organizer/webhooks")),
        ("organizer-webhook", "organizer", go(f"/organizer/webhooks/{webhook['id']}")),
        ("scan", "door", go("/scan/")),
        ("scanner", "door", scanner),
    ]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_organizer_pages_pass_axe_and_fit_the_screen(
    new_page: Callable[..., Page], venue: dict[str, Any], viewport: dict[str, int]
) -> None:
    pages = {"organizer": new_page(viewport), "door": new_page(viewport)}
    log_in(pages["organizer"], venue["organizer"]["email"])
    log_in(pages["door"], venue["door"]["email"])
    findings: dict[str, list[str]] = {}
    for name, who, open_it in _pages(venue):
        page = pages[who]
        open_it(page)
        page.wait_for_load_state("networkidle")
        violations = axe_violations(page)
        if violations:
            findings[name] = violations
        assert_fits(page, name, viewport)
        if SCREENSHOTS:
            suffix = "" if viewport is DESKTOP else "-phone"
            path = Path(SCREENSHOTS) / f"{name}{suffix}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(path), full_page=True)
    assert not findings, findings
