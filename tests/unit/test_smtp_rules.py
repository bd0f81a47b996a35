"""SMTP rules on probe facts (no network): each outcome maps to its own finding id."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from sendready.checks.smtp import findings_for, parse_submission, ptr_findings
from sendready.model import Status
from sendready.providers import TlsMode
from sendready.smtp.client import Reply, auth_mechanisms, parse_ehlo
from sendready.smtp.probe import (
    AuthOutcome,
    CertFacts,
    Mode,
    Outcome,
    ProbeResult,
    Target,
    TlsFacts,
    XOAuth2,
    cert_facts,
    name_matches,
)

MX = Target("mx.example.test", "192.0.2.25", 25, Mode.STARTTLS, "mx")
SUB = Target("smtp.example.test", "192.0.2.87", 587, Mode.STARTTLS, "submission")


def cert(**kw: object) -> CertFacts:
    base: dict[str, object] = dict(
        subject="CN=mx", issuer="CN=CA", names=("mx.example.test",), not_before="2026-01-01",
        not_after="2027-01-01", days_left=30, key_type="EC secp256r1", key_bits=256,
        self_signed=False, chain_length=2, trusted=True, verify_error="", name_matches=True,
        expired=False, not_yet_valid=False,
    )  # fmt: skip
    base.update(kw)
    return CertFacts(**base)  # type: ignore[arg-type]


def ok(target: Target = MX, **kw: object) -> ProbeResult:
    base: dict[str, object] = dict(
        banner="220 mx.example.test ESMTP", banner_code=220, banner_name="mx.example.test",
        banner_ms=12.0, starttls_offered=True, tls=TlsFacts("TLSv1.3", "TLS_AES_256", 256, cert()),
        auth_after_tls=("PLAIN", "LOGIN") if target.role == "submission" else (),
    )  # fmt: skip
    base.update(kw)
    return ProbeResult(target, Outcome.OK, **base)  # type: ignore[arg-type]


def ids(result: ProbeResult, status: Status = Status.FAIL, **kw: object) -> list[str]:
    return [f.id for f in findings_for(result, slow_banner=5.0, **kw) if f.status is status]  # type: ignore[arg-type]


def test_a_clean_mx_passes_with_tls_ok() -> None:
    assert ids(ok()) == []
    assert ids(ok(), Status.PASS) == ["smtp.tls_ok"]


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (Outcome.REFUSED, "smtp.unreachable"),
        (Outcome.UNREACHABLE, "smtp.unreachable"),
        (Outcome.CONNECT_TIMEOUT, "smtp.port_blocked"),
        (Outcome.TARGET_REFUSED, "smtp.target_refused"),
        (Outcome.GREETING_REJECTED, "smtp.greeting_rejected"),
        (Outcome.PROTOCOL_ERROR, "smtp.protocol_error"),
        (Outcome.CLOSED, "smtp.protocol_error"),
        (Outcome.TLS_RESET, "smtp.tls_reset"),
        (Outcome.TLS_OUTDATED, "smtp.tls_outdated"),
        (Outcome.TLS_FAILED, "smtp.tls_failed"),
    ],
)
def test_every_failed_outcome_has_its_own_fail_finding(outcome: Outcome, expected: str) -> None:
    result = ProbeResult(MX, outcome, reason="why", banner="421 4.3.2 busy", banner_code=421)
    (finding,) = findings_for(result, slow_banner=5.0)
    assert (finding.id, finding.status) == (expected, Status.FAIL)
    assert finding.fix and finding.spec


def test_a_probe_out_of_time_is_unknown_never_a_guess() -> None:
    result = ProbeResult(MX, Outcome.DEADLINE, stage="banner", reason="stopped after 2.0 s")
    (finding,) = findings_for(result, slow_banner=5.0)
    assert (finding.id, finding.status) == ("smtp.timeout", Status.UNKNOWN)
    assert "tarpitting" in finding.detail


def test_port_blocked_suggests_alternatives() -> None:
    mx = findings_for(ProbeResult(MX, Outcome.CONNECT_TIMEOUT, reason="x"), slow_banner=5)
    assert "587" in mx[0].fix and "465" in mx[0].fix
    sub = ProbeResult(SUB, Outcome.CONNECT_TIMEOUT, reason="x")
    (f,) = findings_for(sub, slow_banner=5, offered_ports=[587, 465], service="SendGrid")
    assert "465 (implicit TLS)" in f.fix and "SendGrid" in f.fix
    (m365,) = findings_for(sub, slow_banner=5, offered_ports=[587], service="Microsoft 365")
    assert "offers no other port" in m365.fix


def test_certificate_problems_are_separate_findings_and_not_missing_starttls() -> None:
    bad = cert(trusted=False, name_matches=False, expired=True, verify_error="self-signed")
    result = ok(tls=TlsFacts("TLSv1.3", "X", 256, bad))
    assert sorted(ids(result)) == [
        "smtp.cert_expired", "smtp.cert_name_mismatch", "smtp.cert_untrusted",
    ]  # fmt: skip
    assert ids(result, Status.PASS) == []


def test_weak_keys() -> None:
    result = ok(tls=TlsFacts("TLSv1.3", "X", 256, cert(key_type="RSA", key_bits=1024)))
    assert ids(result) == ["smtp.cert_weak_key"]


def test_no_starttls_is_critical_on_submission_and_a_warning_on_mx() -> None:
    mx = findings_for(ok(starttls_offered=False, tls=None), slow_banner=5.0)
    sub = findings_for(ok(SUB, starttls_offered=False, tls=None), slow_banner=5.0)
    assert [(f.id, f.severity.value) for f in mx] == [("smtp.starttls_missing", "warning")]
    assert ("smtp.starttls_missing", "critical") in [(f.id, f.severity.value) for f in sub]


def test_slow_banner_is_reported_as_tarpitting() -> None:
    assert ids(ok(banner_ms=7000.0)) == ["smtp.slow_banner"]


def test_submission_auth_rules() -> None:
    assert ids(ok(SUB), Status.PASS) == ["smtp.tls_ok", "smtp.auth_offered"]
    assert ids(ok(SUB, auth_after_tls=())) == ["smtp.auth_not_offered"]
    assert ids(ok(SUB, auth_before_tls=("PLAIN", "LOGIN"))) == ["smtp.auth_before_tls"]
    # on an MX, AUTH is nobody's business
    assert ids(ok(auth_before_tls=("PLAIN",))) == []


def test_xoauth2_outcomes_are_explained() -> None:
    refused = AuthOutcome("XOAUTH2", False, 535, "535 5.7.3 Authentication unsuccessful")
    (f,) = [
        x for x in findings_for(ok(SUB, auth=refused), slow_banner=5) if x.status is Status.FAIL
    ]
    assert f.id == "smtp.auth_failed" and f.data["explanation"] == "m365.auth_unsuccessful"
    bare = AuthOutcome("XOAUTH2", False, 535, "535 Authentication unsuccessful")
    (g,) = [x for x in findings_for(ok(SUB, auth=bare), slow_banner=5) if x.status is Status.FAIL]
    assert g.data["explanation"] == "auth.unsuccessful_xoauth2"
    accepted = AuthOutcome("XOAUTH2", True, 235, "235 2.7.0 Authentication successful")
    assert "smtp.auth_ok" in ids(ok(SUB, auth=accepted), Status.PASS)
    missing = AuthOutcome("XOAUTH2", False, None, "", offered=False)
    assert ids(ok(SUB, auth=missing)) == ["smtp.auth_not_offered"]


def test_ptr_versus_banner_is_info_only() -> None:
    (f,) = ptr_findings(ok(), ["other.example.test."])
    assert (f.id, f.status.value, f.severity.value) == ("smtp.ptr_mismatch", "fail", "info")
    assert ptr_findings(ok(), ["MX.example.test."]) == []
    assert ptr_findings(ok(), []) == []


def test_parse_submission() -> None:
    assert [(e.host, e.port, e.tls) for e in parse_submission("Smtp.Example.TEST")] == [
        ("smtp.example.test", 587, TlsMode.STARTTLS),
        ("smtp.example.test", 465, TlsMode.IMPLICIT),
    ]
    assert [(e.port, e.tls) for e in parse_submission("relay.test:465")] == [
        (465, TlsMode.IMPLICIT)
    ]
    assert parse_submission("[2001:db8::1]:2525")[0].host == "2001:db8::1"
    for bad in ("relay.test:0", "relay.test:x", ":25", "relay.test:70000"):
        with pytest.raises(ValueError):
            parse_submission(bad)


def test_name_matching_follows_rfc_6125() -> None:
    assert name_matches(["mx.example.test"], "MX.example.test.")
    assert name_matches(["*.example.test"], "mx.example.test")
    assert not name_matches(["*.example.test"], "a.mx.example.test")
    assert not name_matches(["*.test"], "example.test")
    assert not name_matches(["*.example.test"], "example.test")
    assert name_matches(["192.0.2.1"], "192.0.2.1")
    assert not name_matches(["mx.example.test"], "192.0.2.1")


def test_cert_facts_read_names_expiry_and_key() -> None:
    ca = trustme.CA()
    past = datetime.now(UTC) - timedelta(days=1)
    leaf = ca.issue_cert("mx.example.test", "192.0.2.1", not_after=past,
                         not_before=past - timedelta(days=30))  # fmt: skip
    der = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes()).public_bytes(Encoding.DER)
    facts = cert_facts(der, "mx.example.test", trusted=True)
    assert facts.names == ("mx.example.test", "192.0.2.1")
    assert facts.expired and facts.days_left < 0 and facts.name_matches
    assert facts.key_type.startswith("EC") and facts.key_bits == 256


def test_ehlo_parsing() -> None:
    reply = Reply(250, ("mx.example.test", "PIPELINING", "auth plain LOGIN", "STARTTLS"))
    caps = parse_ehlo(reply)
    assert set(caps) == {"PIPELINING", "AUTH", "STARTTLS"}
    assert auth_mechanisms(caps) == ("PLAIN", "LOGIN")


def test_the_token_is_not_in_the_repr_of_credentials() -> None:
    creds = XOAuth2("alice@example.test", "secret-token")
    assert "secret-token" not in repr(creds)
    assert "secret-token" not in repr(replace(creds))
