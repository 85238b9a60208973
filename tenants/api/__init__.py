"""REST API v1 for PBS hosts, tenants, onboarding runs, lifecycle actions and the audit log.

One view per operation (a class whose methods are the operation's HTTP verbs), nested
input/output serializers, no logic in serializers: views parse, check the role, call one
service or selector, serialize. Errors: field problems are 400 ``{"errors": {field: [..]}}``;
a PBS failure is 502 ``{"detail", "hint"}``; a secret is only ever in the body of the POST
that reveals it."""

from __future__ import annotations

from tenants.api.audit import (
    AuditEventListApi,
    AuditEventOutput,
)
from tenants.api.common import (
    ERRORS,
    DatastoreOutput,
    ErrorOutput,
    HostDetailOutput,
    HostOutput,
    RetentionFields,
    RunOutput,
    StaffWriteMixin,
    StepOutput,
    TenantDetailOutput,
    TenantOutput,
    TokenOutput,
)
from tenants.api.hosts import (
    DatastoreUpdateApi,
    HostCheckApi,
    HostDetailApi,
    HostDriftApi,
    HostListApi,
)
from tenants.api.lifecycle import (
    RestoreTokenCreateApi,
    TenantDriftApi,
    TenantOffboardApi,
    TenantRepairApi,
    TenantResumeApi,
    TenantRetentionApi,
    TenantRotateApi,
    TenantSuspendApi,
    TokenRevealApi,
    TokenRevokeApi,
)
from tenants.api.tenants import (
    OnboardingRunDetailApi,
    TenantDetailApi,
    TenantListApi,
    TenantOnboardApi,
    TenantOnboardBulkApi,
    TenantRunListApi,
    TenantValidateApi,
)

__all__ = [
    "ERRORS",
    "AuditEventListApi",
    "AuditEventOutput",
    "DatastoreOutput",
    "DatastoreUpdateApi",
    "ErrorOutput",
    "HostCheckApi",
    "HostDetailApi",
    "HostDetailOutput",
    "HostDriftApi",
    "HostListApi",
    "HostOutput",
    "OnboardingRunDetailApi",
    "RestoreTokenCreateApi",
    "RetentionFields",
    "RunOutput",
    "StaffWriteMixin",
    "StepOutput",
    "TenantDetailApi",
    "TenantDetailOutput",
    "TenantDriftApi",
    "TenantListApi",
    "TenantOffboardApi",
    "TenantOnboardApi",
    "TenantOnboardBulkApi",
    "TenantOutput",
    "TenantRepairApi",
    "TenantResumeApi",
    "TenantRetentionApi",
    "TenantRotateApi",
    "TenantRunListApi",
    "TenantSuspendApi",
    "TenantValidateApi",
    "TokenOutput",
    "TokenRevealApi",
    "TokenRevokeApi",
]
