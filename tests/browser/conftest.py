"""Fixtures for the browser tests: the real web app on a loopback port, driven by
Debian's Chromium through Playwright.

The app is the one :func:`bot.web.create_app` builds, on the small fixture bank
in ``tests/browser/faq`` (answers, related questions, a clarify pair, a link the
widget must drop, bank text that looks like markup), with a real SQLite query
log in a temporary folder, served by werkzeug in a background thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright
from werkzeug.serving import BaseWSGIServer, make_server

from bot.web import create_app

REPO = Path(__file__).resolve().parents[2]
FAQ_DIR = Path(__file__).resolve().parent / "faq"
AXE_JS = REPO / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DESKTOP = {"width": 1280, "height": 860}


@dataclass
class LiveServer:
    """A running app: its base URL and the Flask app (for its query log)."""

    url: str
    app: Flask
    _server: BaseWSGIServer = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
        self.app.extensions["xiaocheng"].close()


def serve(tmp: Path, index_path: Path, *, port: int = 0, **overrides: Any) -> LiveServer:
    """Create the app with the fixture bank under ``tmp`` and serve it on ``port``
    (0: a free one)."""
    config = {
        "TESTING": True,
        "FAQ_DIR": str(FAQ_DIR),
        "INDEX_PATH": str(index_path),
        "DATABASE_URL": f"sqlite:///{tmp / 'querylog.db'}",
        "RATELIMIT_ENABLED": False,
        **overrides,
    }
    app = create_app(config, instance_path=tmp)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    return LiveServer(f"http://127.0.0.1:{server.server_port}", app, server, thread)


@pytest.fixture(scope="session")
def index_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One index artifact for every app of the session: the first app builds it."""
    return tmp_path_factory.mktemp("index") / "index.pkl"


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory, index_path: Path) -> Iterator[LiveServer]:
    server = serve(tmp_path_factory.mktemp("live"), index_path)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (or -m 'not browser')")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


class Console:
    """The page's console errors and uncaught exceptions (CSP violations show up here).

    A test that provokes an error on purpose lists a fragment of its text in
    ``expected``; any other error fails the test.
    """

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.expected: list[str] = []

    def on_message(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def on_error(self, error: Exception) -> None:
        self.errors.append(f"uncaught: {error}")

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(x in e for x in self.expected)]


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def new_page(browser: Browser, console: Console) -> Iterator[Callable[..., Page]]:
    """Make pages, each in a fresh context (its own sessionStorage and localStorage).

    Keyword arguments go to ``browser.new_context``; the viewport defaults to a
    desktop. The test fails if any page logged an error it did not expect.
    """
    contexts: list[BrowserContext] = []

    def make(**context_options: Any) -> Page:
        context = browser.new_context(locale="zh-CN", **{"viewport": DESKTOP, **context_options})
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.on("console", console.on_message)
        page.on("pageerror", console.on_error)
        return page

    yield make
    for context in contexts:
        context.close()
    assert console.unexpected() == []


@pytest.fixture
def page(new_page: Callable[..., Page]) -> Page:
    """A desktop-sized page."""
    return new_page()


@pytest.fixture
def serve_app(tmp_path: Path, index_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start an app of this test's own (e.g. with rate limits on, or on the port of
    one stopped before: the service coming back); stopped afterwards."""
    servers: list[LiveServer] = []

    def start(*, port: int = 0, **overrides: Any) -> LiveServer:
        server = serve(tmp_path / f"app{len(servers)}", index_path, port=port, **overrides)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def axe_source() -> Path:
    if not AXE_JS.exists():
        pytest.fail(f"{AXE_JS.relative_to(REPO)} is missing: run npm ci in the repository root")
    return AXE_JS
