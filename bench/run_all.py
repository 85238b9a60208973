"""`make bench`: run every benchmark in bench/ and print one table.

Each benchmark script has a main() that prints lines
``figure<TAB>value<TAB>floor_or_peer<TAB>ratio``; other output is passed
through to stderr. Pass --quick to ask every script for its short variant.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def machine_info() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{mem_kb / 2**20:.0f} GiB"
    except OSError:
        mem = "unknown RAM"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{now}; {os.cpu_count()} cores, {mem}, {cpu}; Python {platform.python_version()}"


def run_script(script: Path, quick: bool) -> tuple[list[list[str]], str]:
    command = [sys.executable, str(script), *(["--quick"] if quick else [])]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=BENCH_DIR.parent, check=False)
    rows = [line.split("\t") for line in proc.stdout.splitlines() if line.count("\t") == 3]
    if proc.returncode != 0:
        rows.append([f"{script.stem}: FAILED (exit {proc.returncode})", "-", "-", "-"])
    return rows, proc.stderr + "\n".join(
        line for line in proc.stdout.splitlines() if line.count("\t") != 3
    )


def main() -> int:
    quick = "--quick" in sys.argv
    only = [arg for arg in sys.argv[1:] if not arg.startswith("--")]
    scripts = sorted(
        path for path in BENCH_DIR.glob("*.py")
        if path.name != "run_all.py" and not path.name.startswith("_")
        and (not only or any(name in path.stem for name in only))
    )
    table: list[list[str]] = []
    failed = False
    for script in scripts:
        print(f"running {script.name} ...", file=sys.stderr, flush=True)
        rows, log = run_script(script, quick)
        if log.strip():
            print(log.strip(), file=sys.stderr)
        failed |= any("FAILED" in row[0] for row in rows)
        table.extend(rows)
    header = ["figure", "value", "floor or peer", "ratio"]
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(4)]
    print(f"\nBenchmarks on {machine_info()}\n")
    for row in [header, ["-" * w for w in widths], *table]:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
