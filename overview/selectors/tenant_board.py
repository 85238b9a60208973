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
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    DateTimeField,
    Exists,
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


def _sample_value(metric: str, *, since: dt.date | None = None, newest: bool = True) -> Subquery:
    samples = UsageSample.objects.filter(tenant=OuterRef("pk"))
    if since is not None:
        samples = samples.filter(day__gte=since)
    samples = samples.order_by("-day" if newest else "day")
    value = samples.annotate(value=metric_value_expression(metric)).values("value")[:1]
    return Subquery(value, output_field=BigIntegerField())


def _by_plan_metric(**kwargs: Any) -> Case:
    """The tenant's billed metric, chosen per row by its plan (one CASE branch runs per row)."""
    branches = [When(plan__metric=metric, then=_sample_value(metric, **kwargs)) for metric in Plan.Metric.values]
    return Case(*branches, default=_sample_value(DEFAULT_METRIC, **kwargs), output_field=BigIntegerField())


def board_queryset(filters: BoardFilters, *, today: dt.date | None = None) -> QuerySet[Tenant]:
    """The filtered, annotated and sorted tenants (not yet sliced)."""
    today = today or timezone.localdate()
    since = today - dt.timedelta(days=GROWTH_DAYS)
    qs = tenant_selectors.tenant_list(
        search=filters.search, host_id=filters.host_id, status=filters.status, plan_id=filters.plan_id,
        drift_found=bool(filters.drift),
    )  # fmt: skip
    open_alerts = Alert.objects.filter(tenant=OuterRef("pk"), status=Alert.Status.OPEN)
    newest_sample_backup = Subquery(
        UsageSample.objects.filter(tenant=OuterRef("pk")).order_by("-day").values("newest_backup_at")[:1],
        output_field=DateTimeField(),
    )
    checked_backup = Subquery(
        BackupHealth.objects.filter(tenant=OuterRef("pk")).values("newest_backup_at")[:1],
        output_field=DateTimeField(),
    )
    soft = Subquery(QuotaState.objects.filter(tenant=OuterRef("pk")).values("soft_limit_bytes")[:1])
    quota_usage = Subquery(QuotaState.objects.filter(tenant=OuterRef("pk")).values("usage_bytes")[:1])
    qs = qs.alias(quota_soft=soft, quota_usage=quota_usage).annotate(
        usage_bytes=_by_plan_metric(),
        growth_bytes=F("usage_bytes") - _by_plan_metric(since=since, newest=False),
        quota_percent=Case(
            When(Q(quota_soft__gt=0), then=F("quota_usage") * 100 / F("quota_soft")),
            default=None, output_field=IntegerField(),
        ),
        # SQLite's max() of a NULL is NULL, PostgreSQL's greatest() skips it: coalesce both ways.
        newest_backup_at=Greatest(
            Coalesce(checked_backup, newest_sample_backup), Coalesce(newest_sample_backup, checked_backup),
            output_field=DateTimeField(),
        ),
        open_alerts=Coalesce(
            Subquery(open_alerts.values("tenant").annotate(n=Count("id")).values("n"), output_field=IntegerField()),
            Value(0),
        ),
    )  # fmt: skip
    if filters.quota:
        qs = qs.filter(Exists(QuotaState.objects.filter(tenant=OuterRef("pk"), state__in=QUOTA_FILTERS[filters.quota])))
    if filters.alerts == "open":
        qs = qs.filter(Exists(open_alerts))
    elif filters.alerts == "none":
        qs = qs.exclude(Exists(open_alerts))
    elif filters.alerts:
        qs = qs.filter(Exists(open_alerts.filter(severity=filters.alerts)))
    if filters.offsite == "stale":
        qs = qs.filter(Exists(TenantOffsite.objects.filter(tenant=OuterRef("pk"), stale=True)))
    return qs.order_by(*_ordering(filters))


def _ordering(filters: BoardFilters) -> list[Any]:
    key, descending = filters.sort_key, filters.descending
    if key == "backup":
        # Age ascending = newest backup first; a tenant without any backup is the oldest.
        expression = F("newest_backup_at")
        first = expression.asc(nulls_first=True) if descending else expression.desc(nulls_last=True)
    else:
        expression = F(SORTS[key])
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
    """The filtered list as CSV rows (``CSV_HEADER`` names them), streamed in chunks: bytes
    stay exact integers; a GiB column (2**30, two decimals) stands beside each for people."""
    now = timezone.now()
    for t in board_queryset(filters).iterator(chunk_size=chunk_size):
        age = "" if t.newest_backup_at is None else f"{(now - t.newest_backup_at).total_seconds() / 3600:.1f}"
        yield (
            t.slug, t.name, t.status, t.host.name if t.host else "", t.datastore.name if t.datastore else "",
            t.namespace, t.plan.name if t.plan else "", t.plan.metric if t.plan else DEFAULT_METRIC,
            timezone.localtime(t.created_at).date().isoformat(),
            "" if t.usage_bytes is None else t.usage_bytes, _gib(t.usage_bytes),
            "" if t.growth_bytes is None else t.growth_bytes, _gib(t.growth_bytes),
            "" if t.quota_percent is None else t.quota_percent,
            "" if t.newest_backup_at is None else t.newest_backup_at.isoformat(), age, t.open_alerts,
        )  # fmt: skip
