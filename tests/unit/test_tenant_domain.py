"""The tenant's initial domain from hand-made inputs (no network): the fixes prefer the one the
request carries, the alignment chain and facts name it, and Graph's verified domains say
which From domains it applies to; the per-tenant cache keeps a hit a day, a failure ten
minutes."""

from __future__ import annotations

from collections.abc import Callable

from sendready import fixes
from sendready.auth.graph import TenantDomains
from sendready.checks.alignment import (
    DkimPrediction,
    Prediction,
    SpfPrediction,
    _dkim_prediction,
    _Policy,
    finding,
)
from sendready.checks.dkim import DkimFacts, SelectorFacts
from sendready.config import Settings
from sendready.model import CheckRequest, Finding, Rule, Severity, Status
from sendready.providers import catalog
from sendready.web.services import TENANT_FAILURE_TTL, TENANT_TTL, TenantDomainCache

D = "example.com"
TENANT = "contoso.onmicrosoft.com"
M365 = catalog().get("microsoft365")
NO_KEYS = DkimFacts(D, (SelectorFacts("selector1", f"selector1._domainkey.{D}", "nxdomain"),))


def missing_dkim(request: CheckRequest) -> Finding:
    failed = Rule("dkim.missing", "s", "spec", Severity.WARNING).failed(
        D, "t", "d", "f", service="microsoft365"
    )
    (out,) = fixes.attach([failed], {"dkim": NO_KEYS}, request, Settings())
    return out


def test_only_the_requests_tenant_domain_counts_not_the_users_addresses() -> None:
    both = CheckRequest(D, tenant_domain="Fabrikam.onmicrosoft.com.", mailbox=f"a@{TENANT}")
    assert fixes.initial_domain(both) == "fabrikam.onmicrosoft.com"
    # The user's tenant need not be the checked domain's: no CNAMEs into it.
    assert fixes.initial_domain(CheckRequest(D, mailbox=f"a@{TENANT}")) is None
    assert missing_dkim(CheckRequest(D, own_addresses=(f"a@{TENANT}",))).records == ()


def test_with_the_tenant_domain_alone_the_two_cnames_are_built() -> None:
    found = missing_dkim(CheckRequest(D, tenant_domain=TENANT))
    assert [(r.type, r.name, r.value) for r in found.records] == [
        ("CNAME", f"selector1._domainkey.{D}", f"selector1-example-com._domainkey.{TENANT}"),
        ("CNAME", f"selector2._domainkey.{D}", f"selector2-example-com._domainkey.{TENANT}"),
    ]
    assert missing_dkim(CheckRequest(D)).records == ()


def test_microsoft_365_without_a_selector_signs_as_the_named_tenant() -> None:
    assert M365 is not None
    named = _dkim_prediction(M365, D, (), TENANT)
    assert (named.domain, named.result, named.aligned) == (TENANT, "pass", False)
    assert f"signs as your tenant's initial domain {TENANT} (d={TENANT})" in named.reason
    assert f"until DKIM is enabled for {D}" in named.reason
    unnamed = _dkim_prediction(M365, D, ())
    assert unnamed.domain == "<tenant>.onmicrosoft.com"


def test_the_will_fail_finding_names_the_tenant_in_its_data_and_fix() -> None:
    assert M365 is not None
    dkim = _dkim_prediction(M365, D, (), TENANT)
    spf = SpfPrediction(D, "192.0.2.1", "fail", False, f"SPF fail for {D}")
    reasons = (spf.reason, dkim.reason, "DMARC p=reject: the message will be rejected")
    prediction = Prediction(
        "microsoft365", "Microsoft 365", spf, dkim, "fail", "reject", "reject", reasons
    )
    policy = _Policy("r", "r", "reject", D, tenant_domain=TENANT)
    found = finding(prediction, D, policy)
    assert found.status is Status.FAIL
    assert found.data["tenant_domain"] == TENANT and found.data["dkim_domain"] == TENANT
    assert f"two DKIM CNAMEs selector1 and selector2 under {D} that point into {TENANT}" in (
        found.fix
    )
    anonymous = finding(prediction, D, _Policy("r", "r", "reject", D))
    assert "tenant_domain" not in anonymous.data
    assert "publish a working key at its DKIM selector" in anonymous.fix


def test_other_services_never_get_the_tenant_domain() -> None:
    google = catalog().get("google")
    assert google is not None
    dkim = DkimPrediction("", "", "none", False, "no DKIM selector google published")
    spf = SpfPrediction("", "", "unknown", None, "")
    prediction = Prediction("google", "Google", spf, dkim, "fail", "reject", "reject", ("x",))
    found = finding(prediction, D, _Policy("r", "r", "reject", D, tenant_domain=TENANT))
    assert "tenant_domain" not in found.data and TENANT not in found.fix
    assert _dkim_prediction(google, D, (), TENANT).domain == ""


def test_the_initial_domain_applies_to_verified_domains_and_their_subdomains() -> None:
    tenant = TenantDomains(TENANT, frozenset({TENANT, D}))
    assert tenant.covers(D) and tenant.covers(f"mail.{D}") and tenant.covers(TENANT)
    assert not tenant.covers("notexample.com") and not tenant.covers("com")
    assert not TenantDomains(None).covers(D)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_tenant_cache_keeps_a_hit_a_day_and_a_failure_ten_minutes() -> None:
    clock, calls = Clock(), []
    cache = TenantDomainCache(clock=clock)
    found = TenantDomains(TENANT, frozenset({D}))

    def graph(answer: TenantDomains | None) -> Callable[[], TenantDomains | None]:
        def load() -> TenantDomains | None:
            calls.append(answer)
            return answer

        return load

    assert cache.get("t1", None, graph(found)) == found
    clock.now = TENANT_TTL - 1
    assert cache.get("t1", None, graph(None)) == found and len(calls) == 1
    clock.now = TENANT_TTL + 1
    assert cache.get("t1", None, graph(None)) is None and len(calls) == 2
    clock.now += TENANT_FAILURE_TTL - 1
    assert cache.get("t1", None, graph(found)) is None and len(calls) == 2
    clock.now += 2
    assert cache.get("t1", None, graph(found)) == found and len(calls) == 3
    # Tenants are cached apart.
    assert cache.get("t2", None, graph(None)) is None and len(calls) == 4


def test_the_tenant_cache_is_bounded() -> None:
    cache = TenantDomainCache(limit=2, clock=Clock())
    for tid in ("a", "b", "c"):
        cache.get(tid, None, lambda: TenantDomains(TENANT))
    asked: list[str] = []

    def ask(tid: str) -> TenantDomains | None:
        asked.append(tid)
        return None

    cache.get("a", None, lambda: ask("a"))
    cache.get("c", None, lambda: ask("c"))
    assert asked == ["a"]  # the oldest was dropped, the newest kept
