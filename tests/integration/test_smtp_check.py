"""The SMTP section through the engine: MX hosts from Knot zones probed on 25 (postfix, hostile
servers, a blackhole), the submission endpoint from the request, the service or SPF."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator

import pytest

from sendready.checks import mx, smtp
from sendready.config import Settings
from sendready.dns import parse_nameservers
from sendready.engine import Engine
from sendready.model import CheckRequest, Report, Status
from tests.conftest import NET, Pki, addr
from tests.fixtures.hostile_smtp import Hostile
from tests.fixtures.submission import Submission

ALIASES = {"outlook.com": "outlook.test", "office365.com": "smtp-sub.test"}


def make_settings(dns_server: object, pki: Pki, **kw: object) -> Settings:
    base: dict[str, object] = dict(
        dns_servers=parse_nameservers(dns_server.nameserver),  # type: ignore[attr-defined]
        allow_private_targets=(ipaddress.ip_network(f"{NET}.0/24"),),
        smtp_source_address=addr(1),
        ca_file=pki.ca,
        smtp_timeout=4.0,
        smtp_slow_banner=0.3,
        provider_aliases=dict(ALIASES),
        check_budget=5.0,
    )
    base.update(kw)
    return Settings(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def engine(dns_server, pki, hostile_smtp, postfix, submission) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    with Engine(make_settings(dns_server, pki), checks={"mx": mx.check, "smtp": smtp.check}) as e:
        yield e


def run(engine: Engine, domain: str, **kw: object) -> Report:
    return engine.check(CheckRequest(domain=domain, **kw))  # type: ignore[arg-type]


def smtp_ids(report: Report, status: Status = Status.FAIL) -> set[str]:
    crashed = [f"{f.id}: {f.detail}" for f in report.findings if f.area == "engine"]
    assert not crashed, crashed
    return {f.id for f in report.findings if f.area == "smtp" and f.status is status}


def test_postfix_mx_passes_with_tls_facts_in_the_report_json(engine: Engine) -> None:
    report = run(engine, "smtp-mx.test")
    assert smtp_ids(report) == set()
    assert "smtp.tls_ok" in smtp_ids(report, Status.PASS)
    facts = report.to_json()["facts"]["smtp"]
    (probe,) = facts["mx"]
    assert probe["target"]["host"] == "mx.smtp-mx.test" and probe["outcome"] == "ok"
    assert probe["tls"]["version"] == "TLSv1.3"
    assert probe["tls"]["cert"]["trusted"] is True and probe["tls"]["cert"]["names"]
    assert probe["banner_name"] == "mx.m365-good.test"


def test_a_name_the_certificate_lacks_is_only_a_name_mismatch(engine: Engine) -> None:
    report = run(engine, "alias.smtp-mx.test")
    assert smtp_ids(report) == {"smtp.cert_name_mismatch"}


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("d-notls", {"smtp.starttls_missing"}),
        ("d-expired", {"smtp.cert_expired"}),
        ("d-wronghost", {"smtp.cert_name_mismatch"}),
        ("d-selfsigned", {"smtp.cert_untrusted"}),
        ("d-reset", {"smtp.tls_reset"}),
        ("d-greet421", {"smtp.greeting_rejected"}),
        ("d-garbage", {"smtp.protocol_error"}),
        ("d-endless", {"smtp.protocol_error"}),
        ("d-oldtls", {"smtp.tls_outdated"}),
        ("d-tarpit", {"smtp.slow_banner"}),
        ("d-refused", {"smtp.unreachable"}),
    ],
)
def test_each_failure_mode_has_its_own_finding(
    engine: Engine, domain: str, expected: set[str]
) -> None:
    report = run(engine, f"{domain}.smtp-hostile.test", probe_smtp=True)
    assert smtp_ids(report) == expected
    for finding in report.findings:
        if finding.status is Status.FAIL:
            assert finding.spec and finding.fix, finding.id


def test_a_bad_certificate_is_not_reported_as_missing_starttls(engine: Engine) -> None:
    for domain in ("d-expired", "d-wronghost", "d-selfsigned"):
        report = run(engine, f"{domain}.smtp-hostile.test")
        assert "smtp.starttls_missing" not in smtp_ids(report)
        (probe,) = report.facts["smtp"].mx
        assert probe.tls is not None and probe.tls.version


def test_a_15_second_banner_is_unknown_within_the_budget(engine: Engine) -> None:
    report = run(engine, "d-slow15.smtp-hostile.test", budget=1.5)
    (finding,) = [f for f in report.findings if f.area == "smtp" and f.subject.startswith("slow")]
    assert (finding.id, finding.status) == ("smtp.timeout", Status.UNKNOWN)
    assert "banner" in finding.detail and "tarpitting" in finding.detail
    assert report.duration_ms < 15_000  # cut by the deadline, not by the server


def test_ten_mx_hosts_behind_a_blocked_port_answer_within_the_budget(engine: Engine) -> None:
    budget = 2.0
    report = run(engine, "d-blocked.smtp-hostile.test", budget=budget)
    blocked = [f for f in report.findings if f.id == "smtp.port_blocked"]
    assert len(blocked) == 10
    assert all("587" in f.fix and "465" in f.fix for f in blocked)
    assert not [f for f in report.findings if f.area == "engine"]
    assert report.duration_ms / 1000 <= budget + 0.5


def test_no_smtp_means_no_smtp_findings_and_no_connections(
    engine: Engine, hostile_smtp: Hostile
) -> None:
    before = hostile_smtp.server.connections.get(hostile_smtp.address("notls"), 0)
    report = run(engine, "d-notls.smtp-hostile.test", probe_smtp=False)
    assert not [f for f in report.findings if f.area == "smtp"]
    assert "smtp" not in report.facts
    assert hostile_smtp.server.connections.get(hostile_smtp.address("notls"), 0) == before


def test_a_named_submission_host_is_probed_on_587_and_465(engine: Engine) -> None:
    report = run(engine, "d-refused.smtp-hostile.test", submission="smtp.smtp-sub.test")
    subs = report.facts["smtp"].submission
    assert sorted((p.target.port, p.target.mode.value) for p in subs) == [
        (465, "implicit"),
        (587, "starttls"),
    ]
    passed = [f for f in report.findings if f.id == "smtp.auth_offered"]
    assert len(passed) == 2 and all("XOAUTH2" in f.title for f in passed)


def test_microsoft_365_says_plainly_that_465_is_not_offered(engine: Engine) -> None:
    report = run(engine, "d-refused.smtp-hostile.test", service="microsoft365")
    subs = report.facts["smtp"].submission
    assert [(p.target.host, p.target.port) for p in subs] == [("smtp.smtp-sub.test", 587)]
    (note,) = [f for f in report.findings if f.id == "smtp.port_not_offered"]
    assert "465" in note.title and note.data["port"] == 465


def test_the_service_is_detected_from_spf_includes(engine: Engine) -> None:
    report = run(engine, "m365.smtp-sub.test")
    assert report.facts["smtp"].service == "microsoft365"
    assert report.facts["smtp"].submission_source == "spf"
    assert "smtp.auth_offered" in smtp_ids(report, Status.PASS)


def test_xoauth2_with_the_known_token_passes(engine: Engine, submission: Submission) -> None:
    report = run(
        engine,
        "m365-good.test",
        address=submission.user,
        submission="smtp.smtp-sub.test:587",
        oauth_token=submission.token,
    )
    assert "smtp.auth_ok" in smtp_ids(report, Status.PASS)
    assert submission.token not in json.dumps(report.to_json())


def test_xoauth2_with_a_bad_token_explains_5_7_139(engine: Engine) -> None:
    token = "bad-token-" + "y" * 50
    report = run(
        engine,
        "m365-good.test",
        address="alice@m365-good.test",
        submission="smtp.smtp-sub.test:587",
        oauth_token=token,
    )
    (failed,) = [f for f in report.findings if f.id == "smtp.auth_failed"]
    assert "5.7.139" in failed.title
    assert failed.data["explanation"] == "m365.smtp_auth_disabled"
    assert "SmtpClientAuthenticationDisabled" in failed.fix
    assert token not in json.dumps(report.to_json())


def test_a_submission_host_without_address_is_unknown(engine: Engine) -> None:
    report = run(engine, "d-refused.smtp-hostile.test", submission="nowhere.smtp-sub.test:587")
    unknown = [f for f in report.findings if f.area == "smtp" and f.status is Status.UNKNOWN]
    assert unknown and "no address" in unknown[0].detail


def test_a_token_is_not_sent_to_an_unverified_server_and_that_is_said(engine: Engine) -> None:
    report = run(
        engine,
        "m365-good.test",
        address="alice@m365-good.test",
        submission="wronghost.smtp-hostile.test:25",
        oauth_token="a-token-that-must-stay-home",
    )
    (finding,) = [f for f in report.findings if f.id == "smtp.auth_failed"]
    assert finding.status is Status.UNKNOWN and "not sent" in finding.detail
    assert "smtp.cert_name_mismatch" in smtp_ids(report)
