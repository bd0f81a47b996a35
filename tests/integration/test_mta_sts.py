"""MTA-STS and TLS-RPT against Knot (tests/zones/sts-cases.test.zone) and the HTTPS policy host
on 127.0.10.43 with a certificate from the test PKI."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from sendready.checks import mta_sts, mx, tlsrpt
from sendready.config import Settings
from sendready.dns import parse_nameservers
from sendready.engine import Engine
from sendready.model import CheckRequest, Finding, Report, Severity, Status
from tests.conftest import NET

ALIASES = {"outlook.com": "outlook.test", "google.com": "google.test"}


@pytest.fixture(scope="module")
def engine(dns_server, policy_host, pki) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    settings = Settings(
        dns_servers=parse_nameservers(dns_server.nameserver),
        provider_aliases=ALIASES,
        allow_private_targets=(ipaddress.ip_network(f"{NET}.0/24"),),
        ca_file=pki.ca,
    )
    checks = {"mx": mx.check, "mta_sts": mta_sts.check, "tlsrpt": tlsrpt.check}
    with Engine(settings, checks=checks) as e:
        yield e


def run(engine: Engine, name: str) -> Report:
    domain = name if "." in name else f"{name}.sts-cases.test"
    return engine.check(CheckRequest(domain=domain, probe_smtp=False))


def of(report: Report, area: str) -> list[Finding]:
    return [f for f in report.findings if f.area == area]


def fails(report: Report, area: str = "mta_sts") -> set[str]:
    return {f.id for f in of(report, area) if f.status is Status.FAIL}


def one(report: Report, id: str) -> Finding:
    (finding,) = [f for f in report.findings if f.id == id]
    return finding


def test_a_valid_enforce_policy_covering_the_mx_passes(engine: Engine) -> None:
    report = run(engine, "good")
    assert fails(report) == set() and fails(report, "tlsrpt") == set()
    assert one(report, "mta_sts.policy_unreachable").status is Status.PASS
    assert one(report, "mta_sts.mx_mismatch").status is Status.PASS
    assert report.facts["mta_sts"].policy.mode == "enforce"


def test_the_wildcard_covers_exactly_one_label(engine: Engine) -> None:
    assert fails(run(engine, "wild")) == set()
    deep = one(run(engine, "deep"), "mta_sts.mx_mismatch")
    assert (deep.status, deep.subject) == (Status.FAIL, "a.b.deep.sts-cases.test")


def test_an_mx_outside_the_policy_is_a_mismatch_critical_under_enforce(engine: Engine) -> None:
    finding = one(run(engine, "mismatch"), "mta_sts.mx_mismatch")
    assert (finding.status, finding.severity) == (Status.FAIL, Severity.CRITICAL)
    assert "mx: mx.mismatch.sts-cases.test" in finding.fix
    testing = run(engine, "testing")
    assert one(testing, "mta_sts.mx_mismatch").severity is Severity.WARNING
    assert "mta_sts.mode" in fails(testing)


@pytest.mark.parametrize(
    ("case", "said"),
    [
        ("redirect", "HTTP 301"),
        ("notfound", "HTTP 404"),
        ("invalid", "mode: 'strict'"),
        ("big", "larger than 65536"),
        ("badcert", "certificate"),
        ("nohost", "no A or AAAA"),
    ],
)
def test_an_invalid_or_refused_policy_is_a_fail(engine: Engine, case: str, said: str) -> None:
    finding = one(run(engine, case), "mta_sts.policy_unreachable")
    assert finding.status is Status.FAIL
    assert said in finding.title or said in finding.detail


def test_the_redirect_is_not_followed(engine: Engine, policy_host) -> None:  # type: ignore[no-untyped-def]
    before = policy_host.hits.get(("mta-sts.good.sts-cases.test", mta_sts.POLICY_PATH), 0)
    run(engine, "redirect")
    after = policy_host.hits.get(("mta-sts.good.sts-cases.test", mta_sts.POLICY_PATH), 0)
    assert after == before


@pytest.mark.parametrize(
    ("case", "said"), [("unreachable", "cannot connect"), ("private", "10.0.0.1")]
)
def test_a_policy_that_cannot_be_fetched_is_unknown_not_invalid(
    engine: Engine, case: str, said: str
) -> None:
    finding = one(run(engine, case), "mta_sts.policy_unreachable")
    assert finding.status is Status.UNKNOWN
    assert said in finding.detail


def test_text_html_is_flagged_but_the_policy_still_counts(engine: Engine) -> None:
    report = run(engine, "html")
    assert fails(report) == {"mta_sts.policy_media_type"}
    assert one(report, "mta_sts.policy_unreachable").status is Status.PASS


def test_record_problems(engine: Engine) -> None:
    assert "mta_sts.record_invalid" in fails(run(engine, "noid"))
    assert fails(run(engine, "two")) == {"mta_sts.record_invalid"}
    none = one(run(engine, "none"), "mta_sts.not_published")
    assert (none.status, none.severity) == (Status.FAIL, Severity.INFO)


def test_mta_sts_without_tls_rpt_is_tlsrpt_missing(engine: Engine) -> None:
    finding = one(run(engine, "nortp"), "tlsrpt.missing")
    assert finding.status is Status.FAIL and "MTA-STS" in finding.title
    assert fails(run(engine, "badrpt"), "tlsrpt") == {"tlsrpt.syntax_error"}
    assert one(run(engine, "none"), "tlsrpt.missing").status is Status.PASS
