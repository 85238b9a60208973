"""Browser journeys on the real stack: staff, a client and accounting in headless Chromium
against gunicorn + Celery + PostgreSQL + Redis + two simulated PBS hosts over HTTPS.

Each journey saves numbered screenshots under ``test-output/e2e/<journey>/`` and fails on
any console error, page error or failed request (>= 400) in its pages, apart from the ones
it causes on purpose and asserts.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import Journey
from tests.e2e.stack import Login, Stack

pytestmark = [pytest.mark.browser, pytest.mark.slow]

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def sign_in(page: Any, stack: Stack, login: Login, password: str | None = None) -> None:
    page.goto(f"{stack.url}/accounts/login/")
    page.fill("#id_username", login.username)
    page.fill("#id_password", password or login.password)
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r".*/(tenants|my|billing)/?$"))


def sign_out(page: Any) -> None:
    page.click("header .who button")
    page.wait_for_url(re.compile(r".*/accounts/login/$"))


def run_status(page: Any) -> str:
    """The run's status as the progress panel shows it (queued, running, succeeded, failed)."""
    badge = page.locator("#progress > p .badge").first
    return next(c for c in (badge.get_attribute("class") or "").split() if c != "badge")


def onboard_through_the_form(page: Any, journey: Journey, *, slug: str, name: str, placement: str) -> str:
    """Fill the onboarding form (the preview validates as we type), submit, return the run URL."""
    page.click("text=Onboard a customer")
    page.wait_for_url(re.compile(r".*/tenants/new/$"))
    page.fill("#id_slug", slug)
    page.fill("#id_name", name)
    page.fill("#id_contact_email", f"it@{slug}.example")
    page.select_option("#id_plan", label="Standard")
    page.select_option("#id_placement", label=placement)
    page.wait_for_selector("#preview >> text=All names are valid for PBS.")
    assert f"{slug}@pbs!backup" in page.inner_text("#preview")
    journey.shot(page, f"form-{slug}")
    page.click("form button[type=submit]:has-text('Create tenant')")
    page.wait_for_url(re.compile(rf".*/tenants/{slug}/runs/\d+/$"))
    return str(page.url)


def watch_run(page: Any, *, timeout: float, journey: Journey | None = None) -> tuple[str, list[int]]:
    """Follow the progress panel (HTMX polling, no reload) until the run ends.

    Returns the final status and every distinct number of green steps seen on the way;
    with ``journey``, the first view with some steps green and some not is a screenshot."""
    page.evaluate("window.__e2eSamePage = true")
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    status = run_status(page)
    total = page.locator("#progress .step").count()
    while status in ("queued", "running") and time.monotonic() < deadline:
        done = page.locator("#progress .step-done").count()
        if not seen or seen[-1] != done:
            if journey is not None and 0 < done < total and not any(0 < n < total for n in seen):
                journey.shot(page, "run-in-progress")
            seen.append(done)
        page.wait_for_timeout(100)
        status = run_status(page)
    seen.append(page.locator("#progress .step-done").count())
    assert page.evaluate("window.__e2eSamePage === true"), "the run page reloaded instead of polling"
    return status, seen


def test_staff_onboards_reveals_once_and_retries_after_a_fault(
    stack: Stack, journey: Callable[[str], Journey]
) -> None:
    j = journey("1-staff-onboarding")
    page = j.page(clipboard=True)
    admin = stack.logins["admin"]

    page.goto(f"{stack.url}/")
    page.wait_for_url(re.compile(r".*/accounts/login/.*"))
    j.shot(page, "sign-in")
    sign_in(page, stack, admin)
    page.goto(f"{stack.url}/tenants/")
    j.shot(page, "tenants-empty")

    # Latency on the host makes each step take a moment, so the steps turn green one by one.
    stack.hosts["pbs2"].set_faults(latency_ms=150)
    run_url = onboard_through_the_form(page, j, slug="e2e-alpha", name="Alpha Corp", placement="pbs2 / store1")
    page.wait_for_selector("#progress .step")
    j.shot(page, "run-started")
    steps = page.locator("#progress .step").count()
    assert steps >= 7
    status, seen = watch_run(page, timeout=60, journey=j)
    stack.hosts["pbs2"].set_faults(latency_ms=0)
    assert status == "succeeded", page.inner_text("#progress")
    assert seen[-1] == steps
    assert any(0 < count < steps for count in seen), f"never saw a run in progress: {seen}"
    assert page.url == run_url
    assert page.locator("#progress .step-failed, #progress .step-pending").count() == 0
    j.shot(page, "run-succeeded")

    # Reveal the backup token's secret once, copy it, and see it gone after a reload.
    page.click("text=Reveal the credentials once")
    page.wait_for_url(re.compile(r".*/tenants/e2e-alpha/tokens/\d+/reveal/$"))
    j.shot(page, "reveal-offer")
    page.click("#secret-panel button[type=submit]")
    secret = page.wait_for_selector("#token-secret").inner_text().strip()
    assert UUID.match(secret), secret
    assert "e2e-alpha@pbs!backup" in page.inner_text("#secret-panel")
    page.click("button[data-copy-target=token-secret]")
    page.wait_for_selector("button[data-copy-target=token-secret][data-copied='1']")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    j.shot(page, "revealed")
    page.reload()
    assert secret not in page.content()
    assert page.locator("#token-secret").count() == 0
    assert f"by {admin.username}" in page.inner_text("#secret-panel")
    j.shot(page, "revealed-gone-after-reload")

    # Every PBS request to pbs1 now fails (503/500): the run retries, gives up, and says why.
    stack.hosts["pbs1"].set_faults(error_rate=1.0)
    try:
        page.goto(f"{stack.url}/tenants/")
        onboard_through_the_form(page, j, slug="e2e-beta", name="Beta GmbH", placement="pbs1 / store2")
        status, _ = watch_run(page, timeout=60)
    finally:
        stack.hosts["pbs1"].set_faults(error_rate=0.0)
    assert status == "failed", page.inner_text("#progress")
    callout = page.inner_text("#progress .callout.bad")
    assert "Gave up after" in callout, callout
    assert "How to fix:" in callout
    assert page.locator("#progress .step-failed").count() == 1
    j.shot(page, "run-failed-with-hint")

    failed_url = page.url
    page.click("#progress button:has-text('Retry')")
    page.wait_for_url(lambda url: url != failed_url and "/tenants/e2e-beta/runs/" in url)
    status, _ = watch_run(page, timeout=60)
    assert status == "succeeded", page.inner_text("#progress")
    j.shot(page, "retry-succeeded")
    page.click("#progress >> text=Open the tenant")
    page.wait_for_url(re.compile(r".*/tenants/e2e-beta/$"))
    assert "Active" in page.inner_text("h1")
    j.shot(page, "tenant-page")
    j.assert_clean()
