"""What the browser tests do often: log in through the form, hold tickets through the event
page, read a QR code off the screen, check a page with axe-core and its width."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from typing import Any

import jwt
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from web_service.tests.stack import PASSWORD, WebStack

BLOCKING_IMPACTS = ("serious", "critical")
# The event and resource the accessibility walks show (and docs/web's screenshots with them).
SHOWCASE_EVENT = {
    "name": "Jazz at the Harbour",
    "description": "The Blue Quartet plays standards and new work by the water.",
    "location": "Pier 4, Harbour Hall",
}
SHOWCASE_RESOURCE: dict[str, Any] = {
    "name": "Tennis Court 2",
    "location": "Riverside Club",
    "timezone": "Europe/Berlin",
    "opening_time": "08:00",
    "closing_time": "20:00",
    "slot_minutes": 60,
    "price_per_slot": "18.00",
}
_axe = Axe()


def log_in(page: Page, email: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def hold(page: Page, event_id: int, tickets: int) -> int:
    """Hold tickets on the event's page; the booking id from the checkout it leads to."""
    page.goto(f"/events/{event_id}/")
    page.get_by_label("Number of tickets").select_option(str(tickets))
    page.get_by_role("button", name="Hold tickets").click()
    page.wait_for_url("**/checkout/*/")
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def pay(page: Page, card: str) -> None:
    page.get_by_label("Card number").fill(card)
    page.get_by_label("Expiry (MM/YY)").fill("12/30")
    page.get_by_label("CVC").fill("123")
    page.get_by_role("button", name="Pay").click()


def countdown_seconds(page: Page) -> int:
    text = page.locator("[data-countdown]").inner_text()
    minutes, seconds = text.split(":")
    assert (len(minutes), len(seconds)) == (2, 2), text
    return int(minutes) * 60 + int(seconds)


def decode_qr(page: Page, selector: str) -> str:
    """The text of the QR code the page shows in `selector`, read from a screenshot."""
    import zxingcpp
    from PIL import Image

    image = Image.open(io.BytesIO(page.locator(selector).screenshot()))
    found = zxingcpp.read_barcodes(image)
    assert [code.format for code in found] == [zxingcpp.BarcodeFormat.QRCode], found
    return str(found[0].text)


def verify_ticket_code(stack: WebStack, code: str) -> dict[str, Any]:
    """The code's claims, verified with the booking service's published keys (JWKS)."""
    status, jwks = stack.call("GET", "booking", "/.well-known/jwks.json")
    assert status == 200, jwks
    header = json.loads(base64.urlsafe_b64decode(code.split(".")[0] + "=="))
    assert header["typ"] == "turnstile-ticket"
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims: dict[str, Any] = jwt.decode(
        code, jwt.PyJWK(key).key, algorithms=["EdDSA"], options={"verify_aud": False}
    )
    return claims


def axe_violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings on the page, one line each."""
    results = _axe.run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v.get("impact") in BLOCKING_IMPACTS
    ]


def go(path: str) -> Callable[[Page], None]:
    """The way to a page that is its address alone, for a walk over pages."""

    def open_it(page: Page) -> None:
        page.goto(path)

    return open_it


def assert_fits(page: Page, name: str, viewport: dict[str, int]) -> None:
    """Nothing on the page is wider than the screen; else which elements reach past it."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], (
        f"{name} is {width} px wide on a {viewport} screen: {too_wide(page)}"
    )


def too_wide(page: Page) -> list[str]:
    """The elements reaching past the right edge of the screen, for a failure's message."""
    return list(
        page.evaluate(
            """() => [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
                .slice(0, 8)
                .map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className
                          + ' ' + Math.round(e.getBoundingClientRect().right))"""
        )
    )
