"""DNSSEC chain validation and DANE against Knot: dnssec-cases.test (signed by Knot, anchor from
its fresh KSK) with an unsigned child, a child whose DS matches no key, and a signed child whose
DS the fixture publishes at run time; dnssec-expired.test is pre-signed with expired RRSIGs."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import dns.dnssec
import dns.message
import dns.query
import dns.rdatatype
import pytest

from sendready.checks import dnssec
from sendready.config import Settings
from sendready.dns import parse_nameservers
from sendready.engine import Engine
from sendready.model import CheckRequest, Finding, Report, Severity, Status
from tests.conftest import NET, ROOT

PARENT = "dnssec-cases.test"


def _ksk_ds(server, zone: str) -> str:  # type: ignore[no-untyped-def]
    """The DS of the zone's flags-257 DNSKEY as Knot serves it (fresh keys every run)."""
    q = dns.message.make_query(zone, "DNSKEY", want_dnssec=True)
    r = dns.query.tcp(q, server.host, timeout=3, port=server.port)
    keys = r.find_rrset(r.answer, dns.name.from_text(zone), "IN", "DNSKEY")
    ksk = next(k for k in keys if k.flags == 257)
    return dns.dnssec.make_ds(zone + ".", ksk, "SHA256").to_text()


@pytest.fixture(scope="module")
def engine(dns_server) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    # Put the signed child's DS into the parent, then re-read the parent's own KSK.
    child_ds = _ksk_ds(dns_server, f"signed.{PARENT}")
    text = (ROOT / "tests" / "zones" / f"{PARENT}.zone").read_text()
    text = text.replace("2026120201", "2026120202", 1) + f"signed DS {child_ds}\n"
    dns_server.publish(PARENT, text)
    anchors = (
        f"{PARENT}. DS {_ksk_ds(dns_server, PARENT)}",
        f"dnssec-expired.test. DS {_ksk_ds(dns_server, 'dnssec-expired.test')}",
        f"dnssec-badmx.test. DS {_ksk_ds(dns_server, 'dnssec-badmx.test')}",
    )
    settings = Settings(
        dns_servers=parse_nameservers(dns_server.nameserver),
        allow_private_targets=(ipaddress.ip_network(f"{NET}.0/24"),),
        dnssec_trust_anchors=anchors,
    )
    checks = {"dnssec": dnssec.check, "dane": dnssec.check_dane}
    with Engine(settings, checks=checks) as e:
        yield e


def run(engine: Engine, domain: str) -> Report:
    return engine.check(CheckRequest(domain=domain, probe_smtp=False))


def of(report: Report, id: str) -> list[Finding]:
    return [f for f in report.findings if f.id == id]


def fails(report: Report, area: str) -> set[str]:
    return {f.id for f in report.findings if f.area == area and f.status is Status.FAIL}


def test_signed_zone_validates_from_the_anchor(engine: Engine) -> None:
    report = run(engine, PARENT)
    (secure,) = of(report, "dnssec.secure")
    assert secure.status is Status.PASS and secure.subject == PARENT
    assert "matches the DS" in secure.detail
    assert f"RRSIGs verify for MX {PARENT}" in secure.detail
    assert fails(report, "dnssec") == set()


def test_two_dane_ee_records_pass(engine: Engine) -> None:
    report = run(engine, PARENT)
    (tlsa,) = of(report, "dane.tlsa")
    assert tlsa.status is Status.PASS and tlsa.data["records"] == 2
    assert fails(report, "dane") == set()


def test_signed_child_through_its_ds_is_secure(engine: Engine) -> None:
    report = run(engine, f"signed.{PARENT}")
    (secure,) = of(report, "dnssec.secure")
    assert secure.status is Status.PASS
    assert f"DS signed.{PARENT}: signed by {PARENT}" in secure.detail
    assert fails(report, "dane") == set()  # 3 1 1 + 2 1 1 is a valid rollover pair


