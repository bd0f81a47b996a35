"""The alignment simulation over Knot (tests/zones/align-*.test.zone), each prediction compared
with an independent evaluation of the same inputs:

- SPF by ``pyspf`` (its DNS hook answered by Knot, never the system resolver);
- DKIM by ``dkimpy``: a message signed with the key the zone publishes at the selector and
  ``d=`` the service would use, verified through Knot;
- DMARC by :func:`dmarc_verdict` below, written from RFC 7489 §3.1 (alignment) and §6.6
  (policy discovery and disposition); the project's code is used only for PSL data.

The ``@DKIM@`` placeholders of the fixture zones are replaced by a key generated per run.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dkim
import dns.flags
import dns.message
import dns.query
import dns.rdatatype
import pytest
import spf
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sendready.checks.alignment import AlignmentFacts, Prediction
from sendready.checks.dmarc_orgdomain import bundled_suffix_list
from sendready.config import Settings
from sendready.engine import Engine
from sendready.model import CheckRequest, Finding, Report, Severity, Status
from tests.conftest import ROOT, Zones, knot_settings
from tests.fixtures.knot import KnotServer

ALIASES = {
    "outlook.com": "outlook.test",
    "onmicrosoft.com": "onmicrosoft.test",
    "google.com": "google.test",
    "sendgrid.net": "sendgrid.test",
}
KEYED_ZONES = ("align-tenant.onmicrosoft.test", "align-sg.sendgrid.test", "align-google.test")
M365_IP, GOOGLE_IP, SENDGRID_IP = "192.0.2.1", "203.0.113.1", "198.51.100.129"
TENANT_D, TENANT_S = "align-tenant.onmicrosoft.test", "selector1-align-tenant-onmicrosoft-test"


@dataclass(frozen=True)
class Case:
    """One From domain and service, and what the test knows the service does (DOMAIN.md §2):
    its egress address, MAIL FROM domain, and the selector and d= it signs with (None:
    it does not sign)."""

    domain: str
    service: str
    ip: str
    mail_from: str
    selector: str | None
    signing_domain: str | None
    named: bool = False  # the request names the service (it is not detected)


CASES = (
    Case("align-m365-dkim.test", "microsoft365", M365_IP, "align-m365-dkim.test",
         "selector1", "align-m365-dkim.test"),
    Case("align-m365-nodkim.test", "microsoft365", M365_IP, "align-m365-nodkim.test",
         TENANT_S, TENANT_D),
    Case("align-m365-nospf.test", "microsoft365", M365_IP, "align-m365-nospf.test",
         TENANT_S, TENANT_D),
    Case("align-m365-quar.test", "microsoft365", M365_IP, "align-m365-quar.test",
         TENANT_S, TENANT_D),
    Case("align-m365-none.test", "microsoft365", M365_IP, "align-m365-none.test",
         TENANT_S, TENANT_D),
    Case("align-sg-strict.test", "sendgrid", SENDGRID_IP, "em5678.align-sg-strict.test",
         "s1", "align-sg-strict.test"),
    Case("align-sg-relaxed.test", "sendgrid", SENDGRID_IP, "em5678.align-sg-relaxed.test",
         "s1", "align-sg-relaxed.test"),
    Case("align-sg-signed.test", "sendgrid", SENDGRID_IP, "em7777.align-sg-signed.test",
         "s1", "align-sg-signed.test"),
    Case("align-google.test", "google", GOOGLE_IP, "align-google.test",
         "google", "align-google.test"),
    Case("align-google-nospf.test", "google", GOOGLE_IP, "align-google-nospf.test",
         None, None, named=True),
    Case(TENANT_D, "microsoft365", M365_IP, TENANT_D, TENANT_S, TENANT_D),
)  # fmt: skip


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signing_key(dns_server: KnotServer) -> bytes:
    """A fresh RSA-2048 key; its public part replaces @DKIM@ in the fixture zones."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    text = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
    quoted = " ".join(f'"{text[i : i + 200]}"' for i in range(0, len(text), 200))
    for zone in KEYED_ZONES:
        source = (ROOT / "tests" / "zones" / f"{zone}.zone").read_text()
        dns_server.publish(
            zone, source.replace('"@DKIM@"', quoted).replace(" 2026120301 ", " 2026120302 ")
        )
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def settings_for(server: KnotServer) -> Settings:
    return knot_settings(server, provider_aliases=ALIASES)


