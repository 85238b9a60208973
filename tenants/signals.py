"""Signals other apps listen to.

``tenant_run_finished(sender=OnboardingRun, tenant_id=..., run_id=..., kind=...)`` is sent
once a run succeeded, after the transaction that recorded it commits (offsite replication
includes new tenants and drops offboarded ones). Receivers run through ``send_robust``: a
failing receiver is logged and never fails the run; receivers should only enqueue work.

``host_drift_checking(sender=PbsHost, host=...)`` is sent by a host's drift check; a
receiver returns a list of findings of its own objects on that host (dicts like
``tenants.drift.finding`` plus ``source``, the app that owns them), read-only.

``host_repair_requested(sender=PbsHost, host=..., actor=...)`` is sent by a host repair;
receivers converge their own objects on the host (idempotently, never deleting).
"""

from django.dispatch import Signal

tenant_run_finished = Signal()
host_drift_checking = Signal()
host_repair_requested = Signal()
