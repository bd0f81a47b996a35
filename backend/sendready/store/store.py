"""The history store: scans, their reports and findings, regressions between scans.

One SQLAlchemy engine per Store and a session per call, so one Store serves every thread
of a process; the database's own constraints (one report per scan and domain, conditional
state updates) keep several processes that share it consistent.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    CursorResult,
    Engine,
    ScalarSelect,
    Select,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, sessionmaker
from sqlalchemy.sql import Subquery

from ..config import Settings
from ..dns import normalize_domain
from ..model import Report, Severity, Status
from .database import database_url, make_engine, safe_url
from .migrate import upgrade
from .models import FindingRow, ReportRow, ScanErrorRow, ScanRow, as_utc
from .views import DONE, PARTIAL, QUEUED, RUNNING, Regression, ScanView, StoredReport

#: Most domains one scan may hold (a large tenant has hundreds).
MAX_DOMAINS = 50_000
#: Longest error reason kept; longer ones are cut.
MAX_REASON = 2_000
#: Most scans or reports one listing returns.
MAX_LIMIT = 1_000

_SCAN_ID = re.compile(r"[0-9a-f]{32}")
_KIND = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_TENANT = re.compile(r"[\w.:@-]{1,128}")


class UnknownScan(LookupError):
    """A scan id that is not in the history (never created, or pruned)."""


class Store:
    """The history of scans. Build it with ``open_store``; close it when done."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._history_days = settings.history_days

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def engine(self) -> Engine:
        return self._engine

    def __repr__(self) -> str:
        return f"Store({safe_url(self._engine.url)})"

    # -- scans -----------------------------------------------------------------------

    def create_scan(self, tenant: str | None, domains: Sequence[str], kind: str = "manual") -> str:
        """Record a new queued scan of ``domains`` (normalised, duplicates dropped, order
        kept); raises InvalidInput for a bad domain and ValueError for a bad tenant or kind."""
        if tenant is not None and not _TENANT.fullmatch(tenant):
            raise ValueError("tenant: 1 to 128 letters, digits or . : @ - _")
        if not _KIND.fullmatch(kind):
            raise ValueError("kind: a lower-case word of at most 32 characters")
        if isinstance(domains, str):
            raise ValueError("domains: a sequence of domain names, not one string")
        if len(domains) > MAX_DOMAINS:
            raise ValueError(f"domains: at most {MAX_DOMAINS} per scan")
        names = list(dict.fromkeys(normalize_domain(d) for d in domains))
        scan_id = uuid.uuid4().hex
        row = ScanRow(
            id=scan_id, tenant=tenant, kind=kind, state=QUEUED, created_at=_now(), domains=names
        )
        with self._sessions() as session:
            session.add(row)
            session.commit()
        return scan_id

    def start_scan(self, scan_id: str) -> None:
        """Mark the scan running; a second start keeps the first start time, and a finished
        scan stays finished."""
        statement = (
            update(ScanRow)
            .where(ScanRow.id == _scan_id(scan_id), ScanRow.state.in_((QUEUED, RUNNING)))
            .values(state=RUNNING, started_at=func.coalesce(ScanRow.started_at, _now()))
        )
        with self._sessions() as session:
            changed = _rowcount(session.execute(statement))
            session.commit()
            if not changed and session.get(ScanRow, scan_id) is None:
                raise UnknownScan(scan_id)

    def finish_scan(self, scan_id: str) -> None:
        """Mark the scan done, or partial when a domain has an error or no report; only the
        first call changes anything."""
        with self._sessions() as session:
            scan = session.get(ScanRow, _scan_id(scan_id))
            if scan is None:
                raise UnknownScan(scan_id)
            if scan.finished_at is not None:
                return
            view = _views(session, [scan])[0]
            complete = not view.errors and view.done >= len(view.domains)
            session.execute(
                update(ScanRow)
                .where(ScanRow.id == scan_id, ScanRow.finished_at.is_(None))
                .values(state=DONE if complete else PARTIAL, finished_at=_now())
            )
            session.commit()

    def scan(self, scan_id: str) -> ScanView | None:
        """The scan as it stands, or None when there is no such scan."""
        if not _SCAN_ID.fullmatch(scan_id):
            return None
        with self._sessions() as session:
            row = session.get(ScanRow, scan_id)
            return None if row is None else _views(session, [row])[0]

    def scans(self, tenant: str | None = None, limit: int = 50) -> list[ScanView]:
        """The newest scans first: a tenant's, or everyone's when ``tenant`` is None."""
        statement = select(ScanRow).order_by(ScanRow.created_at.desc(), ScanRow.id)
        if tenant is not None:
            statement = statement.where(ScanRow.tenant == tenant)
        with self._sessions() as session:
            rows = session.scalars(statement.limit(_limit(limit))).all()
            return _views(session, rows)

    # -- reports ---------------------------------------------------------------------

    def save_report(self, scan_id: str, report: Report) -> bool:
        """Store one domain's report and its findings; False (and nothing stored) when the
        scan has that domain's report already, as when a job is retried."""
        domain = normalize_domain(report.domain)
        document = report.to_json()
        values = {
            "scan_id": _scan_id(scan_id),
            "domain": domain,
            "checked_at": _instant(report.checked_at),
            # the columns are the document's own summary, summarised once
            "worst": document["summary"]["worst"],
            "failed": document["summary"]["failed"],
            "report": document,
        }
        with self._sessions() as session:
            try:
                inserted = insert(ReportRow).values(values).returning(ReportRow.id)
                report_id = session.execute(inserted).scalar_one()
                _add_findings(session, report_id, report)
                # the domain was checked after all: it is no longer an error of the scan
                session.execute(
                    delete(ScanErrorRow).where(
                        ScanErrorRow.scan_id == scan_id, ScanErrorRow.domain == domain
                    )
                )
                session.commit()
            except IntegrityError:
                session.rollback()
                if _has_report(session, scan_id, domain):
                    return False
                if session.get(ScanRow, scan_id) is None:
                    raise UnknownScan(scan_id) from None
                raise
        return True

    def record_error(self, scan_id: str, domain: str, reason: str) -> None:
        """Note that ``domain`` could not be checked at all; the first reason is kept, and a
        domain that has a report is not an error."""
        name = normalize_domain(domain)
        text = " ".join(str(reason).split())[:MAX_REASON] or "no reason given"
        row = ScanErrorRow(scan_id=_scan_id(scan_id), domain=name, reason=text, recorded_at=_now())
        with self._sessions() as session:
            if _has_report(session, scan_id, name):
                return
            try:
                session.add(row)
                session.commit()
            except IntegrityError:
                session.rollback()
                if session.get(ScanRow, scan_id) is None:
                    raise UnknownScan(scan_id) from None
                if session.get(ScanErrorRow, (scan_id, name)) is None:
                    raise

    def scan_reports(self, scan_id: str) -> list[StoredReport]:
        """Every report of the scan, in the order its domains were given."""
        if not _SCAN_ID.fullmatch(scan_id):
            return []
        with self._sessions() as session:
            scan = session.get(ScanRow, scan_id)
            if scan is None:
                return []
            rows = session.scalars(select(ReportRow).where(ReportRow.scan_id == scan_id)).all()
        position = {domain: index for index, domain in enumerate(scan.domains)}
        ordered = sorted(rows, key=lambda r: (position.get(r.domain, len(position)), r.id))
        return [_stored(r) for r in ordered]

    def previous(self, domain: str, before_scan_id: str) -> StoredReport | None:
        """The domain's report in the latest scan created before ``before_scan_id``."""
        if not _SCAN_ID.fullmatch(before_scan_id):
            return None
        before = select(ScanRow.created_at).where(ScanRow.id == before_scan_id)
        latest = _previous_reports(before.scalar_subquery(), [normalize_domain(domain)])
        statement = select(ReportRow).join(latest, latest.c.id == ReportRow.id)
        with self._sessions() as session:
            row = session.scalars(statement).first()
            return None if row is None else _stored(row)

    def history(self, domain: str, limit: int = 20) -> list[StoredReport]:
        """The domain's reports across scans, newest first."""
        statement = (
            select(ReportRow)
            .join(ScanRow, ScanRow.id == ReportRow.scan_id)
            .where(ReportRow.domain == normalize_domain(domain))
            .order_by(ReportRow.checked_at.desc(), ScanRow.created_at.desc(), ReportRow.id.desc())
            .limit(_limit(limit))
        )
        with self._sessions() as session:
            return [_stored(r) for r in session.scalars(statement).all()]

    def regressions(self, scan_id: str) -> list[Regression]:
        """Per domain of the scan, every (finding id, subject) that passed in the domain's
        previous report and fails now; a domain seen for the first time has none.

        Three queries whatever the scan's size: the previous reports (a window over each
        domain's earlier scans), their passing findings, and this scan's failing ones.
        """
        if not _SCAN_ID.fullmatch(scan_id):
            return []
        with self._sessions() as session:
            created = session.scalar(select(ScanRow.created_at).where(ScanRow.id == scan_id))
            if created is None:
                return []
            this_scan = aliased(ReportRow)  # not correlated with the outer reports
            domains = select(this_scan.domain).where(this_scan.scan_id == scan_id)
            previous = _previous_reports(created, domains)
            before = {
                domain: (report_id, checked_at)
                for report_id, domain, checked_at in session.execute(
                    select(previous.c.id, previous.c.domain, previous.c.checked_at)
                )
            }
            passed = {
                (report_id, finding_id, subject)
                for report_id, finding_id, subject in session.execute(
                    select(FindingRow.report_id, FindingRow.finding_id, FindingRow.subject)
                    .join(previous, previous.c.id == FindingRow.report_id)
                    .where(FindingRow.status == Status.PASS.value)
                )
            }
            failing = session.execute(
                select(
                    ReportRow.domain,
                    ReportRow.checked_at,
                    FindingRow.finding_id,
                    FindingRow.subject,
                    FindingRow.title,
                    FindingRow.severity,
                )
                .join(ReportRow, ReportRow.id == FindingRow.report_id)
                .where(ReportRow.scan_id == scan_id, FindingRow.status == Status.FAIL.value)
                .order_by(ReportRow.id, FindingRow.id)
            ).all()
        found: dict[tuple[str, str, str], Regression] = {}
        for domain, now_checked_at, finding_id, subject, title, severity in failing:
            if domain not in before:
                continue
            before_id, before_checked_at = before[domain]
            key = (domain, finding_id, subject)
            if (before_id, finding_id, subject) in passed and key not in found:
                found[key] = Regression(
                    domain=domain,
                    finding_id=finding_id,
                    subject=subject,
                    title=title,
                    severity=Severity(severity),
                    before_checked_at=before_checked_at,
                    now_checked_at=now_checked_at,
                )
        return list(found.values())

    # -- retention -------------------------------------------------------------------

    def prune(self, history_days: int | None = None) -> int:
        """Delete scans finished more than ``history_days`` ago (default: the setting) with
        their reports, findings and errors; returns how many scans went."""
        days = self._history_days if history_days is None else history_days
        if not 0 <= days <= 36_500:
            raise ValueError("history_days must be between 0 and 36500")
        cutoff = _now() - timedelta(days=days)
        statement = (
            delete(ScanRow)
            .where(ScanRow.finished_at.is_not(None), ScanRow.finished_at < cutoff)
            .execution_options(synchronize_session=False)
        )
        with self._sessions() as session:
            count = _rowcount(session.execute(statement))
            session.commit()
        return count

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()


