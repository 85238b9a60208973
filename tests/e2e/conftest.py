"""Fixtures of the browser journeys: the real stack (once per session), headless Chromium,
and a ``Journey`` per test that numbers its screenshots and collects every console error,
page error and failed request of its pages."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stack import Stack
from tests.services import REPO_ROOT, ServiceUnavailable, ensure_binary, is_root

CHROMIUM = "/usr/bin/chromium"
OUTPUT_DIR = REPO_ROOT / "test-output" / "e2e"
VIEWPORT = {"width": 1280, "height": 900}


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """PostgreSQL, Redis, two simulated PBS hosts, gunicorn, Celery worker and beat."""
    base = tmp_path_factory.mktemp("e2e-stack")
    try:
        running = Stack(base).start()
    except ServiceUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (no browser download).

    Module scope, not session: Playwright's sync API keeps an asyncio loop running in this
    thread while it is open, which would break every later test of this worker that calls
    asyncio.run() (the async PBS client's tests)."""
    try:
        executable = ensure_binary(CHROMIUM, package="chromium")
    except ServiceUnavailable as exc:
        pytest.fail(f"{exc}\n(the browser journeys drive Debian's Chromium through Playwright)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"] if is_root() else []
        )
        yield launched
        launched.close()


@dataclass
class Allowed:
    """A failure the test causes on purpose: it is not reported, and must have happened."""

    pattern: str
    status: int | None
    seen: int = 0


@dataclass
class Journey:
    """One journey: its pages, its screenshots (``test-output/e2e/<name>/NN-step.png``) and
    everything that went wrong in the browser on the way."""

    name: str
    browser: Any
    base_url: str
    dir: Path = field(init=False)
    problems: list[str] = field(default_factory=list)
    allowed: list[Allowed] = field(default_factory=list)
    contexts: list[Any] = field(default_factory=list)
    shots: int = 0
    checked: bool = False

    def __post_init__(self) -> None:
        self.dir = OUTPUT_DIR / self.name
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)

    def page(self, *, clipboard: bool = False) -> Any:
        """A page in a new browser context (its own cookies: one per person)."""
        context = self.browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        if clipboard:
            context.grant_permissions(["clipboard-read", "clipboard-write"], origin=self.base_url)
        context.set_default_timeout(15_000)
        self.contexts.append(context)
        page = context.new_page()
        page.on("console", lambda msg: self._console(msg))
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("response", lambda response: self._response(response))
        page.on("requestfailed", lambda request: self._request_failed(request))
        return page

    def allow(self, pattern: str, *, status: int | None = None) -> Allowed:
        """Expect a failure (a response with ``status``, or a failed request when None) whose
        URL matches ``pattern``; the test asserts ``.seen`` afterwards."""
        entry = Allowed(pattern, status)
        self.allowed.append(entry)
        return entry

    def _excused(self, url: str, status: int | None) -> bool:
        for entry in self.allowed:
            if entry.status == status and re.search(entry.pattern, url):
                entry.seen += 1
                return True
        return False

    def _console(self, msg: Any) -> None:
        if msg.type == "error":
            self.problems.append(f"console error: {msg.text} ({msg.location.get('url', '')})")

    def _response(self, response: Any) -> None:
        if response.status >= 400 and not self._excused(response.url, response.status):
            self.problems.append(f"HTTP {response.status} {response.request.method} {response.url}")

    def _request_failed(self, request: Any) -> None:
        # A static file (the favicon) still loading when the page navigates on is cancelled by
        # the browser itself (net::ERR_ABORTED): not a failure of the portal.
        if request.failure == "net::ERR_ABORTED" and "/static/" in request.url:
            return
        if not self._excused(request.url, None):
            self.problems.append(f"request failed: {request.method} {request.url} ({request.failure})")

    def shot(self, page: Any, name: str) -> Path:
        """Save a full-page screenshot as the journey's next numbered step."""
        self.shots += 1
        path = self.dir / f"{self.shots:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    def assert_clean(self) -> None:
        self.checked = True
        assert not self.problems, "the browser saw problems:\n" + "\n".join(self.problems)

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[CALL_PASSED] = report.passed
    return report


CALL_PASSED = pytest.StashKey[bool]()


@pytest.fixture
def journey(
    request: pytest.FixtureRequest, browser: Any, stack: Stack
) -> Iterator[Callable[[str], Journey]]:
    """``journey(name)``: a Journey; a test that passed without checking its journeys'
    browser problems fails on them here."""
    opened: list[Journey] = []

    def make(name: str) -> Journey:
        made = Journey(name, browser, stack.url)
        opened.append(made)
        return made

    try:
        yield make
    finally:
        for made in opened:
            made.close()
    dead = stack.alive()
    assert not dead, f"stack processes exited during the journey: {dead} (logs in {stack.dir})"
    if request.node.stash.get(CALL_PASSED, False):
        for made in opened:
            if not made.checked:
                made.assert_clean()
