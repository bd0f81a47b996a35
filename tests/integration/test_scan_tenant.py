"""The tenant's domains from Graph `/domains` through real MSAL (client credentials) against
the Entra-like issuer over HTTPS: paging, the verified filter, the permission error, the
throttling retry, a nextLink to a foreign origin refused, and the initial domain learned
alongside and given to every check of a scan (over Knot, stored in SQLite)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sendready.auth.http import BoundedSession, make_session
from sendready.auth.msal_client import ServiceAuthError, TokenBroker
from sendready.config import Settings
from sendready.dns import parse_nameservers
from sendready.scan import TenantListing, run_scan, tenant_listing
from sendready.store import open_store
from tests.conftest import NET, Pki, addr
from tests.fixtures.issuer import API_CLIENT_ID, API_SECRET, TENANT
from tests.fixtures.knot import KnotServer
from tests.servers.fake_issuer import FakeIssuer

DOMAINS = [
    ("Contoso.test", True),
    ("unverified.test", False),
    ("fabrikam.test", True),
    ("contoso.test", True),  # Graph's case may differ; listed once
    ("contoso.onmicrosoft.test", True),
    ("not a domain", True),
]


@pytest.fixture
def graph(issuer: FakeIssuer) -> Iterator[FakeIssuer]:
    issuer.counters.clear()
    issuer.domains = list(DOMAINS)
    yield issuer
    issuer.domains = []
    issuer.domains_initial = ""
    issuer.domains_page_size = 2
    issuer.domains_next_base = ""
    issuer.domains_throttled = 0
    issuer.app_roles.clear()


def settings_for(issuer: FakeIssuer, pki: Pki, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "client_id": API_CLIENT_ID,
        "client_secret": API_SECRET,
        "authority": f"{issuer.base}/{TENANT}",
        "auth_ca_file": pki.ca,
        "graph_url": f"{issuer.base}/graph",
        **extra,
    }
    return Settings(**values)


def domains_of(issuer: FakeIssuer, pki: Pki, **kwargs: Any) -> list[str]:
    settings = settings_for(issuer, pki)
    session = make_session(settings)
    broker = TokenBroker(settings, session)
    return list(tenant_listing(settings, broker, session=session, **kwargs).domains)


def test_verified_domains_come_from_every_page_lower_case_and_once(
    graph: FakeIssuer, pki: Pki
) -> None:
    assert domains_of(graph, pki) == ["contoso.test", "fabrikam.test", "contoso.onmicrosoft.test"]
    assert graph.counters["graph_domains"] == 3  # six entries, two a page
    assert graph.counters["client_credentials"] == 1


def test_without_the_application_permission_the_error_names_it(graph: FakeIssuer, pki: Pki) -> None:
    graph.app_roles[API_CLIENT_ID] = []  # consent never granted: no roles in the token
    with pytest.raises(ServiceAuthError) as caught:
        domains_of(graph, pki)
    assert caught.value.status == 403
    assert "Domain.Read.All" in caught.value.detail
    assert "application permission" in caught.value.detail
    assert "admin consent" in caught.value.detail


def test_a_next_link_to_another_origin_is_not_followed(graph: FakeIssuer, pki: Pki) -> None:
    graph.domains_next_base = "https://graph.evil.test"
    with pytest.raises(ServiceAuthError, match="another origin"):
        domains_of(graph, pki)
    assert graph.counters["graph_domains"] == 1  # the token never left for the link


def test_throttling_is_retried_after_retry_after(graph: FakeIssuer, pki: Pki) -> None:
    graph.domains_throttled = 2
    waits: list[float] = []
    assert len(domains_of(graph, pki, sleep=waits.append)) == 3
    assert waits == [0.0, 0.0]  # the issuer says Retry-After: 0
    assert graph.counters["graph_domains"] == 5


def test_throttling_that_does_not_end_gives_up(graph: FakeIssuer, pki: Pki) -> None:
    graph.domains_throttled = 100
    waits: list[float] = []
    with pytest.raises(ServiceAuthError, match="throttling") as caught:
        domains_of(graph, pki, sleep=waits.append)
    assert caught.value.status == 503
    assert len(waits) == 3


def test_a_wrong_client_secret_says_what_the_admin_must_renew(graph: FakeIssuer, pki: Pki) -> None:
    settings = settings_for(graph, pki, client_secret="wrong")
    session = make_session(settings)
    with pytest.raises(ServiceAuthError, match="client secret"):
        tenant_listing(settings, TokenBroker(settings, session), session=session)
    assert graph.counters["graph_domains"] == 0


class QuickSession(BoundedSession):
    """The product's bounded session with a short read timeout, so the test is quick."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", (1.0, 0.5))
        return super().request(*args, **kwargs)