def open_store(settings: Settings, *, migrate: bool = True) -> Store:
    """The history of ``settings.database_url`` (default: SQLite in the instance folder),
    migrated to head unless ``migrate`` is False."""
    engine = make_engine(database_url(settings))
    if migrate:
        upgrade(engine)
    return Store(engine, settings)


# -- helpers ---------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _instant(text: str) -> datetime:
    """A report's ISO-8601 ``checked_at`` as a UTC datetime (naive means UTC)."""
    try:
        stamp = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValueError(f"report checked_at {text!r} is not an ISO-8601 time") from None
    return as_utc(stamp)


def _scan_id(scan_id: str) -> str:
    """A well-formed scan id, or UnknownScan: no malformed id reaches a query."""
    if not isinstance(scan_id, str) or not _SCAN_ID.fullmatch(scan_id):
        raise UnknownScan(scan_id)
    return scan_id


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def _rowcount(result: Any) -> int:
    """Rows an UPDATE or DELETE touched."""
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


def _add_findings(session: Session, report_id: int, report: Report) -> None:
    if not report.findings:
        return
    rows = [
        {
            "report_id": report_id,
            "finding_id": f.id,
            "status": f.status.value,
            "severity": f.severity.value,
            "subject": f.subject,
            "title": f.title,
        }
        for f in report.findings
    ]
    session.execute(insert(FindingRow), rows)


