"""The history store against real databases: SQLite files and a PostgreSQL server.

Every test runs on both; reports are built from the model classes (no DNS needed).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from sendready.config import Settings
from sendready.model import Finding, Record, Report, Severity, Status
from sendready.store import (
    DONE,
    PARTIAL,
    QUEUED,
    RUNNING,
    Store,
    UnknownScan,
    current_revision,
    head_revision,
    open_store,
)
from sendready.store.models import FindingRow, ReportRow, ScanErrorRow, ScanRow

BACKENDS = ["sqlite", "postgresql"]


def settings_for(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings of a fresh, empty history database on ``backend``."""
    if backend == "sqlite":
        return Settings(instance_path=str(tmp_path / "instance"))
    return Settings(database_url=request.getfixturevalue("postgres_url"))


def env_of(settings: Settings) -> dict[str, str]:
    """The settings naming the history database of ``settings``, for ``clean_environment``."""
    if settings.database_url:
        return {"database_url": settings.database_url}
    return {"instance_path": settings.instance_path}


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return settings_for(request.param, request, tmp_path)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with open_store(settings) as opened:
        yield opened


def finding(
    id: str, status: Status, subject: str = "example.test", severity: Severity | None = None
) -> Finding:
    if severity is None:
        severity = Severity.INFO if status is Status.PASS else Severity.CRITICAL
    return Finding(id, status, severity, subject, f"{id} {status}")


def report(domain: str, *findings: Finding, at: str = "2026-12-01T10:00:00+00:00") -> Report:
    return Report(domain, None, at, 42.0, findings, {"seen": [domain]})


def rows(store: Store, table: type[ReportRow | FindingRow | ScanRow | ScanErrorRow]) -> int:
    with store.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(table)) or 0)


# -- scans -------------------------------------------------------------------------


def test_a_new_scan_is_queued_with_its_domains_normalised_deduplicated_in_order(
    store: Store,
) -> None:
    scan_id = store.create_scan("tenant-1", ["B.example.test.", "a.example.test", "b.example.test"])
    view = store.scan(scan_id)
    assert view is not None
    assert (view.id, view.tenant, view.kind, view.state) == (scan_id, "tenant-1", "manual", QUEUED)
    assert view.domains == ("b.example.test", "a.example.test")
    assert view.done == 0 and view.errors == {}
    assert view.created_at.tzinfo is UTC and view.started_at is None and view.finished_at is None
    assert len(scan_id) == 32 and int(scan_id, 16) >= 0


def test_start_and_finish_move_the_scan_through_its_states_once(store: Store) -> None:
    scan_id = store.create_scan(None, ["a.example.test"], kind="scheduled")
    store.start_scan(scan_id)
    started = store.scan(scan_id)
    assert started is not None and started.state == RUNNING
    first_start = started.started_at
    assert first_start is not None
    store.start_scan(scan_id)  # a retried job
    restarted = store.scan(scan_id)
    assert restarted is not None and restarted.started_at == first_start
    store.save_report(scan_id, report("a.example.test"))
    store.finish_scan(scan_id)
    finished = store.scan(scan_id)
    assert finished is not None and finished.state == DONE and finished.done == 1
    assert finished.finished_at is not None and finished.finished_at >= first_start
    store.finish_scan(scan_id)
    store.start_scan(scan_id)
    again = store.scan(scan_id)
    assert again is not None and again.state == DONE and again.finished_at == finished.finished_at


def test_a_domain_that_could_not_be_checked_makes_the_scan_partial(store: Store) -> None:
    scan_id = store.create_scan("t", ["a.example.test", "b.example.test"])
    store.start_scan(scan_id)
    store.save_report(scan_id, report("a.example.test"))
    store.record_error(scan_id, "B.example.test", "the DNS servers did not answer")
    store.record_error(scan_id, "b.example.test", "a second reason is not kept")
    store.finish_scan(scan_id)
    view = store.scan(scan_id)
    assert view is not None
    assert view.state == PARTIAL and view.done == 2
    assert view.errors == {"b.example.test": "the DNS servers did not answer"}


def test_a_scan_finished_before_every_domain_is_done_is_partial(store: Store) -> None:
    scan_id = store.create_scan("t", ["a.example.test", "b.example.test"])
    store.save_report(scan_id, report("a.example.test"))
    store.finish_scan(scan_id)
    view = store.scan(scan_id)
    assert view is not None and view.state == PARTIAL and view.done == 1 and view.errors == {}


