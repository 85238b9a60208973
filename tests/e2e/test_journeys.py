"""Browser journeys on the real stack: staff, a client and accounting in headless Chromium
against gunicorn + Celery + PostgreSQL + Redis + two simulated PBS hosts over HTTPS.

Each journey saves numbered screenshots under ``test-output/e2e/<journey>/`` and fails on
any console error, page error or failed request (>= 400) in its pages, apart from the ones
it causes on purpose and asserts.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Journey
from tests.e2e.stack import Login, Stack

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("e2e")]

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def sign_in(page: Any, stack: Stack, login: Login, password: str | None = None) -> None:
    page.goto(f"{stack.url}/accounts/login/")
    page.fill("#id_username", login.username)
    page.fill("#id_password", password or login.password)
    page.click("main button[type=submit]")
    # staff land on the overview at /, clients on /my/
    page.wait_for_url(re.compile(r"^https?://[^/]+/(tenants/|my/|billing/)?$"))


def sign_out(page: Any) -> None:
    page.click("header .who button")
    page.wait_for_url(re.compile(r".*/accounts/login/$"))


def copy_the_secret(page: Any, element_id: str) -> str:
    """The secret shown once in #element_id; its copy button puts exactly it on the clipboard."""
    secret = page.wait_for_selector(f"#{element_id}").inner_text().strip()
    assert UUID.match(secret), secret
    page.click(f"button[data-copy-target={element_id}]")
    page.wait_for_selector(f"button[data-copy-target={element_id}][data-copied='1']")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    return secret


def assert_the_secret_is_gone_after_a_reload(page: Any, element_id: str, secret: str) -> None:
    page.reload()
    assert secret not in page.content()
    assert page.locator(f"#{element_id}").count() == 0


def run_status(page: Any) -> str:
    """The run's status as the progress panel shows it (queued, running, succeeded, failed)."""
    badge = page.locator("#progress > p .badge").first
    return next(c for c in (badge.get_attribute("class") or "").split() if c != "badge")


def onboard_through_the_form(
    page: Any, journey: Journey, *, slug: str, name: str, placement: str,
    before_submit: Callable[[], object] | None = None,
) -> str:
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
    if before_submit is not None:
        before_submit()
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
    stack.hosts["pbs2"].set_faults(latency_ms=250)
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
    # The finished panel stops polling.
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url) if request.url == run_url else None)
    page.wait_for_timeout(1500)
    assert not polls, polls
    j.shot(page, "run-succeeded")

    # Reveal the backup token's secret once, copy it, and see it gone after a reload.
    page.click("text=Reveal the credentials once")
    page.wait_for_url(re.compile(r".*/tenants/e2e-alpha/tokens/\d+/reveal/$"))
    j.shot(page, "reveal-offer")
    page.click("#secret-panel button[type=submit]")
    secret = copy_the_secret(page, "token-secret")
    assert "e2e-alpha@pbs!backup" in page.inner_text("#secret-panel")
    j.shot(page, "revealed")
    assert_the_secret_is_gone_after_a_reload(page, "token-secret", secret)
    assert f"by {admin.username}" in page.inner_text("#secret-panel")
    j.shot(page, "revealed-gone-after-reload")

    # From the submit on, every PBS request to pbs1 fails (503/500): the run retries, gives
    # up, and says why.
    pbs1 = stack.hosts["pbs1"]
    try:
        page.goto(f"{stack.url}/tenants/")
        onboard_through_the_form(
            page, j, slug="e2e-beta", name="Beta GmbH", placement="pbs1 / store2",
            before_submit=lambda: pbs1.set_faults(error_rate=1.0),
        )  # fmt: skip
        status, _ = watch_run(page, timeout=60)
    finally:
        pbs1.set_faults(error_rate=0.0)
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


def onboard_by_command(stack: Stack, slug: str, *, name: str, host: str, datastore: str, plan: str) -> None:
    """An operator's set-up from the command line (the staff form is journey 1's subject)."""
    stack.manage(
        "tenant", "create", "--slug", slug, "--name", name, "--host", host, "--datastore", datastore,
        "--plan", plan, "--contact-email", f"it@{slug}.example",
    )  # fmt: skip
    stack.manage("tenant", "onboard", slug, "--wait", "--timeout", "60")


