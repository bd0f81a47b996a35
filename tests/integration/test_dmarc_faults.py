"""DMARC under DNS faults, served by the project's tiny DNS server (``fault_dns``):
SERVFAIL, REFUSED and timeouts give ``unknown`` with the reason, never "missing"."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from sendready.checks import dmarc
from sendready.config import Settings
from sendready.dns import Deadline, Nameserver, Resolver
from sendready.engine import CheckContext, Section
from sendready.model import CheckRequest, Finding, Status
from tests.conftest import addr
from tests.servers.tiny_dns import TinyDns

MX = addr(25)
SOA = "300 IN SOA ns.{0}. hostmaster.{0}. 1 3600 600 86400 60"
ZONE = f"""
test. {SOA.format("test")}
dmarc-fault.test. {SOA.format("dmarc-fault.test")}
dmarc-fault.test. 300 IN MX 10 mx.dmarc-fault.test.
mx.dmarc-fault.test. 300 IN A {MX}
_dmarc.dmarc-fault.test. 300 IN TXT "v=DMARC1; p=reject; rua=mailto:agg@rcv.dmarc-faultrcv.test"
sub.dmarc-fault.test. 300 IN A {MX}
_dmarc.own.dmarc-fault.test. 300 IN TXT "v=DMARC1; p=quarantine; rua=mailto:d@dmarc-fault.test"
own.dmarc-fault.test. 300 IN A {MX}
dmarc-faultrcv.test. {SOA.format("dmarc-faultrcv.test")}
rcv.dmarc-faultrcv.test. 300 IN MX 10 mx.dmarc-fault.test.
"""

AUTH = "dmarc-fault.test._report._dmarc.rcv.dmarc-faultrcv.test"


@pytest.fixture
def faulty(fault_dns: TinyDns) -> Iterator[TinyDns]:
    fault_dns.load_zone(ZONE)
    fault_dns.faults.clear()
    fault_dns.delay_ms = 0
    yield fault_dns
    fault_dns.faults.clear()


def check(server: TinyDns, domain: str, *, timeout: float = 0.4, budget: float = 5) -> Section:
    resolver = Resolver([Nameserver(server.address, server.port)], timeout=timeout)

    async def go() -> Section:
        deadline = Deadline.after(budget)
        ctx = CheckContext(
            CheckRequest(domain=domain, probe_smtp=False),
            resolver.session(deadline),
            Settings(),
            deadline,
        )
        return await dmarc.check(ctx)

    return asyncio.run(go())


def ids(section: Section, status: Status) -> set[str]:
    return {f.id for f in section.findings if f.status is status}


def one(section: Section, id: str) -> Finding:
    (finding,) = [f for f in section.findings if f.id == id]
    return finding


def test_without_faults_the_only_problem_is_the_unauthorised_destination(faulty: TinyDns) -> None:
    section = check(faulty, "dmarc-fault.test")
    assert ids(section, Status.FAIL) == {"dmarc.report_destination_unauthorized"}
    assert ids(section, Status.UNKNOWN) == set()
    assert section.facts.policy == "reject"


def test_servfail_at_the_domain_is_unknown_never_missing(faulty: TinyDns) -> None:
    faulty.fault("_dmarc.dmarc-fault.test", "TXT", "servfail")
    section = check(faulty, "dmarc-fault.test")
    assert ids(section, Status.UNKNOWN) == {"dmarc.lookup_failed"}
    assert ids(section, Status.FAIL) == set()
    assert "SERVFAIL" in one(section, "dmarc.lookup_failed").detail
    assert section.facts.policy is None and section.facts.unknown


def test_a_timeout_at_the_parent_leaves_a_subdomain_unknown(faulty: TinyDns) -> None:
    faulty.fault("_dmarc.dmarc-fault.test", "TXT", "timeout")
    section = check(faulty, "sub.dmarc-fault.test")
    assert ids(section, Status.UNKNOWN) == {"dmarc.lookup_failed"}
    assert "dmarc.missing" not in ids(section, Status.FAIL)
    assert "no answer within" in one(section, "dmarc.lookup_failed").detail


def test_a_refused_query_is_unknown_too(faulty: TinyDns) -> None:
    faulty.fault("_dmarc.sub.dmarc-fault.test", "TXT", "refused")
    section = check(faulty, "sub.dmarc-fault.test")
    assert ids(section, Status.UNKNOWN) == {"dmarc.lookup_failed"}
    assert "refused" in one(section, "dmarc.lookup_failed").detail


def test_a_failure_beyond_the_record_found_does_not_matter(faulty: TinyDns) -> None:
    faulty.fault("_dmarc.test", "TXT", "timeout")
    section = check(faulty, "own.dmarc-fault.test")
    assert section.facts.policy == "quarantine"
    assert "dmarc.present" in ids(section, Status.PASS)
    assert ids(section, Status.UNKNOWN) == set()


def test_the_request_deadline_bounds_a_dead_server(faulty: TinyDns) -> None:
    faulty.fault("_dmarc.dmarc-fault.test", "TXT", "timeout")
    # Per-query timeout longer than the whole budget: the deadline must end the wait.
    section = check(faulty, "dmarc-fault.test", timeout=10, budget=0.5)
    assert ids(section, Status.UNKNOWN) == {"dmarc.lookup_failed"}


def test_a_temporary_error_on_the_authorisation_record_is_unknown(faulty: TinyDns) -> None:
    faulty.fault(AUTH, "TXT", "servfail")
    section = check(faulty, "dmarc-fault.test")
    finding = one(section, "dmarc.report_destination_unauthorized")
    assert finding.status is Status.UNKNOWN and "SERVFAIL" in finding.detail
    assert section.facts.destinations[0].authorized is None


def test_an_absent_authorisation_record_is_unauthorised(faulty: TinyDns) -> None:
    section = check(faulty, "dmarc-fault.test")
    finding = one(section, "dmarc.report_destination_unauthorized")
    assert finding.status is Status.FAIL
    assert f'`{AUTH}. IN TXT "v=DMARC1"`' in finding.fix


def test_a_failed_mx_lookup_of_the_report_domain_is_unknown(faulty: TinyDns) -> None:
    faulty.fault("rcv.dmarc-faultrcv.test", "MX", "refused")
    section = check(faulty, "dmarc-fault.test")
    finding = one(section, "dmarc.report_domain_no_mail")
    assert finding.status is Status.UNKNOWN and "refused" in finding.detail


def test_a_truncated_answer_is_read_over_tcp(faulty: TinyDns) -> None:
    faulty.fault("_dmarc.own.dmarc-fault.test", "TXT", "truncate")
    section = check(faulty, "own.dmarc-fault.test")
    assert section.facts.record == "v=DMARC1; p=quarantine; rua=mailto:d@dmarc-fault.test"
