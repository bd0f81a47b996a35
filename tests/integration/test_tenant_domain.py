"""The tenant's initial domain through the real service under gunicorn (TESTING.md §10.1): the
fake issuer's Graph /organization on behalf of the pane's user, cached per tenant in process
and in Redis, and the report cache keyed so no tenant sees another's records.

Each test uses tenant ids of its own, so the service's tenant cache starts empty for it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from sendready.auth.graph import TenantDomains, organization_domains
from sendready.web.services import TENANT_KEY, TenantDomainCache
from tests.conftest import Pki, addr
from tests.fixtures.backend import Backend, gunicorn
from tests.fixtures.issuer import API_CLIENT_ID
from tests.servers.fake_issuer import FakeIssuer

DOMAIN = "fix-dkim.test"
TENANT = "fix-tenant.onmicrosoft.test"
OTHER = "other-tenant.onmicrosoft.test"


@pytest.fixture(scope="module")
def service(backend: Backend, issuer: FakeIssuer) -> Iterator[Backend]:
    """The service as a multi-tenant app (authority ``organizations``, like a production
    registration that any tenant consents to): the session backend's environment, its own
    gunicorn on the backend's address (the browser tests reach only that one) on port 8086,
    stopped by PID."""
    host, port = addr(80), 8086
    env = dict(backend.env)
    env.update(
        SENDREADY_AUTHORITY=f"{issuer.base}/organizations",
        SENDREADY_LISTEN=f"{host}:{port}",
        SENDREADY_PUBLIC_BASE_URL=f"https://{host}:{port}",
    )
    log_path = Path(backend.log).with_name("multi-tenant.log")
    with gunicorn(env, host, port, log_path, "multi-tenant gunicorn") as served:
        yield served


def tenant(issuer: FakeIssuer, initial: str, *verified: str) -> str:
    """A new tenant id whose Graph /organization lists ``initial`` and ``verified``."""
    tid = str(uuid.uuid4())
    entries = [{"name": initial, "isInitial": True, "isDefault": False, "type": "Managed"}]
    entries += [
        {"name": d, "isInitial": False, "isDefault": True, "type": "Managed"} for d in verified
    ]
    issuer.organizations[tid] = entries
    return tid


def token_for(issuer: FakeIssuer, tid: str, user: str = "admin") -> str:
    """The pane's token for ``user@fix-dkim.test`` in tenant ``tid``."""
    claims = issuer.user_claims(tid, API_CLIENT_ID, oid=f"{user}-{tid}", upn=f"{user}@{DOMAIN}")
    return issuer.mint(claims)


