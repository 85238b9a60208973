"""Plans, usage samples and invoices. Money is Decimal; 1 GiB = 2**30 bytes."""

from __future__ import annotations

from decimal import Decimal

from django.db import models


class Plan(models.Model):
    """A price list: what is metered and what it costs per month."""

    class Metric(models.TextChoices):
        LOGICAL = "logical", "Logical bytes (all snapshots)"
        LATEST = "latest", "Latest snapshot per group"
        PHYSICAL = "physical", "Physical estimate (apportioned)"

    name = models.CharField(max_length=64, unique=True)
    currency = models.CharField(max_length=3, default="EUR")
    metric = models.CharField(max_length=16, choices=Metric.choices, default=Metric.LOGICAL)
    included_gib = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    price_per_gib = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    base_fee = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    minimum_charge = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
