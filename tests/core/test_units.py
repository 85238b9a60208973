"""Sizes are shown in binary units everywhere (1 KiB = 1024 B), never Django's "GB"."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.template import Context, Template

from core.templatetags.units import binary_bytes

NBSP = "\xa0"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0 B"),
        (1, "1 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (2**20, "1.0 MiB"),
        (3 * 2**30 // 2, "1.5 GiB"),
        (2**40, "1.0 TiB"),
        (5 * 2**50, "5.0 PiB"),
        (2**60, "1024.0 PiB"),  # nothing above PiB: stays in the largest unit
        (2**30 - 1, "1.0 GiB"),  # rounds up to 1024 MiB -> promoted, never "1024.0 MiB"
        (-(2**31), "-2.0 GiB"),  # a shrinking tenant keeps its sign
        ("4096", "4.0 KiB"),  # a string of digits (a raw CSV cell) is a number too
    ],
)
def test_it_formats_bytes_in_binary_units(value, expected):
    assert binary_bytes(value) == expected.replace(" ", NBSP)


def test_it_takes_the_number_of_decimals_as_argument():
    assert binary_bytes(3 * 2**30 // 2, 2) == f"1.50{NBSP}GiB"
    assert binary_bytes(10 * 2**30 + 2**29, 0) == f"11{NBSP}GiB"  # half-up, not banker's rounding


@pytest.mark.parametrize("value", [None, ""])
def test_no_figure_gives_an_empty_cell(value):
    assert binary_bytes(value) == ""


def test_it_shows_a_non_number_unchanged_instead_of_failing_the_page():
    assert binary_bytes("n/a") == "n/a"
    assert binary_bytes(1024, "x") == f"1.0{NBSP}KiB"


def test_templates_load_it_as_units():
    html = Template("{% load units %}{{ v|binary_bytes }} / {{ v|binary_bytes:2 }}").render(Context({"v": 5 * 2**40}))
    assert html == f"5.0{NBSP}TiB / 5.00{NBSP}TiB"


def test_no_template_uses_decimal_looking_filesizeformat():
    """Django's filesizeformat divides by 1024 but says "GB"; every page uses binary_bytes."""
    root = Path(__file__).resolve().parents[2] / "templates"
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.html") if "filesizeformat" in p.read_text()]
    assert offenders == []
