"""Shared set-up for the billing benchmarks: a throwaway SQLite portal and fast seeding.

Seeding goes around the ORM on purpose: it is set-up, not what is measured, and Django's
bulk_create of 100,000 wide rows would take longer than the benchmark itself.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def setup_django(workdir: Path) -> None:
    """Point the portal at a fresh SQLite file in ``workdir`` and migrate it."""
    from cryptography.fernet import Fernet

    sys.path.insert(0, str(ROOT))
    # Keys are made once per run and inherited, so a child process can open what its parent
    # seeded (BENCH_* names: never the portal's own settings of whoever runs the bench).
    os.environ.setdefault("BENCH_SECRET_KEY", Fernet.generate_key().decode() * 2)
    os.environ.setdefault("BENCH_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    os.environ.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        DJANGO_DEBUG="0",  # no query log kept in memory
        DJANGO_SECRET_KEY=os.environ["BENCH_SECRET_KEY"],
        PORTAL_ENCRYPTION_KEYS=os.environ["BENCH_ENCRYPTION_KEYS"],
        DATABASE_URL=f"sqlite:///{workdir / 'bench.sqlite3'}",
        PORTAL_VAR_DIR=str(workdir),
        PORTAL_CACHE_REDIS="0",
        PORTAL_LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def fast_insert(template: Any, count: int, vary: Callable[[int], dict[str, Any]], *, batch: int = 20000) -> None:
    """Insert ``count`` copies of the unsaved model instance ``template``; ``vary(i)`` gives
    the attribute values (by attname) that differ for row ``i``."""
    from django.db import connection, transaction

    model = type(template)
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    # Fill auto_now/auto_now_add values the ORM would set.
    for f in fields:
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            f.pre_save(template, add=True)
    base = [f.get_db_prep_save(getattr(template, f.attname), connection) for f in fields]
    index = {f.attname: i for i, f in enumerate(fields)}
    by_attname = {f.attname: f for f in fields}
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    sql = f"INSERT INTO {model._meta.db_table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"  # noqa: S608 (names from the model)

    def rows(start: int, stop: int) -> Iterable[list[Any]]:
        for i in range(start, stop):
            row = list(base)
            for attname, value in vary(i).items():
                row[index[attname]] = by_attname[attname].get_db_prep_save(value, connection)
            yield row

    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, count, batch):
            cursor.executemany(sql, list(rows(start, min(count, start + batch))))


def report(figure: str, value: float, *, floor: float | None = None, target: float | None = None,
           fmt: str = "{:.2f}") -> None:  # fmt: skip
    """Print one row of the `make bench` table: figure, value, floor, target, verdict
    ("met" when the value is at most the target, "MISSED" when above, "-" without one)."""
    verdict = "-" if target is None else ("met" if value <= target else "MISSED")
    cells = [figure, fmt.format(value), "-" if floor is None else fmt.format(floor)]
    cells += ["-" if target is None else fmt.format(target), verdict]
    print("\t".join(cells), flush=True)


def rss_kib(field: str = "VmRSS") -> int:
    """This process's resident set (``VmRSS``) or its peak (``VmHWM``), in KiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> None:
    """Start the peak (``VmHWM``) afresh from the current resident set (Linux 4.0+)."""
    Path("/proc/self/clear_refs").write_text("5")
