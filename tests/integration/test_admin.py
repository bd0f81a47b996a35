"""The admin page and API on the real app: admins only (app role or directory role, tokens
from the Entra-like issuer), loopback only without sign-in, validated input, a scan run in
the web process (no Redis) or queued for workers (Redis), progress, a removed DMARC record
highlighted as a regression, the CSV and JSON exports, and a tenant scan whose checks get
the tenant's initial domain (the DKIM CNAME fixes), in the web process and on the queue."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from sendready.config import Settings
from sendready.engine import Engine
from sendready.jobs import QUEUE, JobContext, job_id, make_worker, scan_queue, use_context
from sendready.scan import scan_domain
from sendready.store import open_store
from sendready.web import create_app
from sendready.web.admin import MAX_ACTIVE_SCANS
from tests.conftest import Pki, Zones, addr, knot_settings
from tests.fixtures.issuer import API_CLIENT_ID, API_SECRET, OTHER_TENANT, TENANT
from tests.fixtures.knot import KnotServer
from tests.servers.fake_issuer import FakeIssuer

API = "/api/v1/admin/scans"
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
EXCHANGE_ADMIN = "29232cdf-9323-42fd-ade2-1d097af3e4de"


def admin_settings(
    dns_server: KnotServer, tmp_path: Path, issuer: FakeIssuer | None, pki: Pki, **extra: Any
) -> Settings:
    values: dict[str, Any] = {"instance_path": str(tmp_path), "check_budget": 3.0}
    if issuer is not None:
        values.update(
            client_id=API_CLIENT_ID,
            authority=f"{issuer.base}/organizations",  # a multi-tenant API
            auth_ca_file=pki.ca,
            graph_url=f"{issuer.base}/graph",
        )
    return knot_settings(dns_server, **{**values, **extra})


@pytest.fixture
def app(dns_server: KnotServer, tmp_path: Path, issuer: FakeIssuer, pki: Pki) -> Iterator[Flask]:
    built = create_app(admin_settings(dns_server, tmp_path, issuer, pki))
    yield built
    built.extensions["sendready"].engine.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def bearer(issuer: FakeIssuer, tenant: str = TENANT, **claims: Any) -> dict[str, str]:
    token = issuer.mint(issuer.user_claims(tenant, API_CLIENT_ID, **claims))
    return {"Authorization": f"Bearer {token}"}


def admin(issuer: FakeIssuer, tenant: str = TENANT) -> dict[str, str]:
    return bearer(issuer, tenant, roles=["SendReady.Admin"])


def wait_done(client: FlaskClient, scan_id: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"{API}/{scan_id}", headers=headers).get_json()
        if body["state"] in ("done", "partial"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"scan {scan_id} did not finish: {body}")


# -- who may --------------------------------------------------------------------------


def test_a_signed_in_user_without_an_admin_claim_gets_403_problem(
    client: FlaskClient, issuer: FakeIssuer
) -> None:
    headers = bearer(issuer, wids=["f2ef992c-3afb-46b9-b7cf-a126ee74c451"])  # Global Reader
    for response in (
        client.get(API, headers=headers),
        client.post(API, headers=headers, json={"domains": ["google.test"]}),
        client.get(f"{API}/{'0' * 32}", headers=headers),
    ):
        assert response.status_code == 403
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["reason"] == "not_admin"


def test_without_a_token_the_admin_api_is_401(client: FlaskClient) -> None:
    response = client.get(API)
    assert response.status_code == 401
    assert response.get_json()["reason"] == "missing_token"


@pytest.mark.parametrize(
    "claims",
    [{"roles": ["SendReady.Admin"]}, {"wids": [GLOBAL_ADMIN]}, {"wids": [EXCHANGE_ADMIN]}],
)
def test_the_app_role_or_an_administrator_directory_role_lets_in(
    client: FlaskClient, issuer: FakeIssuer, claims: dict[str, Any]
) -> None:
    response = client.get(API, headers=bearer(issuer, **claims))
    assert response.status_code == 200
    assert response.get_json() == {"scans": []}


def test_without_sign_in_the_admin_api_answers_only_loopback(
    dns_server: KnotServer, tmp_path: Path, pki: Pki
) -> None:
    dev = create_app(admin_settings(dns_server, tmp_path, None, pki))
    try:
        local = dev.test_client()
        assert local.get(API).status_code == 200
        remote = dev.test_client()
        remote.environ_base["REMOTE_ADDR"] = "203.0.113.7"
        response = remote.get(API)
        assert response.status_code == 403
        assert response.get_json()["reason"] == "admin_loopback_only"
    finally:
        dev.extensions["sendready"].engine.close()


# -- input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 400, "domains"),
        ({"domains": []}, 400, "domains"),
        ({"domains": "google.test"}, 400, "domains"),
        ({"domains": ["google.test", 7]}, 400, "domains[1]"),
        ({"domains": ["bad..name"]}, 422, "domains[0]"),
        ({"domains": ["google.test"], "tenant": True}, 400, "domains"),
        ({"tenant": "yes"}, 400, "tenant"),
        ({"domains": ["google.test"], "probe_smtp": "no"}, 400, "probe_smtp"),
        ({"domains": ["google.test"], "priority": 1}, 400, "priority"),
        ({"domains": [f"d{i}.test" for i in range(2001)]}, 413, "domains"),
    ],
)
def test_a_bad_scan_request_is_refused_naming_the_field(
    client: FlaskClient, issuer: FakeIssuer, body: dict[str, Any], status: int, field: str
) -> None:
    response = client.post(API, headers=admin(issuer), json=body)
    assert response.status_code == status
    assert response.get_json()["field"] == field


def test_a_tenant_scan_needs_a_client_secret_for_graph(
    client: FlaskClient, issuer: FakeIssuer
) -> None:
    response = client.post(API, headers=admin(issuer), json={"tenant": True})
    assert response.status_code == 501
    assert response.get_json()["reason"] == "tenant_scan_unavailable"


def test_an_unknown_or_malformed_scan_id_is_404(client: FlaskClient, issuer: FakeIssuer) -> None:
    for scan_id in ("0" * 32, "not-a-scan", "../etc"):
        response = client.get(f"{API}/{scan_id}", headers=admin(issuer))
        assert response.status_code == 404


# -- a scan in the web process ---------------------------------------------------------------


def test_a_scan_runs_in_the_web_process_and_exports_as_csv_and_json(
    client: FlaskClient, issuer: FakeIssuer
) -> None:
    headers = admin(issuer)
    domains = ["scan-good.test", "scan-nospf.test"]
    response = client.post(API, headers=headers, json={"domains": domains, "probe_smtp": False})
    assert response.status_code == 202
    scan_id = response.get_json()["id"]
    assert response.headers["Location"] == f"{API}/{scan_id}"
    body = wait_done(client, scan_id, headers)
    assert body["state"] == "done" and body["done"] == 2 and body["progress"] == 1.0
    assert sorted(r["domain"] for r in body["reports"]) == domains
    assert sum(body["summary"].values()) == 2
    assert body["tenant"] == TENANT and body["regressions"] == []
    listed = client.get(API, headers=headers).get_json()["scans"]
    assert [s["id"] for s in listed] == [scan_id]

    exported = client.get(f"{API}/{scan_id}/export.csv", headers=headers)
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    assert "attachment" in exported.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert {r["domain"] for r in rows} == set(domains)
    assert any(r["finding"].startswith("spf.") and r["status"] == "fail" for r in rows)
    document = json.loads(client.get(f"{API}/{scan_id}/export.json", headers=headers).data)
    assert document["scan"]["id"] == scan_id
    assert sorted(r["domain"] for r in document["reports"]) == domains


def test_an_admin_of_another_tenant_cannot_see_the_scan(
    client: FlaskClient, issuer: FakeIssuer
) -> None:
    headers = admin(issuer)
    scan_id = client.post(API, headers=headers, json={"domains": ["scan-good.test"]}).get_json()[
        "id"
    ]
    wait_done(client, scan_id, headers)
    other = admin(issuer, OTHER_TENANT)
    assert client.get(API, headers=other).get_json() == {"scans": []}
    for path in (f"{API}/{scan_id}", f"{API}/{scan_id}/export.csv", f"{API}/{scan_id}/export.json"):
        assert client.get(path, headers=other).status_code == 404


def test_a_removed_dmarc_record_is_highlighted_as_a_regression(
    app: Flask, client: FlaskClient, issuer: FakeIssuer, zones: Zones
) -> None:
    headers = admin(issuer)
    body = {"domains": ["scan-drift.test"], "probe_smtp": False}
    first = client.post(API, headers=headers, json=body).get_json()["id"]
    assert wait_done(client, first, headers)["regressions"] == []
    zones.publish("scan-drift.test", drop=["_dmarc"])
    app.extensions["sendready"].engine.resolver.cache.clear()
    second = client.post(API, headers=headers, json=body).get_json()["id"]
    regressions = wait_done(client, second, headers)["regressions"]
    found = {(r["domain"], r["finding"]) for r in regressions}
    assert ("scan-drift.test", "dmarc.missing") in found
    missing = next(r for r in regressions if r["finding"] == "dmarc.missing")
    assert missing["before"] <= missing["now"] and missing["severity"] in ("critical", "warning")


@pytest.mark.parametrize("queued", [False, True], ids=["in-process", "queued"])
def test_a_tenant_scan_lists_the_admins_tenants_verified_domains_through_graph(
    dns_server: KnotServer,
    tmp_path: Path,
    issuer: FakeIssuer,
    pki: Pki,
    redis_url: str,
    queued: bool,
) -> None:
    initial = "fix-tenant.onmicrosoft.test"
    issuer.domains = [("fix-dkim.test", True), ("unverified.test", False), (initial, True)]
    issuer.domains_initial = initial
    # A multi-tenant API: the client-credentials token is asked of the admin's own tenant.
    extra: dict[str, Any] = {
        "client_secret": API_SECRET,
        "provider_aliases": {"outlook.com": "outlook.test", "onmicrosoft.com": "onmicrosoft.test"},
    }
    if queued:
        extra["redis_url"] = redis_url
    settings = admin_settings(dns_server, tmp_path, issuer, pki, **extra)
    tenant_app = create_app(settings)
    ctx: JobContext | None = None
    try:
        client = tenant_app.test_client()
        headers = admin(issuer)
        response = client.post(API, headers=headers, json={"tenant": True, "probe_smtp": False})
        assert response.status_code == 202, response.get_json()
        if queued:  # a worker of this test's own runs the scan's jobs
            ctx = JobContext.from_settings(settings)
            use_context(ctx)
            make_worker(ctx.redis, [QUEUE]).work(burst=True, logging_level="WARNING")
        body = wait_done(client, response.get_json()["id"], headers)
        assert body["kind"] == "tenant"
        assert [r["domain"] for r in body["reports"]] == ["fix-dkim.test", initial]
        document = json.loads(client.get(f"{API}/{body['id']}/export.json", headers=headers).data)
    finally:
        issuer.domains = []
        issuer.domains_initial = ""
        use_context(None)
        if ctx is not None:
            ctx.close()
        tenant_app.extensions["sendready"].engine.close()
    stored = {r["domain"]: r["report"] for r in document["reports"]}
    (missing,) = [f for f in stored["fix-dkim.test"]["findings"] if f["id"] == "dkim.missing"]
    assert [r["value"] for r in missing["records"]] == [  # the tenant's own CNAME targets
        f"selector1-fix-dkim-test._domainkey.{initial}",
        f"selector2-fix-dkim-test._domainkey.{initial}",
    ]


# -- a scan queued for workers ----------------------------------------------------------------


def test_with_redis_the_scan_is_queued_and_any_instance_shows_the_result(
    dns_server: KnotServer, tmp_path: Path, issuer: FakeIssuer, pki: Pki, redis_url: str
) -> None:
    settings = admin_settings(dns_server, tmp_path, issuer, pki, redis_url=redis_url)
    first, second = create_app(settings), create_app(settings)
    connection = Redis.from_url(redis_url)
    store = open_store(settings)
    ctx = JobContext(settings, Engine(settings), store, connection, scan_domain, lambda c, s: None)
    try:
        headers = admin(issuer)
        domains = ["scan-good.test", "scan-nospf.test"]
        body = {"domains": domains, "probe_smtp": False}
        scan_id = first.test_client().post(API, headers=headers, json=body).get_json()["id"]
        queue = scan_queue(connection)
        assert queue.job_ids == [job_id(scan_id, 0)]  # one chunk of both domains
        queued = second.test_client().get(f"{API}/{scan_id}", headers=headers).get_json()
        assert queued["state"] == "queued" and queued["done"] == 0
        use_context(ctx)
        make_worker(connection, [QUEUE]).work(burst=True, logging_level="WARNING")
        body = wait_done(second.test_client(), scan_id, headers)
        assert body["done"] == 2 and sorted(r["domain"] for r in body["reports"]) == domains
    finally:
        use_context(None)
        ctx.engine.close()
        store.close()
        connection.close()
        for built in (first, second):
            built.extensions["sendready"].engine.close()


# -- the page -------------------------------------------------------------------------------


def test_the_page_is_plain_html_with_a_strict_csp_and_no_inline_script(
    client: FlaskClient,
) -> None:
    page = client.get("/admin/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    html = page.get_data(as_text=True)
    assert '<script type="module" src="/admin/admin.js"></script>' in html
    assert '<script src="/vendor/msal/msal-browser.min.js"></script>' in html
    assert html.count("<script") == html.count("<script src=") + html.count(
        '<script type="module" src='
    )  # every script has a src: nothing inline
    assert f'content="{API_CLIENT_ID}"' in html  # MSAL.js signs in to this API
    assert "connect-src 'self' https://" in csp
    script = client.get("/admin/admin.js")
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    assert "innerHTML" not in script.get_data(as_text=True)  # API values are set as text
    assert client.get("/admin/admin.css").mimetype == "text/css"
    assert client.get("/admin/index.py").status_code == 404


def test_a_tenant_may_have_only_a_few_scans_queued_at_once(
    dns_server: KnotServer, tmp_path: Path, issuer: FakeIssuer, pki: Pki, redis_url: str
) -> None:
    settings = admin_settings(dns_server, tmp_path, issuer, pki, redis_url=redis_url)
    queued_app = create_app(settings)  # no worker runs: every scan stays queued
    try:
        client, headers = queued_app.test_client(), admin(issuer)
        body = {"domains": ["scan-good.test"]}
        for _ in range(MAX_ACTIVE_SCANS):
            scan = client.post(API, headers=headers, json=body)
            assert scan.status_code == 202
        progress = client.get(f"{API}/{scan.get_json()['id']}", headers=headers).get_json()
        assert progress["complete"] is False and progress["reports"] == []
        refused = client.post(API, headers=headers, json=body)
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
        assert refused.get_json()["reason"] == "too_many_scans"
        other = client.post(API, headers=admin(issuer, OTHER_TENANT), json=body)
        assert other.status_code == 202  # another tenant's queue is its own
    finally:
        queued_app.extensions["sendready"].engine.close()


def test_with_the_queue_down_the_scan_is_refused_and_closed_not_left_queued(
    dns_server: KnotServer, tmp_path: Path, issuer: FakeIssuer, pki: Pki
) -> None:
    nothing_there = f"redis://{addr(79)}:6399/0"  # no server listens here
    settings = admin_settings(dns_server, tmp_path, issuer, pki, redis_url=nothing_there)
    down = create_app(settings)
    try:
        client, headers = down.test_client(), admin(issuer)
        response = client.post(API, headers=headers, json={"domains": ["scan-good.test"]})
        assert response.status_code == 503
        assert response.get_json()["reason"] == "queue_down"
        (scan,) = client.get(API, headers=headers).get_json()["scans"]
        assert scan["state"] == "partial" and "Redis" in scan["errors"]["scan-good.test"]
    finally:
        down.extensions["sendready"].engine.close()