@pytest.fixture(scope="module")
def engine(dns_server: KnotServer, signing_key: bytes) -> Iterator[Engine]:
    with Engine(settings_for(dns_server)) as e:
        yield e


@pytest.fixture(scope="module")
def knot_answers(dns_server: KnotServer) -> Iterator[None]:
    """Point pyspf's DNS hook at Knot: the raw answer section, CNAMEs included, which pyspf
    follows itself (as it would through a recursive resolver)."""

    def lookup(name: str, qtype: str, strict: Any = True, timeout: float = 2) -> list[Any]:
        out: list[Any] = []
        for rrset in _ask(dns_server, name, qtype).answer:
            owner = rrset.name.to_text(omit_final_dot=True)
            kind = dns.rdatatype.to_text(rrset.rdtype)
            for rdata in rrset:
                if kind == "CNAME":
                    out.append(((owner, kind), rdata.target.to_text(omit_final_dot=True)))
                elif kind == qtype and kind in ("A", "AAAA"):
                    out.append(((owner, kind), rdata.address))
                elif kind == qtype and kind == "MX":
                    out.append(((owner, kind), (rdata.preference, rdata.exchange)))
                elif kind == qtype and kind == "TXT":
                    out.append(((owner, kind), list(rdata.strings)))
        return out

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(spf, "DNSLookup", lookup)
        yield


def _ask(server: KnotServer, name: str, qtype: str) -> dns.message.Message:
    query = dns.message.make_query(name, qtype)
    query.flags &= ~dns.flags.RD  # Knot is authoritative only
    response, _ = dns.query.udp_with_fallback(query, server.host, timeout=2, port=server.port)
    return response


def _txt(server: KnotServer, name: str) -> list[str]:
    """TXT at ``name``, following CNAMEs across zones (at most 8)."""
    for _ in range(8):
        response = _ask(server, name, "TXT")
        texts = [
            b"".join(r.strings).decode()
            for rrset in response.answer
            if rrset.rdtype == dns.rdatatype.TXT
            for r in rrset
        ]
        cnames = [
            r.target.to_text()
            for rrset in response.answer
            if rrset.rdtype == dns.rdatatype.CNAME
            for r in rrset
        ]
        if texts or not cnames:
            return texts
        name = cnames[-1]
    return []


# -- the independent evaluation ------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    spf: str
    spf_aligned: bool
    dkim: str  # "pass" | "fail" | "none"
    dkim_aligned: bool
    dmarc: str  # "pass" | "fail" | "none"
    disposition: str


def spf_result(case: Case) -> str:
    """pyspf's check_host() for the service's address and MAIL FROM."""
    result, _ = spf.check2(i=case.ip, s=f"postmaster@{case.mail_from}", h=case.mail_from)
    return str(result)


def dkim_result(case: Case, key: bytes, server: KnotServer) -> str:
    """Sign as the service would, verify with dkimpy through Knot."""
    if case.selector is None or case.signing_domain is None:
        return "none"
    message = (
        f"From: Alice <alice@{case.domain}>\r\nTo: bob@example.net\r\n"
        "Subject: alignment\r\n\r\nHello.\r\n"
    ).encode()
    signature = dkim.sign(
        message,
        case.selector.encode(),
        case.signing_domain.encode(),
        key,
        include_headers=[b"from", b"to", b"subject"],
    )

    def txt(name: bytes, timeout: float = 5) -> bytes | None:
        found = _txt(server, name.decode())
        return found[0].encode() if found else None

    return "pass" if dkim.verify(signature + message, dnsfunc=txt) else "fail"


def dmarc_tags(server: KnotServer, domain: str) -> dict[str, str] | None:
    """RFC 7489 §6.6.3: the record at the author domain, else at its organizational domain."""
    organizational = bundled_suffix_list().organizational_domain(domain)
    for name in dict.fromkeys((domain, organizational)):
        records = [t for t in _txt(server, f"_dmarc.{name}") if t.startswith("v=DMARC1")]
        if len(records) == 1:
            pairs = (part.strip().partition("=") for part in records[0].split(";"))
            return {k.strip().lower(): v.strip() for k, _, v in pairs if k.strip()}
    return None


