"""Browser journeys of the MSP cockpit on the real stack: the overview at ``/``, the tenant list
sorted, filtered and downloaded as CSV, and an invoice downloaded as PDF.

The data is the `make run` demo's, made by the same code on this stack: four of the simulators'
customers onboarded by command and measured today, 90 days of history behind them
(devstack.demo.history), hooli over its quota with the grace running (devstack.demo.scenarios),
and the month before last closed. Screenshots go to ``test-output/e2e/cockpit-*/``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.billing.test_documents import pdf_strings
from tests.e2e.conftest import Journey
from tests.e2e.stack import Login, Stack

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("e2e")]

# slug, name, host, datastore, plan: customers the other journeys do not use.
CUSTOMERS = (
    ("initech", "Initech Ltd (demo)", "pbs1", "store2", "Latest only"),
    ("hooli", "Hooli Ltd (demo)", "pbs2", "store1", "Standard"),
    ("umbrella", "Umbrella Ltd (demo)", "pbs2", "store2", "Efficient"),
    ("vandelay", "Vandelay Ltd (demo)", "pbs2", "store2", "Standard"),
)


def month_before_last(today: dt.date) -> str:
    last = today.replace(day=1) - dt.timedelta(days=1)
    return f"{(last.replace(day=1) - dt.timedelta(days=1)):%Y-%m}"


@pytest.fixture(scope="module")
def cockpit(stack: Stack) -> str:
    """The demo's customers on the stack, with history; returns the closed month."""
    for slug, name, host, datastore, plan in CUSTOMERS:
        stack.manage(
            "tenant", "create", "--slug", slug, "--name", name, "--host", host, "--datastore", datastore,
            "--plan", plan, "--contact-email", f"it@{slug}.example",
        )  # fmt: skip
        stack.manage("tenant", "onboard", slug, "--wait", "--timeout", "60")
    stack.manage("billing", "collect")
    stack.manage(
        "shell", "-c",
        "from devstack.demo.history import demo_usage_history_ensure; "
        "from devstack.demo.scenarios import demo_quotas_ensure; "
        "demo_usage_history_ensure(); demo_quotas_ensure()",
    )  # fmt: skip
    period = month_before_last(dt.datetime.now(dt.UTC).date())
    stack.manage("billing", "close", "--period", period)
    return period


def sign_in(page: Any, stack: Stack, login: Login) -> None:
    page.goto(f"{stack.url}/accounts/login/")
    page.fill("#id_username", login.username)
    page.fill("#id_password", login.password)
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r".*/(|tenants/|billing/|my/)$"))


def result_slugs(page: Any) -> list[str]:
    """The slugs of the tenant list's rows, top to bottom."""
    return [cell.strip() for cell in page.locator("#results table tbody tr td:first-child").all_inner_texts()]


def test_staff_open_the_overview_and_follow_a_tile_to_the_tenants_behind_it(
    stack: Stack, cockpit: str, journey: Callable[[str], Journey]
) -> None:
    j = journey("cockpit-1-overview")
    page = j.page()
    sign_in(page, stack, stack.logins["admin"])
    page.goto(f"{stack.url}/")
    attention = page.locator("#attention")
    attention.wait_for()
    j.shot(page, "overview")

    # Hosts and datastores with their fill level and a forecast drawn through 30 days of usage.
    datastores = page.inner_text("#datastores")
    for where in ("pbs1 / store2", "pbs2 / store1", "pbs2 / store2"):
        assert where in datastores, datastores
    assert "TiB" in datastores or "GiB" in datastores
    assert " GB" not in datastores  # binary units only
    # This month so far, in the plans' currency; the ten that grew most, umbrella first.
    assert "EUR" in page.inner_text("#month")
    growth_rows = page.locator("#growth tbody tr")
    assert "umbrella" in growth_rows.first.inner_text()
    # hooli is over its soft quota with the grace running: the tile counts it ...
    assert re.search(r"\b1\b", page.inner_text("#tile-quota")), page.inner_text("#tile-quota")

    # ... and leads to the filtered list behind it.
    page.click("#tile-quota")
    page.wait_for_url(re.compile(r".*/tenants/\?.*quota=over"))
    page.locator("#results table").wait_for()
    assert result_slugs(page) == ["hooli"]
    j.shot(page, "over-quota-tenants")
    j.assert_clean()


