"""The layout tells the architecture (docs/architecture.md), and a tool holds the code to it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Every top-level package of the product, lowest layer first (the import contracts' order).
LAYERS = ["pbsclient", "core", "audit", "accounts", "plans", "tenants", "offsite", "attribution", "billing",
          "alerts", "selfservice", "overview", "portal", "devstack"]
PACKAGES = [*LAYERS, "pbssim"]
MAX_MODULE_LINES = 500


def test_the_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout


def test_the_contracts_name_every_package_in_layer_order() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    layers_block = pyproject.split('type = "layers"', 1)[1].split("]", 1)[0]
    named = re.findall(r'"([a-z_ |]+)"', layers_block)
    flat = [name.strip() for entry in named for name in entry.split("|")]
    assert sorted(flat) == sorted(LAYERS)
    order = [entry.split("|")[0].strip() for entry in named]
    assert order[::-1] == [name for name in LAYERS if name in order]


def test_no_production_module_is_over_500_lines() -> None:
    too_long = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            lines = path.read_text(encoding="utf-8").count("\n")
            if lines > MAX_MODULE_LINES:
                too_long[str(path.relative_to(ROOT))] = lines
    assert too_long == {}, f"split these by subject (docs/architecture.md): {too_long}"


def test_the_readme_layout_table_lists_every_top_level_folder() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## How it is built", 1)[1].split("\n\n", 2)[1]
    listed = set(re.findall(r"`([a-z_.]+)/`", table))
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    folders = {line.split("/", 1)[0] for line in tracked.splitlines() if "/" in line and not line.startswith(".")}
    assert folders <= listed, f"folders missing from the README's layout table: {sorted(folders - listed)}"
    assert listed <= folders, f"the README lists folders that do not exist: {sorted(listed - folders)}"


def test_every_domain_app_has_a_paragraph_in_the_architecture_map() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    for package in PACKAGES:
        assert f"### `{package}`" in text, package
