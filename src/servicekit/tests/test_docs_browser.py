"""The docs page renders in a real browser from the service alone: no CDN, no internet.

Chromium (Debian's package, driven by Playwright) loads /api/docs/ from a real service
process; every request to anything but that process is refused and recorded.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from servicekit.testing import current_database_url, service_process

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


SERVICES = {
    "users_service": ("Turnstile users service", "/api/users/login/"),
    "booking_service": ("Turnstile booking service", "/api/bookings/"),
    "notifications_service": ("Turnstile notifications service", "/api/notifications/"),
}


@pytest.fixture(params=sorted(SERVICES))
def service(request: Any) -> Iterator[tuple[str, str]]:
    """Each service as a real process, with its own settings (its own middleware list)."""
    package = request.param
    with service_process(package, env={"DATABASE_URL": current_database_url()}) as base:
        yield package, base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not installed: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def _open_offline(browser: Any, url: str) -> tuple[Any, list[str], list[str]]:
    """A page that may reach only the service itself; returns it with what it fetched."""
    origin = urlsplit(url).netloc
    fetched: list[str] = []
    refused: list[str] = []
    page = browser.new_page()

    def only_the_service(route: Any) -> None:
        request_url = route.request.url
        if urlsplit(request_url).netloc == origin:
            fetched.append(request_url)
            route.continue_()
        else:
            refused.append(request_url)
            route.abort()

    page.route("**/*", only_the_service)
    page.goto(url, wait_until="networkidle")
    return page, fetched, refused


def test_swagger_ui_renders_every_operation_offline(
    browser: Any, service: tuple[str, str], tmp_path: Path
) -> None:
    package, base = service
    title, path = SERVICES[package]
    page, fetched, refused = _open_offline(browser, f"{base}/api/docs/")
    page.wait_for_selector(".opblock", timeout=15_000)
    page.screenshot(path=str(tmp_path / "swagger.png"), full_page=True)
    assert refused == []
    assert any("/static/drf_spectacular_sidecar/swagger-ui-dist/" in url for url in fetched)
    assert page.locator(".info .title").inner_text().startswith(title)
    operations = page.locator(".opblock-summary-path").all_inner_texts()
    assert path in [text.strip().replace("\u200b", "") for text in operations]
