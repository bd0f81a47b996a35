"""run_scan end to end over Knot zones with a real store: every domain checked and stored,
a failing domain recorded without stopping the scan, a resumed scan checking nothing twice,
and the regression of a removed DMARC record found and posted, signed, to a real webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sendready.config import Settings
from sendready.engine import Engine
from sendready.model import CheckRequest, Report, Severity, Status
from sendready.scan import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Progress,
    execute_scan,
    run_scan,
    send_webhook,
)
from sendready.store import Regression, Store, open_store
from tests.conftest import Zones, addr, knot_settings
from tests.fixtures.knot import KnotServer

SECRET = "webhook-test-secret"
HOOK_PORT = 8099


def scan_settings(dns_server: KnotServer, tmp_path: Path, **extra: Any) -> Settings:
    return knot_settings(
        dns_server, **{"instance_path": str(tmp_path), "check_budget": 6.0, **extra}
    )


@pytest.fixture(params=["sqlite", "postgres"])
def store(
    request: pytest.FixtureRequest, dns_server: KnotServer, tmp_path: Path
) -> Iterator[Store]:
    extra = {}
    if request.param == "postgres":
        extra["database_url"] = request.getfixturevalue("postgres_url")
    opened = open_store(scan_settings(dns_server, tmp_path, **extra))
    yield opened
    opened.close()


# -- a real webhook receiver on loopback ---------------------------------------------


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes

    @property
    def signed(self) -> bool:
        expected = "sha256=" + hmac.new(SECRET.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers.get(SIGNATURE_HEADER, ""), expected)


@dataclass
class Receiver:
    url: str
    answers: list[int] = field(default_factory=list)  # statuses to give first, then 204
    deliveries: list[Delivery] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver(f"http://{addr(71)}:{HOOK_PORT}/hooks/sendready")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            hook.deliveries.append(Delivery(dict(self.headers.items()), body))
            status = hook.answers.pop(0) if hook.answers else 204
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((addr(71), HOOK_PORT), Handler)
    thread = threading.Thread(target=server.serve_forever, name="webhook", daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


# -- scans ----------------------------------------------------------------------------


def test_every_domain_is_checked_once_and_stored(
    dns_server: KnotServer, tmp_path: Path, store: Store
) -> None:
    progress: list[Progress] = []
    result = run_scan(
        ["scan-good.test", "SCAN-NOSPF.test", "scan-good.test."],
        store=store,
        settings=scan_settings(dns_server, tmp_path),
        tenant="tenant-1",
        concurrency=2,
        on_progress=progress.append,
        probe_smtp=False,
    )
    assert (result.total, result.checked, result.errors, result.critical) == (2, 2, 0, 1)
    assert result.regressions == ()  # a first scan has nothing to compare with
    assert result.webhook_delivered is None
    assert sorted(p.domain for p in progress) == ["scan-good.test", "scan-nospf.test"]
    assert [p.done for p in progress] == [1, 2] and {p.total for p in progress} == {2}
    view = store.scan(result.scan_id)
    assert view is not None
    assert (view.state, view.tenant, view.done) == ("done", "tenant-1", 2)
    assert view.domains == ("scan-good.test", "scan-nospf.test")
    reports = {r.domain: r for r in store.scan_reports(result.scan_id)}
    assert reports["scan-nospf.test"].worst == "critical"
    failed = {
        f["id"] for f in reports["scan-nospf.test"].report["findings"] if f["status"] == "fail"
    }
    assert "spf.missing" in failed
    assert reports["scan-good.test"].worst != "critical"


class BrokenForOneDomain(Engine):
    """A bug in one domain's check (the engine guards each check; this breaks the whole run)."""

    async def run(self, request: CheckRequest) -> Report:
        if request.domain == "scan-nospf.test":
            raise RuntimeError("a bug")
        return await super().run(request)


def test_a_domain_whose_check_raises_is_recorded_and_the_scan_goes_on(
    dns_server: KnotServer, tmp_path: Path, store: Store
) -> None:
    settings = scan_settings(dns_server, tmp_path)
    with BrokenForOneDomain(settings) as engine:
        result = run_scan(
            ["scan-nospf.test", "scan-good.test"],
            store=store,
            settings=settings,
            probe_smtp=False,
            engine=engine,
        )
    assert (result.checked, result.errors) == (1, 1)
    view = store.scan(result.scan_id)
    assert view is not None and view.state == "partial"
    assert view.errors == {"scan-nospf.test": "the check failed: RuntimeError"}
    assert [r.domain for r in store.scan_reports(result.scan_id)] == ["scan-good.test"]


