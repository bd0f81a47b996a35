"""The alignment simulation under DNS faults (the project's tiny DNS server): when an input
cannot be known the prediction is ``unknown`` with the reason, never a pass or a fail."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sendready.checks.alignment import AlignmentFacts
from sendready.config import Settings
from sendready.dns import Nameserver
from sendready.engine import Engine
from sendready.model import CheckRequest, Finding, Report, Status
from tests.servers.tiny_dns import TinyDns

SOA = "300 IN SOA ns.{0}. hostmaster.{0}. 1 3600 600 86400 60"
ZONE = f"""
test. {SOA.format("test")}
outlook.test. {SOA.format("outlook.test")}
spf.protection.outlook.test. 300 IN TXT "v=spf1 include:spfa.protection.outlook.test -all"
spfa.protection.outlook.test. 300 IN TXT "v=spf1 ip6:2001:db8:100::/48 ip4:192.0.2.0/25 -all"
google.test. {SOA.format("google.test")}
_spf.google.test. 300 IN TXT "v=spf1 ip4:203.0.113.0/26 ~all"
align-fault.test. {SOA.format("align-fault.test")}
align-fault.test. 300 IN TXT "v=spf1 include:spf.protection.outlook.test -all"
_dmarc.align-fault.test. 300 IN TXT "v=DMARC1; p=reject"
"""


@pytest.fixture
def faulty(fault_dns: TinyDns) -> Iterator[TinyDns]:
    fault_dns.load_zone(ZONE)
    fault_dns.faults.clear()
    fault_dns.delay_ms = 0
    yield fault_dns
    fault_dns.faults.clear()


def run(server: TinyDns, service: str | None = None) -> Report:
    settings = Settings(
        dns_servers=(Nameserver(server.address, server.port),),
        # Generous for a loaded machine: only the faults may time out, never a real answer.
        dns_timeout=1.0,
        check_budget=4,
        provider_aliases={"outlook.com": "outlook.test", "google.com": "google.test"},
    )
    with Engine(settings) as engine:
        return engine.check(
            CheckRequest(
                domain="align-fault.test",
                address="a@align-fault.test",
                service=service,
                probe_smtp=False,
            )
        )


def will_fail(report: Report) -> Finding:
    [found] = [f for f in report.findings if f.id == "dmarc.will_fail"]
    return found


def test_without_faults_the_fixture_passes_on_spf_alone(
    faulty: TinyDns,
) -> None:
    # SPF aligns (Microsoft 365 uses the From address as MAIL FROM), so DMARC passes.
    report = run(faulty)
    assert will_fail(report).status is Status.PASS
    # The egress address comes from the first range of the nested include, as listed.
    [prediction] = report.facts["alignment"].predictions
    assert prediction.spf.ip == "2001:db8:100::1"


def test_a_timeout_on_the_services_spf_include_makes_the_prediction_unknown(
    faulty: TinyDns,
) -> None:
    faulty.fault("spf.protection.outlook.test", "TXT", "timeout")
    report = run(faulty)
    found = will_fail(report)
    assert found.status is Status.UNKNOWN
    assert "no egress address of Microsoft 365 could be found" in found.detail
    facts = report.facts["alignment"]
    assert isinstance(facts, AlignmentFacts)
    [prediction] = facts.predictions
    assert (prediction.spf.result, prediction.dmarc) == ("unknown", "unknown")


def test_unaligned_mail_with_an_unreadable_policy_has_an_unknown_disposition(
    faulty: TinyDns,
) -> None:
    # Google Workspace is not in this SPF record and has no key here: nothing aligns.
    before = will_fail(run(faulty, "google"))
    assert (before.status, before.data["disposition"]) == (Status.FAIL, "reject")
    faulty.fault("_dmarc.align-fault.test", "TXT", "servfail")
    found = will_fail(run(faulty, "google"))
    assert found.status is Status.UNKNOWN
    assert (found.data["dmarc"], found.data["disposition"]) == ("fail", "unknown")
    assert "the policy could not be read" in found.detail
