"""The staff tenant list with the columns people sort by, and its CSV.

The base list (search, host, status, plan, drift) is the tenants app's ``tenant_list``; this
module adds what the apps above tenants know, as SQL annotations on that one query:

- ``usage_bytes``: the billed metric of the tenant's plan (``billing.models.
  metric_value_expression``) on its newest usage sample (no plan: logical bytes, as quotas do);
- ``growth_bytes``: that figure minus the same figure on the first sample of the last 30 days
  (a tenant younger than that grows from its first measured day);
- ``quota_percent``: usage of the soft limit in percent, from the quota state alerts keep
  (``QuotaState.usage_percent_of_soft``, as a query);
- ``newest_backup_at``: the later of the hourly backup check and the newest sample's figure;
- ``open_alerts``: the tenant's open alerts.

Every figure is a correlated subquery on an indexed (tenant, day) or (tenant, status) lookup,
so a page costs one query for its rows and one for its count, whatever the number of tenants;
PostgreSQL evaluates the subqueries only for the rows it returns unless the list is sorted
by one of them.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from types import SimpleNamespace
from typing import Any

from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from alerts.models import Alert, BackupHealth, QuotaState
from billing.models import UsageSample, metric_value_expression
from offsite.models import TenantOffsite
from plans.models import Plan
from tenants import selectors as tenant_selectors
from tenants.models import Tenant

GROWTH_DAYS = 30
# Tenants without a plan are measured like quotas measure them (alerts.selectors.DEFAULT_METRIC).
DEFAULT_METRIC = Plan.Metric.LOGICAL

# ?sort= value -> the field or annotation it orders by (nulls last, but see _ordering).
SORTS: dict[str, str] = {
    "slug": "slug",
    "name": "name",
    "status": "status",
    "plan": "plan__name",
    "created": "created_at",
    "usage": "usage_bytes",
    "growth": "growth_bytes",
    "quota": "quota_percent",
    # Sorted by age: the youngest backup first; "-backup" puts the oldest (and none at all) first.
    "backup": "newest_backup_at",
    "alerts": "open_alerts",
}
DEFAULT_SORT = "slug"

# ?quota= value -> the quota states it shows.
QUOTA_FILTERS: dict[str, tuple[str, ...]] = {
    "warning": (QuotaState.State.WARNING,),
    "over": (QuotaState.State.OVER, QuotaState.State.ENFORCED),  # over the soft limit
    "grace": (QuotaState.State.OVER,),
    "enforced": (QuotaState.State.ENFORCED,),
    "ok": (QuotaState.State.OK,),
}
# ?alerts= value: "open" (any open alert), "none", or a severity.
ALERT_FILTERS = ("open", "none", *Alert.Severity.values)
OFFSITE_FILTERS = ("stale",)


@dataclass(frozen=True)
class BoardFilters:
    """What the list shows, parsed from the query string; unknown values are dropped, never
    an error (a stale bookmark still opens the list)."""

    search: str = ""
    host_id: int | None = None
    status: str = ""
    plan_id: int | None = None
    quota: str = ""
    alerts: str = ""
    offsite: str = ""
    drift: str = ""
    sort: str = DEFAULT_SORT

    @property
    def any(self) -> bool:
        """True when a filter narrows the list (the sort does not)."""
        return bool(
            self.search or self.host_id or self.status or self.plan_id or self.quota or self.alerts
            or self.offsite or self.drift
        )  # fmt: skip

    @property
    def sort_key(self) -> str:
        return self.sort.lstrip("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")


@dataclass(slots=True)
class BoardRow:
    """One tenant of the list: its own columns, then the figures ``attach_figures`` adds.
    A plain row, not a model instance: fifty deferred-field instances with three related ones
    each cost more than the rest of the page's queries together."""

    pk: int
    slug: str
    name: str
    status: str
    writes_blocked: bool
    host_name: str | None
    datastore_name: str | None
    namespace: str
    plan_name: str | None
    plan_metric: str | None
    created_at: dt.datetime
    usage_bytes: int | None = None
    growth_bytes: int | None = None
    quota_percent: int | None = None
    newest_backup_at: dt.datetime | None = None
    open_alerts: int = 0


ROW_FIELDS = (
    "pk", "slug", "name", "status", "writes_blocked", "host__name", "datastore__name", "namespace", "plan__name",
    "plan__metric", "created_at",
)  # fmt: skip


def board_rows(filters: BoardFilters, *, today: dt.date | None = None) -> QuerySet[Any]:
    """``board_queryset`` as tuples of ``ROW_FIELDS`` (for a paginator or a stream); turn a
    slice into rows with ``rows_from``."""
    return rows_of(board_queryset(filters, today=today))


def rows_of(board: QuerySet[Tenant]) -> QuerySet[Any]:
    """A ``board_queryset`` as tuples of ``ROW_FIELDS``."""
    return board.values_list(*ROW_FIELDS)


def rows_from(values: Iterable[tuple[Any, ...]]) -> list[BoardRow]:
    return [BoardRow(*v) for v in values]


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 12 else None


