"""`make bench`'s table: five-field and old four-field lines, and a failing or hanging
script shown as FAILED while the run goes on."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run_all():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_run_all", ROOT / "bench" / "run_all.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _script(directory: Path, name: str, body: str) -> None:
    (directory / name).write_text(textwrap.dedent(body))


def test_lines_of_five_and_of_four_fields_make_one_table() -> None:
    run_all = _run_all()
    assert run_all.parse_row("close_s\t2.10\t1.04\t3.00\tmet") == ["close_s", "2.10", "1.04", "3.00", "met"]
    assert run_all.parse_row("old_s\t5.0\t1.0\t5.0") == ["old_s", "5.0", "1.0", "-", "-"]
    assert run_all.parse_row("p50_ms\t12.0\t\t") == ["p50_ms", "12.0", "-", "-", "-"]
    assert run_all.parse_row("seeded 10 tenants in 1.0 s") is None


def test_a_failing_and_a_hanging_script_show_failed_and_the_others_still_run(tmp_path, monkeypatch, capsys) -> None:
    run_all = _run_all()
    _script(tmp_path, "a_fails.py", "import sys\nprint('half\\t1\\t-\\t-\\t-')\nsys.exit(3)\n")
    _script(tmp_path, "b_hangs.py", "import time\ntime.sleep(30)\n")
    _script(tmp_path, "c_works.py", "print('figure_s\\t2.00\\t1.00\\t3.00\\tmet')\nprint('old\\t4\\t2\\t2.0')\n")
    _script(tmp_path, "_helper.py", "raise SystemExit('not a benchmark')\n")
    monkeypatch.setattr(run_all, "BENCH_DIR", tmp_path)

    status = run_all.main(["--timeout", "3", "--markdown"])

    out = capsys.readouterr().out
    assert status == 1
    table = out.split("Benchmarks on", 1)[1]
    assert "a_fails: FAILED (exit 3)" in table
    assert "b_hangs: FAILED (timed out after 3 s)" in table
    assert ["figure_s", "2.00", "1.00", "3.00", "met"] in [line.split() for line in table.splitlines()]
    assert "| figure_s | 2.00 | 1.00 | 3.00 | met |" in table
    assert "| old | 4 | 2 | - | - |" in table
    assert "half" in table
    assert "helper" not in table


@pytest.mark.skipif(sys.platform != "linux", reason="machine line reads /proc")
def test_the_machine_line_names_cores_and_load() -> None:
    line = _run_all().machine_info()
    assert "cores" in line
    assert "load" in line
