"""core.bulk.insert_rows writes exactly what bulk_create writes, and sets keys (SQLite and PostgreSQL)."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from billing.models import Invoice, InvoiceLine
from billing.services import billing_period_close, billing_period_get_or_create
from core.bulk import insert_rows
from tests.billing.factories import make_billed_tenant, make_plan, make_sample
from tests.factories import make_datastore, make_host


def _issued_month() -> list[Invoice]:
    store = make_datastore(host=make_host(name="bulk-pbs"), name="store1")
    plans = [make_plan(name="Small", price_per_gib="0.0123"), make_plan(name="Big", currency="CHF", base_fee="9.90")]
    for n in range(6):
        tenant = make_billed_tenant(
            plan=plans[n % 2], slug=f"bulk-{n}", datastore=store, activated=dt.date(2025, 1, n + 1)
        )
        for day in range(1, 29, 3):
            make_sample(tenant=tenant, day=dt.date(2025, 1, day), logical=(n + 1) * day * 2**30, physical=day * 2**29)
    billing_period_close(period="2025-01", today=dt.date(2025, 2, 1))
    return list(Invoice.objects.order_by("number"))


def _copy(obj: Any, **changes: Any) -> Any:
    new = copy.copy(obj)
    new._state = copy.copy(obj._state)
    new._state.adding, new._state.db = True, None
    new.pk = None
    for name, value in changes.items():
        setattr(new, name, value)
    return new


def _values(model: Any, pks: list[int], skip: set[str]) -> list[dict[str, Any]]:
    rows = model.objects.filter(pk__in=pks).order_by("pk").values()
    return [{k: v for k, v in row.items() if k not in skip} for row in rows]


def _same_writes() -> None:
    invoices = _issued_month()
    assert len(invoices) == 6
    assert InvoiceLine.objects.count() > 6
    # one invoice per tenant and period: the copies go to two later periods
    feb, mar = billing_period_get_or_create(period="2025-02"), billing_period_get_or_create(period="2025-03")
    by_bulk = [_copy(inv, number=f"B-{inv.number}", period=feb) for inv in invoices]
    by_rows = [_copy(inv, number=f"R-{inv.number}", period=mar) for inv in invoices]
    Invoice.objects.bulk_create(by_bulk)
    insert_rows(by_rows)
    assert all(isinstance(inv.pk, int) and not inv._state.adding for inv in by_rows)
    skip = {"id", "number", "period_id"}
    assert _values(Invoice, [i.pk for i in by_rows], skip) == _values(Invoice, [i.pk for i in by_bulk], skip)
    assert isinstance(Invoice.objects.get(pk=by_rows[0].pk).total, Decimal)

    # Lines point at invoices saved after the lines were made: the key follows the object.
    for source, bulk_inv, rows_inv in zip(invoices, by_bulk, by_rows, strict=True):
        lines = list(source.lines.order_by("position", "pk"))
        InvoiceLine.objects.bulk_create([_copy(line, invoice=bulk_inv) for line in lines])
        insert_rows([_copy(line, invoice=rows_inv) for line in lines])
    for bulk_inv, rows_inv in zip(by_bulk, by_rows, strict=True):
        skip = {"id", "invoice_id"}
        assert _values(InvoiceLine, list(rows_inv.lines.values_list("pk", flat=True)), skip) == _values(
            InvoiceLine, list(bulk_inv.lines.values_list("pk", flat=True)), skip
        )
        assert rows_inv.lines.count() == bulk_inv.lines.count() > 0


@pytest.mark.django_db
def test_insert_rows_writes_what_bulk_create_writes() -> None:
    _same_writes()


@pytest.mark.postgres
@pytest.mark.django_db
def test_insert_rows_writes_what_bulk_create_writes_on_postgres() -> None:
    _same_writes()


@pytest.mark.django_db
def test_insert_rows_of_nothing_does_nothing() -> None:
    insert_rows([])
