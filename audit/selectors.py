from django.db.models import QuerySet

from audit.models import AuditEvent


def audit_events_for_tenant(*, tenant_id: int, limit: int = 100) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(tenant_id=tenant_id).select_related("actor")[:limit]
