"""The engine: concurrent plan, request deadline, failures as `unknown`, shared queries."""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from collections.abc import Iterator

import pytest

from sendready.checks import mx
from sendready.config import Settings
from sendready.dns import parse_nameservers
from sendready.engine import CheckContext, Engine, Section
from sendready.model import CheckRequest, Rule, Severity, Status
from tests.conftest import NET
from tests.servers.tiny_dns import TinyDns

ZONE = f"""
$ORIGIN engine.test.
$TTL 300
@      IN SOA ns hostmaster 1 3600 600 86400 60
@      IN MX  10 mx
mx     IN A   {NET}.25
slow   IN MX  10 mx
"""

# Not declared with rule(): a test rule must not enter the public findings reference.
PROBE = Rule("enginetest.probe", "A rule of the engine tests.", "none", Severity.INFO)


@pytest.fixture
def dns(fault_dns: TinyDns) -> Iterator[TinyDns]:
    fault_dns.load_zone(ZONE)
    fault_dns.faults.clear()
    fault_dns.delay_ms = 0
    yield fault_dns
    fault_dns.faults.clear()
    fault_dns.delay_ms = 0


def settings(server: TinyDns) -> Settings:
    return Settings(
        dns_servers=parse_nameservers(server.nameserver),
        dns_timeout=1.0,
        allow_private_targets=(ipaddress.ip_network(f"{NET}.0/24"),),
    )


async def hangs(ctx: CheckContext) -> Section:
    await asyncio.sleep(60)
    return Section()


async def crashes(ctx: CheckContext) -> Section:
    raise ZeroDivisionError


async def reads_mx(ctx: CheckContext) -> Section:
    hosts = (await ctx.section("mx")).facts.hosts
    return Section((PROBE.passed(ctx.request.domain, f"{len(hosts)} host(s)"),))


def test_a_check_that_hangs_becomes_unknown_at_the_deadline(dns: TinyDns) -> None:
    with Engine(settings(dns), checks={"mx": mx.check, "hangs": hangs}) as engine:
        report = engine.check(CheckRequest("engine.test", budget=0.3, probe_smtp=False))
    (timeout,) = [f for f in report.findings if f.id == "engine.timeout"]
    assert timeout.status is Status.UNKNOWN and "0.3 s" in timeout.detail
    assert any(f.id == "mx.present" for f in report.findings)  # the rest still reports


def test_a_check_that_crashes_is_unknown_and_does_not_stop_the_others(dns: TinyDns) -> None:
    with Engine(settings(dns), checks={"mx": mx.check, "crashes": crashes}) as engine:
        report = engine.check(CheckRequest("engine.test", probe_smtp=False))
    (crash,) = [f for f in report.findings if f.id == "engine.internal_error"]
    assert crash.status is Status.UNKNOWN and "ZeroDivisionError" in crash.detail
    assert any(f.id == "mx.present" for f in report.findings)


def test_a_check_can_wait_for_another_checks_result(dns: TinyDns) -> None:
    with Engine(settings(dns), checks={"mx": mx.check, "reads": reads_mx}) as engine:
        report = engine.check(CheckRequest("engine.test", probe_smtp=False))
    assert any(f.id == "enginetest.probe" and f.title == "1 host(s)" for f in report.findings)


def test_a_dns_timeout_is_unknown_never_missing(dns: TinyDns) -> None:
    dns.fault("slow.engine.test", "MX", "timeout")
    with Engine(settings(dns), checks={"mx": mx.check}) as engine:
        report = engine.check(CheckRequest("slow.engine.test", budget=0.5, probe_smtp=False))
    (finding,) = report.findings
    assert finding.id == "mx.missing" and finding.status is Status.UNKNOWN
    assert "no answer within" in finding.detail


def test_concurrent_requests_from_many_threads_share_one_query(dns: TinyDns) -> None:
    dns.delay_ms = 100
    with Engine(settings(dns), checks={"mx": mx.check}) as engine:
        results: list[object] = []

        def one() -> None:
            results.append(engine.check(CheckRequest("engine.test", probe_smtp=False)))

        threads = [threading.Thread(target=one) for _ in range(8)]
        before = dns.queries
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        # MX once, then A and AAAA of the one host: three questions for eight requests.
        assert dns.queries - before == 3
    assert len(results) == 8


def test_the_report_serialises_with_its_schema_version(dns: TinyDns) -> None:
    with Engine(settings(dns), checks={"mx": mx.check}) as engine:
        data = engine.check(CheckRequest("engine.test", probe_smtp=False)).to_json()
    assert data["schema"] == "1.1"
    assert data["summary"]["passed"] == 2  # mx.present and the pass of mx.missing
    assert data["facts"]["mx"]["hosts"][0]["name"] == "mx.engine.test"
    assert data["facts"]["dns"]["queries"] == 3
