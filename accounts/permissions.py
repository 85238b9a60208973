"""Who may do what: role checks for HTML views (decorators) and the REST API (DRF).

Roles (accounts.models.Role):

- ``admin``       MSP admin: everything, including PBS hosts (and their secrets) and plans.
- ``operator``    MSP operator: tenants and onboarding; no host secrets, no plans, no billing.
- ``accounting``  Billing pages, invoices, CSV exports; a read-only tenant list; nothing that
                  touches PBS.
- ``client``      A user of exactly one tenant (``user.tenant``); sees only that tenant.
                  ``user.is_tenant_admin`` additionally manages the tenant's own users.

Function views (all redirect anonymous users to the login page, answer 403 otherwise)::

    from accounts.permissions import staff_required
    @staff_required
    def tenant_list(request): ...

    ========================================  ==========================================
    decorator                                 roles let in
    ========================================  ==========================================
    ``admin_required``                        admin
    ``staff_required``                        admin, operator
    ``accounting_required``                   admin, accounting   (billing, invoices, CSV)
    ``staff_or_accounting_required``          admin, operator, accounting (read-only lists)
    ``client_required``                       client (sets ``request.tenant``)
    ``client_admin_required``                 client with is_tenant_admin (sets request.tenant)
    ``role_required(Role.X, ...)``            build your own
    ========================================  ==========================================

DRF (``permission_classes = [IsMspStaff]``; each includes IsAuthenticated):
``IsMspAdmin``, ``IsMspStaff``, ``IsAccounting`` (admin or accounting), ``IsStaffOrAccounting``,
``IsClient``, ``CanViewTenantObject`` (staff, accounting or a client;
a client is refused objects of other tenants).

Object level, for any view that loads a tenant-owned row by id::

    tenant = get_object_or_404(Tenant, pk=pk)
    ensure_can_view_tenant(request.user, tenant)      # raises PermissionDenied

    qs = scope_to_user(Invoice.objects.all(), request.user, field="tenant")
    # client -> only their tenant's rows; staff/accounting -> unchanged

For client-facing lookups prefer filtering the queryset by ``request.tenant`` so another
tenant's object is a 404 (it does not exist for that user) rather than a 403.

Second factor: when ``settings.PORTAL_REQUIRE_STAFF_TOTP`` is on, every MSP-side account
(admin, operator, accounting) must have a confirmed TOTP before any of these checks pass;
HTML views redirect to the enrolment page, the API answers 403. See docs/security.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from rest_framework.permissions import BasePermission

from accounts.models import Role

ViewFunc = TypeVar("ViewFunc", bound=Callable[..., HttpResponse])

MSP_SIDE_ROLES = frozenset({Role.ADMIN, Role.OPERATOR, Role.ACCOUNTING})
ADMIN_ONLY = (Role.ADMIN,)
STAFF = (Role.ADMIN, Role.OPERATOR)
ACCOUNTING = (Role.ADMIN, Role.ACCOUNTING)
STAFF_OR_ACCOUNTING = (Role.ADMIN, Role.OPERATOR, Role.ACCOUNTING)
CLIENT = (Role.CLIENT,)


# --- predicates -------------------------------------------------------------


# Set in the session when this session passed the second factor (sign-in with the code, or
# enrolling one); a password alone never gives a session of a user who has a factor.
SECOND_FACTOR_SESSION_KEY = "second_factor_passed_at"


def second_factor_proven(request: Any) -> None:
    """Record that this session passed the user's second factor."""
    request.session[SECOND_FACTOR_SESSION_KEY] = int(time.time())


def second_factor_unproven(request: Any) -> bool:
    """True for a signed-in user with a second factor whose session never passed it (e.g. a
    session made by another login form than the portal's)."""
    user = getattr(request, "user", None)
    return bool(
        user is not None
        and user.is_authenticated
        and getattr(user, "totp_confirmed_at", None)
        and not request.session.get(SECOND_FACTOR_SESSION_KEY)
    )


def totp_required_but_missing(user: Any) -> bool:
    """True when policy demands a second factor this (MSP-side) user has not set up yet."""
    return bool(
        settings.PORTAL_REQUIRE_STAFF_TOTP
        and getattr(user, "role", None) in MSP_SIDE_ROLES
        and not getattr(user, "totp_confirmed_at", None)
    )


