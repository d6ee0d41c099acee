"""An applicant in a real browser: signs in, reads what their programs can still take, is
refused an impossible request before anything is sent, applies, and sees the worker's
decision appear on the application's page without reloading it; the pages in Norwegian."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from tests.browser.conftest import sign_in
from tests.browser.harness import APPLICANT, LivePortal

FAST_LANE = "Norwegian startups fast lane"


def _choose(page: Any, field: str, label: str) -> None:
    page.select_option(f"#id_{field}", label=label)


def test_applicant_applies_is_refused_the_impossible_and_sees_the_decision(
    page: Any, live_portal: LivePortal, shot: Any
) -> None:
    # given: the demo applicant, signed in
    page.goto("/")
    shot(page, "applicant-home-anonymous")
    sign_in(page, *APPLICANT)
    shot(page, "applicant-home")
    page.goto("/programs/")
    assert page.locator("h2", has_text=FAST_LANE).count() == 1
    shot(page, "applicant-programs")

    # when: asking for more than the fast lane's maximum, and a window in the past
    page.goto("/apply/")
    _choose(page, "program", FAST_LANE)
    _choose(page, "pool", "narvik-gb300-a")
    page.fill("#id_title", "Fine-tuning a Norwegian speech model")
    page.fill("#id_gpu_hours", "60000")
    start = date.today() + timedelta(days=7)
    page.fill("#id_start_date", (date.today() - timedelta(days=3)).isoformat())
    page.fill("#id_end_date", (start + timedelta(days=13)).isoformat())
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.method))
    page.click("button[name=submit]")

    # then: refused in the page, before any request leaves it
    gpu_error = page.locator('.error[data-for="gpu_hours"]')
    assert re.search(r"100 to 50,000 GPU-hours", gpu_error.inner_text())
    assert "past" in page.locator('.error[data-for="start_date"]').inner_text()
    assert "POST" not in requests
    assert page.url.endswith("/apply/")
    shot(page, "applicant-apply-refused")

    # when: a request that fits, submitted
    page.fill("#id_gpu_hours", "2000")
    page.fill("#id_start_date", start.isoformat())
    page.click("button[name=submit]")

    # then: its page shows the worker's decision once it is made, without a reload
    page.wait_for_url(re.compile(r"/applications/[0-9a-f-]{36}/$"))
    status = page.locator("#application-status")
    status.and_(page.locator('[data-status="approved"]')).wait_for(timeout=30_000)
    assert "Approved automatically" in status.inner_text()
    shot(page, "applicant-application-approved")

    # and the allocation is listed with its bar
    page.goto("/allocations/")
    assert page.locator(".bar").count() >= 1
    assert "2,000 GPU-hours" in page.locator("main").inner_text()
    shot(page, "applicant-allocations")
    page.goto("/applications/")
    shot(page, "applicant-applications")
    page.goto("/tokens/")
    shot(page, "applicant-tokens")


def test_the_server_refuses_what_the_browser_would(page: Any, live_portal: LivePortal) -> None:
    # given: a signed-in applicant whose browser runs no script (checks skipped)
    sign_in(page, *APPLICANT)
    page.goto("/apply/")
    page.evaluate("document.getElementById('apply-form').noValidate = true")
    _choose(page, "program", FAST_LANE)
    _choose(page, "pool", "narvik-gb300-a")
    page.fill("#id_title", "Too large")
    page.fill("#id_gpu_hours", "60000")
    start = date.today() + timedelta(days=7)
    page.fill("#id_start_date", start.isoformat())
    page.fill("#id_end_date", (start + timedelta(days=3)).isoformat())

    # when: the form is sent around the script's check
    page.evaluate("HTMLFormElement.prototype.submit.call(document.getElementById('apply-form'))")
    page.wait_for_load_state()

    # then: the server answers the same refusal, and nothing was saved
    assert "100 to 50,000 GPU-hours" in page.locator("#field-gpu_hours").inner_text()
    page.goto("/applications/")
    assert "Too large" not in page.locator("main").inner_text()


def test_pages_in_norwegian_for_a_browser_that_asks_for_it(
    norwegian_page: Any, live_portal: LivePortal, shot: Any
) -> None:
    # given: a browser whose Accept-Language is nb-NO
    page = norwegian_page

    # when
    page.goto("/")

    # then: the page is in bokmål
    assert page.locator("html").get_attribute("lang") == "nb"
    assert "Logg inn" in page.locator("header").inner_text()
    assert "Hvem kan søke" in page.locator("main").inner_text()
    sign_in(page, *APPLICANT)
    page.goto("/programs/")
    assert "Programmene deres" in page.locator("h1").inner_text()
    shot(page, "applicant-programs-nb")