def check(
    http: requests.Session, backend: Backend, token: str, user: str = "admin"
) -> dict[str, Any]:
    """A check of the user's own address (not a Send As), as the pane sends it."""
    response = http.post(
        f"{backend.base}/api/v1/checks",
        json={"from": f"{user}@{DOMAIN}", "options": {"probe_smtp": False}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=20,
    )
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def one(report: dict[str, Any], id: str) -> dict[str, Any]:
    (found,) = [f for f in report["findings"] if f["id"] == id]
    return found


def cnames(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(r["type"], r["name"], r["value"]) for r in one(report, "dkim.missing")["records"]]


def expected(initial: str) -> list[tuple[str, str, str]]:
    return [
        ("CNAME", f"{s}._domainkey.{DOMAIN}", f"{s}-fix-dkim-test._domainkey.{initial}")
        for s in ("selector1", "selector2")
    ]


def m365_prediction(report: dict[str, Any]) -> dict[str, Any]:
    (found,) = [
        f
        for f in report["findings"]
        if f["id"] == "dmarc.will_fail" and f["data"]["service"] == "microsoft365"
    ]
    return found


def test_the_cnames_and_the_signing_domain_name_the_callers_tenant(
    service: Backend, issuer: FakeIssuer, http: requests.Session
) -> None:
    tid = tenant(issuer, TENANT, DOMAIN)
    report = check(http, service, token_for(issuer, tid))
    assert one(report, "dkim.missing")["status"] == "fail"
    assert cnames(report) == expected(TENANT)
    prediction = m365_prediction(report)
    assert prediction["data"]["dkim_domain"] == TENANT
    assert prediction["data"]["tenant_domain"] == TENANT
    assert f"signs as your tenant's initial domain {TENANT} (d={TENANT})" in prediction["detail"]


def test_one_graph_call_per_tenant_for_many_checks_shared_through_redis(
    service: Backend, issuer: FakeIssuer, http: requests.Session
) -> None:
    tid = tenant(issuer, TENANT, DOMAIN)
    before = issuer.counters["graph_organization"]
    for user in ("alice", "bob", "carol"):
        report = check(http, service, token_for(issuer, tid, user), user)
        assert cnames(report) == expected(TENANT)
    assert issuer.counters["graph_organization"] == before + 1
    client = redis.Redis.from_url(service.env["SENDREADY_REDIS_URL"])
    try:
        assert TENANT.encode() in (client.get(TENANT_KEY + tid) or b"")
        assert 86_000 < client.ttl(TENANT_KEY + tid) <= 86_400
    finally:
        client.close()


def test_a_graph_failure_still_gives_the_report_and_says_where_the_cnames_are(
    service: Backend, issuer: FakeIssuer, http: requests.Session
) -> None:
    tid = tenant(issuer, TENANT, DOMAIN)
    issuer.organization_status[tid] = 503
    before = issuer.counters["graph_organization"]
    try:
        first = check(http, service, token_for(issuer, tid))
        again = check(http, service, token_for(issuer, tid, "bob"), "bob")
    finally:
        del issuer.organization_status[tid]
    for report in (first, again):
        missing = one(report, "dkim.missing")
        assert missing["status"] == "fail" and missing["records"] == []
        assert f"Get-DkimSigningConfig -Identity {DOMAIN}" in missing["fix"]
        assert "tenant_domain" not in m365_prediction(report)["data"]
    # The failure is remembered for a while: Graph is not asked again by every check.
    assert issuer.counters["graph_organization"] == before + 1


def test_a_second_tenant_never_gets_the_first_tenants_records(
    service: Backend, issuer: FakeIssuer, http: requests.Session
) -> None:
    first, second = tenant(issuer, TENANT, DOMAIN), tenant(issuer, OTHER, DOMAIN)
    stranger = tenant(issuer, "stranger.onmicrosoft.test", "elsewhere.test")
    assert cnames(check(http, service, token_for(issuer, first))) == expected(TENANT)
    assert cnames(check(http, service, token_for(issuer, second))) == expected(OTHER)

    def latest(tid: str) -> tuple[str, dict[str, Any]]:
        response = http.get(
            f"{service.base}/api/v1/domains/{DOMAIN}",
            headers={"Authorization": f"Bearer {token_for(issuer, tid)}"},
            timeout=20,
        )
        assert response.status_code == 200, response.text
        report: dict[str, Any] = response.json()
        return response.headers["X-Cache"], report

    # Each tenant's check was cached under its own key: each gets its own report back.
    state, report = latest(first)
    assert (state, cnames(report)) == ("hit", expected(TENANT))
    state, report = latest(second)
    assert (state, cnames(report)) == ("hit", expected(OTHER))
    # A tenant that has not verified the domain gets no tenant's records at all.
    assert cnames(latest(stranger)[1]) == []


def test_graph_organization_gives_the_initial_domain_to_a_user_read_token(
    issuer: FakeIssuer, http: requests.Session, pki: Pki
) -> None:
    tid = tenant(issuer, "Fix-Tenant.onmicrosoft.test", DOMAIN, "bad name!")
    claims = issuer.user_claims(tid, f"{issuer.base}/graph", scp="User.Read")
    token = issuer.mint(claims)
    http.verify = pki.ca
    graph = f"{issuer.base}/graph"
    found = organization_domains(http, graph, token)
    assert found.initial == TENANT and found.verified == frozenset({TENANT, DOMAIN})
    assert organization_domains(http, graph, token).initial == TENANT
    issuer.organizations[tid] = [{"name": DOMAIN, "isInitial": False}]
    assert organization_domains(http, graph, token).initial is None


def test_another_instance_reads_the_tenant_from_redis_without_graph(
    service: Backend, issuer: FakeIssuer, http: requests.Session
) -> None:
    tid = tenant(issuer, TENANT, DOMAIN)
    check(http, service, token_for(issuer, tid))
    client = redis.Redis.from_url(service.env["SENDREADY_REDIS_URL"])
    try:
        elsewhere = TenantDomainCache()  # a fresh process's cache, sharing the Redis
        found = elsewhere.get(tid, client, lambda: pytest.fail("Graph asked again"))
    finally:
        client.close()
    assert found == TenantDomains(TENANT, frozenset({TENANT, DOMAIN}))


def test_an_unreachable_redis_falls_back_to_graph() -> None:
    down = redis.Redis(host=addr(63), port=1, socket_connect_timeout=0.5)
    answer = TenantDomains(TENANT)
    assert TenantDomainCache().get(str(uuid.uuid4()), down, lambda: answer) == answer
