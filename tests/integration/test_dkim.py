"""DKIM and sending-service detection against Knot serving tests/zones/dkim-cases.test.zone and
the look-alike provider zones (outlook.test, onmicrosoft.test, google.test, sendgrid.test)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from sendready.checks import dkim, services
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
        allow_private_targets=(ipaddress.ip_network(f"{NET}.0/24"),),
        provider_aliases=ALIASES,
    )
    with Engine(settings, checks={"services": services.check, "dkim": dkim.check}) as e:
        yield e


def run(engine: Engine, domain: str, *selectors: str) -> Report:
    return engine.check(CheckRequest(domain=domain, selectors=selectors, probe_smtp=False))


def of(report: Report, id: str) -> list[Finding]:
    return [f for f in report.findings if f.id == id]


def problems(report: Report) -> list[Finding]:
    return [f for f in report.findings if f.status is not Status.PASS]


def test_microsoft_365_domain_reads_keys_through_the_cname_and_raises_nothing(
    engine: Engine,
) -> None:
    report = run(engine, "m365-good.test")
    assert problems(report) == []
    assert report.facts["services"].ids == ("microsoft365",)
    by = {s.selector: s for s in report.facts["dkim"].selectors}
    assert by["selector1"].cname_chain == (
        "selector1-m365-good-test._domainkey.contoso.onmicrosoft.test",
    )
    weak = of(report, "dkim.weak_key")
    assert sorted(f.data["bits"] for f in weak) == [2048, 2048]
    assert all("contoso.onmicrosoft.test" in f.detail for f in weak)


def test_google_and_sendgrid_domain_is_clean(engine: Engine) -> None:
    report = run(engine, "gws-sendgrid.test")
    assert problems(report) == []
    assert set(report.facts["services"].ids) == {"google", "sendgrid"}
    assert {f.data["selector"] for f in of(report, "dkim.weak_key")} == {"google", "s1", "s2"}


def test_services_evidence_names_the_records(engine: Engine) -> None:
    report = run(engine, "gws-sendgrid.test")
    (found,) = of(report, "services.detected")
    assert "SPF include:_spf.google.test" in found.detail
    assert "DKIM s1._domainkey CNAME" in found.detail
    assert "MX smtp.google.test" in found.detail


@pytest.mark.parametrize(
    ("case", "bits", "severity"),
    [
        ("weak", 1024, Severity.WARNING),
        ("tiny", 768, Severity.CRITICAL),
        ("huge", 4608, Severity.WARNING),
    ],
)
def test_key_sizes(engine: Engine, case: str, bits: int, severity: Severity) -> None:
    report = run(engine, f"{case}.dkim-cases.test")
    (weak,) = of(report, "dkim.weak_key")
    assert (weak.status, weak.data["bits"], weak.severity) == (Status.FAIL, bits, severity)
    assert "2048" in weak.fix


def test_bare_pkcs1_key_is_read(engine: Engine) -> None:
    (weak,) = of(run(engine, "pkcs1.dkim-cases.test"), "dkim.weak_key")
    assert (weak.status, weak.data["bits"]) == (Status.PASS, 2048)


def test_revoked_and_testing(engine: Engine) -> None:
    (revoked,) = of(run(engine, "revoked.dkim-cases.test"), "dkim.revoked")
    assert revoked.status is Status.FAIL
    (testing,) = of(run(engine, "testing.dkim-cases.test"), "dkim.testing_mode")
    assert testing.status is Status.FAIL and "t=y" in testing.fix


def test_missing_microsoft_365_keys_point_at_get_dkimsigningconfig(engine: Engine) -> None:
    report = run(engine, "nokey.dkim-cases.test")
    (missing,) = of(report, "dkim.missing")
    assert missing.status is Status.FAIL
    assert "Get-DkimSigningConfig" in missing.fix and "Defender" in missing.fix
    assert "selector1._domainkey.nokey.dkim-cases.test" in missing.fix


def test_one_selector_present_is_not_missing(engine: Engine) -> None:
    report = run(engine, "weak.dkim-cases.test")  # selector1 only, selector2 absent
    (present,) = of(report, "dkim.missing")
    assert (present.status, present.data["selectors"]) == (Status.PASS, ["selector1"])


def test_ed25519_exactly_32_bytes(engine: Engine) -> None:
    good = run(engine, "ed.dkim-cases.test")
    assert [f.status for f in of(good, "dkim.ed25519_only")] == [Status.PASS]
    assert of(good, "dkim.syntax_error") == []
    (bad,) = of(run(engine, "ed31.dkim-cases.test"), "dkim.syntax_error")
    assert "32 bytes" in bad.title


def test_duplicated_tag_invalidates(engine: Engine) -> None:
    (bad,) = of(run(engine, "dup.dkim-cases.test"), "dkim.syntax_error")
    assert "k=" in bad.title and "twice" in bad.title
    assert of(run(engine, "dup.dkim-cases.test"), "dkim.weak_key") == []


def test_two_records_at_one_selector(engine: Engine) -> None:
    (multi,) = of(run(engine, "multi.dkim-cases.test"), "dkim.multiple_records")
    assert multi.data["records"] == 2


def test_sha1_only(engine: Engine) -> None:
    assert [f.status for f in of(run(engine, "sha1.dkim-cases.test"), "dkim.sha1_only")] == [
        Status.FAIL
    ]


def test_selector_from_the_request(engine: Engine) -> None:
    without = run(engine, "custom.dkim-cases.test")
    assert [f.status for f in of(without, "dkim.selector_unknown")] == [Status.UNKNOWN]
    found = run(engine, "custom.dkim-cases.test", "mysel")
    (weak,) = of(found, "dkim.weak_key")
    assert (weak.status, weak.data["selector"]) == (Status.PASS, "mysel")
    assert of(found, "dkim.selector_unknown") == []


def test_no_service_and_no_key_is_not_called_missing(engine: Engine) -> None:
    report = run(engine, "unknownsvc.dkim-cases.test")
    assert of(report, "dkim.missing") == []
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
    (missing,) = of(report, "dkim.missing")
    assert missing.status is Status.UNKNOWN
    assert "selector1._domainkey.dkimfault.test" in missing.detail
