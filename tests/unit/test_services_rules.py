"""Sending-service helpers without DNS (checks/services.py)."""

from __future__ import annotations

from sendready.checks import services
from sendready.model import Status


def test_spf_targets_reads_includes_and_redirects_of_spf_records_only() -> None:
    texts = (
        "v=spf1 include:_spf.google.com ~include:sendgrid.net redirect=_spf.example.test -all",
        "google-site-verification=abc include:not-spf.test",
        "v=spf1 include:%{d}.macro.test -all",
    )
    assert services.spf_targets(texts) == ("_spf.google.com", "sendgrid.net", "_spf.example.test")


def test_findings_name_the_services_and_evidence() -> None:
    facts = services.ServicesFacts(
        "d.test", (services.DetectedService("google", "Google Workspace", ("MX smtp.google.com",)),)
    )
    (f,) = services.findings(facts)
    assert f.status is Status.PASS and f.data["services"] == ["google"]
    assert "MX smtp.google.com" in f.detail
    (none,) = services.findings(services.ServicesFacts("d.test"))
    assert none.data["services"] == []
