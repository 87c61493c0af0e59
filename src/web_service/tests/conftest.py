"""Fixtures of the web service's tests: one real stack for the whole run, and Chromium
(Debian's package, driven by Playwright) with a fresh page per test.

Without chromium the browser tests are skipped with a message saying how to get it; in CI
(`CI=true`) a missing chromium fails them instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from web_service.tests.stack import WebStack, web_stack

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PHONE = {"width": 375, "height": 740}
DESKTOP = {"width": 1200, "height": 900}


@pytest.fixture(scope="session")
def stack() -> Iterator[WebStack]:
    workdir = Path(tempfile.mkdtemp(prefix="turnstile-web-"))
    with web_stack(workdir) as running:
        yield running
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def organizer(stack: WebStack) -> dict[str, Any]:
    """A new organizer of the test's own (their id, email and a fresh access token)."""
    return stack.register("organizer")


@pytest.fixture
def customer(stack: WebStack) -> dict[str, Any]:
    """A new customer of the test's own."""
    return stack.register("customer")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(
                "chromium is not installed (.ci/run installs it): the browser tests must run in CI"
            )
        pytest.skip(
            "chromium is not installed: `apt-get install chromium` to run the browser tests"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def new_page(browser: Any, stack: WebStack) -> Iterator[Callable[..., Any]]:
    """`new_page(viewport=PHONE)`: a page in a fresh browser context (its own cookies), its
    URLs relative to the web service. Browser errors in the page fail the test."""
    contexts: list[Any] = []
    errors: list[str] = []

    def make(viewport: dict[str, int] | None = None) -> Any:
        context = browser.new_context(base_url=stack.web, viewport=viewport or DESKTOP)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    yield make
    for context in contexts:
        # Shown only when the test fails: where each page was and what it said.
        for open_page in context.pages:
            main = open_page.locator("main")
            text = main.inner_text(timeout=1000) if main.count() else open_page.content()[:2000]
            print(f"--- {open_page.url}\n{text[:2000]}")
        context.close()
    assert not errors, f"script errors in the page: {errors}"


@pytest.fixture
def page(new_page: Callable[..., Any]) -> Any:
    return new_page()
