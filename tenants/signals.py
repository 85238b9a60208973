"""Signals other apps listen to.

``tenant_run_finished(sender=OnboardingRun, tenant_id=..., run_id=..., kind=...)`` is sent
once a run succeeded, after the transaction that recorded it commits (offsite replication
includes new tenants and drops offboarded ones). Receivers run through ``send_robust``: a
failing receiver is logged and never fails the run; receivers should only enqueue work.
"""

from django.dispatch import Signal

tenant_run_finished = Signal()
