"""A client in a real browser (headless Chromium): sign in, create a restore token over
HTMX, copy its secret, see it gone after a reload, revoke it; no CSP violation on the way."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tenants.models import TenantToken
from tests.factories import DEFAULT_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Chromium is needed for browser tests: apt-get install chromium", pytrace=False)
    return path


@pytest.fixture
def browser_page(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, list[str]]]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # between browser steps are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        context = browser.new_context()
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on(
            "response",
            lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )
        yield page, errors
        context.close()
        browser.close()


def test_a_client_creates_copies_and_revokes_a_restore_token(
    live_server: Any, sim_tenants: Any, browser_page: tuple[Any, list[str]]
) -> None:
    page, errors = browser_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    base = live_server.url

    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", sim_tenants.client_a.username)
    page.fill("#id_password", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/my/")
    # The backup list arrives over HTMX after the page loaded.
    page.wait_for_selector("#backups")

    page.goto(f"{base}/my/tokens/")
    page.fill("#id_name", "browser")
    page.fill("#id_days", "3")
    page.click("#token-create-area button[type=submit]")
    secret_el = page.wait_for_selector("#new-token-secret")
    secret = secret_el.inner_text().strip()
    assert len(secret) == 36
    assert page.url == f"{base}/my/tokens/"  # swapped in place, no navigation
    # The list was updated out of band.
    assert "tenant-a@pbs!restore-browser" in page.inner_text("#token-list")

    page.click("button[data-copy-target=new-token-secret]")
    page.wait_for_selector("button[data-copy-target=new-token-secret][data-copied='1']")
    assert page.evaluate("navigator.clipboard.readText()") == secret

    page.reload()
    assert secret not in page.content()
    assert page.query_selector("#new-token-secret") is None

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#token-list button.danger")
    page.wait_for_selector("#token-list .badge.bad")
    assert TenantToken.objects.get(tokenid="tenant-a@pbs!restore-browser").revoked_at is not None

    assert not errors, errors