def test_a_client_accepts_an_invitation_sees_backups_and_manages_a_restore_token(
    stack: Stack, journey: Callable[[str], Journey]
) -> None:
    # acme's namespace on pbs1 already holds 30 days of backups (the simulator's demo data).
    onboard_by_command(stack, "acme", name="Acme Ltd", host="pbs1", datastore="store1", plan="Standard")
    j = journey("2-client-invitation")
    staff = j.page()
    sign_in(staff, stack, stack.logins["admin"])
    staff.goto(f"{stack.url}/tenants/")  # staff land on the overview; the list is one click away
    # The list filters as one types (HTMX); click only once the filtered list is in.
    with staff.expect_response(lambda response: "q=acme" in response.url):
        staff.fill("#q", "acme")
    staff.wait_for_url(re.compile(r".*/tenants/\?q=acme.*"))  # pushed once the list is swapped in
    assert "1 tenant match." in staff.inner_text("#results")
    staff.click("#results a:text-is('acme')")
    staff.wait_for_url(re.compile(r".*/tenants/acme/$"))
    staff.click("text=Users and invitations")
    staff.wait_for_url(re.compile(r".*/accounts/tenants/\d+/users/$"))
    staff.fill("#id_email", "carol@acme.example")
    staff.click("main button:has-text('Send invitation')")
    staff.wait_for_selector(".messages >> text=Invitation sent to carol@acme.example")
    assert "carol@acme.example" in staff.inner_text("main")
    j.shot(staff, "staff-invited")

    mail = stack.wait_for_mail("carol@acme.example")
    body = mail.get_body(preferencelist=("plain",)).get_content()
    link = re.search(rf"{re.escape(stack.url)}/accounts/invite/\S+/", body)
    assert link, body

    client = j.page(clipboard=True)
    client.goto(link.group(0))
    client.wait_for_url(re.compile(r".*/accounts/invite/$"))  # the token left the address bar
    assert "Join Acme Ltd" in client.inner_text("h1")
    password = "correct horse battery staple 42"
    client.fill("#id_username", "carol")
    client.fill("#id_password1", password)
    client.fill("#id_password2", password)
    j.shot(client, "accept-invitation")
    client.click("main button:has-text('Create my account')")
    client.wait_for_url(re.compile(r".*/my/$"))
    # The backup list comes from PBS over HTMX after the page has loaded.
    client.wait_for_selector("#backups table")
    backups = client.inner_text("#backups")
    assert "clients/acme" in backups
    assert "vm" in backups
    assert "100" in backups
    repository = client.inner_text("#conn-repository")
    assert repository.startswith("acme@pbs!backup@127.0.0.1:")
    assert repository.endswith(":store1")
    assert client.inner_text("#conn-fingerprint") == stack.hosts["pbs1"].fingerprint
    j.shot(client, "client-home")

    # A restore token: created over HTMX, its secret shown once, then revoked.
    client.click("nav.subnav >> text=Restore tokens")
    client.wait_for_url(re.compile(r".*/my/tokens/$"))
    client.fill("#id_name", "laptop")
    client.fill("#id_days", "7")
    client.click("#token-create-area button[type=submit]")
    secret = copy_the_secret(client, "new-token-secret")
    assert client.url.endswith("/my/tokens/")
    assert "acme@pbs!restore-laptop" in client.inner_text("#token-list")
    j.shot(client, "token-created")
    assert_the_secret_is_gone_after_a_reload(client, "new-token-secret", secret)
    j.shot(client, "token-secret-gone")
    client.once("dialog", lambda dialog: dialog.accept())
    client.click("#token-list tr:has-text('restore-laptop') button.danger")
    client.wait_for_selector("#token-list tr:has-text('restore-laptop') .badge.bad")
    assert "revoked" in client.inner_text("#token-list tr:has-text('restore-laptop')")
    j.shot(client, "token-revoked")
    j.assert_clean()


def test_accounting_downloads_the_month_csv_and_opens_an_invoice(
    stack: Stack, journey: Callable[[str], Journey]
) -> None:
    # globex has been a customer since the start of last month: its usage is sampled on two
    # days of that month (the real collection against PBS), then the month is closed.
    onboard_by_command(stack, "globex", name="Globex Inc", host="pbs1", datastore="store1", plan="Efficient")
    first = (dt.datetime.now(dt.UTC).date().replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    period = first.strftime("%Y-%m")
    stack.manage(
        "shell", "-c",
        "import datetime as dt; from tenants.models import Tenant; "
        f"Tenant.objects.filter(slug='globex').update(activated_at=dt.datetime({first.year}, {first.month}, 1, "
        "tzinfo=dt.UTC))",
    )  # fmt: skip
    for day in (first, first.replace(day=15)):
        stack.manage("billing", "collect", "--as-of", day.isoformat())
    stack.manage("billing", "close", "--period", period)

    j = journey("3-accounting-billing")
    page = j.page()
    sign_in(page, stack, stack.logins["accounting"])
    page.click("header nav >> text=Billing")
    page.wait_for_url(re.compile(r".*/billing/$"))
    row = page.locator(f"tr:has(a:text-is('{period}'))")
    assert "closed" in row.inner_text()
    j.shot(page, "periods")

    # Chromium aborts the navigation it turns into a download: that is the only failed request.
    aborted = j.allow(r"/export\.csv$", status=None)
    with page.expect_download() as download_info:
        row.locator("a:text-is('CSV')").click()
    download = download_info.value
    assert download.failure() is None
    assert aborted.seen <= 1
    assert download.suggested_filename == f"billing-{period}.csv"
    content = Path(download.path()).read_text(encoding="utf-8")
    (j.dir / f"billing-{period}.csv").write_text(content, encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(content)))
    globex = [r for r in rows if "globex" in r.values()]
    assert len(globex) == 1, rows

    page.click(f"a:text-is('{period}')")
    page.wait_for_url(re.compile(rf".*/billing/periods/{period}/$"))
    j.shot(page, "period")
    invoice_link = page.locator("#invoice-table tr:has-text('globex') td.mono a")
    number = invoice_link.inner_text()
    invoice_link.click()
    page.wait_for_url(re.compile(rf".*/billing/invoices/{re.escape(number)}/$"))
    text = page.inner_text("main")
    assert number in text
    assert "Globex Inc" in text
    assert "Efficient" in text
    j.shot(page, "invoice")
    j.assert_clean()
