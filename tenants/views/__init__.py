"""Staff pages for tenants and PBS hosts (HTMX). Thin: parse, check access, call one service
or selector, render. Partials live inside their page ({% partialdef %}) and are rendered as
"tenants/<page>.html#<partial>" for non-boosted HTMX requests."""

from __future__ import annotations

from tenants.views.common import (
    PAGE_SIZE,
)
from tenants.views.hosts import (
    datastore_update,
    host_check,
    host_detail,
    host_drift,
    host_fingerprint,
    host_list,
    host_new,
    host_repair,
)
from tenants.views.tenant_page import (
    restore_token_new,
    tenant_detail,
    tenant_drift,
    tenant_offboard,
    tenant_repair,
    tenant_resume,
    tenant_retention,
    tenant_suspend,
    token_reveal,
    token_revoke,
    token_rotate,
)
from tenants.views.tenants import (
    run_detail,
    run_retry,
    tenant_new,
    tenant_onboard,
    tenant_validate,
)

__all__ = [
    "PAGE_SIZE",
    "datastore_update",
    "host_check",
    "host_detail",
    "host_drift",
    "host_fingerprint",
    "host_list",
    "host_new",
    "host_repair",
    "restore_token_new",
    "run_detail",
    "run_retry",
    "tenant_detail",
    "tenant_drift",
    "tenant_new",
    "tenant_offboard",
    "tenant_onboard",
    "tenant_repair",
    "tenant_resume",
    "tenant_retention",
    "tenant_suspend",
    "tenant_validate",
    "token_reveal",
    "token_revoke",
    "token_rotate",
]
