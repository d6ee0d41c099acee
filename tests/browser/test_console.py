"""An operator in a real browser: the console's index with its counts, and an approval with
a reason from the application's page, which the applicant's page then shows as an
allocation. Screenshots of the console and the application page are kept as artifacts."""

from __future__ import annotations

import re
import time
from datetime import date, timedelta
from typing import Any

import httpx

from tests.browser.conftest import sign_in
from tests.browser.harness import APPLICANT, OPERATOR, LivePortal


def _admin_sign_in(page: Any) -> None:
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", OPERATOR[0])
    page.fill("#id_password", OPERATOR[1])
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")


def _count(page: Any, name: str) -> int:
    return int(page.locator(f"#count-{name} strong").inner_text())


def _application_in_review(live_portal: LivePortal) -> dict[str, Any]:
    """The demo applicant asks the fast lane for more than it approves alone, through the
    API, and the worker sends it to review."""
    with httpx.Client(base_url=f"{live_portal.url}/api/v1/", timeout=10) as api:
        token = api.post("auth/token/", json={"email": APPLICANT[0], "password": APPLICANT[1],
                                              "name": "browser test"}).json()["token"]  # fmt: skip
        api.headers["Authorization"] = f"Bearer {token}"
        me = api.get("me/").json()
        organization = me["memberships"][0]["organization"]
        organization_id = organization["id"] if isinstance(organization, dict) else organization
        programs = api.get("programs/").json()["results"]
        pools = api.get("pools/").json()["results"]
        start = date.today() + timedelta(days=20)
        draft = api.post(
            "applications/",
            json={
                "organization": organization_id,
                "program": next(p["id"] for p in programs if p["slug"] == "no-startups-fast-lane"),
                "pool": next(p["id"] for p in pools if p["name"] == "narvik-gb300-a"),
                "title": "Reviewed speech model",
                "gpu_hours": 20_000,
                "start_date": start.isoformat(),
                "end_date": (start + timedelta(days=19)).isoformat(),
                "purpose": "Norwegian speech recognition",
            },
        )
        assert draft.status_code == 201, draft.text
        application = api.post(f"applications/{draft.json()['id']}/submit/").json()
        deadline = time.monotonic() + 30
        while application["status"] == "submitted" and time.monotonic() < deadline:
            time.sleep(0.3)
            application = api.get(f"applications/{application['id']}/").json()
    assert application["status"] == "in_review", application
    return application


def test_console_index_shows_the_counts(page: Any, live_portal: LivePortal, shot: Any) -> None:
    # given: the demo's story (two in review, two waitlisted, a maintenance window)
    page.set_viewport_size({"width": 1400, "height": 900})

    # when
    _admin_sign_in(page)

    # then
    assert _count(page, "in-review") >= 2
    assert _count(page, "waitlisted") == 2
    assert _count(page, "overcommitted") == 3
    assert _count(page, "at-risk") == 2
    assert page.locator("#console-headroom", has_text="narvik-h200").count() == 1
    shot(page, "console-index")

    # and the review queue reads whole at 1,400 px, with the age against the target
    page.click("#count-in-review a")
    results = page.locator("#result_list")
    assert re.search(r"\d+\.\d of \d+ days", results.inner_text())
    overflow = page.evaluate(
        "() => { const r = document.querySelector('.results');"
        " return r.scrollWidth - r.clientWidth; }"
    )
    assert overflow <= 0
    shot(page, "console-review-queue")

    # and the charts draw the days with their figures on hover
    page.goto("/admin/capacity/?days=90")
    assert page.locator("rect.day").count() > 100
    shot(page, "console-charts")


def test_operator_approves_from_the_application_page_with_a_reason(
    page: Any, live_portal: LivePortal, shot: Any
) -> None:
    # given
    application = _application_in_review(live_portal)
    _admin_sign_in(page)

    # when: from the review queue to the application's page
    page.goto("/admin/allocations/reviewqueueitem/")
    page.click("text=Reviewed speech model")
    page.wait_for_url(re.compile(rf"/admin/allocations/application/{application['id']}/change/"))
    figures = page.locator("#decision").inner_text()
    assert "1,000 GPU-hours a day" in figures
    assert "Its capacity is held while it is in review" in figures
    shot(page, "console-application")
    page.fill("#id_decision_reason", "Speech data for public services: approved.")
    page.click("#approve-button")

    # then
    assert "Approved “Reviewed speech model”." in page.locator(".messagelist").inner_text()
    assert "Decision: Approved" in page.locator("#decision").inner_text()
    shot(page, "console-application-approved")

    # and the applicant's page shows the allocation
    applicant = page.context.browser.new_context(base_url=live_portal.url)
    try:
        mine = applicant.new_page()
        sign_in(mine, *APPLICANT)
        mine.goto(f"/applications/{application['id']}/")
        text = mine.locator("main").inner_text()
        assert "Speech data for public services: approved." in text
        mine.goto("/allocations/")
        assert "Reviewed speech model" in mine.locator("main").inner_text()
    finally:
        applicant.close()
