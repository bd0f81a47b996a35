"""The pure parts of the alignment simulation: egress host choice, key usability, which
selectors and return path a service uses, the DMARC decision and the chain of reasons."""

from __future__ import annotations

import ipaddress

import pytest

from sendready.checks.alignment import (
    DkimPrediction,
    Prediction,
    SpfPrediction,
    _dkim_prediction,
    _Policy,
    decide,
    finding,
    first_host,
    return_path,
    service_selectors,
    tenant_selector,
    usable,
)
from sendready.checks.dkim import DkimFacts, DkimKey, SelectorFacts
from sendready.model import Severity, Status
from sendready.providers import catalog

SERVICES = catalog({"outlook.com": "outlook.test", "onmicrosoft.com": "onmicrosoft.test"})
M365 = SERVICES.get("microsoft365")
SENDGRID = SERVICES.get("sendgrid")
GOOGLE = SERVICES.get("google")
KEY = DkimKey("v=DKIM1; p=...", bits=2048)
REJECT = _Policy("r", "r", "reject", "example.test")


@pytest.mark.parametrize(
    ("network", "host"),
    [
        ("192.0.2.0/25", "192.0.2.1"),
        ("198.51.100.7/32", "198.51.100.7"),
        ("203.0.113.8/31", "203.0.113.8"),
        ("2001:db8:100::/48", "2001:db8:100::1"),
    ],
)
def test_the_egress_address_is_the_first_usable_host(network: str, host: str) -> None:
    assert first_host(ipaddress.ip_network(network)) == host


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        (KEY, True),
        (DkimKey("p=", revoked=True), False),
        (DkimKey("p=x", bits=512), False),
        (DkimKey("p=x", error="bad base64"), False),
        (DkimKey("p=x", bits=2048, hashes=("sha1",)), False),
        (DkimKey("p=x", bits=2048, service_types=("other",)), False),
        (DkimKey("p=x", key_type="ed25519", bits=256), True),
    ],
)
def test_a_key_is_usable_only_when_a_verifier_accepts_it(key: DkimKey, ok: bool) -> None:
    assert usable(key) is ok


@pytest.mark.parametrize(
    ("spf", "dkim", "policy", "expected"),
    [
        (True, False, REJECT, ("pass", "deliver")),
        (False, True, REJECT, ("pass", "deliver")),
        (False, False, REJECT, ("fail", "reject")),
        (False, False, _Policy("r", "r", "quarantine", "e.test"), ("fail", "quarantine")),
        (False, False, _Policy("r", "r", "none", "e.test"), ("fail", "deliver")),
        (False, False, _Policy("r", "r", None, "e.test"), ("none", "deliver")),
        (None, False, REJECT, ("unknown", "unknown")),
        (None, True, REJECT, ("pass", "deliver")),
        (False, False, _Policy("r", "r", None, "e.test", "timeout"), ("fail", "unknown")),
    ],
)
def test_dmarc_passes_on_either_aligned_pass_and_otherwise_the_policy_decides(
    spf: bool | None, dkim: bool | None, policy: _Policy, expected: tuple[str, str]
) -> None:
    assert decide(spf, dkim, policy) == expected


def selector(name: str, *chain: str, keys: tuple[DkimKey, ...] = (KEY,)) -> SelectorFacts:
    return SelectorFacts(name, f"{name}._domainkey.example.test", "answer", chain, keys)


def test_a_selector_belongs_to_the_service_its_cname_leads_into() -> None:
    assert M365 is not None and SENDGRID is not None and GOOGLE is not None
    m365 = selector("selector1", "selector1-example-test._domainkey.t.onmicrosoft.test")
    sendgrid = selector("s1", "s1.domainkey.u42.wl7.sendgrid.net")
    plain = selector("google")
    own_key_at_m365_selector = selector("selector2")
    facts = DkimFacts("example.test", (m365, sendgrid, plain, own_key_at_m365_selector))
    assert service_selectors(M365, facts, SERVICES) == (m365,)
    assert service_selectors(SENDGRID, facts, SERVICES) == (sendgrid,)
    # Google publishes a plain TXT key at its own selector.
    assert service_selectors(GOOGLE, facts, SERVICES) == (plain,)


def test_sendgrid_return_path_comes_from_the_user_number_of_its_dkim_target() -> None:
    assert M365 is not None and SENDGRID is not None
    sendgrid = (selector("s1", "s1.domainkey.u42.wl7.sendgrid.net"),)
    assert return_path(SENDGRID, "example.test", sendgrid) == "em42.example.test"
    assert return_path(SENDGRID, "example.test", ()) == ""
    assert return_path(M365, "example.test", ()) == "example.test"
    ses = SERVICES.get("amazonses")
    assert ses is not None and return_path(ses, "example.test", ()) == "amazonses.com"


def test_m365_without_a_key_signs_as_the_tenant_and_others_not_at_all() -> None:
    assert M365 is not None and GOOGLE is not None
    m365 = _dkim_prediction(M365, "example.test", ())
    assert (m365.result, m365.domain, m365.aligned) == (
        "pass",
        "<tenant>.onmicrosoft.com",
        False,
    )
    google = _dkim_prediction(GOOGLE, "example.test", ())
    assert (google.result, google.aligned) == ("none", False)
    failed = SelectorFacts("google", "google._domainkey.example.test", "timeout", reason="2 s")
    assert _dkim_prediction(GOOGLE, "example.test", (failed,)).result == "unknown"
    revoked = selector("google", keys=(DkimKey("p=", revoked=True),))
    assert "revoked" in _dkim_prediction(GOOGLE, "example.test", (revoked,)).reason


def test_the_will_fail_finding_carries_the_chain_and_the_prediction() -> None:
    spf = SpfPrediction("tenant.onmicrosoft.test", "192.0.2.1", "pass", False, "")
    dkim = DkimPrediction(
        "tenant.onmicrosoft.test",
        "",
        "pass",
        False,
        "no DKIM selector selector1 published for example.test, so Microsoft 365 signs as "
        "tenant.onmicrosoft.test",
    )
    reasons = (
        "SPF passes for tenant.onmicrosoft.test but does not align with example.test (aspf=r)",
        dkim.reason,
        "DMARC p=reject: the message will be rejected",
    )
    prediction = Prediction(
        "microsoft365", "Microsoft 365", spf, dkim, "fail", "reject", "reject", reasons
    )
    found = finding(prediction, "example.test", REJECT)
    assert (found.id, found.status, found.severity) == (
        "dmarc.will_fail",
        Status.FAIL,
        Severity.CRITICAL,
    )
    assert found.detail == "; ".join(reasons) + "."
    assert found.data["disposition"] == "reject" and found.data["spf_aligned"] is False
    assert "return-path" in found.fix and "DKIM" in found.fix


def test_only_a_tenant_domain_itself_signs_with_the_tenant_selector() -> None:
    assert M365 is not None and GOOGLE is not None
    tenant = "contoso.onmicrosoft.test"
    assert tenant_selector(M365, tenant) == "selector1-contoso-onmicrosoft-test"
    assert tenant_selector(M365, "mail.contoso.onmicrosoft.test") is None
    assert tenant_selector(M365, "example.test") is None
    assert tenant_selector(GOOGLE, tenant) is None