@pytest.fixture
def silent_graph() -> Iterator[str]:
    """A TCP listener that never answers: connects succeed, reads time out."""
    listener = socket.create_server((addr(72), 8443))
    try:
        yield f"https://{addr(72)}:8443/graph"
    finally:
        listener.close()


def test_a_graph_that_does_not_answer_times_out_with_a_clear_error(
    graph: FakeIssuer, pki: Pki, silent_graph: str
) -> None:
    settings = settings_for(graph, pki, graph_url=silent_graph)
    session = QuickSession()
    session.trust_env, session.verify = False, pki.ca
    broker = TokenBroker(settings, make_session(settings))
    with pytest.raises(ServiceAuthError, match="did not answer in time") as caught:
        tenant_listing(settings, broker, session=session)
    assert caught.value.status == 504


# -- the initial domain ------------------------------------------------------------------


def listing_of(issuer: FakeIssuer, pki: Pki) -> TenantListing:
    settings = settings_for(issuer, pki)
    session = make_session(settings)
    return tenant_listing(settings, TokenBroker(settings, session), session=session)


def test_the_initial_domain_is_learned_with_the_domains(graph: FakeIssuer, pki: Pki) -> None:
    graph.domains_initial = "contoso.onmicrosoft.test"
    listing = listing_of(graph, pki)
    assert listing.domains == ("contoso.test", "fabrikam.test", "contoso.onmicrosoft.test")
    assert listing.initial == "contoso.onmicrosoft.test"
    graph.domains_initial = ""
    assert listing_of(graph, pki).initial is None


def test_a_tenant_scan_gives_every_check_the_initial_domain(
    graph: FakeIssuer, pki: Pki, dns_server: KnotServer, tmp_path: Path
) -> None:
    tenant = "fix-tenant.onmicrosoft.test"
    graph.domains = [("fix-dkim.test", True), (tenant, True)]
    graph.domains_initial = tenant
    listing = listing_of(graph, pki)
    settings = Settings(
        dns_servers=parse_nameservers(dns_server.nameserver),
        allow_private_targets=(ipaddress.ip_network(f"{NET}.0/24"),),
        instance_path=str(tmp_path),
        provider_aliases={"outlook.com": "outlook.test", "onmicrosoft.com": "onmicrosoft.test"},
    )
    store = open_store(settings)
    try:
        result = run_scan(
            listing.domains,
            store=store,
            settings=settings,
            tenant=TENANT,
            kind="tenant",
            probe_smtp=False,
            tenant_domain=listing.initial,
        )
        reports = {r.domain: r.report for r in store.scan_reports(result.scan_id)}
    finally:
        store.close()
    assert set(reports) == {"fix-dkim.test", tenant}
    (missing,) = [f for f in reports["fix-dkim.test"]["findings"] if f["id"] == "dkim.missing"]
    assert [r["value"] for r in missing["records"]] == [
        f"selector1-fix-dkim-test._domainkey.{tenant}",
        f"selector2-fix-dkim-test._domainkey.{tenant}",
    ]
    for report in reports.values():
        assert report["facts"]["alignment"]["tenant_domain"] == tenant
