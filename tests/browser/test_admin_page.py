"""The admin page in headless Chromium against the real service (development mode, scans in
the web process): start a scan of two domains, watch it finish, see each domain's worst
finding; scan again after a DMARC record was removed and see the regression highlighted.
The page's CSP (no inline script) must not block anything."""

from __future__ import annotations

import ipaddress
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import sync_playwright
from tests.conftest import NET, addr
from tests.fixtures.knot import ZONES, KnotServer
from werkzeug.serving import make_server

from sendready.config import Settings
from sendready.dns import parse_nameservers
from sendready.web import create_app

HOST, PORT = addr(83), 8083
BASE = f"http://{HOST}:{PORT}"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {HOST}",
]


@pytest.fixture(scope="module")
def service(dns_server: KnotServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    settings = Settings(
        dns_servers=parse_nameservers(dns_server.nameserver),
        allow_private_targets=(ipaddress.ip_network(f"{NET}.0/24"),),
        instance_path=str(tmp_path_factory.mktemp("admin-page")),
        check_budget=3.0,
        listen=f"{HOST}:{PORT}",  # loopback without a client id: development mode
    )
    app = create_app(settings)
    server = make_server(HOST, PORT, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app
    server.shutdown()
    thread.join(10)
    app.extensions["sendready"].engine.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/install-deps.sh installs chromium")
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def problems() -> list[str]:
    """Console errors and uncaught exceptions of the page (a CSP violation is one)."""
    return []


@pytest.fixture
def page(browser: Any, service: Flask, problems: list[str]) -> Iterator[Any]:
    opened = browser.new_page()
    opened.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda e: problems.append(str(e)))
    opened.route(
        "**/*", lambda r: r.continue_() if r.request.url.startswith(BASE + "/") else r.abort()
    )
    yield opened
    opened.close()


def start_scan(page: Any, domains: list[str]) -> None:
    """Start a scan from the form and wait until the page shows it done."""
    page.evaluate("() => { document.querySelector('#progress').textContent = ''; }")
    page.check("input[name=scope][value=list]")
    page.fill("#domains", "\n".join(domains))
    page.click("#run")
    page.wait_for_function(
        "() => /^done: /.test(document.querySelector('#progress').textContent)", timeout=60_000
    )


def test_an_admin_starts_a_scan_and_sees_it_finish(page: Any, problems: list[str]) -> None:
    page.goto(BASE + "/admin/")
    start_scan(page, ["scan-good.test", "scan-nospf.test"])
    assert page.text_content("#progress").startswith("done: 2 of 2 domains")
    rows = page.locator("#reports tbody tr")
    assert rows.count() == 2
    assert sorted(rows.nth(i).locator("td").first.text_content() for i in range(2)) == [
        "scan-good.test",
        "scan-nospf.test",
    ]
    assert page.locator("#regressions li.none").text_content() == "None."
    assert page.locator("#scans tbody tr").count() >= 1
    assert problems == []  # nothing blocked by the CSP, no script error


@pytest.fixture
def drift(dns_server: KnotServer) -> Iterator[tuple[KnotServer, str]]:
    original = (ZONES / "scan-drift.test.zone").read_text()
    yield dns_server, original
    dns_server.publish("scan-drift.test", original.replace("2026120301", "2026120323"))


def test_a_removed_dmarc_record_is_highlighted(
    page: Any, service: Flask, drift: tuple[KnotServer, str], problems: list[str]
) -> None:
    dns_server, zone = drift
    page.goto(BASE + "/admin/")
    start_scan(page, ["scan-drift.test"])
    lines = [line for line in zone.splitlines() if not line.startswith("_dmarc")]
    dns_server.publish("scan-drift.test", "\n".join(lines).replace("2026120301", "2026120322"))
    service.extensions["sendready"].engine.resolver.cache.clear()
    start_scan(page, ["scan-drift.test"])
    highlighted = page.locator("#regressions li:not(.none)")
    assert highlighted.count() >= 1
    texts = [highlighted.nth(i).text_content() for i in range(highlighted.count())]
    assert any("scan-drift.test" in t and "dmarc.missing" in t for t in texts)
    color = highlighted.first.evaluate("e => getComputedStyle(e).color")
    assert color == "rgb(197, 15, 31)"  # the regression colour from admin.css
    assert problems == []