def test_a_resumed_scan_checks_only_what_is_not_done(
    dns_server: KnotServer, tmp_path: Path, store: Store
) -> None:
    settings = scan_settings(dns_server, tmp_path)
    scan_id = store.create_scan(None, ["scan-good.test", "scan-nospf.test"], "manual")
    with Engine(settings) as engine:
        from sendready.scan import scan_domain

        store.save_report(
            scan_id, scan_domain(engine, "scan-good.test", settings, probe_smtp=False)
        )
        progress: list[Progress] = []
        result = execute_scan(
            scan_id,
            store=store,
            settings=settings,
            on_progress=progress.append,
            probe_smtp=False,
            engine=engine,
        )
    assert [(p.domain, p.done, p.total) for p in progress] == [("scan-nospf.test", 2, 2)]
    assert (result.checked, result.errors) == (2, 0)


# -- regressions and the webhook ------------------------------------------------------


def test_a_removed_dmarc_record_is_a_regression_sent_signed_to_the_webhook(
    zones: Zones, tmp_path: Path, store: Store, receiver: Receiver
) -> None:
    settings = scan_settings(
        zones.server, tmp_path, webhook_url=receiver.url, webhook_secret=SECRET
    )
    receiver.answers = [503]  # the first delivery fails; the retry succeeds
    with Engine(settings) as engine:
        first = run_scan(
            ["scan-drift.test", "scan-good.test"],
            store=store,
            settings=settings,
            tenant="tenant-1",
            probe_smtp=False,
            engine=engine,
        )
        assert first.regressions == () and receiver.deliveries == []
        zones.publish("scan-drift.test", drop=["_dmarc"])
        engine.resolver.cache.clear()
        second = run_scan(
            ["scan-drift.test", "scan-good.test"],
            store=store,
            settings=settings,
            tenant="tenant-1",
            probe_smtp=False,
            engine=engine,
        )
    found = {(r.domain, r.finding_id, r.subject) for r in second.regressions}
    # Exactly what the removed record broke: the DMARC check and the providers' R3.
    assert found == {
        ("scan-drift.test", "dmarc.missing", "scan-drift.test"),
        ("scan-drift.test", "requirements.dmarc_record", "scan-drift.test"),
    }
    assert second.webhook_delivered is True
    assert len(receiver.deliveries) == 2  # 503, then accepted
    delivery = receiver.deliveries[-1]
    assert delivery.signed
    assert delivery.headers[TIMESTAMP_HEADER].isdigit()
    payload = json.loads(delivery.body)
    assert (payload["scan"], payload["tenant"]) == (second.scan_id, "tenant-1")
    sent = {(r["domain"], r["finding_id"]) for r in payload["regressions"]}
    assert sent == {(d, f) for d, f, _ in found}
    dmarc = next(r for r in payload["regressions"] if r["finding_id"] == "dmarc.missing")
    assert dmarc["before_checked_at"] <= dmarc["now_checked_at"]  # second resolution
    assert Status.FAIL.value in {
        f["status"]
        for s in store.scan_reports(second.scan_id)
        for f in s.report["findings"]
        if f["id"] == "dmarc.missing"
    }


def test_a_webhook_that_refuses_is_not_retried(
    dns_server: KnotServer, tmp_path: Path, receiver: Receiver
) -> None:
    settings = scan_settings(dns_server, tmp_path, webhook_url=receiver.url, webhook_secret=SECRET)
    regression = Regression(
        "scan-drift.test", "dmarc.missing", "scan-drift.test", "No DMARC", Severity.WARNING,
        datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC),
    )  # fmt: skip
    receiver.answers = [400]
    waits: list[float] = []
    assert send_webhook(settings, "scan-1", None, [regression], sleep=waits.append) is False
    assert len(receiver.deliveries) == 1 and waits == []
    receiver.answers = [502, 503, 500]
    assert send_webhook(settings, "scan-1", None, [regression], sleep=waits.append) is False
    assert len(receiver.deliveries) == 4 and len(waits) == 2  # three attempts in all
    assert all(d.signed for d in receiver.deliveries)
