"""MTA-STS record, policy and MX matching without the network (checks/mta_sts.py)."""

from __future__ import annotations

import pytest

from sendready.checks import mta_sts
from sendready.model import Severity, Status


@pytest.mark.parametrize(
    ("host", "pattern", "match"),
    [
        ("mx1.example.com", "*.example.com", True),
        ("example.com", "*.example.com", False),
        ("a.b.example.com", "*.example.com", False),
        ("MX1.Example.COM.", "*.example.com", True),
        ("mx.example.com", "mx.example.com", True),
        ("xmx.example.com", "mx.example.com", False),
        ("mx.example.com.evil.test", "mx.example.com", False),
    ],
)
def test_mx_patterns(host: str, pattern: str, match: bool) -> None:
    assert mta_sts.mx_matches(host, pattern) is match


def test_policy_parsing() -> None:
    good = mta_sts.parse_policy(
        "version: STSv1\nmode: enforce\nmx: a.test\nmx: *.b.test\nmax_age: 86400\n"
    )
    assert (good.error, good.mode, good.mx, good.max_age) == (
        "",
        "enforce",
        ("a.test", "*.b.test"),
        86400,
    )
    assert mta_sts.parse_policy("version: STSv1\r\nmode: none\r\nmax_age: 0\r\n").error == ""
    assert "mx" in mta_sts.parse_policy("version: STSv1\nmode: enforce\nmax_age: 1\n").error
    assert (
        "max_age"
        in mta_sts.parse_policy("version: STSv1\nmode: enforce\nmx: a\nmax_age: 31557601\n").error
    )
    assert "version" in mta_sts.parse_policy("mode: enforce\nmx: a\nmax_age: 1\n").error
    assert "key: value" in mta_sts.parse_policy("version: STSv1\ngarbage\n").error


def test_txt_record() -> None:
    assert mta_sts.sts_records(("v=STSv1; id=1", "v=spf1 -all", "v=STSv10; id=2")) == (
        "v=STSv1; id=1",
    )
    assert mta_sts.parse_txt("v=STSv1; id=20261202T1") == ("20261202T1", "")
    assert "missing" in mta_sts.parse_txt("v=STSv1;")[1]
    assert "letters and digits" in mta_sts.parse_txt("v=STSv1; id=2026-12-02")[1]


def test_mismatch_severity_follows_the_mode() -> None:
    def mismatch(mode: str) -> Severity:
        policy = mta_sts.Policy("STSv1", mode, 604800, ("mx.a.test",))
        facts = mta_sts.MtaStsFacts(
            "a.test", True, "", "1", policy, "", ("mx.b.test",), ("mx.b.test",)
        )
        (f,) = [f for f in mta_sts.policy_findings(facts) if f.id == "mta_sts.mx_mismatch"]
        assert f.status is Status.FAIL and f.subject == "mx.b.test"
        return f.severity

    assert mismatch("enforce") is Severity.CRITICAL
    assert mismatch("testing") is Severity.WARNING
