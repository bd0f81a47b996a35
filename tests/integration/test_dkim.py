"""DKIM and sending-service detection against Knot serving tests/zones/dkim-cases.test.zone and
the look-alike provider zones (outlook.test, onmicrosoft.test, google.test, sendgrid.test)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from sendready.checks import dkim, mx, services
from sendready.config import Settings
from sendready.dns import parse_nameservers
from sendready.engine import Engine
from sendready.model import CheckRequest, Finding, Report, Severity, Status
from tests.conftest import NET

ALIASES = {
    "outlook.com": "outlook.test",
    "onmicrosoft.com": "onmicrosoft.test",
    "google.com": "google.test",
    "sendgrid.net": "sendgrid.test",
}


@pytest.fixture(scope="module")
def engine(dns_server) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    settings = Settings(
        dns_servers=parse_nameservers(dns_server.nameserver),
        provider_aliases=ALIASES,
        allow_private_targets=(ipaddress.ip_network(f"{NET}.0/24"),),
    )
    checks = {"mx": mx.check, "services": services.check, "dkim": dkim.check}
    with Engine(settings, checks=checks) as e:
        yield e


def run(engine: Engine, domain: str, *selectors: str) -> Report:
    return engine.check(CheckRequest(domain=domain, selectors=selectors, probe_smtp=False))


def dkim_findings(report: Report) -> list[Finding]:
    return [f for f in report.findings if f.area == "dkim"]


def problems(report: Report) -> set[str]:
    return {f.id for f in dkim_findings(report) if f.status is Status.FAIL}


def test_m365_selectors_are_read_through_their_cnames_into_the_tenant(engine: Engine) -> None:
    report = run(engine, "m365-good.test")
    facts = report.facts["dkim"]
    sel1 = next(s for s in facts.selectors if s.selector == "selector1")
    assert sel1.cname_chain == ("selector1-m365-good-test._domainkey.contoso.onmicrosoft.test",)
    assert sel1.keys[0].bits == 2048
    passed = [f for f in dkim_findings(report) if f.status is Status.PASS]
    assert {f.data["selector"] for f in passed} == {"selector1", "selector2"}
    assert "contoso.onmicrosoft.test" in passed[0].detail  # the target is shown as read
    assert problems(report) == set()
    assert report.facts["services"].ids == ("microsoft365",)


def test_google_and_sendgrid_are_both_detected_and_their_keys_pass(engine: Engine) -> None:
    report = run(engine, "gws-sendgrid.test")
    detected = report.facts["services"]
    assert set(detected.ids) == {"google", "sendgrid"}
    google = next(d for d in detected.detected if d.id == "google")
    assert "MX smtp.google.test" in google.evidence
    sendgrid = next(d for d in detected.detected if d.id == "sendgrid")
    assert any(e.startswith("DKIM s1._domainkey CNAME") for e in sendgrid.evidence)
    keys = {f.data["selector"] for f in dkim_findings(report) if f.status is Status.PASS}
    assert keys == {"google", "s1", "s2"}
    assert problems(report) == set()


def test_m365_domain_without_selector_cnames_gets_the_get_dkimsigningconfig_fix(
    engine: Engine,
) -> None:
    report = run(engine, "nokey.dkim-cases.test")
    (missing,) = [f for f in dkim_findings(report) if f.id == "dkim.missing"]
    assert missing.status is Status.FAIL
    assert missing.data["service"] == "microsoft365"
    assert "Get-DkimSigningConfig" in missing.fix and "Defender portal" in missing.fix


@pytest.mark.parametrize(
    ("domain", "bits", "severity"),
    [
        ("tiny.dkim-cases.test", 768, Severity.CRITICAL),
        ("weak.dkim-cases.test", 1024, Severity.WARNING),
        ("huge.dkim-cases.test", 4608, Severity.WARNING),
    ],
)
def test_key_sizes_outside_2048_to_4096_are_weak_keys(
    engine: Engine, domain: str, bits: int, severity: Severity
) -> None:
    report = run(engine, domain)
    (weak,) = [f for f in dkim_findings(report) if f.id == "dkim.weak_key"]
    assert (weak.status, weak.severity, weak.data["bits"]) == (Status.FAIL, severity, bits)
    assert "dkim.missing" not in problems(report)  # one selector with a key is enough


def test_empty_p_is_a_revoked_key(engine: Engine) -> None:
    assert problems(run(engine, "revoked.dkim-cases.test")) == {"dkim.revoked"}


def test_t_y_is_testing_mode(engine: Engine) -> None:
    assert problems(run(engine, "testing.dkim-cases.test")) == {"dkim.testing_mode"}


def test_bare_pkcs1_rsa_keys_are_accepted(engine: Engine) -> None:
    report = run(engine, "pkcs1.dkim-cases.test")
    assert problems(report) == set()
    (ok,) = [f for f in dkim_findings(report) if f.id == "dkim.weak_key"]
    assert ok.data["bits"] == 2048


def test_ed25519_of_32_bytes_passes_with_advice_and_31_bytes_is_invalid(engine: Engine) -> None:
    good = run(engine, "ed.dkim-cases.test")
    assert problems(good) == set()
    assert any(f.id == "dkim.ed25519_only" for f in dkim_findings(good))
    bad = run(engine, "ed31.dkim-cases.test")
    (syntax,) = [f for f in dkim_findings(bad) if f.id == "dkim.syntax_error"]
    assert "32 bytes" in syntax.title


def test_a_duplicated_tag_invalidates_the_record(engine: Engine) -> None:
    report = run(engine, "dup.dkim-cases.test")
    (syntax,) = [f for f in dkim_findings(report) if f.id == "dkim.syntax_error"]
    assert "k=" in syntax.title and "twice" in syntax.title


def test_two_records_at_one_selector_warn(engine: Engine) -> None:
    assert "dkim.multiple_records" in problems(run(engine, "multi.dkim-cases.test"))


def test_sha1_only_keys_are_reported(engine: Engine) -> None:
    assert problems(run(engine, "sha1.dkim-cases.test")) == {"dkim.sha1_only"}


def test_a_user_given_selector_is_checked(engine: Engine) -> None:
    report = run(engine, "custom.dkim-cases.test", "mysel")
    (ok,) = [f for f in dkim_findings(report) if f.id == "dkim.weak_key"]
    assert (ok.status, ok.data["selector"]) == (Status.PASS, "mysel")


def test_no_service_and_no_key_is_unknown_not_missing(engine: Engine) -> None:
    report = run(engine, "unknownsvc.dkim-cases.test")
    ids = {(f.id, f.status) for f in dkim_findings(report)}
    assert ids == {("dkim.selector_unknown", Status.UNKNOWN)}
    assert report.facts["services"].ids == ()


def test_a_timed_out_selector_is_unknown_never_missing(fault_dns) -> None:  # type: ignore[no-untyped-def]
    zone = (
        "$ORIGIN dkimfault.test.\n$TTL 60\n"
        "@ SOA ns hostmaster 1 3600 600 86400 60\n"
        '@ TXT "v=spf1 include:spf.protection.outlook.test -all"\n'
    )
    fault_dns.load_zone(zone)
    fault_dns.faults.clear()
    fault_dns.fault("selector1._domainkey.dkimfault.test", "TXT", "timeout")
    fault_dns.fault("selector2._domainkey.dkimfault.test", "TXT", "servfail")
    settings = Settings(
        dns_servers=parse_nameservers(fault_dns.nameserver),
        dns_timeout=0.3,
        provider_aliases=ALIASES,
    )
    try:
        with Engine(settings, checks={"services": services.check, "dkim": dkim.check}) as e:
            report = e.check(CheckRequest(domain="dkimfault.test", probe_smtp=False, budget=2))
    finally:
        fault_dns.faults.clear()
    (missing,) = [f for f in dkim_findings(report) if f.id == "dkim.missing"]
    assert missing.status is Status.UNKNOWN
    assert "selector1._domainkey.dkimfault.test" in missing.detail
