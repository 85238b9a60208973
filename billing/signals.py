"""Signals other apps listen to.

``usage_sampled(sender=UsageSample, tenant_id=..., sample_id=...)`` is sent once per stored
sample, after the transaction that stored it commits (quota checks listen to it). Receivers
run through ``send_robust``: one failing receiver is logged and never stops metering.
"""

from django.dispatch import Signal

usage_sampled = Signal()