def identifier_aligned(identifier: str, author: str, mode: str) -> bool:
    """RFC 7489 §3.1.1/§3.1.2: strict = identical; relaxed = same PSL organizational domain."""
    if mode == "s":
        return identifier.lower() == author.lower()
    org = bundled_suffix_list().organizational_domain
    return org(identifier) == org(author)


def dmarc_verdict(case: Case, key: bytes, server: KnotServer) -> Verdict:
    spf_code, dkim_code = spf_result(case), dkim_result(case, key, server)
    tags = dmarc_tags(server, case.domain) or {}
    spf_ok = spf_code == "pass" and identifier_aligned(
        case.mail_from, case.domain, tags.get("aspf", "r")
    )
    dkim_ok = (
        dkim_code == "pass"
        and case.signing_domain is not None
        and identifier_aligned(case.signing_domain, case.domain, tags.get("adkim", "r"))
    )
    if spf_ok or dkim_ok:
        dmarc_code, disposition = "pass", "deliver"
    elif not tags:
        dmarc_code, disposition = "none", "deliver"
    else:
        policy = tags.get("p", "none")
        dmarc_code = "fail"
        disposition = {"reject": "reject", "quarantine": "quarantine"}.get(policy, "deliver")
    return Verdict(spf_code, spf_ok, dkim_code, dkim_ok, dmarc_code, disposition)


# -- the tests -----------------------------------------------------------------------------


def run(engine: Engine, case: Case) -> Report:
    return engine.check(
        CheckRequest(
            domain=case.domain,
            address=f"alice@{case.domain}",
            service=case.service if case.named else None,
            probe_smtp=False,
        )
    )


def prediction_of(report: Report, service: str) -> Prediction:
    facts = report.facts["alignment"]
    assert isinstance(facts, AlignmentFacts)
    found = [p for p in facts.predictions if p.service == service]
    assert len(found) == 1, facts
    return found[0]


def will_fail(report: Report, service: str) -> Finding:
    found = [
        f for f in report.findings if f.id == "dmarc.will_fail" and f.data.get("service") == service
    ]
    assert len(found) == 1
    return found[0]


@pytest.mark.usefixtures("knot_answers")
@pytest.mark.parametrize("case", CASES, ids=[c.domain for c in CASES])
def test_prediction_equals_the_independent_evaluation(
    engine: Engine, dns_server: KnotServer, signing_key: bytes, case: Case
) -> None:
    predicted = prediction_of(run(engine, case), case.service)
    expected = dmarc_verdict(case, signing_key, dns_server)
    assert (predicted.spf.ip, predicted.spf.mail_from) == (case.ip, case.mail_from)
    assert predicted.spf.result == expected.spf
    assert bool(predicted.spf.aligned) is expected.spf_aligned
    assert predicted.dkim.result == expected.dkim
    assert bool(predicted.dkim.aligned) is expected.dkim_aligned
    assert (predicted.dmarc, predicted.disposition) == (expected.dmarc, expected.disposition)


EXPECTED = {
    "align-m365-dkim.test": ("pass", "deliver"),
    "align-m365-nodkim.test": ("pass", "deliver"),
    "align-m365-nospf.test": ("fail", "reject"),
    "align-m365-quar.test": ("fail", "quarantine"),
    "align-m365-none.test": ("fail", "deliver"),
    "align-sg-strict.test": ("fail", "reject"),
    "align-sg-relaxed.test": ("pass", "deliver"),
    "align-sg-signed.test": ("pass", "deliver"),
    "align-google.test": ("pass", "deliver"),
    "align-google-nospf.test": ("fail", "quarantine"),
    TENANT_D: ("pass", "deliver"),
}


@pytest.mark.parametrize("case", CASES, ids=[c.domain for c in CASES])
def test_fixtures_cover_every_outcome_they_claim(engine: Engine, case: Case) -> None:
    """Guards the comparison above against a fixture that silently stopped exercising its
    outcome (both sides agreeing on the wrong thing)."""
    predicted = prediction_of(run(engine, case), case.service)
    assert (predicted.dmarc, predicted.disposition) == EXPECTED[case.domain]


