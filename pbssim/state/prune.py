"""Prune selection, as pbs-datastore/src/prune.rs keeps and removes snapshots."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pbssim.params import KEEP_NAMES
from pbssim.state.records import Snapshot


def compute_prune(snapshots: Sequence[Snapshot], keep: dict[str, int]) -> dict[int, str]:
    """``compute_prune_info``: backup_time -> "keep" | "remove" | "protected".

    With no keep-* option at all everything is kept (``keep_all``). Time buckets use
    UTC (a real PBS uses the server's local time zone).
    """
    ordered = sorted(snapshots, key=lambda s: s.backup_time, reverse=True)
    if not any(keep.get(name) for name in KEEP_NAMES):
        return {s.backup_time: ("protected" if s.protected else "keep") for s in ordered}
    marks: dict[int, str] = {}

    def stamp(fmt: str) -> Any:
        return lambda snap: datetime.fromtimestamp(snap.backup_time, UTC).strftime(fmt)

    selectors = (
        ("keep-last", lambda snap: str(snap.backup_time)),
        ("keep-hourly", stamp("%Y/%m/%d/%H")),
        ("keep-daily", stamp("%Y/%m/%d")),
        ("keep-weekly", stamp("%G/%V")),
        ("keep-monthly", stamp("%Y/%m")),
        ("keep-yearly", stamp("%Y")),
    )
    for name, select in selectors:
        count = keep.get(name)
        if not count:
            continue
        already = {select(s) for s in ordered if marks.get(s.backup_time) == "keep"}
        included: set[str] = set()
        for snap in ordered:
            if snap.backup_time in marks:
                continue
            if snap.protected:
                marks[snap.backup_time] = "protected"
                continue
            sel = select(snap)
            if sel in already:
                continue
            if sel not in included:
                if len(included) >= count:
                    break
                included.add(sel)
                marks[snap.backup_time] = "keep"
            else:
                marks[snap.backup_time] = "remove"
    return {s.backup_time: "protected" if s.protected else marks.get(s.backup_time, "remove") for s in ordered}
