"""What the store hands out: frozen snapshots of scans, stored reports and regressions.

They carry no session or connection, so they can cross threads, be cached and be turned
into JSON (``sendready.scan.plain``, which writes their datetimes as ISO-8601) without
touching the database again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..model import Severity

#: Scan states, in the order a scan goes through them ("partial": finished with errors).
QUEUED, RUNNING, DONE, PARTIAL = "queued", "running", "done", "partial"


@dataclass(frozen=True, slots=True)
class ScanView:
    """One scan as it stands: its domains, how many are done, which could not be checked."""

    id: str
    tenant: str | None
    kind: str
    state: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    domains: tuple[str, ...]
    #: Domains with a report or an error.
    done: int
    #: Domain -> why it could not be checked at all.
    errors: dict[str, str]


@dataclass(frozen=True, slots=True)
class StoredReport:
    """One domain's report in one scan; ``report`` is the Report JSON (``Report.to_json``)."""

    scan_id: str
    domain: str
    checked_at: datetime
    report: dict[str, Any]
    worst: str | None
    failed: int


@dataclass(frozen=True, slots=True)
class Regression:
    """A finding that passed in the domain's previous report and fails in this one."""

    domain: str
    finding_id: str
    subject: str
    title: str
    severity: Severity
    before_checked_at: datetime
    now_checked_at: datetime