def filters_from(params: Any) -> BoardFilters:
    """Parse ``request.GET`` (or any mapping) into filters."""
    status = params.get("status", "")
    quota = params.get("quota", "")
    alerts = params.get("alerts", "")
    offsite = params.get("offsite", "")
    drift = params.get("drift", "")
    sort = params.get("sort", "") or DEFAULT_SORT
    return BoardFilters(
        search=params.get("q", "")[:100].strip(),
        host_id=_int_or_none(params.get("host")),
        status=status if status in Tenant.Status.values else "",
        plan_id=_int_or_none(params.get("plan")),
        quota=quota if quota in QUOTA_FILTERS else "",
        alerts=alerts if alerts in ALERT_FILTERS else "",
        offsite=offsite if offsite in OFFSITE_FILTERS else "",
        drift=drift if drift == "found" else "",
        sort=sort if sort.lstrip("-") in SORTS else DEFAULT_SORT,
    )


def billed_value() -> Case:
    """A usage sample's billed figure by its tenant's plan metric (billing's expression for each
    metric; no plan: the default metric)."""
    branches = [When(tenant__plan__metric=m, then=metric_value_expression(m)) for m in Plan.Metric.values]
    return Case(*branches, default=metric_value_expression(DEFAULT_METRIC), output_field=BigIntegerField())


def _window_value(since: dt.date, *, newest: bool) -> Subquery:
    samples = UsageSample.objects.filter(tenant=OuterRef("pk"), day__gte=since).order_by("-day" if newest else "day")
    return Subquery(samples.annotate(value=billed_value()).values("value")[:1], output_field=BigIntegerField())


def _open_alerts() -> QuerySet[Alert]:
    return Alert.objects.filter(tenant=OuterRef("pk"), status=Alert.Status.OPEN)


def _sort_annotation(key: str, since: dt.date) -> Any:
    """The one figure the list is sorted by, as SQL (the figures of the rows shown are read
    for the page only, by ``attach_figures``, which computes the same values)."""
    if key == "usage":
        return _window_value(since, newest=True)
    if key == "growth":
        return _window_value(since, newest=True) - _window_value(since, newest=False)
    if key == "quota":
        state = QuotaState.objects.filter(tenant=OuterRef("pk"), soft_limit_bytes__gt=0)
        percent = ExpressionWrapper(F("usage_bytes") * 100 / F("soft_limit_bytes"), output_field=IntegerField())
        return Subquery(state.annotate(p=percent).values("p")[:1], output_field=IntegerField())
    if key == "backup":
        window = UsageSample.objects.filter(tenant=OuterRef("pk"), day__gte=since).order_by("-day")
        sampled = Subquery(window.values("newest_backup_at")[:1], output_field=DateTimeField())
        checked = Subquery(BackupHealth.objects.filter(tenant=OuterRef("pk")).values("newest_backup_at")[:1],
                           output_field=DateTimeField())  # fmt: skip
        # SQLite's max() of a NULL is NULL, PostgreSQL's greatest() skips it: coalesce both ways.
        return Greatest(Coalesce(checked, sampled), Coalesce(sampled, checked), output_field=DateTimeField())
    if key == "alerts":
        counted = _open_alerts().values("tenant").annotate(n=Count("id")).values("n")
        return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))
    raise ValueError(key)


FIGURE_SORTS = {"usage", "growth", "quota", "backup", "alerts"}


def board_queryset(filters: BoardFilters, *, today: dt.date | None = None) -> QuerySet[Tenant]:
    """The filtered and sorted tenants (not yet sliced). Only the figure the list is sorted by
    is computed in SQL; ``attach_figures`` adds the others to the rows actually shown."""
    since = (today or timezone.localdate()) - dt.timedelta(days=GROWTH_DAYS)
    qs = tenant_selectors.tenant_list(
        search=filters.search, host_id=filters.host_id, status=filters.status, plan_id=filters.plan_id,
        drift_found=bool(filters.drift),
    )  # fmt: skip
    if filters.quota:
        qs = qs.filter(Exists(QuotaState.objects.filter(tenant=OuterRef("pk"), state__in=QUOTA_FILTERS[filters.quota])))
    if filters.alerts == "open":
        qs = qs.filter(Exists(_open_alerts()))
    elif filters.alerts == "none":
        qs = qs.exclude(Exists(_open_alerts()))
    elif filters.alerts:
        qs = qs.filter(Exists(_open_alerts().filter(severity=filters.alerts)))
    if filters.offsite == "stale":
        qs = qs.filter(Exists(TenantOffsite.objects.filter(tenant=OuterRef("pk"), stale=True)))
    if filters.sort_key in FIGURE_SORTS:
        qs = qs.alias(sort_figure=_sort_annotation(filters.sort_key, since))
    return qs.order_by(*_ordering(filters))


# alerts' rule for quota use, applied to the two figures without building a model per row.
_quota_percent = QuotaState.usage_percent_of_soft.fget


