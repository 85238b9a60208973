"""The operator's manual agrees with the code.

- Every environment variable ``portal/settings.py`` reads is in docs/configuration.md.
- No document, example or deployment file names a variable the portal does not read.
- Every ``manage.py`` command, subcommand and ``--flag`` the documents show exists.
- Every page under docs/ is linked from the README's documentation index.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
SETTINGS = ROOT / "portal" / "settings.py"
CONFIGURATION = ROOT / "docs" / "configuration.md"
# Files an operator copies from, besides docs/*.md and the README.
DEPLOY_FILES = [
    ROOT / "docker-compose.yml",
    ROOT / "Dockerfile",
    *sorted(p for p in (ROOT / "deploy").rglob("*") if p.is_file()),
]
# Read by the test suite, not by the portal (docs/configuration.md says so), and Django's own.
NOT_PORTAL_SETTINGS = {"PORTAL_TEST_DB", "DJANGO_SETTINGS_MODULE"}
VARIABLE = re.compile(r"\b((?:DJANGO|PORTAL|CELERY|DATABASE|REDIS|CACHE)_[A-Z0-9_]*[A-Z0-9])\b")
ENV_READ = re.compile(r"\benv_(?:str|bool|int|list)\(\s*\"([A-Z][A-Z0-9_]*)\"")


def settings_env_names() -> set[str]:
    return set(ENV_READ.findall(SETTINGS.read_text(encoding="utf-8")))


def settings_attribute_names() -> set[str]:
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)\s*[:=]", SETTINGS.read_text(encoding="utf-8"), re.M))


def compose_interpolations() -> set[str]:
    """``${NAME}`` values docker-compose takes from the operator's shell or ``.env``."""
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / "docker-compose.yml").read_text(encoding="utf-8")))


def test_settings_read_variables_at_all() -> None:
    names = settings_env_names()
    assert {"DJANGO_SECRET_KEY", "PORTAL_ENCRYPTION_KEYS", "DATABASE_URL"} <= names, names


def test_every_variable_the_settings_read_is_in_configuration_md() -> None:
    text = CONFIGURATION.read_text(encoding="utf-8")
    missing = sorted(name for name in settings_env_names() if f"`{name}`" not in text)
    assert not missing, f"add these to docs/configuration.md (as `NAME` in a table): {missing}"


@pytest.mark.parametrize("path", [*DOCS, ROOT / "README.md", *DEPLOY_FILES], ids=lambda p: str(p.relative_to(ROOT)))
def test_no_file_names_a_variable_the_portal_does_not_read(path: Path) -> None:
    known = settings_env_names() | settings_attribute_names() | compose_interpolations() | NOT_PORTAL_SETTINGS
    named = set(VARIABLE.findall(path.read_text(encoding="utf-8", errors="replace")))
    # <NAME>_FILE is the file form of any string or list variable (portal/env.py).
    unknown = sorted(n for n in named if n not in known and n.removesuffix("_FILE") not in known)
    assert not unknown, f"{path.name} names variables portal/settings.py does not read: {unknown}"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    unlinked = [p.name for p in DOCS if f"(docs/{p.name})" not in readme]
    assert not unlinked, f"link these from the README's documentation index: {unlinked}"


def test_readme_links_to_docs_that_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    dangling = [link for link in re.findall(r"\]\((docs/[^)#]+)", readme) if not (ROOT / link).is_file()]
    assert not dangling, dangling


# --- manage.py invocations ---------------------------------------------------------------
def _code(text: str) -> Iterator[str]:
    """The code a document shows: fenced blocks (without shell comments) and `inline` spans."""
    text = re.sub(r"\\\n\s*", " ", text)  # join continued lines
    for block in re.findall(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```", text, re.S | re.M):
        yield re.sub(r"(^|\s)#.*", "", block)
    yield from re.findall(r"`([^`\n]+)`", re.sub(r"^[ \t]*```.*?^[ \t]*```", "", text, flags=re.S | re.M))


def manage_invocations() -> Iterator[tuple[str, str]]:
    """(file name, invocation) for every ``manage.py ...`` / ``pbs-portal-manage ...`` shown."""
    for path in [*DOCS, ROOT / "README.md"]:
        for code in _code(path.read_text(encoding="utf-8")):
            for match in re.finditer(r"(?:manage\.py|pbs-portal-manage) ([a-z_][a-z_-]*)([^\n]*)", code):
                yield path.name, match.group(1) + match.group(2)


def _parser_tree(parser: argparse.ArgumentParser) -> tuple[set[str], set[str]]:
    """(every option string, every subcommand name) of a parser and its subparsers."""
    options: set[str] = set()
    subcommands: set[str] = set()
    for action in parser._actions:
        options.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                subcommands.add(name)
                sub_options, sub_names = _parser_tree(sub)
                options |= sub_options
                subcommands |= sub_names
    return options, subcommands


@pytest.mark.django_db
def test_every_manage_py_command_and_flag_shown_in_the_docs_exists() -> None:
    from django.core.management import get_commands, load_command_class

    commands = get_commands()
    invocations = list(manage_invocations())
    assert len(invocations) > 20, "the pattern no longer finds the documented commands"
    problems = []
    for doc, invocation in invocations:
        words = invocation.split()
        name = words[0]
        if name not in commands:
            problems.append(f"{doc}: no command {name!r} ({invocation})")
            continue
        parser = load_command_class(commands[name], name).create_parser("manage.py", name)
        options, subcommands = _parser_tree(parser)
        first = words[1] if len(words) > 1 else ""
        if subcommands and first and not first.startswith(("-", "[", "<", ".")) and first not in subcommands:
            problems.append(f"{doc}: {name} has no subcommand {words[1]!r} ({invocation})")
        for word in words[1:]:
            flag = word.strip("[]|,.;:()").split("=")[0]
            if flag.startswith("--") and len(flag) > 2 and flag not in options:
                problems.append(f"{doc}: {name} has no option {flag} ({invocation})")
    assert not problems, "\n".join(problems)


def test_billing_md_lists_the_csv_columns_in_export_order() -> None:
    from billing.selectors import EXPORT_COLUMNS

    text = (ROOT / "docs" / "billing.md").read_text(encoding="utf-8")
    paragraph = text.split("**The CSV export.**", 1)[1].split("\n\n", 1)[0]
    named = [name for name in re.findall(r"`([a-z_]+)`", paragraph) if name in EXPORT_COLUMNS]
    assert named == list(EXPORT_COLUMNS)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_relative_link_in_the_manual_resolves() -> None:
    pages = [*DOCS, ROOT / "README.md"]
    anchors = {}
    for page in pages:
        prose = re.sub(r"^[ \t]*```.*?^[ \t]*```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
        anchors[page.resolve()] = {_slug(h) for h in re.findall(r"^#+\s+(.*)$", prose, re.M)}
    broken = []
    for page in pages:
        for link in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if link.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = link.partition("#")
            target = (page.parent / path).resolve() if path else page.resolve()
            if not target.exists():
                broken.append(f"{page.name}: {link} (no such file)")
            elif anchor and target.suffix == ".md" and anchor not in anchors.get(target, set()):
                broken.append(f"{page.name}: {link} (no such heading)")
    assert not broken, "\n".join(broken)
