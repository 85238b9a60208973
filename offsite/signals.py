"""Signals other apps listen to.

``offsite_staleness_refreshed(sender=TenantOffsite, memberships=[...])`` is sent after a status
refresh re-computed the staleness of these memberships (``TenantOffsite`` rows with tenant and
policy loaded). The alerts app owns the ``offsite_stale`` alert and opens or resolves it from
them; offsite never writes alerts itself. Sent through ``core.signals.send_logged``: a failing
receiver is logged and never fails the refresh.
"""

from django.dispatch import Signal

offsite_staleness_refreshed = Signal()
