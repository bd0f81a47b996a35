"""The engine hands the recipient check a guarded HTTPS fetcher, so it learns the MTA-STS mode."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from sendready.checks import recipients
from sendready.config import Settings
from sendready.dns import parse_nameservers
from sendready.engine import Engine
from sendready.model import CheckRequest
from tests.conftest import NET


@pytest.fixture(scope="module")
def engine(dns_server, policy_host, pki) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    settings = Settings(
        dns_servers=parse_nameservers(dns_server.nameserver),
        allow_private_targets=(ipaddress.ip_network(f"{NET}.0/24"),),
        ca_file=pki.ca,
    )
    with Engine(settings, checks={"recipients": recipients.check}) as e:
        yield e


def test_a_recipient_domain_enforcing_mta_sts_is_reported_with_its_mode(engine: Engine) -> None:
    report = engine.check(
        CheckRequest("sender.test", recipients=("bob@good.sts-cases.test",), probe_smtp=False)
    )
    (domain,) = report.facts["recipients"].domains
    assert domain.mta_sts == "enforce"
    assert "recipient.mta_sts_enforced" in {f.id for f in report.findings}


def test_a_policy_the_guard_refuses_leaves_the_mode_unknown(dns_server, pki) -> None:  # type: ignore[no-untyped-def]
    # Without the test range allowed, the policy host's loopback address may not be contacted.
    settings = Settings(dns_servers=parse_nameservers(dns_server.nameserver), ca_file=pki.ca)
    with Engine(settings, checks={"recipients": recipients.check}) as engine:
        report = engine.check(
            CheckRequest("sender.test", recipients=("bob@good.sts-cases.test",), probe_smtp=False)
        )
    (domain,) = report.facts["recipients"].domains
    assert domain.mta_sts == "announced"
