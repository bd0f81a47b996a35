"""checks/recipients.py against Knot (tests/zones/recip-cases.test.zone) and tiny_dns faults."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from sendready.checks import recipients
from sendready.config import Settings
from sendready.dns import parse_nameservers
from sendready.engine import Engine
from sendready.model import CheckRequest, Finding, Report, Severity, Status
from tests.conftest import NET
from tests.servers.tiny_dns import TinyDns

Z = "recip-cases.test"


def _engine(nameserver: str, **settings: object) -> Engine:
    return Engine(
        Settings(
            dns_servers=parse_nameservers(nameserver),
            allow_private_targets=(ipaddress.ip_network(f"{NET}.0/24"),),
            **settings,  # type: ignore[arg-type]
        ),
        checks={"recipients": recipients.check},
    )


@pytest.fixture(scope="module")
def engine(dns_server) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    with _engine(dns_server.nameserver) as e:
        yield e


def run(engine: Engine, *to: str, budget: float | None = None) -> Report:
    return engine.check(
        CheckRequest(domain="sender.test", recipients=tuple(to), probe_smtp=False, budget=budget)
    )


def only(report: Report, finding_id: str) -> Finding:
    (finding,) = [f for f in report.findings if f.id == finding_id]
    return finding


def test_a_domain_with_mx_accepts_mail(engine: Engine) -> None:
    report = run(engine, f"bob@good.{Z}")
    finding = only(report, "recipient.accepts_mail")
    assert finding.status is Status.PASS
    assert f"mx1.good.{Z}" in finding.detail
    assert not [f for f in report.findings if f.is_problem]
    (fact,) = report.facts["recipients"].domains
    assert fact.exists and fact.mx_hosts == (f"mx1.good.{Z}",)


def test_a_domain_that_does_not_exist_is_critical(engine: Engine) -> None:
    finding = only(run(engine, f"bob@missing.{Z}"), "recipient.domain_missing")
    assert (finding.status, finding.severity) == (Status.FAIL, Severity.CRITICAL)
    assert "NXDOMAIN" in finding.detail
    assert finding.fix and finding.spec


def test_a_null_mx_domain_accepts_no_mail(engine: Engine) -> None:
    finding = only(run(engine, f"bob@null.{Z}"), "recipient.no_mail")
    assert (finding.status, finding.severity) == (Status.FAIL, Severity.CRITICAL)
    assert "556 5.1.10" in finding.detail
    assert "RFC 7505" in finding.spec


def test_no_mx_and_no_address_accepts_no_mail(engine: Engine) -> None:
    finding = only(run(engine, f"bob@nomail.{Z}"), "recipient.no_mail")
    assert finding.status is Status.FAIL
    assert "no MX and no address" in finding.title


def test_no_mx_but_an_address_is_the_implicit_mx(engine: Engine) -> None:
    report = run(engine, f"bob@implicit.{Z}")
    assert only(report, "recipient.implicit_mx").status is Status.PASS
    assert not [f for f in report.findings if f.is_problem]


def test_an_mta_sts_record_is_reported_without_a_fetcher_as_announced(engine: Engine) -> None:
    report = run(engine, f"bob@sts.{Z}")
    finding = only(report, "recipient.mta_sts_enforced")
    assert finding.status is Status.PASS
    assert finding.data["mode"] is None
    assert "v=STSv1; id=20261202T000000" in finding.detail
    assert report.facts["recipients"].domains[0].mta_sts == "announced"


def test_the_policy_mode_comes_from_the_fetcher_service(dns_server) -> None:  # type: ignore[no-untyped-def]
    asked: list[str] = []

    async def fetch(domain: str) -> str | None:
        asked.append(domain)
        return "version: STSv1\nmode: enforce\nmx: mx1.good.recip-cases.test\nmax_age: 600\n"

    with _engine(dns_server.nameserver) as engine:
        ctx_services = {"mta_sts_policy": fetch}
        report = engine.call(_run_with_services(engine, f"bob@sts.{Z}", ctx_services))
    assert asked == [f"sts.{Z}"]
    finding = only(report, "recipient.mta_sts_enforced")
    assert finding.data["mode"] == "enforce"
    assert "requires verified TLS" in finding.title


async def _run_with_services(engine: Engine, to: str, services: dict[str, object]) -> Report:
    # The engine has no public hook for services yet; run the check on a context directly.
    from sendready.dns import Deadline
    from sendready.engine import CheckContext

    request = CheckRequest(domain="sender.test", recipients=(to,), probe_smtp=False)
    deadline = Deadline.after(5)
    ctx = CheckContext(
        request, engine.resolver.session(deadline), engine.settings, deadline, services
    )
    section = await recipients.check(ctx)
    return Report("sender.test", None, "", 0.0, section.findings, {"recipients": section.facts})


def test_two_mta_sts_records_make_the_policy_unusable(engine: Engine) -> None:
    finding = only(run(engine, f"bob@stsdouble.{Z}"), "recipient.mta_sts_invalid")
    assert finding.status is Status.FAIL
    assert "2 MTA-STS records" in finding.title


def test_a_txt_record_that_is_not_mta_sts_is_ignored(engine: Engine) -> None:
    report = run(engine, f"bob@stsother.{Z}")
    assert not [f for f in report.findings if f.id.startswith("recipient.mta_sts")]


def test_a_typo_of_a_big_provider_is_suggested_whatever_dns_says(engine: Engine) -> None:
    # Knot is not authoritative for com., so it REFUSES: the MX is unknown, the typo is not.
    report = run(engine, "bob@gmial.com")
    typo = only(report, "recipient.possible_typo")
    assert typo.status is Status.FAIL
    assert typo.data["suggestion"] == "gmail.com"
    assert "bob@gmail.com" in typo.fix
    assert only(report, "recipient.no_mail").status is Status.UNKNOWN


def test_domains_are_deduplicated_and_checked_concurrently(engine: Engine) -> None:
    engine.resolver.cache.clear()
    report = run(
        engine,
        f"a@good.{Z}",
        f"B@GOOD.{Z}",
        f"c@null.{Z}",
        f"d@missing.{Z}",
        f"e@sts.{Z}",
    )
    facts = report.facts["recipients"]
    assert [d.domain for d in facts.domains] == [
        f"good.{Z}",
        f"null.{Z}",
        f"missing.{Z}",
        f"sts.{Z}",
    ]
    # The local part keeps its case (RFC 5321 §2.4); the domain is normalised.
    assert facts.domains[0].recipients == (f"a@good.{Z}", f"B@good.{Z}")
    # Every MX and _mta-sts question is asked at once; the one domain announcing MTA-STS
    # then has its policy host's A and AAAA looked up for the policy fetch: 4 × 2 + 2.
    assert report.facts["dns"]["queries"] == 10


def test_an_invalid_address_is_reported_not_raised(engine: Engine) -> None:
    report = run(engine, "not an address", f"bob@good.{Z}")
    bad = only(report, "recipient.invalid_address")
    assert bad.subject == "not an address"
    assert only(report, "recipient.accepts_mail").status is Status.PASS


def test_too_many_domains_are_capped_and_said(engine: Engine) -> None:
    many = [f"u@d{i}.{Z}" for i in range(recipients.MAX_DOMAINS + 5)]
    report = run(engine, *many)
    assert only(report, "recipient.too_many_domains").data["domains"] == len(many)
    assert len(report.facts["recipients"].domains) == recipients.MAX_DOMAINS


def test_no_recipients_gives_no_findings(engine: Engine) -> None:
    report = run(engine)
    assert report.findings == ()


def test_a_servfail_is_unknown_not_missing(fault_dns: TinyDns) -> None:
    fault_dns.load_zone(
        "$ORIGIN recip-fault.test.\n@ 300 IN SOA ns1 h 1 3600 600 86400 300\n"
        "ok 300 IN MX 10 mx.ok\nmx.ok 300 IN A 192.0.2.25\n",
        origin="recip-fault.test.",
    )
    fault_dns.fault("broken.recip-fault.test", "MX", "servfail")
    fault_dns.fault("slow.recip-fault.test", "*", "timeout")
    try:
        with _engine(fault_dns.nameserver, dns_timeout=0.3) as engine:
            report = run(engine, "a@broken.recip-fault.test", "b@slow.recip-fault.test", budget=1.0)
            good = run(engine, "c@ok.recip-fault.test")
    finally:
        fault_dns.faults.clear()
    unknown = [f for f in report.findings if f.status is Status.UNKNOWN]
    assert {f.subject for f in unknown} >= {"broken.recip-fault.test", "slow.recip-fault.test"}
    assert not [f for f in report.findings if f.id == "recipient.domain_missing"]
    assert all(f.detail for f in unknown)
    assert only(good, "recipient.accepts_mail").status is Status.PASS
