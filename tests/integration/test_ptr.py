"""PTR and FCrDNS of MX addresses against the in-process dnslib server (fault_dns), which can
serve reverse names for the test net whatever its prefix, and fail one name on demand."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sendready.checks import ptr
from sendready.config import Settings
from sendready.dns import parse_nameservers
from sendready.engine import Engine
from sendready.model import CheckRequest, Finding, Status
from tests.conftest import addr


def rev(last: int) -> str:
    return ptr.reverse_name(addr(last)) + "."


ZONE = f"""
ptr.test. 60 IN SOA ns.ptr.test. hostmaster.ptr.test. 1 3600 600 86400 60
good.ptr.test. 60 IN MX 10 mx.good.ptr.test.
mx.good.ptr.test. 60 IN A {addr(25)}
{rev(25)} 60 IN PTR mx.good.ptr.test.
noptr.ptr.test. 60 IN MX 10 mx.noptr.ptr.test.
mx.noptr.ptr.test. 60 IN A {addr(26)}
mismatch.ptr.test. 60 IN MX 10 mx.mismatch.ptr.test.
mx.mismatch.ptr.test. 60 IN A {addr(27)}
{rev(27)} 60 IN PTR other.ptr.test.
other.ptr.test. 60 IN A {addr(99)}
broken.ptr.test. 60 IN MX 10 mx.broken.ptr.test.
mx.broken.ptr.test. 60 IN A {addr(28)}
"""


@pytest.fixture(scope="module")
def engine(fault_dns) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    fault_dns.load_zone(ZONE)
    fault_dns.faults.clear()
    fault_dns.fault(rev(28), "PTR", "servfail")
    settings = Settings(dns_servers=parse_nameservers(fault_dns.nameserver), dns_timeout=0.5)
    try:
        with Engine(settings, checks={"ptr": ptr.check}) as e:
            yield e
    finally:
        fault_dns.faults.clear()


def only(engine: Engine, domain: str) -> Finding:
    (finding,) = engine.check(CheckRequest(domain=domain, probe_smtp=False)).findings
    return finding


def test_forward_confirmed_ptr_passes(engine: Engine) -> None:
    finding = only(engine, "good.ptr.test")
    assert (finding.id, finding.status) == ("ptr.fcrdns", Status.PASS)
    assert finding.data["ptr"] == ["mx.good.ptr.test"]


def test_no_ptr_is_missing_with_a_fix(engine: Engine) -> None:
    finding = only(engine, "noptr.ptr.test")
    assert (finding.id, finding.status) == ("ptr.missing", Status.FAIL)
    assert "mx.noptr.ptr.test" in finding.fix and addr(26) in finding.fix


def test_ptr_that_does_not_lead_back_fails_fcrdns(engine: Engine) -> None:
    finding = only(engine, "mismatch.ptr.test")
    assert (finding.id, finding.status) == ("ptr.fcrdns", Status.FAIL)
    assert "other.ptr.test" in finding.title


def test_a_failing_ptr_lookup_is_unknown_never_missing(engine: Engine) -> None:
    finding = only(engine, "broken.ptr.test")
    assert (finding.id, finding.status) == ("ptr.missing", Status.UNKNOWN)
    assert "servfail" in finding.detail.lower()
