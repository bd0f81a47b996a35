"""Every record check of issue 3 together (with the MX, SPF and DMARC checks) on the two
well-configured look-alike domains: they must raise no warning or critical finding (no false
alarms)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from sendready.checks import bimi, dkim, dmarc, dnssec, mta_sts, mx, ptr, services, spf, tlsrpt
from sendready.config import Settings
from sendready.dns import parse_nameservers
from sendready.engine import Engine
from sendready.model import CheckRequest, Report, Severity, Status
from tests.conftest import NET

ALIASES = {
    "outlook.com": "outlook.test",
    "onmicrosoft.com": "onmicrosoft.test",
    "google.com": "google.test",
    "sendgrid.net": "sendgrid.test",
}
CHECKS = {
    "mx": mx.check,
    "spf": spf.check,
    "dmarc": dmarc.check,
    "services": services.check,
    "dkim": dkim.check,
    "mta_sts": mta_sts.check,
    "tlsrpt": tlsrpt.check,
    "bimi": bimi.check,
    "dnssec": dnssec.check,
    "dane": dnssec.check_dane,
    "ptr": ptr.check,
}


@pytest.fixture(scope="module")
def engine(dns_server, policy_host, pki) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    settings = Settings(
        dns_servers=parse_nameservers(dns_server.nameserver),
        provider_aliases=ALIASES,
        allow_private_targets=(ipaddress.ip_network(f"{NET}.0/24"),),
        ca_file=pki.ca,
    )
    with Engine(settings, checks=CHECKS) as e:
        yield e


def run(engine: Engine, domain: str) -> Report:
    return engine.check(CheckRequest(domain=domain, probe_smtp=False))


def alarms(report: Report) -> list[str]:
    return [
        f"{f.id} {f.subject}: {f.title}"
        for f in report.findings
        if f.status is Status.FAIL and f.severity is not Severity.INFO
    ]


@pytest.mark.parametrize("domain", ["m365-good.test", "gws-sendgrid.test"])
def test_well_configured_domains_raise_no_alarm(engine: Engine, domain: str) -> None:
    report = run(engine, domain)
    assert alarms(report) == []
    passed = {f.id for f in report.findings if f.status is Status.PASS}
    assert {
        "services.detected",
        "dkim.weak_key",
        "mta_sts.policy_unreachable",
        "mta_sts.mx_mismatch",
        "mta_sts.mode",
        "bimi.svg_invalid",
        "bimi.dmarc_not_enforced",
    } <= passed
    assert report.facts["mta_sts"].mx_hosts == tuple(h.name for h in report.facts["mx"].hosts)


def test_m365_domain_is_detected_as_microsoft_365(engine: Engine) -> None:
    report = run(engine, "m365-good.test")
    assert report.facts["services"].ids == ("microsoft365",)
    assert not [f for f in report.findings if f.id == "tlsrpt.missing" and f.is_problem]


def test_without_tls_rpt_beside_mta_sts_is_an_alarm(engine: Engine) -> None:
    # The one alarm of the set on a domain that misses only TLS-RPT: proves alarms() can fail.
    report = run(engine, "nortp.sts-cases.test")
    mine = [a.split()[0] for a in alarms(report) if not a.startswith(("spf.", "dmarc."))]
    assert mine == ["tlsrpt.missing"]
