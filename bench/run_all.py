"""`make bench`: run every benchmark in bench/ and print one table.

Each benchmark script prints lines ``figure<TAB>value<TAB>floor<TAB>target<TAB>verdict``
(verdict ``met``, ``MISSED`` or ``-``); older scripts' ``figure<TAB>value<TAB>floor<TAB>ratio``
lines are still read (shown with target and verdict ``-``). Every other output line is
passed through to stderr. A script that fails or times out is listed as FAILED and the run
goes on with the next one.

    bench/run_all.py [--quick] [--markdown] [--timeout SECONDS] [name ...]

--quick asks every script for its short variant; names pick the scripts whose file name
contains one of them; --markdown prints the table as Markdown too (for docs/performance.md).
The exit status is 1 when a script failed (a missed target is reported, not an error).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
HEADER = ["figure", "value", "floor", "target", "verdict"]
DEFAULT_TIMEOUT_S = 3600


def machine_info() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{mem_kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        mem = "unknown RAM"
    try:
        load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "unknown"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{now}; {os.cpu_count()} cores, {mem}, {cpu}; Python {platform.python_version()}; load {load}"


def parse_row(line: str) -> list[str] | None:
    """A table row from one output line, or None when the line is not one."""
    cells = [cell.strip() for cell in line.split("\t")]
    if len(cells) == 5:
        figure, value, floor, target, verdict = cells
    elif len(cells) == 4:  # the old format: figure, value, floor or peer, ratio
        figure, value, floor, target, verdict = *cells[:3], "-", "-"
    else:
        return None
    if not figure:
        return None
    return [figure, value or "-", floor or "-", target or "-", verdict or "-"]


def run_script(script: Path, *, quick: bool, timeout: float) -> tuple[list[list[str]], str]:
    """Run one benchmark; its rows, and everything else it printed. Never raises."""
    command = [sys.executable, str(script), *(["--quick"] if quick else [])]
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, cwd=BENCH_DIR.parent, check=False, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        rows, log = _split(out)
        rows.append([f"{script.stem}: FAILED (timed out after {timeout:.0f} s)", "-", "-", "-", "FAILED"])
        return rows, err + log
    except OSError as exc:
        return [[f"{script.stem}: FAILED ({exc})", "-", "-", "-", "FAILED"]], ""
    rows, log = _split(proc.stdout)
    if proc.returncode != 0:
        rows.append([f"{script.stem}: FAILED (exit {proc.returncode})", "-", "-", "-", "FAILED"])
    return rows, proc.stderr + log


def _split(stdout: str) -> tuple[list[list[str]], str]:
    rows, other = [], []
    for line in stdout.splitlines():
        row = parse_row(line)
        if row is None:
            other.append(line)
        else:
            rows.append(row)
    return rows, "\n".join(other)


def format_table(table: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [HEADER, *table]) for i in range(len(HEADER))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in [HEADER, ["-" * w for w in widths], *table]
    )


def format_markdown(table: list[list[str]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    markdown = "--markdown" in argv
    timeout = float(DEFAULT_TIMEOUT_S)
    names: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--timeout":
            timeout = float(next(args, DEFAULT_TIMEOUT_S))
        elif not arg.startswith("--"):
            names.append(arg)
    scripts = sorted(
        path for path in BENCH_DIR.glob("*.py")
        if path.name != "run_all.py" and not path.name.startswith("_")
        and (not names or any(name in path.stem for name in names))
    )  # fmt: skip
    table: list[list[str]] = []
    for script in scripts:
        print(f"running {script.name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        rows, log = run_script(script, quick=quick, timeout=timeout)
        if log.strip():
            print(log.strip(), file=sys.stderr)
        print(f"{script.name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        table.extend(rows)
    print(f"\nBenchmarks on {machine_info()}\n")
    print(format_table(table))
    if markdown:
        print()
        print(format_markdown(table))
    return 1 if any(row[4] == "FAILED" for row in table) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
