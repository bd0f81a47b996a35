"""Scan exports and the webhook's pure parts: CSV injection and RFC 4180 quoting, the JSON
export, the signature, the webhook target guard, Retry-After and the nextLink origin rule."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import ipaddress
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from sendready.auth.msal_client import ServiceAuthError
from sendready.config import ConfigError, Settings
from sendready.model import Severity
from sendready.scan import (
    MAX_RETRY_AFTER,
    _next_link,
    _retry_after,
    export_csv,
    export_json,
    neutralise,
    signature,
    webhook_body,
    webhook_target,
)
from sendready.store.views import Regression, ScanView, StoredReport

WHEN = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
LATER = datetime(2026, 12, 2, 8, 30, tzinfo=UTC)


def finding(title: str, subject: str = "a.test", **extra: Any) -> dict[str, Any]:
    return {
        "id": "dmarc.missing",
        "status": "fail",
        "severity": "warning",
        "subject": subject,
        "title": title,
        **extra,
    }


def stored(domain: str, *findings: dict[str, Any]) -> StoredReport:
    report = {"domain": domain, "findings": list(findings), "summary": {"worst": "warning"}}
    return StoredReport("scan-1", domain, WHEN, report, "warning", len(findings))


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.mark.parametrize(
    "title",
    ['=HYPERLINK("http://x.test")', "+1+2", "-2+3", "@SUM(A1)", "\tpadded", "\rreturn"],
)
def test_a_cell_that_would_be_a_formula_is_exported_as_text(title: str) -> None:
    (_, row) = rows(export_csv([stored("a.test", finding(title))]))
    assert row[6] == "'" + title


def test_ordinary_cells_are_exported_unchanged() -> None:
    assert neutralise("No DMARC policy applies to a.test") == "No DMARC policy applies to a.test"
    assert neutralise("a = b") == "a = b"  # only a leading formula character counts


def test_csv_is_rfc_4180_one_row_per_finding_with_crlf_and_quoting() -> None:
    title = 'Record "v=spf1 a, mx" is\nsplit'
    text = export_csv(
        [stored("a.test", finding(title), finding("second")), stored("b.test", finding("third"))]
    )
    header, first, second, third = rows(text)
    assert header == ["domain", "checked_at", "finding", "status", "severity", "subject", "title"]
    assert first == [
        "a.test",
        "2026-12-01T08:30:00+00:00",
        "dmarc.missing",
        "fail",
        "warning",
        "a.test",
        title,
    ]
    assert (second[6], third[0]) == ("second", "b.test")
    assert text.endswith("\r\n") and '"Record ""v=spf1 a, mx"" is\nsplit"' in text
    assert text.count("\r\n") == 4


def test_json_export_holds_the_scan_reports_and_regressions_as_plain_values() -> None:
    view = ScanView("scan-1", "tenant-1", "tenant", "done", WHEN, WHEN, LATER, ("a.test",), 1, {})
    regression = Regression(
        "a.test", "dmarc.missing", "a.test", "No DMARC", Severity.WARNING, WHEN, LATER
    )
    data = export_json(view, [stored("a.test", finding("x"))], [regression])
    text = json.dumps(data)  # plain JSON values only
    assert data["scan"]["finished_at"] == "2026-12-02T08:30:00+00:00"
    assert data["scan"]["domains"] == ["a.test"]
    assert data["reports"][0]["report"]["findings"][0]["title"] == "x"
    assert data["regressions"][0]["severity"] == "warning"
    assert json.loads(text)["regressions"][0]["before_checked_at"] == WHEN.isoformat()


def test_the_signature_is_the_hmac_sha256_of_the_exact_body() -> None:
    regression = Regression(
        "a.test", "dmarc.missing", "a.test", "No DMARC", Severity.WARNING, WHEN, LATER
    )
    body = webhook_body("scan-1", None, [regression], 1_764_000_000.7)
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert signature("s3cret", body) == f"sha256={expected}"
    payload = json.loads(body)
    assert payload["scan"] == "scan-1" and payload["tenant"] is None
    assert payload["sent_at"] == "2025-11-24T16:00:00+00:00"
    assert payload["regressions"][0]["finding_id"] == "dmarc.missing"


TEST_RANGE = (ipaddress.ip_network("127.0.24.0/24"),)


def target(url: str, secret: str = "k", allowed: Any = TEST_RANGE) -> str:
    return webhook_target(
        Settings(webhook_url=url, webhook_secret=secret, allow_private_targets=allowed)
    )


def test_plain_http_is_allowed_only_to_an_allowed_test_range() -> None:
    assert target("http://127.0.24.9:8099/hook") == "http://127.0.24.9:8099/hook"
    with pytest.raises(ConfigError, match="must be https"):
        target("http://8.8.8.8/hook")  # data only: nothing is sent


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://127.0.0.1/hook", "loopback"),
        ("https://169.254.169.254/latest", "metadata"),
        ("https://10.1.2.3/hook", "private"),
        ("ftp://127.0.24.9/hook", "http"),
        ("https://user:pw@127.0.24.9/hook", "credentials"),
    ],
)
def test_the_webhook_target_guard_refuses(url: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        target(url)


def test_a_webhook_without_a_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match="SENDREADY_WEBHOOK_SECRET"):
        target("http://127.0.24.9/hook", secret="")


def test_retry_after_is_read_as_seconds_or_a_date_and_bounded() -> None:
    assert _retry_after("2") == 2.0
    assert _retry_after("100000") == MAX_RETRY_AFTER
    assert _retry_after("-5") == 0.0
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert _retry_after("soon") == 1.0 and _retry_after(None) == 1.0


def test_next_link_must_stay_on_the_graph_origin() -> None:
    graph = "https://graph.microsoft.com"
    same = "https://graph.microsoft.com:443/v1.0/domains?$skiptoken=2"
    assert _next_link(same, graph) == same
    assert _next_link(None, graph) is None
    for link in (
        "https://graph.microsoft.com.evil.test/v1.0/domains",
        "http://graph.microsoft.com/v1.0/domains",
        "https://graph.microsoft.com:8443/v1.0/domains",
    ):
        with pytest.raises(ServiceAuthError, match="another origin"):
            _next_link(link, graph)