def test_staff_sort_and_filter_the_tenant_list_and_download_it_as_csv(
    stack: Stack, cockpit: str, journey: Callable[[str], Journey]
) -> None:
    j = journey("cockpit-2-tenant-list")
    page = j.page()
    sign_in(page, stack, stack.logins["admin"])
    page.goto(f"{stack.url}/tenants/")
    page.locator("#results table").wait_for()
    mine = {slug for slug, *_ in CUSTOMERS}
    assert mine <= set(result_slugs(page))
    j.shot(page, "list")

    # Filter by host: the filter goes into the address, so the view can be shared.
    page.select_option("#f-host", label="pbs2")
    page.wait_for_url(re.compile(r".*host=\d+"))
    page.wait_for_function(
        "() => [...document.querySelectorAll('#results tbody tr td:nth-child(4)')]"
        ".every(td => td.innerText.trim().startsWith('pbs2 /'))"
    )
    on_pbs2 = [slug for slug in result_slugs(page) if slug in mine]
    assert on_pbs2 == ["hooli", "umbrella", "vandelay"], on_pbs2  # by slug
    j.shot(page, "filtered-by-host")

    # Sort the filtered list by 30-day growth, largest first (the header toggles the direction).
    page.locator("#results th a[data-sort=growth]").click()
    page.wait_for_url(re.compile(r".*sort=-?growth"))
    if "sort=-growth" not in page.url:
        page.locator("#results th a[data-sort=growth]").click()
        page.wait_for_url(re.compile(r".*sort=-growth"))
    page.wait_for_function("() => document.querySelector('#results th[aria-sort=descending]') !== null")
    assert re.search(r"host=\d+", page.url), page.url  # the filter stayed
    shown = result_slugs(page)
    assert [slug for slug in shown if slug in mine] == ["umbrella", "hooli", "vandelay"], shown
    j.shot(page, "filtered-and-sorted-by-growth")

    # The same list, same order, as CSV.
    aborted = j.allow(r"/tenants/export\.csv", status=None)
    assert re.search(r"host=\d+", page.get_attribute("#tenant-csv", "href"))
    with page.expect_download() as download_info:
        page.click("#tenant-csv")
    download = download_info.value
    assert download.failure() is None
    assert aborted.seen <= 1
    content = Path(download.path()).read_text(encoding="utf-8")
    (j.dir / download.suggested_filename).write_text(content, encoding="utf-8")
    rows = list(csv.reader(io.StringIO(content)))
    slug_col = rows[0].index("slug")
    assert [row[slug_col] for row in rows[1:]] == shown, rows
    assert any("gib" in name.lower() for name in rows[0]), rows[0]
    j.assert_clean()


def test_accounting_downloads_an_invoice_as_pdf(stack: Stack, cockpit: str, journey: Callable[[str], Journey]) -> None:
    j = journey("cockpit-3-invoice-pdf")
    page = j.page()
    sign_in(page, stack, stack.logins["accounting"])
    page.goto(f"{stack.url}/billing/periods/{cockpit}/")
    link = page.locator("#invoice-table tr:has-text('hooli') td.mono a")
    number = link.inner_text().strip()
    link.click()
    page.wait_for_url(re.compile(rf".*/billing/invoices/{re.escape(number)}/$"))
    total_text = page.inner_text("tfoot")
    total = Decimal(re.search(r"([\d,]+\.\d\d)", total_text).group(1).replace(",", ""))
    assert total > 0
    j.shot(page, "invoice")

    aborted = j.allow(rf"/billing/invoices/{re.escape(number)}/pdf$", status=None)
    with page.expect_download() as download_info:
        page.click("text=Download PDF")
    download = download_info.value
    assert download.failure() is None
    assert aborted.seen <= 1
    assert download.suggested_filename == f"{number}.pdf"
    data = Path(download.path()).read_bytes()
    (j.dir / download.suggested_filename).write_bytes(data)
    text = pdf_strings(data)  # also checks that a reader can open it (header, xref)
    assert number in text
    assert f"{total:,.2f} EUR" in text
    assert "Hooli Ltd (demo)" in text
    assert "Method of measurement" in text
    j.assert_clean()


def test_a_client_downloads_its_own_invoice_as_pdf_and_no_one_elses(
    stack: Stack, cockpit: str, journey: Callable[[str], Journey]
) -> None:
    password = "hooli-it-" + "x" * 16
    stack.manage(
        "shell", "-c",
        "from accounts.models import Role, User; from tenants.models import Tenant; "
        "User.objects.filter(username='hooli-it').exists() or User.objects.create_user("
        f"username='hooli-it', password='{password}', role=Role.CLIENT, email='it@hooli.example', "
        "tenant=Tenant.objects.get(slug='hooli'))",
    )  # fmt: skip
    j = journey("cockpit-4-client-invoice-pdf")
    page = j.page()
    sign_in(page, stack, Login("hooli-it", password, "it@hooli.example"))
    row = page.locator(f"table.invoice-list tr:has-text('{cockpit}')")
    number = row.locator("td.mono").inner_text().strip()
    j.shot(page, "my-invoices")

    aborted = j.allow(rf"/my/invoices/{re.escape(number)}\.pdf$", status=None)
    with page.expect_download() as download_info:
        row.locator("a:text-is('invoice')").click()
    download = download_info.value
    assert download.failure() is None
    assert aborted.seen <= 1
    data = Path(download.path()).read_bytes()
    (j.dir / download.suggested_filename).write_bytes(data)
    text = pdf_strings(data)
    assert number in text
    assert "Hooli Ltd (demo)" in text

    # Another customer's invoice of the same month does not exist for this client (asked with
    # the page's cookies, outside the page, so the 404s are not browser failures).
    other = stack.manage(
        "shell", "-c",
        "from billing.models import Invoice; "
        f"print(Invoice.objects.filter(period__start='{cockpit}-01').exclude(tenant__slug='hooli')"
        ".values_list('number', flat=True).first())",
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    for url in (f"/my/invoices/{other}.pdf", f"/billing/invoices/{other}/pdf"):
        assert page.request.get(f"{stack.url}{url}").status == 404, url
    j.assert_clean()
