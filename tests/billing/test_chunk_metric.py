"""The chunk-exact plan metric: what it bills per day, what metering copies into the samples,
the invoice recomputed to the cent by hand, its method text, and the CSV's appended columns."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from attribution.models import AttributionRun, TenantAttribution
from billing.models import Invoice, InvoiceLine, UsageSample, metric_value_expression
from billing.selectors.export import EXPORT_COLUMNS
from billing.services.close import billing_period_close
from pbssim import Simulator
from plans.models import Plan
from tenants.pbs import install_transport, uninstall_transport
from tests.billing.factories import GIB, days_of, make_billed_tenant, make_plan, make_sample
from tests.factories import make_datastore, make_host, make_tenant

pytestmark = pytest.mark.django_db

JAN = days_of(dt.date(2025, 1, 1), dt.date(2025, 1, 31))
OLD_COLUMNS = (
    "client", "datastore", "namespace", "size_gb", "month", "host", "tenant_slug", "metric", "avg_gib", "peak_gib",
    "samples", "gaps", "snapshots", "groups", "included_gib", "billable_gib", "unit_price", "base_fee", "amount",
    "currency", "invoice_number",
)  # fmt: skip
GC_TIME = dt.datetime(2025, 1, 14, 23, 0, tzinfo=dt.UTC)


def _chunk_sample(tenant, day: dt.date, *, logical: int, physical: int, chunk: tuple[int, int, int, int] | None):
    sample = make_sample(tenant=tenant, day=day, logical=logical, physical=physical)
    if chunk is not None:
        sample.referenced_bytes, sample.exclusive_bytes, sample.share_bytes, sample.physical_share_bytes = chunk
        sample.chunk_gc_at, sample.chunk_day = GC_TIME, day
        sample.save()
    return sample


def test_the_chunk_metric_bills_the_physical_share_and_the_estimate_on_a_day_without_one() -> None:
    tenant = make_billed_tenant(plan=None)
    _chunk_sample(tenant, JAN[0], logical=9 * GIB, physical=3 * GIB, chunk=(5 * GIB, 2 * GIB, 4 * GIB, 2 * GIB))
    _chunk_sample(tenant, JAN[1], logical=9 * GIB, physical=3 * GIB, chunk=None)
    _chunk_sample(tenant, JAN[2], logical=9 * GIB, physical=3 * GIB, chunk=(5 * GIB, 2 * GIB, 4 * GIB, 0))

    values = dict(
        UsageSample.objects.filter(tenant=tenant)
        .annotate(v=metric_value_expression(Plan.Metric.CHUNK))
        .values_list("day", "v")
    )

    # A chunk-exact figure of 0 is a figure (not a missing one): it is billed as 0.
    assert values == {JAN[0]: 2 * GIB, JAN[1]: 3 * GIB, JAN[2]: 0}


@pytest.mark.parametrize(
    ("metric", "expected"),
    [(Plan.Metric.LOGICAL, 9 * GIB), (Plan.Metric.LATEST, 4 * GIB), (Plan.Metric.PHYSICAL, 3 * GIB)],
)
def test_the_existing_metrics_bill_what_they_always_did(metric: str, expected: int) -> None:
    tenant = make_billed_tenant(plan=None)
    sample = make_sample(tenant=tenant, day=JAN[0], logical=9 * GIB, latest=4 * GIB, physical=3 * GIB)
    sample.physical_share_bytes = 1
    sample.save()

    value = UsageSample.objects.annotate(v=metric_value_expression(metric)).values_list("v", flat=True).get()

    assert value == expected


# --- metering copies the day's attribution ---------------------------------------------------


@pytest.fixture
def simulated() -> Iterator[tuple[Simulator, object, object]]:
    sim = Simulator()
    token_id, secret = sim.bootstrap_admin_token()
    sim.add_datastore("store1", gc_index_data_bytes=8 * GIB, gc_disk_bytes=2 * GIB)
    host = make_host(name="pbs-chunk", url="https://pbs-chunk.test:8007", token_id=token_id, token_secret=secret)
    store = make_datastore(host=host, name="store1")
    install_transport(host.url, async_transport=sim.async_transport())
    yield sim, host, store
    uninstall_transport(host.url)


def test_metering_copies_the_days_chunk_figures_and_leaves_them_empty_without_one(simulated, settings) -> None:
    settings.PORTAL_METERING_ATTEMPTS = 1
    sim, host, store = simulated
    day = dt.date(2025, 1, 15)
    measured = make_tenant(slug="measured", datastore=store)
    unread = make_tenant(slug="unread", datastore=store)
    for slug in ("measured", "unread"):
        sim.seed_snapshot(
            store="store1", ns=f"clients/{slug}", backup_type="vm", backup_id="1", backup_time=1_736_000_000,
            size=4 * GIB,
        )  # fmt: skip
    run = AttributionRun.objects.create(
        host=host, datastore="store1", day=day, status=AttributionRun.Status.DONE, finished_at=timezone.now(),
        gc_time=GC_TIME,
    )  # fmt: skip
    TenantAttribution.objects.create(
        run=run, tenant=measured, day=day, host=host, datastore="store1", referenced_bytes=3_000_001,
        exclusive_bytes=1_000_003, share_bytes=2_000_005, physical_share_bytes=700_007, gc_time=GC_TIME,
    )  # fmt: skip
    # Another day's figures are not this day's.
    TenantAttribution.objects.create(
        run=run, tenant=unread, day=day - dt.timedelta(days=3), host=host, datastore="store1", referenced_bytes=1,
        exclusive_bytes=1, share_bytes=1, physical_share_bytes=1,
    )  # fmt: skip

    call_command("billing", "collect", "--as-of", day.isoformat())

    sample = UsageSample.objects.get(tenant=measured, day=day)
    assert (
        sample.referenced_bytes, sample.exclusive_bytes, sample.share_bytes, sample.physical_share_bytes,
        sample.chunk_gc_at, sample.chunk_day,
    ) == (3_000_001, 1_000_003, 2_000_005, 700_007, GC_TIME, day)  # fmt: skip
    assert sample.logical_bytes == 4 * GIB
    other = UsageSample.objects.get(tenant=unread, day=day)
    assert other.logical_bytes == 4 * GIB
    assert (other.referenced_bytes, other.share_bytes, other.physical_share_bytes, other.chunk_day) == (
        None, None, None, None,
    )  # fmt: skip
    # That day the chunk metric bills the estimate (1 GiB: 4 GiB logical x 2/8), the other the share.
    billed = dict(
        UsageSample.objects.filter(day=day)
        .annotate(v=metric_value_expression(Plan.Metric.CHUNK))
        .values_list("tenant__slug", "v")
    )
    assert billed == {"measured": 700_007, "unread": GIB}


# --- the invoice, to the cent ------------------------------------------------------------------


def _money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _chunk_month() -> tuple[object, list[tuple[int, int]]]:
    """A tenant on the chunk metric through January: 26 chunk-exact days, 5 on the estimate.
    Returns the tenant and per day (billed bytes, referenced bytes or 0 when none)."""
    plan = make_plan(
        metric=Plan.Metric.CHUNK, included_gib="1.50", price_per_gib="0.123457", base_fee="4.99", name="chunky"
    )
    tenant = make_billed_tenant(plan=plan, slug="chunky", name="Chunky Ltd")
    per_day = []
    for i, day in enumerate(JAN):
        logical, physical = (40 + i) * GIB, 5 * GIB + 333_333 * i
        if i % 6 == 5:  # days 6, 12, 18, 24, 30: the host could not be read
            _chunk_sample(tenant, day, logical=logical, physical=physical, chunk=None)
            per_day.append((physical, 0))
        else:
            referenced, exclusive, share = 7 * GIB + 1000 * i, 2 * GIB + 7 * i, 5 * GIB + 999_999 * i
            physical_share = 3 * GIB + 777_777 * i + 1
            _chunk_sample(tenant, day, logical=logical, physical=physical, chunk=(referenced, exclusive, share,
                                                                                 physical_share))
            per_day.append((physical_share, referenced))
    return tenant, per_day


def test_an_invoice_on_the_chunk_metric_recomputes_to_the_cent() -> None:
    tenant, per_day = _chunk_month()

    billing_period_close(period="2025-01")

    invoice = Invoice.objects.get(tenant=tenant)
    # By hand: average of the billed bytes over the 31 days, in GiB, half-up to the cent; the
    # included GiB off; times the unit price, half-up to the cent; plus the base fee.
    avg_gib = Decimal(sum(b for b, _ in per_day)) / 31 / GIB
    billed_gib = avg_gib.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    usage = _money((billed_gib - Decimal("1.50")) * Decimal("0.123457"))
    expected_total = usage + Decimal("4.99")
    assert invoice.billed_gib == billed_gib
    assert invoice.total == expected_total
    assert invoice.total == sum(line.amount for line in invoice.lines.all())
    assert (invoice.metric, invoice.samples, invoice.gaps, invoice.estimate_days) == ("chunk", 31, 0, 5)
    usage_line = invoice.lines.get(kind=InvoiceLine.Kind.USAGE)
    assert usage_line.amount == usage
    assert "chunk-exact physical share" in usage_line.description
    assert "uncompressed" in usage_line.description
    assert "physical estimate on 5 of 31 days" in usage_line.description
    assert "physical estimate on 5 of 31 days" in invoice.method


def test_the_export_keeps_every_column_in_order_and_appends_the_chunk_figures(tmp_path: Path) -> None:
    tenant, per_day = _chunk_month()
    plain = make_billed_tenant(plan=make_plan(price_per_gib="1", name="plain"), slug="plain")
    make_sample(tenant=plain, day=JAN[0], logical=2 * GIB)
    billing_period_close(period="2025-01")
    out = tmp_path / "jan.csv"

    call_command("billing", "export", "--period", "2025-01", "--out", str(out))

    text = out.read_text(encoding="utf-8")
    header = next(csv.reader(io.StringIO(text, newline="")))
    assert tuple(header) == EXPORT_COLUMNS
    assert tuple(header[: len(OLD_COLUMNS)]) == OLD_COLUMNS
    assert header[len(OLD_COLUMNS) :] == ["referenced_gib", "exclusive_gib", "share_gib", "method"]
    rows = {r["tenant_slug"]: r for r in csv.DictReader(io.StringIO(text, newline=""))}
    chunk_days = [i for i, (_, ref) in enumerate(per_day) if ref]
    # Averages over the 26 days that had a chunk figure, in GiB to six decimals, like avg_gib.
    expected_ref = Decimal(sum(7 * GIB + 1000 * i for i in chunk_days)) / len(chunk_days) / GIB
    expected_excl = Decimal(sum(2 * GIB + 7 * i for i in chunk_days)) / len(chunk_days) / GIB
    expected_share = Decimal(sum(5 * GIB + 999_999 * i for i in chunk_days)) / len(chunk_days) / GIB
    micro = Decimal("0.000001")
    row = rows["chunky"]
    assert row["referenced_gib"] == str(expected_ref.quantize(micro, rounding=ROUND_HALF_UP))
    assert row["exclusive_gib"] == str(expected_excl.quantize(micro, rounding=ROUND_HALF_UP))
    assert row["share_gib"] == str(expected_share.quantize(micro, rounding=ROUND_HALF_UP))
    assert row["metric"] == "chunk"
    assert row["method"] == "chunk-exact; physical estimate on 5 of 31 days"
    assert row["amount"] == str(Invoice.objects.get(tenant=tenant).total)
    # A tenant never attributed: the appended figures are empty, its method is its metric's.
    assert (rows["plain"]["referenced_gib"], rows["plain"]["share_gib"], rows["plain"]["method"]) == ("", "", "logical")


def test_an_invoice_written_one_by_one_freezes_the_same_figures() -> None:
    """A correction saves its invoice alone (not in bulk): the figures are frozen all the same."""
    tenant = make_billed_tenant(plan=None, slug="single")
    _chunk_sample(tenant, JAN[0], logical=GIB, physical=GIB, chunk=(3 * GIB, GIB, 2 * GIB, GIB))
    _chunk_sample(tenant, JAN[1], logical=GIB, physical=GIB, chunk=None)
    from billing.models import BillingPeriod

    period = BillingPeriod.objects.create(start=JAN[0], end=JAN[-1])
    zero = Decimal("0")
    invoice = Invoice(
        number="T-1", period=period, tenant=tenant, issued_at=timezone.now(), client_name="x", tenant_slug="single",
        plan_name="p", metric="chunk", currency="EUR", included_gib=zero, unit_price=zero, base_fee=zero,
        minimum_charge=zero, first_day=JAN[0], last_day=JAN[1], active_days=2, samples=2, gaps=0, avg_bytes=zero,
        avg_gib=zero, peak_gib=zero, billed_gib=zero, billable_gib=zero, snapshots=0, groups=0, total=zero,
    )  # fmt: skip
    invoice.save()
    InvoiceLine(
        invoice=invoice, position=1, kind="usage", description="Storage, chunk", quantity=zero, unit="GiB-month",
        unit_price=zero, amount=zero,
    ).save()  # fmt: skip

    invoice.refresh_from_db()
    assert (invoice.referenced_gib, invoice.exclusive_gib, invoice.share_gib, invoice.estimate_days) == (
        Decimal("3.000000"), Decimal("1.000000"), Decimal("2.000000"), 1,
    )  # fmt: skip
    assert invoice.lines.get().description.endswith("physical estimate on 1 of 2 days: average 0 GiB, 0 GiB included")


def test_a_day_with_neither_figure_is_a_gap_carrying_the_previous_value() -> None:
    plan = make_plan(metric=Plan.Metric.CHUNK, price_per_gib="1", name="gappy")
    tenant = make_billed_tenant(plan=plan, slug="gappy")
    for i, day in enumerate(JAN):
        if i == 10:  # measured, but neither a chunk figure nor GC figures for the estimate
            make_sample(tenant=tenant, day=day, logical=GIB, physical=None)
        elif i == 9:  # the last figure before it: the estimate
            _chunk_sample(tenant, day, logical=GIB, physical=7 * GIB, chunk=None)
        else:
            _chunk_sample(tenant, day, logical=GIB, physical=GIB, chunk=(GIB, GIB, GIB, 2 * GIB))

    billing_period_close(period="2025-01")

    invoice = Invoice.objects.get(tenant=tenant)
    # 29 days at 2 GiB, day 10 at 7 GiB (estimate) and day 11 carrying it.
    billed = (Decimal(29 * 2 + 7 + 7) / 31).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert (invoice.samples, invoice.gaps, invoice.estimate_days) == (30, 1, 1)
    assert invoice.billed_gib == billed
    assert invoice.total == _money(billed)


def test_the_invoice_page_states_the_method_and_the_chunk_averages(client, accounting_user) -> None:
    tenant, _ = _chunk_month()
    billing_period_close(period="2025-01")
    invoice = Invoice.objects.get(tenant=tenant)
    client.force_login(accounting_user)

    page = client.get(f"/billing/invoices/{invoice.number}/").content.decode()

    assert "physical estimate on 5 of 31 days" in page
    assert f"referenced {invoice.referenced_gib} GiB, exclusive {invoice.exclusive_gib} GiB" in page
    assert "uncompressed chunk sizes" in page