def _has_report(session: Session, scan_id: str, domain: str) -> bool:
    statement = select(exists().where(ReportRow.scan_id == scan_id, ReportRow.domain == domain))
    return bool(session.scalar(statement))


def _previous_reports(
    before: datetime | ScalarSelect[datetime], domains: Sequence[str] | Select[str]
) -> Subquery:
    """For each of ``domains``: its report in the latest scan created before ``before``
    (what previous() and regressions() both mean by a domain's previous report)."""
    ranked = (
        select(
            ReportRow.id,
            ReportRow.domain,
            ReportRow.checked_at,
            func.row_number()
            .over(
                partition_by=ReportRow.domain,
                order_by=(ScanRow.created_at.desc(), ReportRow.id.desc()),
            )
            .label("recency"),
        )
        .join(ScanRow, ScanRow.id == ReportRow.scan_id)
        .where(ScanRow.created_at < before, ReportRow.domain.in_(domains))
        .subquery("ranked")
    )
    return (
        select(ranked.c.id, ranked.c.domain, ranked.c.checked_at)
        .where(ranked.c.recency == 1)
        .subquery("previous")
    )


def _stored(row: ReportRow) -> StoredReport:
    return StoredReport(
        scan_id=row.scan_id,
        domain=row.domain,
        checked_at=row.checked_at,
        report=row.report,
        worst=row.worst,
        failed=row.failed,
    )


