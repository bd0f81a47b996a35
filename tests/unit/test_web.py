"""The Flask app in development mode (no sign-in, loopback): input validation, problem+json,
size limits, security headers, CORS, rate limits, JSON logs without tokens, metrics.

The engine here is real but has no checks, so no test in this module sends a DNS query.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sendready.config import ConfigError, Settings
from sendready.dns import parse_nameservers
from sendready.engine import Engine, Section
from sendready.model import Finding, Severity, Status
from sendready.web import create_app, listens_on_loopback
from sendready.web.logs import JsonFormatter
from tests.conftest import addr

ORIGIN = "https://addin.sendready.test"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0b3Atc2VjcmV0In0.c2lnbmF0dXJlLXZhbHVl"


def make_app(checks: dict[str, Any] | None = None, **extra: Any) -> Flask:
    values: dict[str, Any] = {
        "dns_servers": parse_nameservers(addr(54)),
        "public_base_url": ORIGIN,
        **extra,
    }
    settings = Settings(**values)
    return create_app(settings, engine=Engine(settings, checks=checks or {}))


@pytest.fixture
def client() -> FlaskClient:
    return make_app().test_client()


def check(client: FlaskClient, body: Any, **kwargs: Any) -> Any:
    return client.post("/api/v1/checks", json=body, **kwargs)


def assert_problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/problem+json"
    problem: dict[str, Any] = json.loads(response.get_data())
    assert problem["status"] == status
    assert problem["type"].startswith("urn:sendready:problem:")
    assert problem["title"] and problem["detail"]
    if field is not None:
        assert problem["field"] == field
    return problem


# -- inputs -----------------------------------------------------------------------------


def test_a_plain_check_returns_the_report(client: FlaskClient) -> None:
    response = check(client, {"from": "Alice@M365-Good.test", "recipients": ["bob@example.com"]})
    assert response.status_code == 200
    report = response.get_json()
    assert report["domain"] == "m365-good.test"
    assert report["schema"] == "1.1"


def test_idn_sender_is_checked_as_its_a_label(client: FlaskClient) -> None:
    response = check(client, {"from": "jürgen@bücher.test"})
    assert response.status_code == 200
    assert response.get_json()["domain"] == "xn--bcher-kva.test"


def test_invalid_idn_is_422_naming_from(client: FlaskClient) -> None:
    assert_problem(check(client, {"from": "a@xn--zz.test"}), 422, "from")


@pytest.mark.parametrize(
    "sender",
    ["a@" + "x" * 300 + ".test", "x" * 300 + ".test", ("a" * 63 + ".") * 5 + "test"],
)
def test_300_character_names_are_422(client: FlaskClient, sender: str) -> None:
    problem = assert_problem(check(client, {"from": sender}), 422, "from")
    assert "long" in problem["detail"] or "octets" in problem["detail"]


def test_ten_thousand_recipients_are_refused_with_413(client: FlaskClient) -> None:
    many = [f"r{n}@example.com" for n in range(10_000)]
    # Over the body limit first ...
    assert_problem(check(client, {"from": "a@b.test", "recipients": many}), 413)
    # ... and over the list limit when the body limit would allow it.
    roomy = make_app(max_body_bytes=1_048_576).test_client()
    problem = assert_problem(check(roomy, {"from": "a@b.test", "recipients": many}), 413)
    assert problem["field"] == "recipients" and "100" in problem["detail"]


def test_recipients_up_to_the_limit_are_passed_to_the_engine() -> None:
    seen: list[tuple[str, ...]] = []

    async def record(ctx: Any) -> Section:
        seen.append(ctx.request.recipients)
        return Section(())

    client = make_app({"record": record}).test_client()
    recipients = [f"r{n}@example.com" for n in range(100)]
    assert check(client, {"from": "a@b.test", "recipients": recipients}).status_code == 200
    assert seen == [tuple(recipients)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"from": 5}, "from"),
        ({"from": ["a@b.test"]}, "from"),
        ({}, "from"),
        ({"from": "a@b.test", "recipients": "bob@example.com"}, "recipients"),
        ({"from": "a@b.test", "recipients": [1]}, "recipients[0]"),
        ({"from": "a@b.test", "recipients": ["ok@example.com", None]}, "recipients[1]"),
        ({"from": "a@b.test", "options": []}, "options"),
        ({"from": "a@b.test", "options": {"probe_smtp": "yes"}}, "options.probe_smtp"),
        ({"from": "a@b.test", "options": {"selectors": "s1"}}, "options.selectors"),
        ({"from": "a@b.test", "options": {"selectors": [7]}}, "options.selectors[0]"),
        ({"from": "a@b.test", "options": {"servce": "x"}}, "options.servce"),
        ({"from": "a@b.test", "to": []}, "to"),
        (["a@b.test"], "body"),
        ("a@b.test", "body"),
        (None, "body"),
    ],
)
def test_wrong_json_types_are_400_naming_the_field(
    client: FlaskClient, body: Any, field: str
) -> None:
    if body is None:  # the JSON literal null, not "no body"
        response = client.post("/api/v1/checks", data=b"null", content_type="application/json")
    else:
        response = check(client, body)
    assert_problem(response, 400, field)


def test_bad_recipient_address_is_422_naming_its_index(client: FlaskClient) -> None:
    body = {"from": "a@b.test", "recipients": ["ok@example.com", "not an address"]}
    assert_problem(check(client, body), 422, "recipients[1]")


def test_body_that_is_not_json_is_refused(client: FlaskClient) -> None:
    response = client.post("/api/v1/checks", data=b"{nope", content_type="application/json")
    assert_problem(response, 400, "body")
    response = client.post("/api/v1/checks", data=b"from=a", content_type="text/plain")
    assert_problem(response, 415, "body")


def test_huge_bodies_are_413_without_being_parsed(client: FlaskClient) -> None:
    body = b'{"from": "a@b.test", "pad": "' + b"x" * 5_000_000 + b'"}'
    assert_problem(client.post("/api/v1/checks", data=body, content_type="application/json"), 413)


def test_bad_domain_in_the_path_is_422(client: FlaskClient) -> None:
    assert_problem(client.get("/api/v1/domains/" + "x" * 300 + ".test"), 422, "domain")
    assert_problem(client.get("/api/v1/domains/a..b"), 422, "domain")


# -- errors -------------------------------------------------------------------------------


def test_unknown_route_and_wrong_method_are_problems(client: FlaskClient) -> None:
    assert_problem(client.get("/api/v1/nothing-here"), 404)
    assert_problem(client.get("/api/v1/checks"), 405)


def test_500_says_nothing_of_the_internals_and_logs_no_secret() -> None:
    app = make_app()

    def boom() -> str:
        raise RuntimeError(f"database password=hunter2 at /srv/secret.py token {TOKEN}")

    app.add_url_rule("/api/v1/boom", "boom", boom)
    stream = io.StringIO()
    with captured_logs(stream):
        response = app.test_client().get(
            "/api/v1/boom", headers={"Authorization": "Bearer " + TOKEN}
        )
    problem = assert_problem(response, 500)
    text = response.get_data(as_text=True)
    assert "hunter2" not in text and "secret.py" not in text and "RuntimeError" not in text
    assert problem["incident"]
    logged = stream.getvalue()
    assert problem["incident"] in logged  # the operator can find it
    assert "hunter2" not in logged and TOKEN not in logged and "top-secret" not in logged


# -- logs ---------------------------------------------------------------------------------


class captured_logs:
    """Route the sendready loggers through the JSON formatter into ``stream``."""

    def __init__(self, stream: io.StringIO) -> None:
        self.handler = logging.StreamHandler(stream)
        self.handler.setFormatter(JsonFormatter())
        self.logger = logging.getLogger("sendready")

    def __enter__(self) -> None:
        self.level = self.logger.level
        self.logger.addHandler(self.handler)
        self.logger.setLevel(logging.INFO)

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.level)


def test_request_logs_are_json_lines_with_the_request_and_no_token(client: FlaskClient) -> None:
    stream = io.StringIO()
    with captured_logs(stream):
        check(client, {"from": "a@b.test"}, headers={"Authorization": "Bearer " + TOKEN})
        check(client, {"from": TOKEN})  # a token pasted into a field is not logged either
        logging.getLogger("sendready.web").info("user sent Authorization: Bearer %s", TOKEN)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    requests = [entry for entry in lines if entry["msg"] == "request"]
    assert len(requests) == 2
    assert requests[0]["path"] == "/api/v1/checks" and requests[0]["status"] == 200
    assert {"ts", "level", "ms", "method"} <= set(requests[0])
    assert TOKEN not in stream.getvalue()
    assert "[redacted]" in lines[-1]["msg"]


# -- headers and CORS ---------------------------------------------------------------------


def test_security_headers_on_api_responses(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors" in csp and "https://outlook.office.com" in csp


def test_cors_preflight_answers_only_the_addin_origin(client: FlaskClient) -> None:
    ok = client.options(
        "/api/v1/checks",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert ok.status_code == 204
    assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Authorization" in ok.headers["Access-Control-Allow-Headers"]
    assert "POST" in ok.headers["Access-Control-Allow-Methods"]
    other = client.options(
        "/api/v1/checks",
        headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Origin" not in other.headers
    assert_problem(other, 403)
    real = check(client, {"from": "a@b.test"}, headers={"Origin": ORIGIN})
    assert real.headers["Access-Control-Allow-Origin"] == ORIGIN
    foreign = check(client, {"from": "a@b.test"}, headers={"Origin": "https://evil.test"})
    assert "Access-Control-Allow-Origin" not in foreign.headers


# -- limits ---------------------------------------------------------------------------------


def test_rate_limit_gives_429_with_retry_after() -> None:
    client = make_app(rate_limit_user="3 per minute").test_client()
    statuses = [check(client, {"from": "a@b.test"}).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    response = check(client, {"from": "a@b.test"})
    problem = assert_problem(response, 429)
    assert problem["reason"] == "rate_limited"
    assert 1 <= int(response.headers["Retry-After"]) <= 61


def test_health_is_not_rate_limited() -> None:
    client = make_app(rate_limit_user="1 per minute").test_client()
    assert [client.get("/healthz").status_code for _ in range(5)] == [200] * 5


# -- sign-in off only on loopback -----------------------------------------------------------


def test_no_client_id_is_refused_off_loopback() -> None:
    with pytest.raises(ConfigError, match="CLIENT_ID"):
        make_app(listen="0.0.0.0:8443")
    with pytest.raises(ConfigError, match="CLIENT_ID"):
        make_app(listen="192.0.2.10:443")


def test_loopback_detection() -> None:
    assert listens_on_loopback("127.0.0.1:8443")
    assert listens_on_loopback("127.0.10.80:8080")
    assert listens_on_loopback("[::1]:8443")
    assert listens_on_loopback("localhost:8443")
    assert not listens_on_loopback("0.0.0.0:8443")
    assert not listens_on_loopback("[::]:8443")
    assert not listens_on_loopback("example.test:443")


def test_development_mode_warns_loudly(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sendready.web"):
        make_app()
    assert any("SIGN-IN IS OFF" in r.getMessage() for r in caplog.records)


def test_features_that_need_a_user_say_why_in_development_mode(client: FlaskClient) -> None:
    assert_problem(client.get("/api/v1/me/addresses"), 501)
    body = {"from": "a@b.test", "options": {"submission": True}}
    assert_problem(check(client, body), 501, "options.submission")


# -- cache and metrics ----------------------------------------------------------------------


def finding_check(calls: list[str]) -> Any:
    async def run(ctx: Any) -> Section:
        calls.append(ctx.request.domain)
        return Section(
            (
                Finding("smtp.unreachable", Status.FAIL, Severity.CRITICAL, "mx", "Down"),
                Finding("dmarc.missing", Status.PASS, Severity.INFO, ctx.request.domain, "Ok"),
            )
        )

    return run


@pytest.fixture
def counted() -> Iterator[tuple[FlaskClient, list[str]]]:
    calls: list[str] = []
    yield make_app({"fake": finding_check(calls)}).test_client(), calls


def test_domain_report_comes_from_cache_while_fresh(
    counted: tuple[FlaskClient, list[str]],
) -> None:
    client, calls = counted
    first = client.get("/api/v1/domains/Example.TEST")
    second = client.get("/api/v1/domains/example.test")
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("miss", "hit")
    assert first.get_data() == second.get_data()
    assert calls == ["example.test"]
    # A fresh POST replaces the cached report.
    check(client, {"from": "a@example.test"})
    assert client.get("/api/v1/domains/example.test").headers["X-Cache"] == "hit"
    assert calls == ["example.test", "example.test"]


def test_expired_cache_runs_the_check_again() -> None:
    calls: list[str] = []
    client = make_app({"fake": finding_check(calls)}, report_cache_ttl=0).test_client()
    client.get("/api/v1/domains/example.test")
    assert client.get("/api/v1/domains/example.test").headers["X-Cache"] == "miss"
    assert len(calls) == 2


def test_metrics_show_latency_findings_cache_ratio_and_failures(
    counted: tuple[FlaskClient, list[str]],
) -> None:
    client, _ = counted
    client.get("/api/v1/domains/example.test")
    client.get("/api/v1/domains/example.test")
    client.get("/api/v1/domains/example.test")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'sendready_findings_total{id="smtp.unreachable",status="fail"} 1.0' in text
    assert 'sendready_findings_total{id="dmarc.missing",status="pass"} 1.0' in text
    assert 'sendready_smtp_failures_total{id="smtp.unreachable"} 1.0' in text
    assert "sendready_report_cache_hit_ratio 0.666" in text
    assert 'sendready_report_cache_lookups_total{result="hit"} 2.0' in text
    assert "sendready_dns_failures_total 0.0" in text
    assert (
        'sendready_http_request_duration_seconds_count{endpoint="/api/v1/domains/<path:name>",'
        'method="GET",status="200"} 3.0'
    ) in text


def test_cached_reports_do_not_count_against_the_limit_but_misses_do() -> None:
    calls: list[str] = []
    client = make_app({"fake": finding_check(calls)}, rate_limit_user="2 per minute").test_client()
    assert client.get("/api/v1/domains/example.test").headers["X-Cache"] == "miss"  # 1
    hits = [client.get("/api/v1/domains/example.test") for _ in range(5)]
    assert [(r.status_code, r.headers["X-Cache"]) for r in hits] == [(200, "hit")] * 5
    assert check(client, {"from": "a@other.test"}).status_code == 200  # 2
    assert_problem(check(client, {"from": "a@other.test"}), 429)
    assert_problem(client.get("/api/v1/domains/third.test"), 429)  # a miss runs a check
    assert client.get("/api/v1/domains/example.test").status_code == 200  # still cached
    assert calls == ["example.test", "other.test"]


def test_a_cache_miss_counts_against_the_tenant_limit_too() -> None:
    calls: list[str] = []
    client = make_app(
        {"fake": finding_check(calls)},
        rate_limit_user="100 per minute",
        rate_limit_tenant="2/minute",
    ).test_client()
    assert client.get("/api/v1/domains/one.test").status_code == 200
    assert client.get("/api/v1/domains/two.test").status_code == 200
    assert_problem(client.get("/api/v1/domains/three.test"), 429)
    assert_problem(check(client, {"from": "a@four.test"}), 429)
    assert calls == ["one.test", "two.test"]
