from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One staff/client action or PBS mutation: who, what, when, result. Never a secret."""

    class Result(models.TextChoices):
        OK = "ok"
        FAILED = "failed"
        DENIED = "denied"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept as text so the trail survives user deletion; "system" for Celery work.
    actor_label = models.CharField(max_length=150)
    action = models.CharField(max_length=64, db_index=True)
    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    target = models.CharField(max_length=255, blank=True, default="")
    result = models.CharField(max_length=8, choices=Result.choices, default=Result.OK)
    detail = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.result}"