def test_a_report_saved_after_an_error_replaces_the_error(store: Store) -> None:
    scan_id = store.create_scan("t", ["a.example.test"])
    store.record_error(scan_id, "a.example.test", "timed out")
    assert store.save_report(scan_id, report("a.example.test")) is True
    store.record_error(scan_id, "a.example.test", "a late duplicate job failed")
    store.finish_scan(scan_id)
    view = store.scan(scan_id)
    assert view is not None and view.errors == {} and view.done == 1 and view.state == DONE


def test_scans_are_listed_newest_first_per_tenant_or_all(store: Store) -> None:
    first = store.create_scan("t1", ["a.example.test"])
    second = store.create_scan("t2", ["a.example.test"])
    third = store.create_scan("t1", ["b.example.test"], kind="tenant")
    assert [s.id for s in store.scans("t1")] == [third, first]
    assert [s.id for s in store.scans()] == [third, second, first]
    assert [s.id for s in store.scans(limit=2)] == [third, second]
    assert store.scans("nobody") == []


def test_an_unknown_scan_is_none_to_readers_and_an_error_to_writers(store: Store) -> None:
    missing = "0" * 32
    assert store.scan(missing) is None and store.scan("not-an-id") is None
    assert store.scan_reports(missing) == [] and store.regressions(missing) == []
    assert store.previous("a.example.test", missing) is None
    for write in (
        lambda: store.start_scan(missing),
        lambda: store.finish_scan(missing),
        lambda: store.save_report(missing, report("a.example.test")),
        lambda: store.record_error(missing, "a.example.test", "x"),
        lambda: store.save_report("'; DROP TABLE scans; --", report("a.example.test")),
    ):
        with pytest.raises(UnknownScan):
            write()
    assert rows(store, ReportRow) == 0 and rows(store, ScanErrorRow) == 0


# -- reports -----------------------------------------------------------------------


def test_a_real_report_round_trips_as_json_with_its_summary(store: Store) -> None:
    fix = Record("TXT", "_dmarc.example.test", "v=DMARC1; p=none; rua=mailto:d@example.test")
    findings = (
        finding("spf.missing", Status.PASS),
        Finding(
            "dmarc.missing",
            Status.FAIL,
            Severity.CRITICAL,
            "example.test",
            "No DMARC record",
            detail="_dmarc.example.test has no TXT record",
            fix="Publish a DMARC record",
            spec="RFC 7489 §6.1",
            data={"queried": "_dmarc.example.test", "lookups": 1},
            records=(fix,),
        ),
        finding("dkim.weak_key", Status.FAIL, "s1._domainkey.example.test", Severity.WARNING),
        finding("mta_sts.policy_unreachable", Status.UNKNOWN),
    )
    original = Report(
        "example.test",
        "alice@example.test",
        "2026-12-01T10:00:00+00:00",
        123.4,
        findings,
        {"mx": [{"host": "mx.example.test", "addresses": ["192.0.2.1"]}], "ü": "ok"},
    )
    scan_id = store.create_scan(None, ["example.test"])
    assert store.save_report(scan_id, original) is True
    [stored] = store.scan_reports(scan_id)
    assert stored.report == original.to_json()
    assert (stored.scan_id, stored.domain, stored.worst, stored.failed) == (
        scan_id,
        "example.test",
        "critical",
        2,
    )
    assert stored.checked_at == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert rows(store, FindingRow) == 4


def test_a_naive_or_offset_checked_at_is_stored_as_utc(store: Store) -> None:
    scan_id = store.create_scan(None, ["a.example.test", "b.example.test"])
    store.save_report(scan_id, report("a.example.test", at="2026-12-01T12:00:00+02:00"))
    store.save_report(scan_id, report("b.example.test", at="2026-12-01T10:00:00"))
    times = {r.domain: r.checked_at for r in store.scan_reports(scan_id)}
    assert times == {d: datetime(2026, 12, 1, 10, tzinfo=UTC) for d in times}
    with pytest.raises(ValueError, match="ISO-8601"):
        store.save_report(scan_id, report("c.example.test", at="yesterday"))


def test_saving_a_domain_twice_in_one_scan_stores_it_once(store: Store) -> None:
    scan_id = store.create_scan(None, ["a.example.test"])
    first = report("a.example.test", finding("dmarc.missing", Status.PASS))
    retried = report(
        "a.example.test", finding("dmarc.missing", Status.FAIL), finding("x.y", Status.PASS)
    )
    assert store.save_report(scan_id, first) is True
    assert store.save_report(scan_id, retried) is False
    [stored] = store.scan_reports(scan_id)
    assert stored.report == first.to_json()
    assert rows(store, ReportRow) == 1 and rows(store, FindingRow) == 1