def attach_figures(tenants: list[BoardRow], *, today: dt.date | None = None) -> list[BoardRow]:
    """Set ``usage_bytes``, ``growth_bytes``, ``quota_percent``, ``newest_backup_at`` and
    ``open_alerts`` on each tenant: two queries for the whole list, whatever its length.

    Usage is the billed figure of the newest sample of the last 30 days; growth is that minus
    the figure of the first sample of those days (0 with a single sample); quota use is
    ``QuotaState.usage_percent_of_soft``; the newest backup is the later of the hourly check
    and the newest sample's figure. (The figure the list is sorted by is the same value,
    computed in SQL by ``_sort_annotation``.)"""
    since = (today or timezone.localdate()) - dt.timedelta(days=GROWTH_DAYS)
    ids = [t.pk for t in tenants]
    if not ids:
        return tenants
    first: dict[int, dict[str, int | None]] = {}
    last: dict[int, tuple[dict[str, int | None], dt.datetime | None]] = {}
    # Every metric's billed figure side by side (billing's expression each, no join), so the
    # tenant's own metric is picked per row here rather than by a CASE in SQL.
    metrics = list(Plan.Metric.values)
    samples = (
        UsageSample.objects.filter(tenant_id__in=ids, day__gte=since)
        .annotate(**{f"m_{m}": metric_value_expression(m) for m in metrics})
        .order_by("tenant_id", "day")
        .values_list("tenant_id", "newest_backup_at", *(f"m_{m}" for m in metrics))
    )
    for tenant_id, newest_backup, *values in samples:
        figures = dict(zip(metrics, values, strict=True))
        first.setdefault(tenant_id, figures)
        last[tenant_id] = (figures, newest_backup)
    related = (
        Tenant.objects.filter(pk__in=ids)
        .values_list(
            "pk", "quota_state__usage_bytes", "quota_state__soft_limit_bytes", "backup_health__newest_backup_at"
        )
        .annotate(alerts=Count("alerts", filter=Q(alerts__status=Alert.Status.OPEN)))
        .order_by()
    )
    extra = {row[0]: row[1:] for row in related}
    for t in tenants:
        metric = t.plan_metric if t.plan_metric in metrics else DEFAULT_METRIC
        figures, sampled_backup = last.get(t.pk, ({}, None))
        t.usage_bytes = figures.get(metric)
        start = first.get(t.pk, {}).get(metric)
        t.growth_bytes = None if t.usage_bytes is None or start is None else t.usage_bytes - start
        quota_usage, quota_soft, checked_backup, t.open_alerts = extra.get(t.pk, (None, None, None, 0))
        t.quota_percent = _quota_percent(SimpleNamespace(usage_bytes=quota_usage, soft_limit_bytes=quota_soft))
        backups = [b for b in (checked_backup, sampled_backup) if b is not None]
        t.newest_backup_at = max(backups) if backups else None
    return tenants


def _ordering(filters: BoardFilters) -> list[Any]:
    key, descending = filters.sort_key, filters.descending
    if key == "backup":
        # Age ascending = newest backup first; a tenant without any backup is the oldest.
        expression = F("sort_figure")
        first = expression.asc(nulls_first=True) if descending else expression.desc(nulls_last=True)
    else:
        expression = F("sort_figure" if key in FIGURE_SORTS else SORTS[key])
        first = expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True)
    return [first, "slug"] if key != "slug" else [first]


# --- CSV --------------------------------------------------------------------------------

GIB = 2**30
CSV_HEADER = (
    "slug", "name", "status", "host", "datastore", "namespace", "plan", "metric", "created",
    "usage_bytes", "usage_gib", "growth_30d_bytes", "growth_30d_gib", "quota_percent",
    "newest_backup_at", "backup_age_hours", "open_alerts",
)  # fmt: skip


def _gib(value: int | None) -> Decimal | str:
    return "" if value is None else (Decimal(value) / GIB).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def csv_rows(filters: BoardFilters, *, chunk_size: int = 2000) -> Iterator[tuple[Any, ...]]:
    """The filtered list as CSV rows (``CSV_HEADER`` names them), streamed in chunks of
    ``chunk_size`` tenants (five queries each): bytes stay exact integers; a GiB column (2**30,
    two decimals) stands beside each for people."""
    now = timezone.now()
    today = timezone.localdate()
    rows = board_rows(filters, today=today).iterator(chunk_size=chunk_size)
    while True:
        chunk = rows_from(itertools.islice(rows, chunk_size))
        if not chunk:
            return
        for t in attach_figures(chunk, today=today):
            age = "" if t.newest_backup_at is None else f"{(now - t.newest_backup_at).total_seconds() / 3600:.1f}"
            yield (
                t.slug, t.name, t.status, t.host_name or "", t.datastore_name or "",
                t.namespace, t.plan_name or "", t.plan_metric or DEFAULT_METRIC,
                timezone.localtime(t.created_at).date().isoformat(),
                "" if t.usage_bytes is None else t.usage_bytes, _gib(t.usage_bytes),
                "" if t.growth_bytes is None else t.growth_bytes, _gib(t.growth_bytes),
                "" if t.quota_percent is None else t.quota_percent,
                "" if t.newest_backup_at is None else t.newest_backup_at.isoformat(), age, t.open_alerts,
            )  # fmt: skip