def test_unsigned_child_is_insecure_not_bogus(engine: Engine) -> None:
    report = run(engine, f"unsigned.{PARENT}")
    (unsigned,) = of(report, "dnssec.unsigned")
    assert (unsigned.status, unsigned.severity) == (Status.FAIL, Severity.INFO)
    assert of(report, "dnssec.bogus") == []
    (ignored,) = of(report, "dane.insecure")
    assert ignored.status is Status.FAIL


def test_a_ds_matching_no_key_is_bogus(engine: Engine) -> None:
    report = run(engine, f"wrongds.{PARENT}")
    (bogus,) = of(report, "dnssec.bogus")
    assert (bogus.status, bogus.severity) == (Status.FAIL, Severity.CRITICAL)
    assert "12345" in bogus.detail and "matches its DS" in bogus.detail
    assert of(report, "dnssec.unsigned") == []


def test_a_ds_over_an_unsigned_child_is_bogus(engine: Engine) -> None:
    (bogus,) = of(run(engine, f"dsunsigned.{PARENT}"), "dnssec.bogus")
    assert "publishes no DNSKEY" in bogus.detail


def test_expired_signatures_are_bogus(engine: Engine) -> None:
    report = run(engine, "dnssec-expired.test")
    (bogus,) = of(report, "dnssec.bogus")
    assert bogus.severity is Severity.CRITICAL and "expired" in bogus.detail


def test_a_bad_signature_on_an_answer_the_checks_use_is_bogus(engine: Engine) -> None:
    report = run(engine, "dnssec-badmx.test")
    (bogus,) = of(report, "dnssec.bogus")
    assert "MX answer at dnssec-badmx.test" in bogus.detail
    assert "key set" in bogus.detail  # the key chain itself was fine


def test_mx_in_an_unsigned_zone_is_reported_for_the_mx(engine: Engine) -> None:
    report = run(engine, f"insecmx.{PARENT}")
    by_zone = {f.subject: f for f in report.findings if f.area == "dnssec"}
    assert by_zone[PARENT].status is Status.PASS
    assert by_zone[f"unsigned.{PARENT}"].id == "dnssec.unsigned"
    assert f"MX mx.unsigned.{PARENT}" in by_zone[f"unsigned.{PARENT}"].title
    assert [f.id for f in report.findings if f.area == "dane"] == ["dane.insecure"]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("pkix", {"dane.unusable_usage"}),
        ("single", {"dane.single_record"}),
        ("badsel", {"dane.syntax_error"}),
        ("badlen", {"dane.lookup_failed"}),
        ("nodane", {"dane.not_published"}),
    ],
)
def test_tlsa_rules(engine: Engine, case: str, expected: set[str]) -> None:
    assert fails(run(engine, f"{case}.{PARENT}"), "dane") == expected


def test_no_anchor_is_unknown(dns_server) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(
        dns_servers=parse_nameservers(dns_server.nameserver),
        dnssec_trust_anchors=(f"elsewhere.test. DS {_ksk_ds(dns_server, PARENT)}",),
    )
    with Engine(settings, checks={"dnssec": dnssec.check}) as e:
        report = run(e, PARENT)
    (finding,) = of(report, "dnssec.secure")
    assert finding.status is Status.UNKNOWN and "trust anchor" in finding.detail


def test_zone_files_exist() -> None:
    assert (Path(ROOT) / "tests" / "zones" / "dnssec-expired.test.zone").exists()


def test_an_unreadable_anchor_setting_is_unknown_not_a_crash(dns_server) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(
        dns_servers=parse_nameservers(dns_server.nameserver),
        dnssec_trust_anchors=(f"{PARENT}. DS 1 13 2 nothex",),
    )
    with Engine(settings, checks={"dnssec": dnssec.check}) as e:
        (finding,) = run(e, PARENT).findings
    assert finding.status is Status.UNKNOWN and "dnssec_trust_anchors" in finding.detail
