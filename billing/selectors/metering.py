"""Metering runs: the last collection with its results and gaps, the runs, a run's pending chunks."""

from __future__ import annotations

from dataclasses import dataclass

from billing.models import MeteringGap, MeteringHostResult, MeteringRun


@dataclass
class CollectionStatus:
    run: MeteringRun | None
    results: list[MeteringHostResult]
    gaps: list[MeteringGap]
    gap_total: int

    @property
    def failed_results(self) -> list[MeteringHostResult]:
        return [r for r in self.results if r.status in ("failed", "partial")]


def last_collection(*, gap_limit: int = 50) -> CollectionStatus:
    """The latest metering run with its per-host results and its gaps (four queries)."""
    run = MeteringRun.objects.first()
    if run is None:
        return CollectionStatus(None, [], [], 0)
    results = list(run.host_results.select_related("host").order_by("host__name", "first_tenant_id"))
    gaps_qs = MeteringGap.objects.filter(run=run)
    gaps = list(gaps_qs.select_related("tenant").order_by("tenant__slug")[:gap_limit])
    return CollectionStatus(run, results, gaps, gaps_qs.count())


def metering_run_list(*, limit: int = 30) -> list[MeteringRun]:
    return list(MeteringRun.objects.order_by("-started_at")[:limit])


def metering_run_pending_chunks(*, run: MeteringRun) -> list[tuple[int, list[int]]]:
    """(host id, tenant ids) of each chunk of a metering run still to be measured."""
    return list(
        MeteringHostResult.objects.filter(run=run, status=MeteringHostResult.Status.PENDING).values_list(
            "host_id", "tenant_ids"
        )
    )


def metering_run_exists(*, run_id: int) -> bool:
    return MeteringRun.objects.filter(pk=run_id).exists()
