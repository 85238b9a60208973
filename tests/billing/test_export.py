"""The accounting CSV: exact columns, RFC 4180, UTF-8, formula injection neutralised."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.http import StreamingHttpResponse
from django.urls import reverse

from billing.export import csv_lines, neutralise
from billing.services.close import billing_period_close
from billing.services.corrections import invoice_correct
from tests.billing.factories import GIB, days_of, make_billed_tenant, make_plan, make_sample

HEADER = (
    "client,datastore,namespace,size_gb,month,host,tenant_slug,metric,avg_gib,peak_gib,samples,gaps,"
    "snapshots,groups,included_gib,billable_gib,unit_price,base_fee,amount,currency,invoice_number,"
    "referenced_gib,exclusive_gib,share_gib,method"
)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+41 22", "'+41 22"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTab", "'\tTab"),
        ("\rCR", "'\rCR"),
        ("Acme = fine", "Acme = fine"),
        (Decimal("12.50"), "12.50"),
        (None, ""),
    ],
)
def test_cells_that_a_spreadsheet_would_run_get_a_leading_quote(cell: object, expected: str) -> None:
    assert neutralise(cell) == expected


def test_records_follow_rfc_4180() -> None:
    text = "".join(csv_lines(["a", "b"], [['he said "hi"', "x,y"], ["line\nbreak", "Müller"]]))
    assert text == 'a,b\r\n"he said ""hi""","x,y"\r\n"line\nbreak",Müller\r\n'
    assert list(csv.reader(io.StringIO(text, newline=""))) == [
        ["a", "b"],
        ['he said "hi"', "x,y"],
        ["line\nbreak", "Müller"],
    ]


def _closed_month() -> None:
    plan = make_plan(price_per_gib="0.10", included_gib="5", base_fee="2.00", name="std")
    evil = make_billed_tenant(plan=plan, slug="evil", name='=cmd|"/c calc"!A1')
    nice = make_billed_tenant(plan=plan, slug="nice", name="Müller, Söhne & Co")
    for day in days_of(dt.date(2025, 1, 1), dt.date(2025, 1, 31)):
        make_sample(tenant=evil, day=day, logical=15 * GIB, snapshots=3, groups=2)
        make_sample(tenant=nice, day=day, logical=2 * GIB)
    billing_period_close(period="2025-01")


@pytest.mark.django_db
def test_the_command_writes_one_row_per_tenant_with_the_exact_columns(tmp_path: Path) -> None:
    _closed_month()
    out = tmp_path / "jan.csv"

    call_command("billing", "export", "--period", "2025-01", "--out", str(out))

    raw = out.read_bytes()
    assert raw.startswith(HEADER.encode() + b"\r\n")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))
    assert [r["tenant_slug"] for r in rows] == ["evil", "nice"]
    evil, nice = rows
    assert evil["client"] == '\'=cmd|"/c calc"!A1'
    assert nice["client"] == "Müller, Söhne & Co"
    assert evil["size_gb"] == "15.00"
    assert evil["month"] == "2025-01"
    assert evil["billable_gib"] == "10.00"
    assert evil["amount"] == "3.00"
    assert (evil["samples"], evil["gaps"], evil["snapshots"], evil["groups"]) == ("31", "0", "3", "2")
    assert evil["namespace"] == "clients/evil"
    assert evil["invoice_number"].startswith("INV-")
    assert nice["amount"] == "2.00"


@pytest.mark.django_db
def test_the_download_is_streamed_for_accounting(client, accounting_user) -> None:
    _closed_month()
    client.force_login(accounting_user)

    response = client.get(reverse("billing:export", args=["2025-01"]))

    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="billing-2025-01.csv"' in response["Content-Disposition"]
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.splitlines()[0] == HEADER
    assert len(body.splitlines()) == 3


@pytest.mark.django_db
def test_a_credited_invoice_leaves_the_export_for_its_replacement(accounting_user, tmp_path: Path) -> None:
    _closed_month()
    from billing.models import Invoice, UsageSample

    original = Invoice.objects.get(tenant_slug="nice")
    UsageSample.objects.filter(tenant__slug="nice").update(logical_bytes=6 * GIB)
    new = invoice_correct(invoice=original, reason="resampled", actor=accounting_user).invoice
    out = tmp_path / "jan.csv"

    call_command("billing", "export", "--period", "2025-01", "--out", str(out))

    rows = {r["tenant_slug"]: r for r in csv.DictReader(out.open(encoding="utf-8", newline=""))}
    assert rows["nice"]["invoice_number"] == new.number
    assert rows["nice"]["amount"] == "2.10"


@pytest.mark.django_db
@pytest.mark.parametrize("role_fixture", ["operator_user", "client_a"])
def test_other_roles_cannot_download(client, request, role_fixture: str) -> None:
    _closed_month()
    client.force_login(request.getfixturevalue(role_fixture))
    assert client.get(reverse("billing:export", args=["2025-01"])).status_code == 403


@pytest.mark.django_db
def test_the_physical_metric_is_exported_as_an_estimate(tmp_path: Path) -> None:
    from plans.models import Plan

    tenant = make_billed_tenant(plan=make_plan(metric=Plan.Metric.PHYSICAL, price_per_gib="1"), slug="phys")
    make_sample(tenant=tenant, day=dt.date(2025, 1, 1), logical=8 * GIB, physical=2 * GIB)
    billing_period_close(period="2025-01")
    out = tmp_path / "jan.csv"

    call_command("billing", "export", "--period", "2025-01", "--out", str(out))

    (row,) = csv.DictReader(out.open(encoding="utf-8", newline=""))
    assert (row["metric"], row["size_gb"], row["amount"]) == ("physical_estimate", "2.00", "2.00")
