"""BIMI against Knot (tests/zones/bimi-cases.test.zone) and the HTTPS policy host serving the
logos (tests/fixtures/policy_host.py), verified against the test PKI only."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from sendready.checks import bimi, dmarc
from sendready.config import Settings
from sendready.dns import parse_nameservers
from sendready.engine import Engine
from sendready.model import CheckRequest, Finding, Report, Status
from tests.conftest import NET
from tests.fixtures.policy_host import svg


@pytest.fixture(scope="module")
def engine(dns_server, policy_host, pki) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    settings = Settings(
        dns_servers=parse_nameservers(dns_server.nameserver),
        allow_private_targets=(ipaddress.ip_network(f"{NET}.0/24"),),
        ca_file=pki.ca,
    )
    with Engine(settings, checks={"bimi": bimi.check}) as e:
        yield e


def run(engine: Engine, case: str) -> Report:
    domain = case if case.endswith(".test") else f"{case}.bimi-cases.test"
    return engine.check(CheckRequest(domain=domain, probe_smtp=False))


def one(report: Report, id: str) -> Finding:
    (finding,) = [f for f in report.findings if f.id == id]
    return finding


def fails(report: Report) -> set[str]:
    return {f.id for f in report.findings if f.status is Status.FAIL}


def test_a_good_logo_with_enforced_dmarc_passes(engine: Engine) -> None:
    report = run(engine, "good")
    assert fails(report) == set()
    assert one(report, "bimi.svg_invalid").status is Status.PASS
    assert one(report, "bimi.dmarc_not_enforced").status is Status.PASS
    # a= is read but mark certificates are not validated: said, not passed.
    assert one(report, "bimi.certificate").status is Status.UNKNOWN


@pytest.mark.parametrize(
    ("case", "said"),
    [
        ("script", "<script>"),
        ("wide", "square"),
        ("full", "tiny-ps"),
        ("external", "external reference"),
    ],
)
def test_svg_tiny_ps_basics(engine: Engine, case: str, said: str) -> None:
    finding = one(run(engine, case), "bimi.svg_invalid")
    assert finding.status is Status.FAIL
    assert said in finding.detail


def test_a_logo_over_32_kb_is_refused_unread(engine: Engine) -> None:
    finding = one(run(engine, "big"), "bimi.logo_unreachable")
    assert finding.status is Status.FAIL and "32768" in finding.title


def test_a_missing_logo_fails(engine: Engine) -> None:
    finding = one(run(engine, "missing"), "bimi.logo_unreachable")
    assert finding.status is Status.FAIL and "404" in finding.title


@pytest.mark.parametrize(("case", "said"), [("none", "p=none"), ("spnone", "sp=none")])
def test_dmarc_must_be_at_enforcement(engine: Engine, case: str, said: str) -> None:
    finding = one(run(engine, case), "bimi.dmarc_not_enforced")
    assert finding.status is Status.FAIL and said in finding.title
    assert "p=quarantine" in finding.fix


def test_record_problems(engine: Engine) -> None:
    assert fails(run(engine, "http")) == {"bimi.record_invalid"}
    declined = one(run(engine, "declined"), "bimi.record_invalid")
    assert declined.status is Status.PASS and "declined" in declined.title
    assert one(run(engine, "nobimi"), "bimi.not_published").status is Status.FAIL


def test_svg_checks_on_bytes() -> None:
    assert bimi.svg_problems(svg().encode()) == []
    assert bimi.svg_problems(svg(title="").encode()) == ["no <title> element"]
    bomb = b'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaa">]><svg>&a;</svg>'
    assert "entities" in bimi.svg_problems(bomb)[0]
    assert "well-formed" in bimi.svg_problems(b"<svg")[0]
    onload = svg(extra='<rect onclick="x()" width="1" height="1"/>').encode()
    assert any("event handler" in p for p in bimi.svg_problems(onload))


def test_an_inherited_dmarc_policy_counts_when_the_dmarc_check_runs(
    dns_server,
    policy_host,
    pki,  # type: ignore[no-untyped-def]
) -> None:
    settings = Settings(
        dns_servers=parse_nameservers(dns_server.nameserver),
        allow_private_targets=(ipaddress.ip_network(f"{NET}.0/24"),),
        ca_file=pki.ca,
    )
    with Engine(settings, checks={"bimi": bimi.check}) as e:
        alone = one(
            e.check(CheckRequest(domain="inherit.bimi-cases.test", probe_smtp=False)),
            "bimi.dmarc_not_enforced",
        )
    assert alone.status is Status.FAIL  # read alone, only _dmarc.<domain> is asked
    with Engine(settings, checks={"dmarc": dmarc.check, "bimi": bimi.check}) as e:
        report = e.check(CheckRequest(domain="inherit.bimi-cases.test", probe_smtp=False))
    finding = one(report, "bimi.dmarc_not_enforced")
    assert finding.status is Status.PASS and "_dmarc.bimi-cases.test" in finding.detail
