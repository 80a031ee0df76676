"""Browser tests: a live server on a migrated SQLite file and Debian's Chromium driven by Playwright.

Never a downloaded browser: Playwright gets `executable_path`. Without Chromium the tests skip,
except under CI=true, where a missing browser fails the run (.ci/run installs it). Every page of
every test is watched: a Content Security Policy violation the browser reports fails the test.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from core.db import db
from moralcredit import create_app
from tests.conftest import CI, migrate

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


class LiveServer:
    def __init__(self, app, tmp: Path):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("e2e")
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'e2e.db'}"})
    migrate(app)
    with LiveServer(app, tmp) as server:
        yield server
    with app.app_context():
        db.engine.dispose()


CSP_VIOLATIONS: list[str] = []


def _watch(context):
    """Record what the browser refuses under the page's Content Security Policy (it says so on the
    console as an error) and what a page itself reports through `securitypolicyviolation`."""

    def on_console(message) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            CSP_VIOLATIONS.append(f"{message.location.get('url', '')}: {message.text}")

    def on_violation(source, text: str) -> None:
        CSP_VIOLATIONS.append(f"{source['frame'].url}: {text}")

    context.on("console", on_console)
    context.expose_binding("__cspViolation", on_violation)
    context.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => window.__cspViolation("
        "e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile + ':' + e.lineNumber));"
    )
    return context


class WatchedBrowser:
    """The browser, whose every new context (and so every page) is watched for CSP violations."""

    def __init__(self, browser) -> None:
        self._browser = browser

    def new_context(self, **kwargs):
        return _watch(self._browser.new_context(**kwargs))

    def new_page(self, **kwargs):
        context = self.new_context(**kwargs)
        page = context.new_page()
        page.on("close", lambda _: context.close())
        return page

    def __getattr__(self, name: str):
        return getattr(self._browser, name)


@pytest.fixture(autouse=True)
def no_csp_violations():
    CSP_VIOLATIONS.clear()
    yield
    violations, CSP_VIOLATIONS[:] = list(CSP_VIOLATIONS), []
    assert not violations, "Content Security Policy violations:\n" + "\n".join(violations)


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM:
        if CI:
            pytest.fail("Chromium is required under CI=true (apt-get install chromium fonts-noto-cjk)")
        pytest.skip("Chromium not installed; `apt-get install chromium fonts-noto-cjk` to run browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield WatchedBrowser(browser)
        browser.close()


@pytest.fixture
def phone_page(browser):
    """A page the size of a common phone, in Chinese, with the app's own time zone."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        is_mobile=True,
        has_touch=True,
    )
    page = context.new_page()
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
