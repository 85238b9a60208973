"""Staff pages for offsite replication: one overview with remotes, policies, jobs and stale
copies; POST actions to run a job now and to refresh status (both queued to Celery)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.permissions import staff_required
from core.htmx import wants_partial
from offsite import selectors
from offsite.models import OffsitePolicy, SyncJobRecord
from offsite.services import requests


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None



@staff_required
def overview(request: HttpRequest) -> HttpResponse:
    context = selectors.overview()
    if wants_partial(request):
        return render(request, "offsite/overview.html#jobs", context)
    return render(request, "offsite/overview.html", context)


@staff_required
@require_POST
def job_run(request: HttpRequest, pk: int) -> HttpResponse:
    record = get_object_or_404(SyncJobRecord.objects.select_related("host"), pk=pk)
    requests.sync_job_run_request(record=record, actor=request.user)
    messages.info(request, f"Sync job {record.job_id} on {record.host.name} is queued to run.")
    return redirect("offsite:overview")


@staff_required
@require_POST
def policy_apply(request: HttpRequest) -> HttpResponse:
    """The policy comes in the form (``policy``), like every other field of a write."""
    policy = get_object_or_404(OffsitePolicy, pk=_int_or_none(request.POST.get("policy")))
    requests.policy_apply_request(policy=policy, actor=request.user)
    messages.info(request, f"Policy {policy.pk} is queued to be applied on PBS.")
    return redirect("offsite:overview")


@staff_required
@require_POST
def status_refresh(request: HttpRequest) -> HttpResponse:
    requests.status_refresh_request(actor=request.user)
    messages.info(request, "Offsite status refresh is queued.")
    return redirect("offsite:overview")
