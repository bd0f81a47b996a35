"""Headless Chromium (the system's, TESTING.md §10.2) driving the real task pane.

Every page gets the route guard: requests to anything but the pane server are aborted;
the office.js URL is answered with tests/site/office-stub.js and the MSAL.js bundle with
tests/site/msal-stub.js (sign-in is stubbed at the MSAL boundary only).
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright
from tests.conftest import ROOT, addr
from tests.fixtures.pane_server import STUB_PATH, PaneServer, pane_servers  # noqa: F401

from sendready.config import Settings

CDN_OFFICE_JS = Settings().office_js_url
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SITE = ROOT / "tests" / "site"
SCREENSHOTS = ROOT / "docs" / "screenshots"


def chromium_flags(host: str) -> list[str]:
    """Headless Chromium that reaches only ``host``: every other name resolves to nothing."""
    return [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {host}",
    ]


@contextlib.contextmanager
def chromium(host: str) -> Iterator[Any]:
    """A launched browser for pages served on ``host``, closed when the block ends."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/install-deps.sh installs chromium")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_flags(host)
        )
        yield browser
        browser.close()


# Module scope, not session: Playwright's sync API keeps an event loop running in the main
# thread while it is open, and every later test that calls asyncio.run() would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(addr(80)) as launched:
        yield launched


class Pane:
    """One browser page on the pane server, with the stubs and the route guard."""

    def __init__(self, page: Any, server: PaneServer) -> None:
        self.page = page
        self.server = server
        self.api_requests: list[dict[str, Any]] = []
        self.held: list[Any] = []
        self.api_fault: Callable[[Any], bool] | None = None
        self.aborted: list[str] = []

    def route(self, route: Any) -> None:
        url: str = route.request.url
        base = self.server.base
        if url == CDN_OFFICE_JS:
            # A server left at the production setting: the request never leaves Chromium.
            route.fulfill(path=str(SITE / "office-stub.js"), content_type="text/javascript")
            return
        if not url.startswith(base + "/"):
            self.aborted.append(url)
            route.abort()
            return
        path = url[len(base) :]
        if path == STUB_PATH:
            route.fulfill(path=str(SITE / "office-stub.js"), content_type="text/javascript")
            return
        if path == "/vendor/msal/msal-browser.min.js":
            route.fulfill(path=str(SITE / "msal-stub.js"), content_type="text/javascript")
            return
        if path.startswith("/api/"):
            body = route.request.post_data
            self.api_requests.append(json.loads(body) if body else {})
            if self.api_fault is not None and self.api_fault(route):
                return
        route.continue_()

    def open(self, page: str = "/taskpane.html", stub: dict[str, Any] | None = None) -> Any:
        if stub is not None and self.server.token:
            # The gunicorn backend requires sign-in: MSAL (stubbed at its boundary) hands
            # out a real token of the test issuer, unless the test says otherwise.
            stub = {**stub}
            stub.setdefault("sets", {"Mailbox": "1.14", "NestedAppAuth": "1.1"})
            stub["msal"] = {"token": self.server.token, **stub.get("msal", {})}
        if stub is not None:
            self.page.add_init_script(f"window.__SENDREADY_STUB__ = {json.dumps(stub)};")
        self.page.goto(self.server.base + page)
        return self.page


@pytest.fixture(scope="session")
def backend_pane(backend: Any, issuer: Any) -> PaneServer:
    """The real service under gunicorn (tests/fixtures/backend.py), signed in as alice."""
    from tests.fixtures.issuer import API_CLIENT_ID, TENANT

    # Valid for an hour: longer than any test session on CI.
    token = issuer.mint(issuer.user_claims(TENANT, API_CLIENT_ID))
    return PaneServer(backend.base, True, None, token)


@pytest.fixture
def pane(
    browser: Any,
    pane_servers: dict[str, PaneServer],  # noqa: F811
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., Pane]]:
    contexts: list[Any] = []

    def make(server: str = "dev", color_scheme: str = "light", **kwargs: Any) -> Pane:
        target = (
            request.getfixturevalue("backend_pane") if server == "backend" else pane_servers[server]
        )
        context = browser.new_context(
            color_scheme=color_scheme, viewport={"width": 360, "height": 900}, **kwargs
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15000)
        pane = Pane(page, target)
        page.route("**/*", pane.route)
        return pane

    yield make
    for context in contexts:
        context.close()
