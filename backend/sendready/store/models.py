"""The history schema as SQLAlchemy 2 typed declarative models: scans, reports, findings.

The initial Alembic migration creates exactly this schema (a test compares the two), so a
change here needs a new migration in ``migrations/versions/``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Constraint and index names that are the same on every database, so migrations can
#: name what they alter.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Longest domain name (RFC 1035 §2.3.4, as text without the trailing dot).
DOMAIN_LENGTH = 253


def as_utc(stamp: datetime) -> datetime:
    """``stamp`` in UTC; a naive datetime is taken to be UTC already."""
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database.

    PostgreSQL keeps the zone (timestamptz); SQLite stores text without one, so values are
    written in UTC and read back as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the history stores timezone-aware datetimes only")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return as_utc(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ScanRow(Base):
    """One scan: a set of domains checked together (by hand, for a tenant, on a schedule)."""

    __tablename__ = "scans"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str | None] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The domains asked for, lower-case A-labels in the order given.
    domains: Mapped[list[str]] = mapped_column(JSON)

    __table_args__ = (
        # scans(tenant) newest first, and previous(): scans before a given one
        Index("ix_scans_tenant_created_at", "tenant", "created_at"),
        Index("ix_scans_created_at", "created_at"),
        # prune(): scans finished before a cut-off
        Index("ix_scans_finished_at", "finished_at"),
    )


class ScanErrorRow(Base):
    """A domain of a scan that could not be checked at all, and why."""

    __tablename__ = "scan_errors"

    scan_id: Mapped[str] = mapped_column(
        ForeignKey("scans.id", ondelete="CASCADE"), primary_key=True
    )
    domain: Mapped[str] = mapped_column(String(DOMAIN_LENGTH), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReportRow(Base):
    """The report of one domain in one scan; unique per (scan, domain) so a retried job
    that saves the same domain again cannot store it twice."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scan_id: Mapped[str] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"))
    domain: Mapped[str] = mapped_column(String(DOMAIN_LENGTH))
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The worst severity among the report's problems; None when it has none.
    worst: Mapped[str | None] = mapped_column(String(16))
    failed: Mapped[int] = mapped_column(Integer)
    #: ``Report.to_json()``, the same document the API returns.
    report: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        UniqueConstraint("scan_id", "domain", name="uq_reports_scan_id_domain"),
        # history() and previous(): one domain's reports, newest first
        Index("ix_reports_domain_checked_at", "domain", "checked_at"),
    )


class FindingRow(Base):
    """One finding of a report, as columns, so regressions compare rows, not JSON."""

    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    finding_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)

    # regressions(): the findings of two reports
    __table_args__ = (Index("ix_findings_report_id", "report_id"),)