def test_m365_without_dkim_or_spf_explains_the_whole_chain(engine: Engine) -> None:
    report = run(engine, CASES[2])
    found = will_fail(report, "microsoft365")
    assert (found.status, found.severity) == (Status.FAIL, Severity.CRITICAL)
    assert "SPF fail for align-m365-nospf.test" in found.detail
    assert (
        "no DKIM selector selector1/selector2 published for align-m365-nospf.test" in found.detail
    )
    assert "signs as <tenant>.onmicrosoft.com" in found.detail
    assert found.detail.endswith("DMARC p=reject: the message will be rejected.")
    assert found.data["disposition"] == "reject"
    spf_finding = next(f for f in report.findings if f.id == "spf.sender_not_authorized")
    assert spf_finding.status is Status.FAIL
    assert spf_finding.data["ip"] == M365_IP


def test_strict_aspf_breaks_the_sendgrid_return_path_that_relaxed_accepts(engine: Engine) -> None:
    strict = will_fail(run(engine, CASES[5]), "sendgrid")
    relaxed = will_fail(run(engine, CASES[6]), "sendgrid")
    assert strict.status is Status.FAIL and relaxed.status is Status.PASS
    assert (
        "SPF passes for em5678.align-sg-strict.test but does not align with "
        "align-sg-strict.test (aspf=s)" in strict.detail
    )
    assert "revoked: p= is empty" in strict.detail
    assert "relax the DMARC record to aspf=r" in strict.fix


def test_p_none_failure_is_a_warning_not_critical(engine: Engine) -> None:
    found = will_fail(run(engine, CASES[4]), "microsoft365")
    assert (found.status, found.severity) == (Status.FAIL, Severity.WARNING)
    assert "monitoring only" in found.detail


def test_mail_from_the_tenant_domain_itself_is_signed_aligned(engine: Engine) -> None:
    dkim_side = prediction_of(run(engine, CASES[10]), "microsoft365").dkim
    assert (dkim_side.domain, dkim_side.selector) == (TENANT_D, TENANT_S)
    assert (dkim_side.result, dkim_side.aligned) == ("pass", True)


def test_a_named_service_is_simulated_instead_of_the_detected_ones(engine: Engine) -> None:
    report = run(engine, CASES[9])
    facts = report.facts["alignment"]
    assert [p.service for p in facts.predictions] == ["google"]
    found = will_fail(report, "google")
    assert "SPF fail for align-google-nospf.test" in found.detail


def test_no_known_service_makes_the_prediction_unknown_with_the_reason(
    engine: Engine, dns_server: KnotServer
) -> None:
    report = engine.check(CheckRequest(domain="req-bare.test", probe_smtp=False))
    found = [f for f in report.findings if f.id == "dmarc.will_fail"]
    assert [f.status for f in found] == [Status.UNKNOWN]
    assert "no sending service was recognised" in found[0].detail


@pytest.mark.usefixtures("knot_answers")
def test_publishing_the_suggested_spf_record_makes_the_message_authenticate(
    engine: Engine, dns_server: KnotServer, signing_key: bytes, zones: Zones
) -> None:
    zone = "align-m365-roundtrip.test"
    case = Case(zone, "microsoft365", M365_IP, zone, TENANT_S, TENANT_D)
    before = run(engine, case)
    assert will_fail(before, "microsoft365").status is Status.FAIL
    [suggested] = [f for f in before.findings if f.id == "spf.sender_not_authorized"]
    [record] = suggested.records
    assert (record.type, record.name) == ("TXT", zone)
    spf = '@          TXT   "v=spf1'
    zones.publish(zone, drop=[spf], add=[f'@          TXT   "{record.value}"'])
    with Engine(settings_for(dns_server)) as fresh:  # the first engine caches the old answer
        after = run(fresh, case)
    assert will_fail(after, "microsoft365").status is Status.PASS
    assert not [f for f in after.findings if f.id == "spf.sender_not_authorized" and f.is_problem]
    predicted = prediction_of(after, case.service)
    expected = dmarc_verdict(case, signing_key, dns_server)
    assert (predicted.spf.result, predicted.dmarc) == (expected.spf, expected.dmarc)
    assert expected.dmarc == "pass"
