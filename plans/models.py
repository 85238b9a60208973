"""Plans: what the MSP sells. Tenants are sold a plan; billing prices it; alerts read its quota.

The table keeps its original name (``billing_plan``): the model moved here so that the
tenants layer can name a tenant's plan without importing billing.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

_non_negative = MinValueValidator(Decimal("0"))


class Plan(models.Model):
    """A price list: what is metered and what it costs per month."""

    class Metric(models.TextChoices):
        LOGICAL = "logical", "Logical bytes (all snapshots)"
        LATEST = "latest", "Latest snapshot per group"
        PHYSICAL = "physical", "Physical estimate (apportioned)"
        # The tenant's share of the datastore's distinct chunks, scaled to disk (docs/billing.md);
        # a day without a chunk-exact figure bills the physical estimate, and the invoice says so.
        CHUNK = "chunk", "Chunk-exact physical share"

    name = models.CharField(max_length=64, unique=True)
    currency = models.CharField(
        max_length=3,
        default="EUR",
        validators=[RegexValidator(r"^[A-Z]{3}$", "An ISO 4217 code, e.g. EUR.")],
    )
    metric = models.CharField(max_length=16, choices=Metric.choices, default=Metric.LOGICAL)
    included_gib = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("0"), validators=[_non_negative]
    )
    price_per_gib = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        default=Decimal("0"),
        validators=[_non_negative],
        help_text="Price per GiB-month above the included GiB.",
    )
    base_fee = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"), validators=[_non_negative])
    offsite_price_per_gib = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[_non_negative],
        help_text="Price per GiB-month of the tenant's offsite copy (logical bytes in the offsite namespace). "
        "Empty: offsite copies are not billed as a line of their own.",
    )
    minimum_charge = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("0"), validators=[_non_negative]
    )
    is_active = models.BooleanField(
        default=True, help_text="Retired plans keep billing their tenants but are not offered."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "billing_plan"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