def has_role(user: Any, roles: Iterable[str]) -> bool:
    """Authenticated, active, one of ``roles``; a client must also have a tenant."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.role not in set(roles):
        return False
    if user.role == Role.CLIENT:
        # A client of an offboarded tenant keeps its login row (audit) but no access.
        return user.tenant_id is not None and user.tenant.status != "offboarded"
    return True


def can_view_tenant(user: Any, tenant: Any) -> bool:
    """Staff and accounting see every tenant; a client only its own."""
    if has_role(user, STAFF_OR_ACCOUNTING):
        return True
    tenant_id = getattr(tenant, "pk", tenant)
    return has_role(user, CLIENT) and tenant_id is not None and user.tenant_id == tenant_id


def ensure_can_view_tenant(user: Any, tenant: Any) -> None:
    """Raise PermissionDenied unless ``user`` may see ``tenant`` (an instance or an id)."""
    if not can_view_tenant(user, tenant):
        raise PermissionDenied("not your tenant")


def scope_to_user[M: Model](
    queryset: QuerySet[M], user: Any, *, field: str = "tenant"
) -> QuerySet[M]:
    """Restrict a tenant-owned queryset to what ``user`` may see (``field`` is the FK path)."""
    if has_role(user, STAFF_OR_ACCOUNTING):
        return queryset
    if has_role(user, CLIENT):
        return queryset.filter(**{f"{field}_id": user.tenant_id})
    return queryset.none()


# --- function-view decorators -----------------------------------------------


def role_required(*roles: str, tenant_admin: bool = False) -> Callable[[ViewFunc], ViewFunc]:
    """Decorator factory: anonymous -> login redirect; wrong role -> 403.

    For client roles ``request.tenant`` is set to the user's tenant so views never take a
    tenant id from the URL. ``tenant_admin=True`` also requires ``user.is_tenant_admin``.
    """

    def decorator(view: ViewFunc) -> ViewFunc:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            response = check_request(request, roles, tenant_admin=tenant_admin)
            if response is not None:
                return response
            return view(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]  # same signature as the wrapped view

    return decorator


def check_request(
    request: HttpRequest, roles: Iterable[str], *, tenant_admin: bool = False
) -> HttpResponse | None:
    """Shared by decorators and mixins: None when allowed, else a response (or raise 403)."""
    user = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if totp_required_but_missing(user):
        return redirect("accounts:security")
    if not has_role(user, roles):
        raise PermissionDenied("your role may not open this page")
    if tenant_admin and not user.is_tenant_admin:
        raise PermissionDenied("only the tenant's admin may do this")
    if user.role == Role.CLIENT:
        request.tenant = user.tenant  # type: ignore[attr-defined]
    return None


admin_required = role_required(*ADMIN_ONLY)
staff_required = role_required(*STAFF)
accounting_required = role_required(*ACCOUNTING)
staff_or_accounting_required = role_required(*STAFF_OR_ACCOUNTING)
client_required = role_required(*CLIENT)
client_admin_required = role_required(*CLIENT, tenant_admin=True)


# --- DRF permission classes ---------------------------------------------------


class _RolePermission(BasePermission):
    roles: tuple[str, ...] = ()
    message = "Your role may not use this endpoint."

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        if totp_required_but_missing(user):
            self.message = "A second factor (TOTP) must be set up first."
            return False
        ok = has_role(user, self.roles)
        if ok and user.role == Role.CLIENT:
            request.tenant = user.tenant
        return ok


class IsMspAdmin(_RolePermission):
    roles = ADMIN_ONLY


class IsMspStaff(_RolePermission):
    roles = STAFF


class IsAccounting(_RolePermission):
    roles = ACCOUNTING


class IsStaffOrAccounting(_RolePermission):
    roles = STAFF_OR_ACCOUNTING


class IsClient(_RolePermission):
    roles = CLIENT


def _object_tenant_id(obj: Any) -> Any:
    """The tenant an object belongs to: every tenant-owned row carries ``tenant_id``."""
    return getattr(obj, "tenant_id", None)


class CanViewTenantObject(_RolePermission):
    """Staff, accounting or a client; for a client the object must be of its own tenant."""

    roles = (*STAFF_OR_ACCOUNTING, *CLIENT)

    def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        return can_view_tenant(request.user, _object_tenant_id(obj))