def test_threads_racing_to_save_the_same_domain_store_exactly_one(store: Store) -> None:
    scan_id = store.create_scan(None, ["a.example.test"])
    results: list[bool] = []
    barrier = threading.Barrier(6)

    def save(n: int) -> None:
        barrier.wait(10)
        results.append(
            store.save_report(scan_id, report("a.example.test", finding(f"t.n{n}", Status.PASS)))
        )

    threads = [threading.Thread(target=save, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [False] * 5 + [True]
    assert rows(store, ReportRow) == 1 and rows(store, FindingRow) == 1


def test_concurrent_saves_of_different_domains_lose_none(store: Store) -> None:
    domains = [f"d{n}.example.test" for n in range(60)]
    scan_id = store.create_scan("t", domains)
    errors: list[BaseException] = []

    def save(part: list[str]) -> None:
        try:
            for domain in part:
                store.save_report(
                    scan_id, report(domain, finding("spf.missing", Status.PASS, domain))
                )
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(domains[n::6],)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert [r.domain for r in store.scan_reports(scan_id)] == domains
    assert rows(store, FindingRow) == 60
    view = store.scan(scan_id)
    assert view is not None and view.done == 60


# -- history and regressions -------------------------------------------------------


def scan_of(store: Store, *reports: Report, tenant: str | None = "t") -> str:
    scan_id = store.create_scan(tenant, [r.domain for r in reports])
    store.start_scan(scan_id)
    for r in reports:
        store.save_report(scan_id, r)
    store.finish_scan(scan_id)
    return scan_id


def test_previous_is_the_domains_report_in_the_latest_earlier_scan(store: Store) -> None:
    first = scan_of(store, report("a.example.test", at="2026-12-01T10:00:00+00:00"))
    scan_of(store, report("b.example.test", at="2026-12-02T10:00:00+00:00"))
    second = scan_of(store, report("a.example.test", at="2026-12-03T10:00:00+00:00"))
    third = scan_of(store, report("a.example.test", at="2026-12-04T10:00:00+00:00"))
    before_third = store.previous("A.example.test", third)
    assert before_third is not None and before_third.scan_id == second
    before_second = store.previous("a.example.test", second)
    assert before_second is not None and before_second.scan_id == first
    assert store.previous("a.example.test", first) is None
    assert store.previous("c.example.test", third) is None


def test_history_is_newest_first_and_limited(store: Store) -> None:
    for day in (1, 3, 2):
        scan_of(store, report("a.example.test", at=f"2026-12-0{day}T10:00:00+00:00"))
    scan_of(store, report("b.example.test", at="2026-12-09T10:00:00+00:00"))
    history = store.history("a.example.test")
    assert [h.checked_at.day for h in history] == [3, 2, 1]
    assert [h.checked_at.day for h in store.history("a.example.test", limit=2)] == [3, 2]
    assert store.history("nothing.example.test") == []


def test_a_dmarc_record_that_disappeared_is_a_regression(store: Store) -> None:
    before = report(
        "a.example.test",
        finding("dmarc.missing", Status.PASS, "a.example.test"),
        finding("spf.permissive_all", Status.FAIL, "a.example.test"),
        finding("mx.missing", Status.PASS, "a.example.test"),
        at="2026-12-01T10:00:00+00:00",
    )
    now = report(
        "a.example.test",
        finding("dmarc.missing", Status.FAIL, "a.example.test"),  # pass -> fail
        finding("spf.permissive_all", Status.FAIL, "a.example.test"),  # fail -> fail
        finding("mx.missing", Status.PASS, "a.example.test"),  # pass -> pass
        finding("dkim.missing", Status.FAIL, "a.example.test"),  # new, no earlier pass
        at="2026-12-02T10:00:00+00:00",
    )
    scan_of(store, before)
    second = scan_of(store, now, report("new.example.test", finding("dmarc.missing", Status.FAIL)))
    [regression] = store.regressions(second)
    assert (regression.domain, regression.finding_id, regression.subject) == (
        "a.example.test",
        "dmarc.missing",
        "a.example.test",
    )
    assert regression.title == "dmarc.missing fail" and regression.severity is Severity.CRITICAL
    assert regression.before_checked_at == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert regression.now_checked_at == datetime(2026, 12, 2, 10, tzinfo=UTC)


def test_an_unchanged_domain_or_another_subject_is_no_regression(store: Store) -> None:
    scan_of(
        store,
        report("a.example.test", finding("dmarc.missing", Status.PASS)),
        report(
            "b.example.test", finding("smtp.starttls_missing", Status.PASS, "mx1.b.example.test")
        ),
    )
    later = scan_of(
        store,
        report("a.example.test", finding("dmarc.missing", Status.PASS)),
        report(
            "b.example.test", finding("smtp.starttls_missing", Status.FAIL, "mx2.b.example.test")
        ),
    )
    assert store.regressions(later) == []


def test_regressions_compare_with_the_latest_earlier_report_only(store: Store) -> None:
    scan_of(store, report("a.example.test", finding("dmarc.missing", Status.PASS)))
    failing = scan_of(store, report("a.example.test", finding("dmarc.missing", Status.FAIL)))
    still_failing = scan_of(store, report("a.example.test", finding("dmarc.missing", Status.FAIL)))
    assert [r.finding_id for r in store.regressions(failing)] == ["dmarc.missing"]
    assert store.regressions(still_failing) == []


# -- retention ---------------------------------------------------------------------


def age(store: Store, scan_id: str, days: int) -> None:
    """Pretend the scan finished ``days`` ago."""
    with store.engine.begin() as connection:
        connection.execute(
            update(ScanRow)
            .where(ScanRow.id == scan_id)
            .values(finished_at=datetime.now(UTC) - timedelta(days=days))
        )


def test_prune_deletes_scans_finished_too_long_ago_with_their_rows(store: Store) -> None:
    old = scan_of(store, report("a.example.test", finding("dmarc.missing", Status.PASS)))
    store.record_error(old, "a.example.test", "ignored: it has a report")
    recent = scan_of(store, report("a.example.test", finding("dmarc.missing", Status.PASS)))
    errored = store.create_scan("t", ["b.example.test"])
    store.record_error(errored, "b.example.test", "timed out")
    store.finish_scan(errored)
    running = store.create_scan("t", ["c.example.test"])
    store.start_scan(running)
    age(store, old, 100)
    age(store, errored, 91)
    age(store, recent, 10)
    assert store.prune() == 2  # the default: Settings.history_days, 90
    assert store.scan(old) is None and store.scan(errored) is None
    assert store.scan(recent) is not None and store.scan(running) is not None
    assert rows(store, ReportRow) == 1 and rows(store, FindingRow) == 1
    assert rows(store, ScanErrorRow) == 0
    assert store.prune(11) == 0 and store.prune(9) == 1
    assert store.scan(running) is not None  # never finished: never pruned
    with pytest.raises(ValueError):
        store.prune(-1)


def test_prune_defaults_to_the_history_days_setting(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    base = settings_for("sqlite", request, tmp_path)
    with open_store(Settings(instance_path=base.instance_path, history_days=5)) as store:
        scan_id = scan_of(store, report("a.example.test"))
        age(store, scan_id, 6)
        assert store.prune() == 1


# -- migrations ----------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrations_create_the_schema_on_an_empty_database_and_are_idempotent(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    settings = settings_for(backend, request, tmp_path)
    with open_store(settings, migrate=False) as empty:
        assert current_revision(empty.engine) is None
    with open_store(settings) as first:
        assert current_revision(first.engine) == head_revision()
        scan_id = first.create_scan(None, ["a.example.test"])
    with open_store(settings) as again:
        assert current_revision(again.engine) == head_revision()
        assert again.scan(scan_id) is not None  # upgrading again kept the data


def test_each_domain_is_compared_with_its_own_latest_earlier_scan(store: Store) -> None:
    first = scan_of(
        store,
        report("a.example.test", finding("dmarc.missing", Status.PASS, "a.example.test")),
        report("b.example.test", finding("dmarc.missing", Status.PASS, "b.example.test")),
    )
    second = scan_of(
        store, report("b.example.test", finding("dmarc.missing", Status.FAIL, "b.example.test"))
    )
    third = scan_of(
        store,
        report("a.example.test", finding("dmarc.missing", Status.FAIL, "a.example.test")),
        report("b.example.test", finding("dmarc.missing", Status.FAIL, "b.example.test")),
    )
    assert [(r.domain, r.finding_id) for r in store.regressions(third)] == [
        ("a.example.test", "dmarc.missing")  # b failed in the second scan already
    ]
    assert [r.domain for r in store.regressions(second)] == ["b.example.test"]  # not the third
    assert store.regressions(first) == []
