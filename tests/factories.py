"""Typed factories for the core objects every area's tests need.

Plain functions with keyword-only arguments and safe defaults; each call makes new rows
with unique names. Import them anywhere::

    from tests.factories import make_tenant, make_user
    tenant = make_tenant(slug="acme")
    client = make_user(role=Role.CLIENT, tenant=tenant)

The matching pytest fixtures (``staff_user``, ``operator_user``, ``accounting_user``,
``tenant_a``, ``tenant_b``, ``client_a``, ``client_b``...) live in tests/fixtures.py.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from django.utils import timezone

from accounts.models import Role, User
from core.crypto import encrypt_secret
from tenants.models import Datastore, PbsHost, Tenant, TenantToken

# A password that passes the project's validators (12+ chars, not common, not numeric).
DEFAULT_PASSWORD = "correct-horse-battery-staple-7"
# Any fixed 32-pair fingerprint; tests that talk to a simulator pass the real one.
FAKE_FINGERPRINT = ":".join(["ab"] * 32)

_seq = itertools.count(1)


def _next() -> int:
    return next(_seq)


def make_host(
    *,
    name: str | None = None,
    url: str = "https://127.0.0.1:8007",
    token_id: str = "root@pam!portal",  # noqa: S107 (test fixture values, not secrets)
    token_secret: str = "automation-secret-for-tests",  # noqa: S107 (test value)
    metering_token_id: str = "",
    metering_secret: str = "",
    fingerprint: str = FAKE_FINGERPRINT,
    **fields: Any,
) -> PbsHost:
    """A PBS host row; secrets are stored encrypted like the real thing."""
    return PbsHost.objects.create(
        name=name or f"pbs{_next()}",
        url=url,
        token_id=token_id,
        token_secret_enc=encrypt_secret(token_secret),
        metering_token_id=metering_token_id,
        metering_secret_enc=encrypt_secret(metering_secret),
        fingerprint=fingerprint,
        **fields,
    )


def make_datastore(*, host: PbsHost | None = None, name: str = "store1", **fields: Any) -> Datastore:
    return Datastore.objects.create(host=host or make_host(), name=name, **fields)


def make_tenant(
    *,
    slug: str | None = None,
    name: str | None = None,
    datastore: Datastore | None = None,
    status: str = Tenant.Status.ACTIVE,
    namespace_parent: str = "clients",
    provisioned: bool = True,
    **fields: Any,
) -> Tenant:
    """A tenant; ``provisioned=True`` (default) gives it host, datastore, namespace and
    PBS user id as onboarding would (``<parent>/<slug>``, ``<slug>@pbs``)."""
    slug = slug or f"tenant{_next()}"
    values: dict[str, Any] = {"slug": slug, "name": name or slug.title(), "status": status}
    if provisioned:
        datastore = datastore or make_datastore()
        values.update(
            host=datastore.host,
            datastore=datastore,
            namespace=f"{namespace_parent}/{slug}",
            pbs_userid=f"{slug}@pbs",
        )
        if status == Tenant.Status.ACTIVE:
            values["activated_at"] = timezone.now()
    values.update(fields)
    return Tenant.objects.create(**values)


def make_user(
    *,
    role: str = Role.CLIENT,
    tenant: Tenant | None = None,
    username: str | None = None,
    password: str | None = DEFAULT_PASSWORD,
    email: str | None = None,
    is_tenant_admin: bool = False,
    **fields: Any,
) -> User:
    """A portal user. A client needs a tenant (one is made if not given); others have none.

    ``password=None`` gives an unusable password and skips argon2 (fast; for tests that
    only use ``client.force_login``)."""
    if role == Role.CLIENT and tenant is None:
        tenant = make_tenant()
    if role != Role.CLIENT:
        tenant = None
    n = _next()
    username = username or f"{role}{n}"
    return User.objects.create_user(
        username=username,
        password=password,
        email=email or f"{username}@example.test",
        role=role,
        tenant=tenant,
        is_tenant_admin=is_tenant_admin,
        **fields,
    )


def make_token(
    *,
    tenant: Tenant,
    purpose: str = TenantToken.Purpose.RESTORE,
    name: str | None = None,
    expires_in_days: int | None = 30,
    created_by: User | None = None,
    **fields: Any,
) -> TenantToken:
    """A TenantToken row only (no PBS call); for the PBS side use the real service."""
    name = name or (f"restore-t{_next()}" if purpose == TenantToken.Purpose.RESTORE else "backup")
    expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    return TenantToken.objects.create(
        tenant=tenant,
        purpose=purpose,
        name=name,
        tokenid=f"{tenant.pbs_userid}!{name}",
        expires_at=expires_at,
        created_by=created_by,
        **fields,
    )
