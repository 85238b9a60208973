"""Tenants: validate, create, update (retention, plan, contact)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from audit.services import audit_record
from core.actors import actor_or_none
from pbsclient import validation
from plans.models import Plan
from tenants.models import (
    Datastore,
    OnboardingRun,
    PbsHost,
    Tenant,
)
from tenants.naming import slug_problems, tenant_names
from tenants.selectors import placement_choose
from tenants.services.base import KEEP_FIELDS
from tenants.services.runs import tenant_onboard


@dataclass(frozen=True)
class Retention:
    """A tenant's retention: keep-* (None = not limited by it) and the prune schedule."""

    keep_last: int | None = None
    keep_hourly: int | None = None
    keep_daily: int | None = 14
    keep_weekly: int | None = 8
    keep_monthly: int | None = 12
    keep_yearly: int | None = None
    schedule: str = "daily"

    def as_fields(self) -> dict[str, Any]:
        return {**{name: getattr(self, name) for name in KEEP_FIELDS}, "schedule": self.schedule}

    @classmethod
    def of(cls, tenant: Tenant) -> Retention:
        return cls(**{name: getattr(tenant, name) for name in KEEP_FIELDS}, schedule=tenant.schedule)


def retention_problems(retention: Retention) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for name in KEEP_FIELDS:
        value = getattr(retention, name)
        if value is not None and not 1 <= value <= 32767:
            errors[name] = ["Use a number from 1 up, or leave it empty (not limited by it)."]
    try:
        validation.validate_calendar_event(retention.schedule)
    except ValueError as exc:
        errors["schedule"] = [str(exc)]
    return errors


def tenant_validate(
    *, slug: str, name: str = "", datastore: Datastore | None = None, check_unique: bool = True
) -> dict[str, list[str]]:
    """Field errors for a new tenant (used by the form as you type, the API and the CLI)."""
    errors: dict[str, list[str]] = {}
    problems = slug_problems(slug, store=datastore.name if datastore else None)
    if not problems and check_unique and Tenant.objects.filter(slug=slug).exists():
        problems.append(f"The slug '{slug}' is taken.")
    if problems:
        errors["slug"] = problems
    if name is not None and not name.strip():
        errors["name"] = ["Enter the customer's name."]
    return errors


def tenant_create(
    *,
    slug: str,
    name: str,
    actor: Any = None,
    contact_name: str = "",
    contact_email: str = "",
    plan: Any = None,
    host: PbsHost | None = None,
    datastore: Datastore | None = None,
    retention: Retention | None = None,
    max_restore_token_days: int | None = None,
) -> Tenant:
    """Create a tenant (status pending) with its placement and derived PBS names.

    Placement: the given datastore; or the best datastore of the given host; or the best
    datastore anywhere (placement policy in tenants.selectors.placement_candidates).
    """
    slug = slug.strip()
    retention = retention or Retention()
    if datastore is not None and host is not None and datastore.host_id != host.pk:
        raise ValidationError({"datastore": [f"{datastore} is not on host {host.name}."]})
    if datastore is None:
        datastore = placement_choose(host=host)
        if datastore is None:
            where = f"on {host.name}" if host else "on any host"
            raise ValidationError(
                {"datastore": [f"No usable datastore {where}: hosts must be enabled and reachable, "
                               "datastores enabled with known capacity (run a health check)."]}
            )  # fmt: skip
    errors = tenant_validate(slug=slug, name=name, datastore=datastore)
    errors.update(retention_problems(retention))
    days = max_restore_token_days or settings.PORTAL_MAX_RESTORE_TOKEN_DAYS
    if not 1 <= days <= settings.PORTAL_MAX_RESTORE_TOKEN_DAYS:
        errors["max_restore_token_days"] = [f"Use 1..{settings.PORTAL_MAX_RESTORE_TOKEN_DAYS}."]
    if errors:
        raise ValidationError(errors)
    names = tenant_names(slug)
    try:
        with transaction.atomic():
            tenant = Tenant.objects.create(
                slug=slug,
                name=name.strip(),
                contact_name=contact_name.strip(),
                contact_email=contact_email.strip(),
                plan=plan,
                host=datastore.host,
                datastore=datastore,
                namespace=names.namespace,
                pbs_userid=names.userid,
                prune_job_id=names.prune_job_id,
                max_restore_token_days=days,
                created_by=actor_or_none(actor),
                **retention.as_fields(),
            )
            audit_record(
                action="tenant.create", actor=actor, tenant=tenant, target=slug,
                detail={"host": datastore.host.name, "datastore": datastore.name,
                        "namespace": names.namespace, "plan": getattr(plan, "name", None)},
            )  # fmt: skip
    except IntegrityError as exc:
        raise ValidationError({"slug": [f"The slug '{slug}' is taken."]}) from exc
    return tenant


