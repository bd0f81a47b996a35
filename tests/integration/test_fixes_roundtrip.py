"""Round trips of the ready-to-paste fixes (issue 7, item 5): a zone with the fault is served by
Knot (tests/zones/fix-*.test.zone), the check runs, the records it suggests are published into
the zone (and a policy FILE is served by the test policy host), the check runs again, and the
finding is gone with no new failure in its area.

Each run uses a new engine, so nothing is answered from the previous run's cache.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sendready.config import Settings
from sendready.engine import Engine, default_checks
from sendready.model import CheckRequest, Finding, Record, Report, Status
from tests.conftest import Pki, Zones, addr, knot_settings
from tests.fixtures.knot import KnotServer
from tests.fixtures.policy_host import PolicyHost

ALIASES = {"outlook.com": "outlook.test", "onmicrosoft.com": "onmicrosoft.test"}
SECTIONS = ("services", "mx", "spf", "dkim", "dmarc", "requirements", "mta_sts", "tlsrpt")
TENANT = "fix-tenant.onmicrosoft.test"


@pytest.fixture(scope="module")
def settings(dns_server: KnotServer, policy_host: PolicyHost, pki: Pki) -> Settings:
    return knot_settings(dns_server, provider_aliases=ALIASES, ca_file=pki.ca)


def run(settings: Settings, domain: str, **options: object) -> Report:
    checks = {name: fn for name, fn in default_checks().items() if name in SECTIONS}
    with Engine(settings, checks=checks) as engine:
        return engine.check(CheckRequest(domain=domain, probe_smtp=False, **options))  # type: ignore[arg-type]


def failing(report: Report, area: str) -> list[Finding]:
    return [f for f in report.findings if f.area == area and f.status is Status.FAIL]


def one(report: Report, id: str) -> Finding:
    (finding,) = [f for f in report.findings if f.id == id]
    return finding


def zone_line(record: Record) -> str:
    """The record in zone-file syntax: TXT values quoted in strings of at most 255 octets."""
    if record.type == "TXT":
        escaped = record.value.replace("\\", "\\\\").replace('"', '\\"')
        value = " ".join(f'"{escaped[i : i + 255]}"' for i in range(0, len(escaped), 255))
    else:
        value = record.value.rstrip(".") + "."
    return f"{record.name}. {record.ttl} IN {record.type} {value}"


def serve(policy_host: PolicyHost, record: Record) -> None:
    """Serve a FILE record at its URL from the test policy host."""
    url = urlsplit(record.name)
    assert url.scheme == "https" and url.hostname
    policy_host.serve(url.hostname, url.path, record.value)


# -- SPF ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("fix-spf-missing.test", "v=spf1 include:spf.protection.outlook.test -all"),
        (
            "fix-spf-multi.test",
            "v=spf1 ip4:192.0.2.10 include:spf.protection.outlook.test ip4:198.51.100.20 ~all",
        ),
        (
            "fix-spf-terms.test",
            "v=spf1 ip4:192.0.2.10 ip4:198.51.100.20 include:spf.protection.outlook.test ~all",
        ),
        ("fix-spf-stale.test", "v=spf1 include:spf.protection.outlook.test -all"),
        ("fix-spf-void.test", "v=spf1 include:spf.protection.outlook.test -all"),
    ],
)
def test_the_corrected_spf_record_clears_every_spf_failure(
    settings: Settings, zones: Zones, zone: str, expected: str
) -> None:
    zones.publish(zone)
    before = failing(run(settings, zone), "spf")
    assert before, "the fixture zone must have an SPF fault"
    suggested = {record for finding in before for record in finding.records}
    assert [r.value for r in suggested] == [expected]
    (record,) = suggested
    assert (record.type, record.name) == ("TXT", zone)
    zones.publish(zone, drop=["@          TXT"], add=[zone_line(record)])
    after = run(settings, zone)
    assert failing(after, "spf") == []
    assert one(after, "spf.valid").status is Status.PASS


def test_every_dropped_spf_term_is_named_in_the_note(settings: Settings, zones: Zones) -> None:
    zones.publish("fix-spf-terms.test")
    finding = one(run(settings, "fix-spf-terms.test"), "spf.ptr_used")
    (record,) = finding.records
    for gone in ("`ptr`", "`+all`", "`ip4:198.51.100.20` before `all`"):
        assert gone in record.note
    assert "adds `include:spf.protection.outlook.test` for Microsoft 365" in record.note


def test_dropping_a_repeated_include_brings_the_lookups_under_the_limit(
    settings: Settings, zones: Zones
) -> None:
    domain = "fix-spf-lookups.test"
    zones.publish(domain)
    over = one(run(settings, domain), "spf.too_many_lookups")
    assert over.status is Status.FAIL and over.data["lookups"] == 12
    (record,) = over.records
    assert record.value == f"v=spf1 include:_a.{domain} include:_b.{domain} -all"
    assert "It needs 7 of 10 DNS lookups." in record.note
    zones.publish(domain, drop=["@          TXT"], add=[zone_line(record)])
    after = run(settings, domain)
    assert failing(after, "spf") == []
    assert one(after, "spf.valid").data["lookups"] == 7


# -- DMARC -------------------------------------------------------------------------------


def test_the_three_dmarc_stages_each_publish_cleanly(settings: Settings, zones: Zones) -> None:
    domain = "fix-dmarc.test"
    zones.publish(domain)
    before = run(settings, domain)
    missing = one(before, "dmarc.missing")
    assert missing.status is Status.FAIL
    # The providers' checklist line offers the same stages.
    assert one(before, "requirements.dmarc_record").records == missing.records
    rua = f"rua=mailto:dmarc-reports@{domain}"
    assert [r.value for r in missing.records] == [
        f"v=DMARC1; p=none; {rua}",
        f"v=DMARC1; p=quarantine; {rua}",
        f"v=DMARC1; p=reject; {rua}",
    ]
    assert {r.name for r in missing.records} == {f"_dmarc.{domain}"}
    expected_failures = [{"dmarc.policy_none"}, set(), set()]
    for record, expected, policy in zip(
        missing.records, expected_failures, ("none", "quarantine", "reject"), strict=True
    ):
        zones.publish(domain, add=[zone_line(record)])
        report = run(settings, domain)
        assert {f.id for f in failing(report, "dmarc")} == expected, record.value
        assert report.facts["dmarc"].policy == policy
        assert one(report, "requirements.dmarc_record").status is Status.PASS


def test_monitoring_only_moves_to_reject_keeping_its_tags(settings: Settings, zones: Zones) -> None:
    domain = "fix-dmarc-none.test"
    zones.publish(domain)
    before = run(settings, domain)
    assert {f.id for f in failing(before, "dmarc")} >= {"dmarc.policy_none", "dmarc.removed_tag"}
    stages = one(before, "dmarc.policy_none").records
    assert len(stages) == 3
    reject = stages[2]
    assert reject.value == (f"v=DMARC1; p=reject; adkim=r; rua=mailto:dmarc-reports@{domain}")
    assert "pct=" in stages[0].note and "Create the mailbox" in stages[0].note
    zones.publish(domain, drop=["_dmarc"], add=[zone_line(reject)])
    after = run(settings, domain)
    assert failing(after, "dmarc") == []
    assert one(after, "dmarc.present").status is Status.PASS


@pytest.mark.parametrize(
    "id", ["dmarc.testing", "dmarc.subdomain_policy_none", "dmarc.no_aggregate_reports"]
)
def test_each_single_change_clears_its_finding_and_adds_none(
    settings: Settings, zones: Zones, id: str
) -> None:
    domain = "fix-dmarc-tags.test"
    zones.publish(domain)
    before = {f.id: f for f in failing(run(settings, domain), "dmarc")}
    assert set(before) >= {
        "dmarc.testing",
        "dmarc.subdomain_policy_none",
        "dmarc.no_aggregate_reports",
    }
    (record,) = before[id].records
    assert record.name == f"_dmarc.{domain}"
    zones.publish(domain, drop=["_dmarc"], add=[zone_line(record)])
    after = {f.id for f in failing(run(settings, domain), "dmarc")}
    assert after == set(before) - {id}, record.value


def test_the_report_destination_authorises_the_domain(settings: Settings, zones: Zones) -> None:
    domain = "fix-dmarc-ext.test"
    zones.publish(domain)
    zones.publish("fix-rua.test")
    refused = one(run(settings, domain), "dmarc.report_destination_unauthorized")
    assert refused.status is Status.FAIL
    (record,) = refused.records
    assert (record.name, record.value) == (f"{domain}._report._dmarc.fix-rua.test", "v=DMARC1")
    zones.publish("fix-rua.test", add=[zone_line(record)])
    after = run(settings, domain)
    assert failing(after, "dmarc") == []
    assert one(after, "dmarc.report_destination_authorized").status is Status.PASS


# -- DKIM (Microsoft 365) ---------------------------------------------------------------


def tenant_keys(records: Iterable[Record]) -> list[str]:
    """Fresh RSA-2048 keys at the CNAME targets: what enabling DKIM in the tenant publishes."""
    lines = []
    for record in records:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        text = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
        lines.append(zone_line(Record("TXT", record.value, text, 300)))
    return lines


def test_the_microsoft_365_dkim_cnames_make_dkim_pass(settings: Settings, zones: Zones) -> None:
    domain = "fix-dkim.test"
    zones.publish(domain)
    zones.publish(TENANT)
    owner = {"tenant_domain": TENANT}
    missing = one(run(settings, domain, **owner), "dkim.missing")
    assert missing.status is Status.FAIL
    assert [(r.type, r.name, r.value) for r in missing.records] == [
        ("CNAME", f"selector1._domainkey.{domain}", f"selector1-fix-dkim-test._domainkey.{TENANT}"),
        ("CNAME", f"selector2._domainkey.{domain}", f"selector2-fix-dkim-test._domainkey.{TENANT}"),
    ]
    zones.publish(domain, add=[zone_line(r) for r in missing.records])
    zones.publish(TENANT, add=tenant_keys(missing.records))
    after = run(settings, domain, **owner)
    assert failing(after, "dkim") == []
    assert one(after, "dkim.missing").status is Status.PASS


def test_without_the_tenant_domain_no_cname_is_guessed(settings: Settings, zones: Zones) -> None:
    zones.publish("fix-dkim.test")
    missing = one(run(settings, "fix-dkim.test"), "dkim.missing")
    assert missing.status is Status.FAIL and missing.records == ()
    assert "Get-DkimSigningConfig" in missing.fix


# -- MTA-STS and TLS-RPT -----------------------------------------------------------------


def test_mta_sts_from_nothing_to_enforce_then_tls_rpt(
    settings: Settings, zones: Zones, policy_host: PolicyHost
) -> None:
    domain = "fix-sts.test"
    zones.publish(domain)
    policy_host.routes.pop((f"mta-sts.{domain}", "/.well-known/mta-sts.txt"), None)
    missing = one(run(settings, domain), "mta_sts.not_published")
    assert missing.status is Status.FAIL
    policy, announce = missing.records
    assert (policy.type, policy.name) == (
        "FILE",
        f"https://mta-sts.{domain}/.well-known/mta-sts.txt",
    )
    assert policy.value == (
        f"version: STSv1\nmode: testing\nmx: mx1.{domain}\nmx: mx2.{domain}\nmax_age: 604800\n"
    )
    assert (announce.type, announce.name) == ("TXT", f"_mta-sts.{domain}")
    # The note's web-host step, done: mta-sts.<domain> points at the policy host.
    web_host = f"mta-sts.{domain}. 300 IN A {addr(43)}"
    serve(policy_host, policy)
    zones.publish(domain, add=[zone_line(announce), web_host])
    testing = run(settings, domain)
    # Stage one of MTA-STS is testing mode, reported (info) until it is enforced.
    assert {f.id for f in failing(testing, "mta_sts")} == {"mta_sts.mode"}
    assert one(testing, "mta_sts.policy_unreachable").status is Status.PASS
    assert one(testing, "mta_sts.mx_mismatch").status is Status.PASS
    # Now MTA-STS is published, TLS-RPT is wanted: its record clears that too.
    (report_record,) = one(testing, "tlsrpt.missing").records
    assert report_record.value == f"v=TLSRPTv1; rua=mailto:tls-reports@{domain}"
    enforce, new_id = one(testing, "mta_sts.mode").records
    assert "mode: enforce\n" in enforce.value and new_id.value != announce.value
    serve(policy_host, enforce)
    zones.publish(domain, add=[zone_line(new_id), web_host, zone_line(report_record)])
    after = run(settings, domain)
    assert failing(after, "mta_sts") == [] and failing(after, "tlsrpt") == []
    assert after.facts["mta_sts"].policy.mode == "enforce"


def test_an_uncovered_mx_is_added_to_the_policy(
    settings: Settings, zones: Zones, policy_host: PolicyHost
) -> None:
    domain = "fix-sts-mx.test"
    zones.publish(domain)
    policy_host.policy(
        domain, f"version: STSv1\r\nmode: enforce\r\nmx: mx1.{domain}\r\nmax_age: 86400\r\n"
    )
    mismatch = one(run(settings, domain), "mta_sts.mx_mismatch")
    assert (mismatch.status, mismatch.subject) == (Status.FAIL, f"mx2.{domain}")
    policy, announce = mismatch.records
    assert policy.value == (
        f"version: STSv1\nmode: enforce\nmx: mx1.{domain}\nmx: mx2.{domain}\nmax_age: 86400\n"
    )
    serve(policy_host, policy)
    zones.publish(domain, drop=["_mta-sts"], add=[zone_line(announce)])
    after = run(settings, domain)
    assert failing(after, "mta_sts") == []
    assert after.facts["mta_sts"].policy_id == announce.value.removeprefix("v=STSv1; id=")
