"""The provider-requirements roll-up over every check of the engine, against Knot serving
tests/zones/req-*.test.zone and the Google look-alike zone; the empty ``test.`` zone of the
tiny DNS server answers the DMARC walk's question for the TLD (see test_dmarc.py)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from sendready.checks.requirements import ItemStatus, RequirementsFacts
from sendready.config import Settings
from sendready.dns import Nameserver
from sendready.engine import Engine
from sendready.model import CheckRequest, Finding, Report, Severity, Status
from tests.conftest import NET
from tests.fixtures.knot import KnotServer
from tests.servers.tiny_dns import TinyDns

TLD_ZONE = "test. 300 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300\n"
ONE_CLICK = (
    ("List-Unsubscribe", "<mailto:leave@req-bulk.test>, <https://req-bulk.test/u/42>"),
    ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
)
CHECKABLE = (
    "requirements.spf_or_dkim",
    "requirements.spf_and_dkim",
    "requirements.dmarc_record",
    "requirements.alignment",
    "requirements.reverse_dns",
    "requirements.tls",
    "requirements.one_click_unsubscribe",
)


@pytest.fixture(scope="module")
def engine(dns_server: KnotServer, fault_dns: TinyDns) -> Iterator[Engine]:
    fault_dns.load_zone(TLD_ZONE)
    fault_dns.faults.clear()
    settings = Settings(
        dns_servers=(
            Nameserver(dns_server.host, dns_server.port),
            Nameserver(fault_dns.address, fault_dns.port),
        ),
        allow_private_targets=(ipaddress.ip_network(f"{NET}.0/24"),),
        provider_aliases={"google.com": "google.test"},
    )
    with Engine(settings) as e:
        yield e


def run(engine: Engine, domain: str, headers: tuple[tuple[str, str], ...] | None) -> Report:
    return engine.check(CheckRequest(domain=domain, probe_smtp=False, headers=headers))


def by_id(report: Report) -> dict[str, Finding]:
    found = {f.id: f for f in report.findings if f.id.startswith("requirements.")}
    assert len(found) == len(CHECKABLE) + 1, "one finding per requirement, one for the rest"
    return found


def test_compliant_bulk_sender_passes_every_checkable_requirement(engine: Engine) -> None:
    report = run(engine, "req-bulk.test", ONE_CLICK)
    found = by_id(report)
    assert {i: found[i].status for i in CHECKABLE} == dict.fromkeys(CHECKABLE, Status.PASS)
    facts = report.facts["requirements"]
    assert isinstance(facts, RequirementsFacts)
    assert facts.headers == "given"
    assert "p=reject" in found["requirements.dmarc_record"].detail
    assert "Google Workspace" in found["requirements.tls"].detail


def test_what_dns_cannot_show_is_listed_and_never_passed(engine: Engine) -> None:
    report = run(engine, "req-bulk.test", ONE_CLICK)
    rest = by_id(report)["requirements.not_checkable"]
    assert (rest.status, rest.severity) == (Status.UNKNOWN, Severity.INFO)
    assert "0.3%" in rest.detail and "ARC" in rest.detail
    lines = [r for r in report.facts["requirements"].checklist if r.id == rest.id]
    assert len(lines) == len(rest.data["items"]) == 4
    assert {r.status for r in lines} == {ItemStatus.NOT_CHECKABLE}


def test_missing_dmarc_fails_the_bulk_sender_dmarc_requirement(engine: Engine) -> None:
    found = by_id(run(engine, "req-nodmarc.test", ONE_CLICK))
    dmarc = found["requirements.dmarc_record"]
    assert (dmarc.status, dmarc.severity) == (Status.FAIL, Severity.WARNING)
    assert "Gmail: bulk senders" in dmarc.title
    assert {p.provider for p in dmarc.data["providers"]} == {"Gmail", "Yahoo", "Outlook.com"}
    assert found["requirements.spf_and_dkim"].status is Status.PASS


def test_without_the_drafts_headers_one_click_is_unknown_not_failed(engine: Engine) -> None:
    found = by_id(run(engine, "req-bulk.test", None))
    one_click = found["requirements.one_click_unsubscribe"]
    assert one_click.status is Status.UNKNOWN
    assert one_click.detail == "the draft's headers were not available"


def test_headers_read_and_absent_fail_as_info_for_person_to_person_mail(engine: Engine) -> None:
    one_click = by_id(run(engine, "req-bulk.test", ()))["requirements.one_click_unsubscribe"]
    assert (one_click.status, one_click.severity) == (Status.FAIL, Severity.INFO)
    assert "bulk" in one_click.detail


def test_domain_without_spf_dkim_or_dmarc_fails_what_bulk_senders_need(engine: Engine) -> None:
    found = by_id(run(engine, "req-bare.test", None))
    assert found["requirements.spf_and_dkim"].status is Status.FAIL
    assert found["requirements.dmarc_record"].status is Status.FAIL
    # No key at the selectors tried is not proof of no DKIM: R1 stays open, not failed.
    assert found["requirements.spf_or_dkim"].status is Status.UNKNOWN
    # Own servers, not probed: TLS is unknown rather than assumed.
    assert found["requirements.tls"].status is Status.UNKNOWN
