"""MX rules against Knot serving tests/zones/mx.test.zone."""

from __future__ import annotations

import pytest

from sendready.checks import mx
from sendready.config import Settings
from sendready.dns import parse_nameservers
from sendready.engine import Engine
from sendready.model import CheckRequest, Report, Severity, Status
from tests.conftest import NET


@pytest.fixture(scope="module")
def engine(dns_server):  # type: ignore[no-untyped-def]
    settings = Settings(
        dns_servers=parse_nameservers(dns_server.nameserver),
        allow_private_targets=(__import__("ipaddress").ip_network(f"{NET}.0/24"),),
    )
    with Engine(settings, checks={"mx": mx.check}) as e:
        yield e


def run(engine: Engine, domain: str) -> Report:
    return engine.check(CheckRequest(domain=domain, probe_smtp=False))


def ids(report: Report, status: Status = Status.FAIL) -> set[str]:
    return {f.id for f in report.findings if f.status is status}


def test_hosts_come_back_in_preference_order_with_their_addresses(engine: Engine) -> None:
    report = run(engine, "good.mx.test")
    facts = report.facts["mx"]
    assert [(h.name, h.preference) for h in facts.hosts] == [
        ("mx1.good.mx.test", 10),
        ("mx2.good.mx.test", 20),
    ]
    assert facts.hosts[0].addresses == (f"{NET}.25",)
    assert f"{NET}.26" in facts.hosts[1].addresses
    assert ids(report) == set()
    assert ids(report, Status.PASS) == {"mx.present", "mx.missing"}


def test_no_mx_with_an_address_is_the_implicit_mx(engine: Engine) -> None:
    report = run(engine, "implicit.mx.test")
    assert ids(report) == {"mx.implicit"}
    assert report.facts["mx"].implicit


def test_no_mx_and_no_address_cannot_receive_mail(engine: Engine) -> None:
    report = run(engine, "nomail.mx.test")
    (finding,) = report.findings
    assert (finding.id, finding.severity) == ("mx.missing", Severity.CRITICAL)


def test_a_name_that_does_not_exist_is_reported_as_such(engine: Engine) -> None:
    report = run(engine, "no-such-name.mx.test")
    assert ids(report) == {"mx.domain_not_found"}
    assert not report.facts["mx"].exists


def test_null_mx_on_a_parked_domain_is_fine(engine: Engine) -> None:
    report = run(engine, "null.mx.test")
    assert ids(report) == set()
    assert ids(report, Status.PASS) == {"mx.null_mx"}


def test_null_mx_on_a_domain_whose_spf_authorises_senders_is_critical(engine: Engine) -> None:
    report = run(engine, "nullsend.mx.test")
    (finding,) = report.findings
    assert finding.id == "mx.null_mx_on_sending_domain"
    assert finding.severity is Severity.CRITICAL
    assert "ip4:192.0.2.0/24" in finding.detail


def test_null_mx_next_to_other_mx_records_is_an_error(engine: Engine) -> None:
    assert ids(run(engine, "mixed.mx.test")) == {"mx.null_mx_mixed"}


def test_an_mx_pointing_at_a_cname_is_reported_with_its_target(engine: Engine) -> None:
    report = run(engine, "alias.mx.test")
    (finding,) = [f for f in report.findings if f.id == "mx.cname"]
    assert "mx1.good.mx.test" in finding.fix
    assert report.facts["mx"].hosts[0].addresses == (f"{NET}.25",)


def test_a_host_without_address_is_critical_when_it_is_the_only_one(engine: Engine) -> None:
    report = run(engine, "noaddr.mx.test")
    assert ids(report, Status.PASS) == {"mx.missing"}  # an MX exists, its host has no address
    (finding,) = (f for f in report.findings if f.status is Status.FAIL)
    assert (finding.id, finding.severity) == ("mx.no_address", Severity.CRITICAL)


def test_a_host_without_address_is_a_warning_when_another_takes_the_mail(engine: Engine) -> None:
    report = run(engine, "partial.mx.test")
    (finding,) = [f for f in report.findings if f.is_problem]
    assert (finding.id, finding.severity) == ("mx.no_address", Severity.WARNING)


@pytest.mark.parametrize(
    ("domain", "reason"),
    [("private.mx.test", "private address"), ("loopback.mx.test", "loopback address")],
)
def test_private_and_loopback_addresses_are_flagged(
    engine: Engine, domain: str, reason: str
) -> None:
    report = run(engine, domain)
    assert ids(report, Status.PASS) == {"mx.missing"}
    (finding,) = (f for f in report.findings if f.status is Status.FAIL)
    assert finding.id == "mx.private_address"
    assert reason in finding.detail


def test_duplicate_hosts_are_reported_once(engine: Engine) -> None:
    report = run(engine, "dup.mx.test")
    assert ids(report) == {"mx.duplicate_host"}
    assert len(report.facts["mx"].hosts) == 1


def test_an_ip_literal_exchange_is_critical(engine: Engine) -> None:
    assert "mx.ip_literal" in ids(run(engine, "literal.mx.test"))


def test_host_lookups_start_after_the_mx_answer_in_parallel(engine: Engine) -> None:
    engine.resolver.cache.clear()
    report = run(engine, "good.mx.test")
    # MX, then A and AAAA of both hosts at once: two round trips on the critical path.
    assert report.facts["dns"]["critical_path"] == 2
    assert report.facts["dns"]["queries"] == 5
