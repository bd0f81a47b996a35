"""The shared vocabulary: findings, reports and check requests, and their JSON form."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Version of the Report JSON schema. Bump the minor part for additions,
#: the major part for anything that changes the meaning of an existing field.
SCHEMA_VERSION = "1.1"


class Status(enum.StrEnum):
    """The outcome of one check: it held, it did not, or it could not be completed."""

    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"


class Severity(enum.StrEnum):
    """How much a finding matters for delivery; ordered from worst to mildest."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.CRITICAL: 2, Severity.WARNING: 1, Severity.INFO: 0}


@dataclass(frozen=True, slots=True)
class Record:
    """A ready-to-publish fix: one DNS record, or a file to serve (``type`` "FILE", ``name``
    its URL). ``value`` is exactly what to paste; ``note`` says anything the admin must know
    before publishing it (for example, which stage of a staged rollout it is)."""

    type: str
    name: str
    value: str
    ttl: int = 3600
    note: str = ""


@dataclass(frozen=True, slots=True)
class Finding:
    """One statement about the sender's or a recipient's readiness.

    ``id`` is part of the public API (see docs/findings.md): it never changes meaning.
    """

    id: str
    status: Status
    severity: Severity
    subject: str
    title: str
    detail: str = ""
    fix: str = ""
    spec: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    #: The records that fix this finding, in the order to publish them (see fixes.py).
    records: tuple[Record, ...] = ()

    @property
    def area(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def is_problem(self) -> bool:
        return self.status is Status.FAIL


@dataclass(frozen=True, slots=True)
class Rule:
    """A finding id with what is always true of it; checks create findings from rules.

    Declaring every rule at import time is what lets ``docs/findings.md`` be generated
    from the code and lets tests prove that every id in the contract exists.
    """

    id: str
    summary: str
    spec: str
    severity: Severity

    def passed(self, subject: str, title: str, detail: str = "", **data: Any) -> Finding:
        return Finding(
            self.id, Status.PASS, Severity.INFO, subject, title, detail, "", self.spec, data
        )

    def failed(
        self,
        subject: str,
        title: str,
        detail: str = "",
        fix: str = "",
        *,
        severity: Severity | None = None,
        spec: str | None = None,
        **data: Any,
    ) -> Finding:
        return Finding(
            self.id,
            Status.FAIL,
            severity or self.severity,
            subject,
            title,
            detail,
            fix,
            spec or self.spec,
            data,
        )

    def unknown(self, subject: str, reason: str, title: str = "", **data: Any) -> Finding:
        return Finding(
            self.id,
            Status.UNKNOWN,
            self.severity,
            subject,
            title or f"Could not check: {self.summary[0].lower()}{self.summary[1:]}",
            reason,
            "",
            self.spec,
            data,
        )


RULES: dict[str, Rule] = {}


def rule(id: str, summary: str, spec: str, severity: Severity = Severity.WARNING) -> Rule:
    """Declare a finding id. Ids are unique; declaring one twice is a programming error."""
    if id in RULES:
        raise ValueError(f"finding id {id!r} declared twice")
    declared = Rule(id, summary, spec, severity)
    RULES[id] = declared
    return declared


@dataclass(frozen=True, slots=True)
class CheckRequest:
    """What to check: a sender domain (from an address or given alone) and its options."""

    domain: str
    address: str | None = None
    recipients: tuple[str, ...] = ()
    selectors: tuple[str, ...] = ()
    service: str | None = None
    probe_smtp: bool = True
    submission: str | None = None
    oauth_token: str | None = field(default=None, repr=False)
    budget: float | None = None
    #: The draft's List-Unsubscribe and List-Unsubscribe-Post as (name, value) pairs; None
    #: when the client could not read its headers, () when it read them and neither is set.
    headers: tuple[tuple[str, str], ...] | None = None
    #: The signed-in user's primary address, when the caller knows it (the API, from the
    #: token); a From that differs from it is a Send As.
    mailbox: str | None = None
    #: Every address the signed-in user owns (Graph proxy addresses), lower-case; None when
    #: they could not be read, so a Send As cannot be judged.
    own_addresses: tuple[str, ...] | None = None
    #: The Microsoft 365 tenant's initial domain (``<tenant>.onmicrosoft.com``) when the
    #: caller knows it (Graph /organization, a tenant scan, or --tenant-domain): Microsoft
    #: 365's DKIM CNAME targets and its default signing domain are built from it.
    tenant_domain: str | None = None


@dataclass(frozen=True, slots=True)
class Summary:
    worst: Severity | None
    failed: int
    unknown: int
    passed: int
    by_severity: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Report:
    """Everything one check of one domain found, with the facts it saw."""

    domain: str
    address: str | None
    checked_at: str
    duration_ms: float
    findings: tuple[Finding, ...]
    facts: Mapping[str, Any]
    schema: str = SCHEMA_VERSION

    @property
    def summary(self) -> Summary:
        return summarize(self.findings)

    @property
    def has_critical(self) -> bool:
        return self.summary.worst is Severity.CRITICAL

    def by_area(self) -> dict[str, list[Finding]]:
        areas: dict[str, list[Finding]] = {}
        for finding in self.findings:
            areas.setdefault(finding.area, []).append(finding)
        return areas

    def to_json(self) -> dict[str, Any]:
        summary = self.summary
        return {
            "schema": self.schema,
            "domain": self.domain,
            "address": self.address,
            "checked_at": self.checked_at,
            "duration_ms": round(self.duration_ms, 1),
            "summary": {
                "worst": summary.worst.value if summary.worst else None,
                "failed": summary.failed,
                "unknown": summary.unknown,
                "passed": summary.passed,
                "by_severity": dict(summary.by_severity),
            },
            "findings": [jsonable(f) for f in self.findings],
            "facts": jsonable(self.facts),
        }


def summarize(findings: Sequence[Finding]) -> Summary:
    """Worst severity among problems, and the counts per status and per severity."""
    problems = [f for f in findings if f.status is Status.FAIL]
    worst = max((f.severity for f in problems), key=lambda s: s.rank, default=None)
    by_severity = {s.value: sum(1 for f in problems if f.severity is s) for s in Severity}
    return Summary(
        worst=worst,
        failed=len(problems),
        unknown=sum(1 for f in findings if f.status is Status.UNKNOWN),
        passed=sum(1 for f in findings if f.status is Status.PASS),
        by_severity=by_severity,
    )


def jsonable(value: Any) -> Any:
    """Turn frozen dataclasses, enums, mappings and sequences into plain JSON values."""
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
