"""Billing building blocks: which tenants are metered, which sample field a plan bills, errors."""

from __future__ import annotations

import logging

from tenants.models import Tenant

# Named for the package, not this module: docs/operations.md shows the lines under
# "billing.services" and operators filter on that name; it did not change with the split.
logger = logging.getLogger("billing.services")


# Tenants whose data is on PBS and billed: measured every day.
METERED_STATUSES = (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED, Tenant.Status.OFFBOARDING)




class BillingError(Exception):
    """A billing request that cannot be carried out; the message says why, for people."""
