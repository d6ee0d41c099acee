"""Fixtures of the browser tests: a live portal (session), Debian's Chromium driven by
Playwright, a page per test, and `shot(page, name)` for the screenshots kept as artifacts.

Without Chromium or the `playwright` package the tests skip with the reason; under CI they
fail (`.ci/run` installs Chromium with apt-get).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.harness import (
    CHROMIUM_ARGS,
    SCREENSHOT_DIR,
    LivePortal,
    chromium_path,
)
from tests.conftest import _missing


@pytest.fixture(scope="session")
def live_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePortal]:
    portal = LivePortal(tmp_path_factory.mktemp("live-portal"))
    portal.start()
    try:
        yield portal
    finally:
        portal.stop()


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        _missing("needs Chromium: `apt-get install chromium` (or set PORTAL_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("needs the `playwright` package: `make install`")
    with sync_playwright() as playwright:
        # Playwright gives each launch a fresh, temporary --user-data-dir of its own.
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def _context(browser: Any, live_portal: LivePortal, locale: str) -> Any:
    context = browser.new_context(
        base_url=live_portal.url,
        locale=locale,
        extra_http_headers={"Accept-Language": locale},
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(15_000)
    return context


@pytest.fixture
def page(browser: Any, live_portal: LivePortal) -> Iterator[Any]:
    """A fresh page in English (no cookie, no session)."""
    context = _context(browser, live_portal, "en-GB")
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def norwegian_page(browser: Any, live_portal: LivePortal) -> Iterator[Any]:
    """A fresh page whose browser asks for Norwegian bokmål."""
    context = _context(browser, live_portal, "nb-NO")
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="session")
def shot() -> Callable[[Any, str], Path]:
    """Save a full-page screenshot as `<name>.png` in the artifacts folder."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> Path:
        path = SCREENSHOT_DIR / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def sign_in(page: Any, email: str, password: str) -> None:
    page.goto("/sign-in/")
    page.fill("#id_username", email)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/")