def _views(session: Session, rows: Iterable[ScanRow]) -> list[ScanView]:
    """ScanViews of ``rows`` with their done counts and errors, in two queries."""
    scans = list(rows)
    ids = [s.id for s in scans]
    if not ids:
        return []
    counted = session.execute(
        select(ReportRow.scan_id, func.count())
        .where(ReportRow.scan_id.in_(ids))
        .group_by(ReportRow.scan_id)
    )
    reports = {scan_id: count for scan_id, count in counted}
    errors: dict[str, dict[str, str]] = {}
    error_rows = session.execute(
        select(ScanErrorRow.scan_id, ScanErrorRow.domain, ScanErrorRow.reason)
        .where(
            ScanErrorRow.scan_id.in_(ids),
            ~exists().where(
                ReportRow.scan_id == ScanErrorRow.scan_id, ReportRow.domain == ScanErrorRow.domain
            ),
        )
        .order_by(ScanErrorRow.scan_id, ScanErrorRow.domain)
    )
    for scan_id, domain, reason in error_rows:
        errors.setdefault(scan_id, {})[domain] = reason
    return [
        ScanView(
            id=s.id,
            tenant=s.tenant,
            kind=s.kind,
            state=s.state,
            created_at=s.created_at,
            started_at=s.started_at,
            finished_at=s.finished_at,
            domains=tuple(s.domains),
            done=reports.get(s.id, 0) + len(errors.get(s.id, {})),
            errors=errors.get(s.id, {}),
        )
        for s in scans
    ]
