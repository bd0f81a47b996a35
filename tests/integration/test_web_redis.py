"""Two app instances sharing one Redis (TESTING.md §9): rate limits per user and per tenant
count across both, the latest report is shared, and readiness reports a missing Redis."""

from __future__ import annotations

from typing import Any

from flask import Flask

from sendready.config import Settings
from sendready.dns import parse_nameservers
from sendready.engine import Engine, Section
from sendready.model import Finding, Severity, Status
from sendready.web import create_app
from tests.conftest import Pki, addr
from tests.fixtures.issuer import API_CLIENT_ID, TENANT
from tests.servers.fake_issuer import FakeIssuer

OTHER_TENANT_IN_LIST = "22222222-3333-4444-8555-666666666666"


def two_apps(issuer: FakeIssuer, pki: Pki, redis_url: str, **extra: Any) -> list[Flask]:
    calls: list[str] = []

    async def fake(ctx: Any) -> Section:
        calls.append(ctx.request.domain)
        return Section((Finding("mx.missing", Status.PASS, Severity.INFO, "d", "ok"),))

    settings = Settings(
        client_id=API_CLIENT_ID,
        authority=f"{issuer.base}/organizations",
        auth_ca_file=pki.ca,
        dns_servers=parse_nameservers(addr(54)),
        redis_url=redis_url,
        **extra,
    )
    apps = [create_app(settings, engine=Engine(settings, checks={"fake": fake})) for _ in "ab"]
    apps[0].config["calls"] = calls
    return apps


def auth(issuer: FakeIssuer, tenant: str = TENANT, oid: str = "u-1") -> dict[str, str]:
    token = issuer.mint(issuer.user_claims(tenant, API_CLIENT_ID, oid=oid))
    return {"Authorization": f"Bearer {token}"}


def test_user_limit_counts_across_two_instances(
    issuer: FakeIssuer, pki: Pki, redis_url: str
) -> None:
    a, b = (app.test_client() for app in two_apps(issuer, pki, redis_url,
                                                   rate_limit_user="4 per minute"))  # fmt: skip
    alice, bob = auth(issuer, oid="alice"), auth(issuer, oid="bob")
    body = {"from": "a@m365-good.test"}
    statuses = [c.post("/api/v1/checks", json=body, headers=alice).status_code
                for c in (a, b, a, b)]  # fmt: skip
    assert statuses == [200, 200, 200, 200]
    limited = b.post("/api/v1/checks", json=body, headers=alice)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.get_json()["reason"] == "rate_limited"
    # Another user of the same tenant still has their own allowance.
    assert a.post("/api/v1/checks", json=body, headers=bob).status_code == 200


def test_tenant_limit_counts_all_users_of_a_tenant_across_instances(
    issuer: FakeIssuer, pki: Pki, redis_url: str
) -> None:
    a, b = (app.test_client() for app in two_apps(issuer, pki, redis_url,
            rate_limit_user="100 per minute", rate_limit_tenant="3 per minute"))  # fmt: skip
    body = {"from": "a@m365-good.test"}
    for n, client in enumerate((a, b, a)):
        response = client.post("/api/v1/checks", json=body, headers=auth(issuer, oid=f"u{n}"))
        assert response.status_code == 200
    assert b.post("/api/v1/checks", json=body, headers=auth(issuer, oid="u9")).status_code == 429
    other = auth(issuer, tenant=OTHER_TENANT_IN_LIST, oid="u1")
    assert a.post("/api/v1/checks", json=body, headers=other).status_code == 200


def test_latest_report_is_shared_through_redis(
    issuer: FakeIssuer, pki: Pki, redis_url: str
) -> None:
    app_a, app_b = two_apps(issuer, pki, redis_url)
    a, b = app_a.test_client(), app_b.test_client()
    headers = auth(issuer)
    assert (
        a.post("/api/v1/checks", json={"from": "m365-good.test"}, headers=headers).status_code
        == 200
    )
    response = b.get("/api/v1/domains/m365-good.test", headers=headers)
    assert response.status_code == 200 and response.headers["X-Cache"] == "hit"
    assert app_a.config["calls"] == ["m365-good.test"]  # b ran no check of its own


def test_readyz_reports_redis_unreachable(issuer: FakeIssuer, pki: Pki) -> None:
    (app, _) = two_apps(issuer, pki, f"redis://{addr(63)}:6390/0")  # nothing listens there
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    problem = response.get_json()
    assert problem["reason"] == "not_ready" and problem["checks"]["cache"].startswith("unreachable")


def test_readyz_is_ready_with_redis_and_the_issuer(
    issuer: FakeIssuer, pki: Pki, redis_url: str
) -> None:
    (app, _) = two_apps(issuer, pki, redis_url)
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {
        "cache": "ok",
        "issuer": "ok",
        "nameservers": f"{addr(54)}:53",
    }
