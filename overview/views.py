"""The staff overview (``/``) and the staff tenant list with its CSV (``/tenants/``).

Thin: parse the query string, check access, call one selector, render. The tenant list lives
here rather than in the tenants app because its columns (usage, growth, quota, alerts) come
from the apps above tenants; ``portal/urls.py`` mounts it at the list's old address and name.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.functional import cached_property
from django.views.decorators.http import require_GET

from accounts.permissions import ACCOUNTING, STAFF, has_role, staff_or_accounting_required
from billing.export import neutralise
from core.htmx import wants_partial
from overview.selectors import cockpit, tenant_board
from plans.models import Plan
from tenants.models import PbsHost, Tenant

PAGE_SIZE = 50

# Column heads of the tenant list: (?sort= key, label, numeric column).
COLUMNS = (
    ("slug", "Slug", False), ("name", "Name", False), ("status", "Status", False), (None, "Host / datastore", False),
    ("plan", "Plan", False), ("usage", "Usage", True), ("growth", "30-day growth", True),
    ("quota", "Quota", True), ("backup", "Newest backup", True), ("alerts", "Alerts", True),
    ("created", "Created", True),
)  # fmt: skip


@staff_or_accounting_required
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    """Operations for admins and operators, money for admins and accounting."""
    user = request.user
    context = cockpit.overview(money=has_role(user, ACCOUNTING), operations=has_role(user, STAFF))
    return render(request, "overview/overview.html", context)


def _column_heads(params: Any, filters: tenant_board.BoardFilters) -> list[dict[str, Any]]:
    """The table's heads; a sortable one links to the list sorted by it (the same column again
    reverses the direction), keeping every filter and starting at page one."""
    base = params.copy()
    base.pop("page", None)
    heads = []
    for key, label, numeric in COLUMNS:
        head: dict[str, Any] = {"label": label, "numeric": numeric, "key": key, "active": key == filters.sort_key}
        if key is not None:
            base["sort"] = f"-{key}" if filters.sort == key else key
            head["query"] = base.urlencode()
        heads.append(head)
    return heads


class _BoardPaginator(Paginator):
    """Counts on the bare filtered tenants: the rows' joins (host, datastore, plan names) and
    the sort figure would make the count several times dearer and cannot change it."""

    def __init__(self, rows: Any, per_page: int, *, counted: Any) -> None:
        super().__init__(rows, per_page)
        self._counted = counted

    @cached_property
    def count(self) -> int:
        return self._counted.order_by().values("pk").count()


@staff_or_accounting_required
@require_GET
def tenant_list(request: HttpRequest) -> HttpResponse:
    """Search, filters, sort and pagination: a constant number of queries per page."""
    filters = tenant_board.filters_from(request.GET)
    board = tenant_board.board_queryset(filters)
    page = _BoardPaginator(tenant_board.rows_of(board), PAGE_SIZE, counted=board).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    context = {
        "page": page,
        "tenants": tenant_board.attach_figures(tenant_board.rows_from(page.object_list)),
        "filters": filters,
        "q": filters.search,
        "host_id": filters.host_id,
        "status": filters.status,
        "plan_id": filters.plan_id,
        "query_string": params.urlencode(),
        "columns": _column_heads(request.GET, filters),
        "now": timezone.now(),
        "can_edit": request.user.is_msp_staff,
    }
    if wants_partial(request):
        return render(request, "tenants/list.html#results", context)
    context.update(
        hosts=list(PbsHost.objects.only("id", "name").order_by("name")),
        plans=list(Plan.objects.only("id", "name").order_by("name")),
        statuses=Tenant.Status.choices,
        quota_filters=tenant_board.QUOTA_FILTERS,
        alert_filters=tenant_board.ALERT_FILTERS,
    )
    return render(request, "tenants/list.html", context)


def _csv_cell(value: Any) -> str:
    # Text a spreadsheet would run as a formula is quoted (billing's rule); numbers stay
    # numbers, a negative growth included.
    return neutralise(value) if isinstance(value, str) else ("" if value is None else str(value))


class _Line:
    """A write-only file that hands back what csv.writer wrote."""

    value = ""

    def write(self, text: str) -> int:
        self.value = text
        return len(text)


def _csv_stream(rows: Iterable[Iterable[Any]], lines_per_chunk: int = 500) -> Iterator[bytes]:
    """RFC 4180 (CRLF, quotes as needed), UTF-8, in chunks of a few hundred records."""
    line = _Line()
    writer = csv.writer(line, lineterminator="\r\n")
    buffer: list[str] = []
    writer.writerow(tenant_board.CSV_HEADER)
    buffer.append(line.value)
    for row in rows:
        writer.writerow([_csv_cell(v) for v in row])
        buffer.append(line.value)
        if len(buffer) >= lines_per_chunk:
            yield "".join(buffer).encode("utf-8")
            buffer.clear()
    yield "".join(buffer).encode("utf-8")


@staff_or_accounting_required
@require_GET
def tenant_export(request: HttpRequest) -> StreamingHttpResponse:
    """The tenant list as CSV, with the same filters and sort as the page (every row)."""
    filters = tenant_board.filters_from(request.GET)
    response = StreamingHttpResponse(
        _csv_stream(tenant_board.csv_rows(filters)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="tenants-{timezone.localdate():%Y-%m-%d}.csv"'
    response["Cache-Control"] = "no-store"
    return response
