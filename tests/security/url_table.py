"""Who may open which URL: the expectations the role matrix (test_role_matrix.py) checks.

Every named URL of the project must match a rule here, by its full name ("app:name") or by
a prefix of it; the longest matching key wins. A URL without a rule fails the matrix, so a
new page cannot ship without someone deciding who may open it.

Adding a URL: add a rule (or rely on its app's prefix rule), and if its pattern has a
parameter nobody resolved before, add a resolver to PARAMS (by parameter name) or to
PARAMS_BY_URL (by URL name) that returns tenant A's object for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ANON = "anonymous"
ADMIN = "admin"
OPERATOR = "operator"
ACCOUNTING = "accounting"
CLIENT = "client"  # a plain client user of tenant A (or of B, in the cross-tenant walk)
CLIENT_ADMIN = "client_admin"  # tenant A's client admin

ROLES = (ANON, ADMIN, OPERATOR, ACCOUNTING, CLIENT, CLIENT_ADMIN)
SIGNED_IN = frozenset(ROLES) - {ANON}
PUBLIC = frozenset(ROLES)
ADMIN_ONLY = frozenset({ADMIN})
STAFF = frozenset({ADMIN, OPERATOR})
BILLING = frozenset({ADMIN, ACCOUNTING})
STAFF_OR_ACCOUNTING = frozenset({ADMIN, OPERATOR, ACCOUNTING})
CLIENTS = frozenset({CLIENT, CLIENT_ADMIN})
CLIENT_ADMINS = frozenset({CLIENT_ADMIN})
BILLING_OR_CLIENTS = BILLING | CLIENTS
NOBODY: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ByMethod:
    """Different roles for reading (GET) and for writing (POST, PUT, PATCH, DELETE)."""

    read: frozenset[str]
    write: frozenset[str]


Rule = frozenset[str] | ByMethod


def read_roles(rule: Rule) -> frozenset[str]:
    return rule.read if isinstance(rule, ByMethod) else rule


def write_roles(rule: Rule) -> frozenset[str]:
    return rule.write if isinstance(rule, ByMethod) else rule


# URL name (or prefix) -> the roles that may open it. Everyone else must be refused.
RULES: dict[str, Rule] = {
    # portal
    "home": SIGNED_IN,
    "healthz": PUBLIC,
    "api-schema": SIGNED_IN,
    "api-docs": SIGNED_IN,
    # accounts
    "accounts:": SIGNED_IN,  # own security page, password, TOTP
    "accounts:login": PUBLIC,
    "accounts:login_totp": PUBLIC,
    "accounts:logout": PUBLIC,
    "accounts:invitation_open": PUBLIC,
    "accounts:invitation_accept": PUBLIC,
    "accounts:tenant_user": STAFF,  # tenant_user_remove
    "team:": STAFF,  # a tenant's client users: tenant_users, tenant_user_invite
    "accounts:invitation_revoke": STAFF,
    "accounts:user_totp_reset": ADMIN_ONLY,
    # self-service: clients of their own tenant only
    "selfservice:": CLIENTS,
    "selfservice:team": CLIENT_ADMINS,
    "selfservice-api:": CLIENTS,
    # tenants: staff; the tenant list is readable by accounting too
    "tenants:": STAFF,
    "tenants:list": STAFF_OR_ACCOUNTING,
    "tenants:export": STAFF_OR_ACCOUNTING,  # the list as CSV
    "tenants:host_new": ADMIN_ONLY,  # host secrets
    "tenants:host_fingerprint": ADMIN_ONLY,
    "tenants:datastore_update": ADMIN_ONLY,
    "tenants:offboard": ADMIN_ONLY,
    # tenants REST API
    "api-host": STAFF,  # api-hosts, api-host, api-host-check, api-host-drift
    "api-hosts": ByMethod(read=STAFF, write=ADMIN_ONLY),  # registering a host: its secrets
    "api-datastore": ADMIN_ONLY,
    "api-tenant": STAFF,  # api-tenant-*, api-tenants-*
    "api-tenants": ByMethod(read=STAFF_OR_ACCOUNTING, write=STAFF),
    "api-tenants-": STAFF,  # api-tenants-validate, api-tenants-onboard-bulk
    "api-tenant-offboard": ADMIN_ONLY,
    "api-run": STAFF,
    "api-token-": STAFF,
    "api-audit": STAFF,
    # billing: accounting and admins; a client may open its own tenant's invoices
    "billing:": BILLING,
    "billing:invoice": BILLING_OR_CLIENTS,
    "billing:invoice_correct": BILLING,
    "billing:credit_note_pdf": BILLING_OR_CLIENTS,  # a client its own tenant's, like invoices
    "billing-api-": BILLING,
    "billing-api-invoice": BILLING_OR_CLIENTS,
    "billing-api-invoice-correct": BILLING,
    "billing-api-tenant-invoices": BILLING_OR_CLIENTS,
    "billing-api-tenant-usage": BILLING_OR_CLIENTS,
    # chunk-exact usage panels: staff and accounting see any tenant's and datastore's;
    # a client sees its own tenant's (the URL names no tenant)
    "attribution:": STAFF_OR_ACCOUNTING,
    "attribution:mine": CLIENTS,
    # offsite copies and alerts: MSP staff
    "offsite:": STAFF,
    "offsite-api-": STAFF,
    "alerts:": STAFF,
    "alerts-api-": STAFF,
    # Read-only alert and quota views are scoped per user: clients see their own tenant's.
    "alerts-api-list": STAFF_OR_ACCOUNTING | CLIENTS,
    "alerts-api-quota-list": STAFF_OR_ACCOUNTING | CLIENTS,
    "alerts-api-quota-detail": STAFF_OR_ACCOUNTING | CLIENTS,
    "alerts-api-plan-quota": ADMIN_ONLY,  # plans are for admins
}

# Django's own admin site is gated by ``is_staff``, which no portal role sets; the
# matrix checks its index only (its other URLs are generated per model).
DJANGO_ADMIN_NAMESPACE = "admin"


def rule_for(name: str) -> Rule | None:
    """The roles allowed on URL ``name``: the longest key that is a prefix of it, or None.

    Prefix matching is on purpose: "selfservice:team" covers "selfservice:team_invite".
    """
    keys = [key for key in RULES if name.startswith(key)]
    return RULES[max(keys, key=len)] if keys else None


# --- parameters: tenant A's object for each URL parameter -------------------------

Resolver = Callable[[Any], Any]  # world -> value

PARAMS: dict[str, Resolver] = {
    "tenant_id": lambda w: w.tenant_a.pk,
    "token_id": lambda w: w.token_a.pk,
    "user_id": lambda w: w.client_a.pk,
    "invitation_id": lambda w: w.invitation_a.pk,
    "token": lambda w: "an-invitation-link-token-that-does-not-exist-0123",
    "period": lambda w: w.period_label,
    "number": lambda w: w.invoice_a.number,
    "run_id": lambda w: w.metering_run.pk,
    "plan_id": lambda w: w.plan.pk,
    "host_id": lambda w: w.host.pk,
    "name": lambda w: w.host.name,
    "datastore_id": lambda w: w.tenant_a.datastore_id,
    "datastore": lambda w: w.tenant_a.datastore.name,
    "slug": lambda w: w.tenant_a.slug,
}

PARAMS_BY_URL: dict[str, dict[str, Resolver]] = {
    "tenants:run": {"run_id": lambda w: w.onboarding_run_a.pk},
    "api-run": {"run_id": lambda w: w.onboarding_run_a.pk},
    "tenants:run_retry": {"run_id": lambda w: w.onboarding_run_a.pk},
    "offsite:job_run": {"pk": lambda w: w.offsite_job_a.pk},
    "offsite:policy_apply": {"pk": lambda w: w.offsite_policy.pk},
    "offsite-api-job-run": {"pk": lambda w: w.offsite_job_a.pk},
    "offsite-api-policy-update": {"pk": lambda w: w.offsite_policy.pk},
    "offsite-api-policy-apply": {"pk": lambda w: w.offsite_policy.pk},
    "billing:credit_note_pdf": {"number": lambda w: w.credit_note_a.number},
    "selfservice:credit_note_pdf": {"number": lambda w: w.credit_note_a.number},
    # A user's own API key (POST only; the view finds only the signed-in user's keys).
    "accounts:api_key_revoke": {"key_id": lambda w: 1},
}

# URL parameters that name no tenant's object: a client of tenant B using them is not a
# cross-tenant attempt (their values are the same for everyone).
TENANT_NEUTRAL_PARAMS = frozenset(
    {"token", "period", "run_id", "plan_id", "host_id", "name", "datastore_id", "datastore", "key_id"}
)