def tenant_update(
    *,
    tenant_id: int,
    actor: Any = None,
    name: str | None = None,
    contact_name: str | None = None,
    contact_email: str | None = None,
    plan: Any = None,
    set_plan: bool = False,
) -> Tenant:
    """Portal-only details (nothing on PBS changes)."""
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
        changed = []
        for field_name, value in (("name", name), ("contact_name", contact_name), ("contact_email", contact_email)):
            if value is not None and getattr(tenant, field_name) != value.strip():
                setattr(tenant, field_name, value.strip())
                changed.append(field_name)
        if set_plan and tenant.plan_id != getattr(plan, "pk", None):
            tenant.plan = plan
            changed.append("plan")
        if not tenant.name:
            raise ValidationError({"name": ["Enter the customer's name."]})
        tenant.save()
        audit_record(action="tenant.update", actor=actor, tenant=tenant, target=tenant.slug,
                     detail={"changed": changed})  # fmt: skip
    return tenant


def tenant_placement_resolve(
    *, host: PbsHost | str | None = None, datastore: Datastore | str | None = None, plan: Plan | str | None = None
) -> tuple[PbsHost | None, Datastore | None, Plan | None]:
    """Host, datastore and plan as the front doors name them (rows, or names from the API and
    the command line), resolved by one rule. A datastore named without its host must be
    unambiguous; a datastore on another host than the one named is refused. Raises
    ValidationError keyed by field."""
    errors: dict[str, list[str]] = {}
    if isinstance(host, str):
        host_name, host = host, PbsHost.objects.filter(name=host).first()
        if host is None:
            errors["host"] = [f"No host named '{host_name}'."]
    if isinstance(datastore, str):
        store_name = datastore
        stores_named = Datastore.objects.select_related("host").filter(name=store_name)
        stores = list((stores_named.filter(host=host) if host is not None else stores_named)[:2])
        if not stores:
            where = f" on {host.name}" if host is not None else ""
            errors["datastore"] = [f"No datastore '{store_name}'{where}."]
            datastore = None
        elif len(stores) > 1:
            errors["datastore"] = [f"Several hosts have a datastore '{store_name}': name the host too."]
            datastore = None
        else:
            datastore = stores[0]
    if datastore is not None and host is not None and datastore.host_id != host.pk:
        errors["datastore"] = [f"{datastore} is not on host {host.name}."]
    if isinstance(plan, str):
        plan_name, plan = plan, Plan.objects.filter(name=plan).first()
        if plan is None:
            errors["plan"] = [f"No plan named '{plan_name}'."]
    if errors:
        raise ValidationError(errors)
    return host, datastore, plan


def retention_from(values: dict[str, Any]) -> Retention:
    """A retention from the values a front door was given; what is missing keeps its default."""
    defaults = Retention()
    return Retention(
        **{name: values[name] if values.get(name) is not None else getattr(defaults, name) for name in KEEP_FIELDS},
        schedule=values.get("schedule") or defaults.schedule,
    )


def tenant_create_request(
    *,
    slug: str,
    name: str,
    actor: Any = None,
    host: PbsHost | str | None = None,
    datastore: Datastore | str | None = None,
    plan: Plan | str | None = None,
    retention: Retention | dict[str, Any] | None = None,
    contact_name: str = "",
    contact_email: str = "",
    onboard: bool = False,
) -> tuple[Tenant, OnboardingRun | None]:
    """What the form, the API and ``manage.py tenant create`` all do: resolve and validate
    the placement, plan and retention by one rule, create the tenant (audited) and, when
    asked, start its onboarding (enqueued after the commit)."""
    host, datastore, plan = tenant_placement_resolve(host=host, datastore=datastore, plan=plan)
    if not isinstance(retention, Retention):
        retention = retention_from(retention or {})
    tenant = tenant_create(
        slug=slug, name=name, actor=actor, contact_name=contact_name, contact_email=contact_email,
        plan=plan, host=host, datastore=datastore, retention=retention,
    )  # fmt: skip
    run = tenant_onboard(tenant_id=tenant.pk, actor=actor)[0] if onboard else None
    return tenant, run
