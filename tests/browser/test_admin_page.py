"""The admin page in headless Chromium against the real service (development mode, scans in
the web process): start a scan of two domains, watch it finish, see each domain's worst
finding; scan again after a DMARC record was removed and see the regression highlighted.
The page's CSP (no inline script) must not block anything."""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from tests.browser.conftest import chromium
from tests.conftest import NET, ROOT, Pki, addr
from tests.fixtures.issuer import API_CLIENT_ID, TENANT
from tests.fixtures.knot import ZONES, KnotServer
from tests.servers.fake_issuer import FakeIssuer
from werkzeug.serving import make_server

from sendready.config import Settings
from sendready.dns import parse_nameservers
from sendready.web import create_app

HOST, PORT, SIGNED_PORT = addr(83), 8083, 8084
BASE = f"http://{HOST}:{PORT}"
SIGNED_BASE = f"http://{HOST}:{SIGNED_PORT}"
SITE = ROOT / "tests" / "site"


def serve(port: int, settings: Settings) -> Iterator[Flask]:
    app = create_app(settings)
    server = make_server(HOST, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app
    server.shutdown()
    thread.join(10)
    app.extensions["sendready"].engine.close()


def page_settings(dns_server: KnotServer, folder: Path, **extra: Any) -> Settings:
    return Settings(
        dns_servers=parse_nameservers(dns_server.nameserver),
        allow_private_targets=(ipaddress.ip_network(f"{NET}.0/24"),),
        instance_path=str(folder),
        check_budget=3.0,
        **extra,
    )


@pytest.fixture(scope="module")
def service(dns_server: KnotServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    # loopback without a client id: development mode
    folder = tmp_path_factory.mktemp("admin-page")
    yield from serve(PORT, page_settings(dns_server, folder, listen=f"{HOST}:{PORT}"))


@pytest.fixture(scope="module")
def signed_service(
    dns_server: KnotServer, issuer: FakeIssuer, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    folder = tmp_path_factory.mktemp("admin-page-signed")
    settings = page_settings(
        dns_server,
        folder,
        client_id=API_CLIENT_ID,
        authority=f"{issuer.base}/organizations",
        auth_ca_file=pki.ca,
    )
    yield from serve(SIGNED_PORT, settings)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(HOST) as launched:
        yield launched


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


def signed_page(browser: Any, token: str, problems: list[str]) -> Any:
    """The page on the signed-in service, MSAL.js stubbed at its boundary to hand out
    ``token`` (tests/site/msal-stub.js, as the pane's tests do)."""
    opened = browser.new_page()
    opened.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    opened.add_init_script(f"window.__SENDREADY_STUB__ = {json.dumps({'msal': {'token': token}})};")

    def route(r: Any) -> None:
        url = r.request.url
        if url == f"{SIGNED_BASE}/vendor/msal/msal-browser.min.js":
            r.fulfill(path=str(SITE / "msal-stub.js"), content_type="text/javascript")
        elif url.startswith(SIGNED_BASE + "/"):
            r.continue_()
        else:
            r.abort()

    opened.route("**/*", route)
    return opened


def test_an_admin_signs_in_and_scans(
    browser: Any, signed_service: Flask, issuer: FakeIssuer, problems: list[str]
) -> None:
    token = issuer.mint(issuer.user_claims(TENANT, API_CLIENT_ID, roles=["SendReady.Admin"]))
    page = signed_page(browser, token, problems)
    try:
        page.goto(SIGNED_BASE + "/admin/")
        page.wait_for_selector("#signin:not([hidden])")
        page.click("#signin")
        page.wait_for_selector("#signin[hidden]", state="attached")
        start_scan(page, ["scan-good.test"])
        assert page.locator("#reports tbody tr").count() == 1
        calls = page.evaluate("() => window.__msal.calls.map(c => c.call)")
        assert "acquireTokenPopup" in calls
        assert problems == []
    finally:
        page.close()


def test_a_signed_in_user_who_is_not_an_admin_is_told_so(
    browser: Any, signed_service: Flask, issuer: FakeIssuer, problems: list[str]
) -> None:
    page = signed_page(browser, issuer.mint(issuer.user_claims(TENANT, API_CLIENT_ID)), problems)
    try:
        page.goto(SIGNED_BASE + "/admin/")
        page.click("#signin")
        page.wait_for_function(
            "() => /admins only/.test(document.querySelector('#message').textContent)"
        )
        assert page.locator("#message.error").count() == 1
    finally:
        page.close()


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
