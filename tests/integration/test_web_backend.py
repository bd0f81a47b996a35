"""The service under gunicorn through the WSGI entry (TESTING.md §10.1): a signed-in check of
a real zone on Knot, the shared cache, metrics, readiness, and logs without tokens."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis
import requests

from tests.conftest import Pki
from tests.fixtures.backend import Backend
from tests.fixtures.issuer import API_CLIENT_ID, TENANT
from tests.servers.fake_issuer import FakeIssuer


@pytest.fixture
def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def pane_token(issuer: FakeIssuer, pki: Pki) -> str:
    """The token the task pane would get, from the issuer's test endpoint over HTTPS."""
    session = requests.Session()
    session.trust_env = False
    session.verify = pki.ca
    response = session.post(
        f"{issuer.base}/test/user-token",
        json={"aud": API_CLIENT_ID, "upn": "alice@m365-good.test", "tid": TENANT},
        timeout=5,
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def test_signed_in_check_of_a_real_zone(
    backend: Backend, issuer: FakeIssuer, pki: Pki, http: requests.Session
) -> None:
    token = pane_token(issuer, pki)
    response = http.post(
        f"{backend.base}/api/v1/checks",
        json={"from": "alice@m365-good.test", "options": {"probe_smtp": False}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=15,
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["domain"] == "m365-good.test"
    failed = {f["id"] for f in report["findings"] if f["status"] == "fail"}
    passed = {f["id"] for f in report["findings"] if f["status"] == "pass"}
    # The zone publishes SPF and DMARC p=reject: the real checks ran against Knot.
    assert "dmarc.missing" not in failed and "spf.missing" not in failed
    assert any(i.startswith("dmarc.") for i in passed) and any(i.startswith("spf.") for i in passed)
    metrics = http.get(f"{backend.base}/metrics", timeout=5).text
    assert "sendready_findings_total{" in metrics and 'status="pass"' in metrics


def test_no_token_and_expired_token_are_401(
    backend: Backend, issuer: FakeIssuer, http: requests.Session
) -> None:
    body = {"from": "alice@m365-good.test"}
    missing = http.post(f"{backend.base}/api/v1/checks", json=body, timeout=5)
    assert missing.status_code == 401
    assert missing.headers["Content-Type"] == "application/problem+json"
    expired = issuer.mint(issuer.user_claims(TENANT, API_CLIENT_ID, exp=int(time.time()) - 3600))
    response = http.post(
        f"{backend.base}/api/v1/checks",
        json=body,
        headers={"Authorization": f"Bearer {expired}"},
        timeout=5,
    )
    assert response.status_code == 401 and response.json()["reason"] == "token_expired"


def test_latest_report_is_cached_in_redis(
    backend: Backend, issuer: FakeIssuer, pki: Pki, http: requests.Session
) -> None:
    redis.Redis.from_url(backend.env["SENDREADY_REDIS_URL"]).delete(
        "sendready:report:dmarc-good.test"
    )
    headers = {"Authorization": f"Bearer {pane_token(issuer, pki)}"}
    url = f"{backend.base}/api/v1/domains/dmarc-good.test"
    first = http.get(url, headers=headers, timeout=15)
    second = http.get(url, headers=headers, timeout=15)
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("miss", "hit")
    assert first.json() == second.json()
    assert "sendready_report_cache_hit_ratio" in http.get(f"{backend.base}/metrics", timeout=5).text


def test_ready_and_healthy(backend: Backend, http: requests.Session) -> None:
    assert http.get(f"{backend.base}/healthz", timeout=5).json() == {"status": "ok"}
    ready = http.get(f"{backend.base}/readyz", timeout=5)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["issuer"] == "ok"


def test_gunicorn_logs_are_json_and_hold_no_token(
    backend: Backend, issuer: FakeIssuer, pki: Pki, http: requests.Session
) -> None:
    token = pane_token(issuer, pki)
    http.post(
        f"{backend.base}/api/v1/checks",
        json={"from": token},  # a token in a field, echoed nowhere
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    deadline = time.monotonic() + 5
    text = ""
    while time.monotonic() < deadline:
        text = Path(backend.log).read_text()
        if '"path": "/api/v1/checks"' in text:
            break
        time.sleep(0.05)
    assert token not in text
    assert token.split(".")[1] not in text
    entries = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    requests_logged = [e for e in entries if e.get("msg") == "request"]
    assert requests_logged and all("user" in e for e in requests_logged)
    assert any(e["user"] and e["user"].endswith("@" + TENANT) for e in requests_logged)
