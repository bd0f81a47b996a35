"""DMARC: policy discovery (RFC 9989 tree walk, RFC 7489 view), tags, and report destinations.

Every ``_dmarc`` name the walk may need is asked at once, with the apex TXT (a record
published in the wrong place) and the domain's MX (does the author domain exist, for
``np``); the RFC's order is applied to the answers afterwards. Report destinations are
checked in a second round: the destination's organizational domain, its authorisation
record (RFC 9990 §4) and its MX, all concurrently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..dns import DnsSession, Lookup, Outcome
from ..engine import CheckContext, Section
from ..model import Finding, Severity, rule
from .dmarc_orgdomain import (
    OrganizationalDomain,
    SuffixList,
    WalkAnswer,
    bundled_suffix_list,
    discover_organizational_domain,
    from_answers,
    walk,
    walk_names,
)
from .dmarc_record import (
    DmarcRecord,
    IssueKind,
    ReportUri,
    TagIssue,
    looks_like_dmarc,
    parse,
    render,
    repair_version,
    starts_with_version,
)

SPEC = "RFC 9989"

MISSING = rule(
    "dmarc.missing",
    "No DMARC policy applies to the domain: no record at the domain or any ancestor.",
    "RFC 9989 §4.10.1",
    Severity.WARNING,
)
MULTIPLE = rule(
    "dmarc.multiple_records",
    "More than one DMARC record at one name; receivers discard all of them.",
    "RFC 9989 §4.10 step 2",
    Severity.WARNING,
)
SYNTAX_ERROR = rule(
    "dmarc.syntax_error",
    "Part of the DMARC record is not tag=value syntax; receivers skip that part.",
    "RFC 9989 §4.7, §4.8",
    Severity.WARNING,
)
INVALID_VALUE = rule(
    "dmarc.invalid_value",
    "A DMARC tag has a value outside its grammar; receivers use the tag's default.",
    "RFC 9989 §4.7, §4.8",
    Severity.WARNING,
)
POLICY_NONE = rule(
    "dmarc.policy_none",
    "The DMARC policy in force is none: failing mail is only monitored, never stopped.",
    "RFC 9989 §4.7 (p)",
    Severity.WARNING,
)
NOT_APPLIED = rule(
    "dmarc.not_applied",
    "The DMARC record has no valid policy and no valid rua, so receivers ignore it.",
    "RFC 9989 §4.7 (p); §4.10.1",
    Severity.CRITICAL,
)
REPORT_UNAUTHORIZED = rule(
    "dmarc.report_destination_unauthorized",
    "An external report destination has not authorised reports for this domain.",
    "RFC 9990 §4",
    Severity.WARNING,
)
REPORT_AUTHORIZED = rule(
    "dmarc.report_destination_authorized",
    "An external report destination has authorised reports for this domain.",
    "RFC 9990 §4",
    Severity.INFO,
)
WILL_FAIL = rule(
    "dmarc.will_fail",
    "Mail from this path will fail DMARC: neither SPF nor DKIM aligns with the From domain.",
    "RFC 9989 §4.4",
    Severity.CRITICAL,
)
TESTING = rule(
    "dmarc.testing",
    "The record is in test mode (t=y): receivers apply a policy one step weaker.",
    "RFC 9989 §4.7 (t)",
    Severity.WARNING,
)
SUBDOMAIN_NONE = rule(
    "dmarc.subdomain_policy_none",
    "Subdomains are exempt (sp=none) although the domain's own policy is enforced.",
    "RFC 9989 §4.7 (sp)",
    Severity.WARNING,
)
REMOVED_TAG = rule(
    "dmarc.removed_tag",
    "The record uses a tag RFC 9989 removed (pct, rf or ri); receivers ignore it.",
    "RFC 9989 §4.7; Appendix C",
    Severity.WARNING,
)
UNKNOWN_TAG = rule(
    "dmarc.unknown_tag",
    "The record has a tag that DMARC does not define; receivers ignore it.",
    "RFC 9989 §4.7",
    Severity.INFO,
)
IGNORED_TAG = rule(
    "dmarc.tag_ignored",
    "A tag has no effect in this record (fo without ruf).",
    "RFC 9989 §4.7 (fo); RFC 9991",
    Severity.INFO,
)
SIZE_LIMIT = rule(
    "dmarc.uri_size_limit",
    "A report URI carries the obsolete !size limit; receivers ignore it.",
    "RFC 9990 §3",
    Severity.INFO,
)
NO_REPORTS = rule(
    "dmarc.no_aggregate_reports",
    "The record asks for no aggregate reports (no rua), so failures go unseen.",
    "RFC 9990 §3",
    Severity.INFO,
)
AT_APEX = rule(
    "dmarc.record_at_apex",
    "A DMARC record is published at the domain itself, where receivers never look.",
    "RFC 9989 §4.6",
    Severity.WARNING,
)
SPF_AT_DMARC = rule(
    "dmarc.spf_at_dmarc",
    "The _dmarc name answers with an SPF record (usually a wildcard TXT).",
    "RFC 9989 §4.6; RFC 7208 §3",
    Severity.WARNING,
)
LEADING_WHITESPACE = rule(
    "dmarc.not_version_first",
    "A record meant as DMARC does not start with v=DMARC1 exactly, so receivers discard it.",
    "RFC 9989 §4.7 (v)",
    Severity.CRITICAL,
)
REPORT_NO_MX = rule(
    "dmarc.report_domain_no_mail",
    "The domain of a report mailbox cannot receive mail, so reports bounce.",
    "RFC 9990 §3; RFC 5321 §5.1",
    Severity.WARNING,
)
DIFFERS = rule(
    "dmarc.discovery_differs",
    "RFC 9989 tree-walk discovery and the RFC 7489 public-suffix view give different policies.",
    "RFC 9989 §4.10; RFC 7489 §6.6.3",
    Severity.INFO,
)
INHERITED = rule(
    "dmarc.inherited",
    "The policy comes from an ancestor domain's record.",
    "RFC 9989 §4.10.1",
    Severity.INFO,
)
LOOKUP_FAILED = rule(
    "dmarc.lookup_failed",
    "A DNS lookup needed for DMARC discovery failed, so the policy in force is unknown.",
    "RFC 9989 §4.10.1; §11.4",
    Severity.WARNING,
)
PRESENT = rule(
    "dmarc.present",
    "A valid DMARC policy applies to the domain.",
    "RFC 9989 §4.7, §4.10.1",
    Severity.INFO,
)

_WEAKER = {"reject": "quarantine", "quarantine": "none", "none": "none"}


# -- facts ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WalkStep:
    """One query of the tree walk and what it showed."""

    name: str
    query: str
    outcome: str
    texts: tuple[str, ...] = ()
    valid_records: int = 0
    psd: str | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    """The policy one discovery method arrives at for the author domain.

    ``requested`` is the policy of the tag in force (None: no DMARC processing), ``applied``
    what receivers do with it after ``t=y``; ``unknown`` says why it could not be decided.
    """

    method: str
    author_domain: str
    organizational_domain: str
    policy_domain: str | None = None
    record: DmarcRecord | None = None
    tag: str = ""
    requested: str | None = None
    applied: str | None = None
    unknown: str = ""
    author_exists: bool | None = None

    @property
    def inherited(self) -> bool:
        return self.policy_domain is not None and self.policy_domain != self.author_domain


@dataclass(frozen=True, slots=True)
class ReportDestination:
    """One rua/ruf URI: whether it leaves the organization, is authorised, can receive mail."""

    tag: str
    uri: str
    domain: str
    external: bool
    organizational_domain: str = ""
    authorization_query: str = ""
    authorized: bool | None = None
    receives_mail: bool | None = None
    reason: str = ""
    #: rua URIs the destination's authorisation record redirects the reports to.
    override: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DmarcFacts:
    """What the DMARC check saw: the record in force, both discovery views, the walk."""

    domain: str
    record: str | None
    policy_domain: str | None
    organizational_domain: str
    legacy_organizational_domain: str
    tags: Mapping[str, str] = field(default_factory=dict)
    policy: str | None = None
    applied_policy: str | None = None
    policy_tag: str = ""
    legacy_policy_domain: str | None = None
    legacy_policy: str | None = None
    walk: tuple[WalkStep, ...] = ()
    destinations: tuple[ReportDestination, ...] = ()
    unknown: str = ""
    #: False when the domain itself does not exist (np applies); None when its lookup failed.
    author_exists: bool | None = None


# -- policy selection (pure) -----------------------------------------------------------


def select_policy(
    record: DmarcRecord, *, at_author: bool, author_exists: bool | None, method: str = "rfc9989"
) -> tuple[str | None, str]:
    """(policy in force, the tag it came from) for a record found during discovery.

    At the author domain ``p`` applies; from an ancestor ``sp``, or ``np`` when the author
    domain does not exist (RFC 9989 only), each falling back to ``p``. A missing or invalid
    ``p`` (or an invalid ``sp``/``np``) means ``none`` when a valid ``rua`` exists, else no
    DMARC processing at all (RFC 9989 §4.10.1).
    """
    order: list[str] = []
    if not at_author:
        if author_exists is False and method == "rfc9989":
            order.append("np")
        order.append("sp")
    order.append("p")
    for tag in order:
        value: str | None = getattr(record, tag)
        if value is not None:
            return value, tag
        if record.has(tag) or tag == "p":
            break  # written but invalid, or p itself missing: the rua rule decides
    if record.rua:
        return "none", "rua"
    return None, ""


def applied_policy(requested: str | None, record: DmarcRecord | None) -> str | None:
    """What receivers do: one step weaker in test mode (RFC 9989 §4.7, t=y)."""
    if requested is None or record is None or not record.testing:
        return requested
    return _WEAKER[requested]


def discover(
    author: str,
    answers: Mapping[str, WalkAnswer],
    names: Sequence[str],
    *,
    method: str,
    organizational: str,
    author_exists: bool | None,
) -> Policy:
    """Apply discovery order to answers already in hand: the nearest single valid record
    wins; a failed lookup before any record makes the result unknown, never "missing"."""
    for name in names:
        answer = answers[name]
        if answer.lookup.failed:
            return Policy(
                method,
                author,
                organizational,
                unknown=answer.lookup.describe(),
                author_exists=author_exists,
            )
        record = answer.record
        if record is None and len(answer.records) > 1 and method == "rfc7489":
            break  # RFC 7489 §6.6.3 step 5: several records end discovery, no DMARC at all
        if record is None:
            continue  # none, or several (all discarded, RFC 9989): on to the next name
        requested, tag = select_policy(
            record, at_author=name == author, author_exists=author_exists, method=method
        )
        return Policy(
            method,
            author,
            organizational,
            policy_domain=name,
            record=record,
            tag=tag,
            requested=requested,
            applied=applied_policy(requested, record),
            author_exists=author_exists,
        )
    return Policy(method, author, organizational, author_exists=author_exists)


def author_exists(mx: Lookup, own: WalkAnswer) -> bool | None:
    """Whether the author domain exists (NXDOMAIN in the RFC 8020 sense means it does not).

    An answer at ``_dmarc.<author>`` (records or NODATA) proves the name exists.
    """
    if own.lookup.ok or own.lookup.outcome is Outcome.NODATA:
        return True
    if mx.outcome is Outcome.NXDOMAIN:
        return False
    if mx.ok or mx.outcome is Outcome.NODATA:
        return True
    return None


# -- findings on a record (pure) ---------------------------------------------------------


def txt(name: str, text: str) -> str:
    return f'`{name}. IN TXT "{text}"`'


def record_findings(subject: str, policy: Policy) -> list[Finding]:
    """Every rule about the record in force and the policy it yields."""
    record = policy.record
    domain = policy.policy_domain
    if record is None or domain is None:
        return []
    name = f"_dmarc.{domain}"
    quoted = f"{name}: `{record.text}`"
    findings: list[Finding] = []
    by_kind: dict[str, list[TagIssue]] = {}
    for issue in record.issues:
        by_kind.setdefault(issue.kind, []).append(issue)

    syntax = by_kind.get(IssueKind.SYNTAX, [])
    if syntax:
        fixed = render(record, {})
        findings.append(
            SYNTAX_ERROR.failed(
                domain,
                f"The DMARC record at {name} has {len(syntax)} malformed part(s)",
                f"{quoted}. " + "; ".join(i.message for i in syntax) + ".",
                f"Publish the record without them: {txt(name, fixed)}.",
                parts=[i.value for i in syntax],
            )
        )
    for issue in by_kind.get(IssueKind.INVALID_VALUE, []):
        findings.append(_invalid_value(domain, name, quoted, record, issue))
    removed = by_kind.get(IssueKind.REMOVED, [])
    if removed:
        changes: dict[str, str | None] = {i.tag: None for i in removed}
        advice = ""
        if record.written("pct") == "0" and not record.testing:
            changes["t"] = "y"
            advice = " `pct=0` asked for no enforcement; in RFC 9989 that is `t=y`."
        findings.append(
            REMOVED_TAG.failed(
                domain,
                "The DMARC record uses removed tags: "
                + ", ".join(f"{i.tag}={i.value}" for i in removed),
                f"{quoted}. "
                + ", ".join(f"`{i.tag}`" for i in removed)
                + (" was" if len(removed) == 1 else " were")
                + " removed from DMARC by RFC 9989; receivers ignore "
                + ("it." if len(removed) == 1 else "them.")
                + advice,
                f"Publish {txt(name, render(record, changes))}.",
                tags=[i.tag for i in removed],
            )
        )
    unknown = by_kind.get(IssueKind.UNKNOWN, [])
    if unknown:
        findings.append(
            UNKNOWN_TAG.failed(
                domain,
                "The DMARC record has unknown tags: " + ", ".join(i.tag for i in unknown),
                f"{quoted}. " + "; ".join(i.message for i in unknown) + ".",
                "Check the spelling against RFC 9989 §4.7, or remove them: "
                f"{txt(name, render(record, {i.tag: None for i in unknown}))}.",
                tags=[i.tag for i in unknown],
            )
        )
    for issue in by_kind.get(IssueKind.IGNORED, []):
        findings.append(
            IGNORED_TAG.failed(
                domain,
                f"`{issue.tag}={issue.value}` has no effect",
                f"{quoted}. {issue.message}.",
                f"Remove it, or add a `ruf` address: {txt(name, render(record, {'fo': None}))}.",
                tag=issue.tag,
            )
        )
    sized = by_kind.get(IssueKind.SIZE_LIMIT, [])
    if sized:
        changes = {}
        for tag, uris in (("rua", record.rua), ("ruf", record.ruf)):
            if any(u.size_limit for u in uris):
                changes[tag] = ",".join(_without_size(u) for u in uris)
        findings.append(
            SIZE_LIMIT.failed(
                domain,
                "A report URI has an obsolete size limit",
                f"{quoted}. " + "; ".join(i.message for i in sized) + ".",
                f"Publish {txt(name, render(record, changes))}.",
            )
        )
    findings.extend(_policy_findings(subject, policy, name, quoted))
    return findings


def _without_size(uri: ReportUri) -> str:
    return uri.raw.rpartition("!")[0] if uri.size_limit else uri.raw


def _invalid_value(
    domain: str, name: str, quoted: str, record: DmarcRecord, issue: TagIssue
) -> Finding:
    suggestions = {"p": "reject", "sp": "reject", "np": "reject", "adkim": "r", "aspf": "r"}
    suggestions |= {"psd": "n", "t": "n", "fo": "1"}
    if issue.tag in ("rua", "ruf"):
        uris = record.rua if issue.tag == "rua" else record.ruf
        value: str | None = ",".join(u.raw for u in uris) or None
        fix = (
            f"Write each destination as `mailto:local@domain`, separated by commas: "
            f"{txt(name, render(record, {issue.tag: value or 'mailto:dmarc-reports@' + domain}))}."
        )
    else:
        suggested = suggestions.get(issue.tag, "")
        fix = f"Publish {txt(name, render(record, {issue.tag: suggested or None}))}."
    return INVALID_VALUE.failed(
        domain,
        f"`{issue.tag}={issue.value}` is not a valid value",
        f"{quoted}. {issue.message}.",
        fix,
        tag=issue.tag,
        value=issue.value,
    )


def stage_changes(record: DmarcRecord, domain: str, tag: str) -> tuple[str, dict[str, str | None]]:
    """(the policy tag each stage sets, the other changes every stage makes) for a record
    at ``domain``: the tag in force (``p``, or ``sp``/``np`` for an inherited policy), a
    ``rua`` when there is none, and ``t=y`` dropped. The fix text and the fixes' staged
    records both build on it."""
    target = "p" if tag in ("p", "rua", "") else tag
    extra: dict[str, str | None] = {}
    if not record.rua:
        extra["rua"] = f"mailto:dmarc-reports@{domain}"
    if record.testing:
        extra["t"] = None
    return target, extra


def staged_policy(record: DmarcRecord, domain: str, tag: str) -> str:
    """The staged path from monitoring to enforcement, with the exact records."""
    name = f"_dmarc.{domain}"
    target, extra = stage_changes(record, domain, tag)
    quarantine = render(record, {target: "quarantine", **extra})
    reject = render(record, {target: "reject", **extra})
    report_note = (
        ""
        if record.rua
        else f" (replace `dmarc-reports@{domain}` with a mailbox you read; it must exist)"
    )
    return (
        "Move to enforcement in stages. 1) Read the aggregate reports until every "
        "legitimate source passes SPF or DKIM aligned"
        f"{report_note}. 2) Publish {txt(name, quarantine)}. 3) After a few weeks "
        f"without legitimate failures, publish {txt(name, reject)}."
    )


def _policy_findings(subject: str, policy: Policy, name: str, quoted: str) -> list[Finding]:
    record = policy.record
    domain = policy.policy_domain
    assert record is not None and domain is not None
    findings: list[Finding] = []
    if policy.requested is None:
        findings.append(
            NOT_APPLIED.failed(
                subject,
                "The DMARC record has no effect: no valid p and no valid rua",
                f"{quoted}. Without a valid `p` (or, from an ancestor, `sp`/`np`) and "
                "without a valid `rua`, receivers do no DMARC processing (RFC 9989 §4.10.1).",
                f"Publish {txt(name, render(record, {'p': 'none'}))} to start monitoring, "
                "then enforce in stages.",
                policy_domain=domain,
            )
        )
        return findings
    how = {
        "p": "`p`",
        "sp": "`sp` (the author domain is a subdomain of the policy domain)",
        "np": "`np` (the author domain does not exist)",
        "rua": "no valid policy tag; with a valid `rua` receivers act as if `p=none`",
    }[policy.tag]
    if policy.requested == "none":
        findings.append(
            POLICY_NONE.failed(
                subject,
                f"DMARC for {subject} is monitoring only (none)",
                f"{quoted}. Policy in force from {how}: none. Mail that fails DMARC is "
                "delivered as if it passed.",
                staged_policy(record, domain, policy.tag),
                policy="none",
                tag=policy.tag,
                policy_domain=domain,
            )
        )
    if record.testing and policy.requested != "none":
        findings.append(
            TESTING.failed(
                subject,
                f"Test mode: receivers apply {policy.applied}, not {policy.requested}",
                f"{quoted}. With `t=y` receivers apply the policy one step weaker "
                f"({policy.requested} → {policy.applied}).",
                f"When the reports show no legitimate failures, remove `t=y`: "
                f"{txt(name, render(record, {'t': None}))}.",
                requested=policy.requested,
                applied=policy.applied,
            )
        )
    if record.p in ("quarantine", "reject") and record.sp == "none":
        findings.append(
            SUBDOMAIN_NONE.failed(
                domain,
                f"Subdomains of {domain} are not protected (sp=none under p={record.p})",
                f"{quoted}. Anyone can send as any subdomain of {domain} without enforcement.",
                f"Unless a subdomain is still being set up, publish "
                f"{txt(name, render(record, {'sp': None}))} (subdomains then follow `p`).",
                p=record.p,
            )
        )
    if not record.rua:
        findings.append(
            NO_REPORTS.failed(
                domain,
                "No aggregate reports are requested (no rua)",
                f"{quoted}. Without reports you cannot see who sends as {domain} or what fails.",
                "Add a mailbox you read: "
                f"{txt(name, render(record, {'rua': f'mailto:dmarc-reports@{domain}'}))}.",
            )
        )
    if policy.inherited:
        findings.append(
            INHERITED.passed(
                subject,
                f"{subject} has no record of its own; the policy of {domain} applies",
                f"{quoted}. Found by the tree walk; the tag in force is {how}.",
                policy_domain=domain,
                tag=policy.tag,
            )
        )
    if policy.applied in ("quarantine", "reject"):
        findings.append(
            PRESENT.passed(
                subject,
                f"DMARC policy {policy.applied} applies to {subject}",
                f"{quoted}. Policy in force from {how}; alignment "
                f"adkim={record.adkim}, aspf={record.aspf}.",
                policy=policy.applied,
                policy_domain=domain,
            )
        )
    return findings


def will_fail(
    domain: str,
    policy: str | None,
    *,
    spf_aligned: bool,
    dkim_aligned: bool,
    path: str = "this sending path",
) -> Finding:
    """The DMARC verdict of one sending path (RFC 9989 §4.4): pass when SPF or DKIM aligns.

    ``policy`` is the policy receivers apply (after ``t=y``); it sets how bad a failure is.
    """
    if spf_aligned or dkim_aligned:
        which = " and ".join(n for n, ok in (("SPF", spf_aligned), ("DKIM", dkim_aligned)) if ok)
        return WILL_FAIL.passed(
            domain,
            f"Mail from {path} passes DMARC ({which} aligned)",
            f"{which} aligns with {domain}.",
            spf_aligned=spf_aligned,
            dkim_aligned=dkim_aligned,
        )
    consequence = {
        "reject": ("receivers will reject it", Severity.CRITICAL),
        "quarantine": ("receivers will put it in spam", Severity.CRITICAL),
        "none": ("it is delivered for now, but fails any enforced policy", Severity.WARNING),
        None: ("no policy is published, but mailbox providers may reject it", Severity.WARNING),
    }[policy]
    return WILL_FAIL.failed(
        domain,
        f"Mail from {path} will fail DMARC: {consequence[0]}",
        f"Neither SPF (the MAIL FROM domain) nor DKIM (the d= domain) aligns with {domain}; "
        f"policy applied: {policy or 'none published'}.",
        f"Sign with DKIM as {domain} (publish the service's selector key under "
        f"`<selector>._domainkey.{domain}`), or use a MAIL FROM (return-path) domain under "
        f"{domain} that your SPF record covers.",
        severity=consequence[1],
        spf_aligned=False,
        dkim_aligned=False,
        policy=policy,
    )


# -- the check -------------------------------------------------------------------------


async def check(ctx: CheckContext) -> Section:
    injected = ctx.services.get("public_suffix_list")
    suffixes = injected if isinstance(injected, SuffixList) else bundled_suffix_list()
    return await evaluate(ctx.dns, ctx.request.domain, suffixes)


async def evaluate(session: DnsSession, domain: str, suffixes: SuffixList) -> Section:
    """Discover, judge and report on the DMARC policy of ``domain``."""
    domain = domain.lower().rstrip(".")
    names = walk_names(domain)
    legacy_org = suffixes.organizational_domain(domain)
    legacy_names = tuple(dict.fromkeys((domain, legacy_org)))
    asked = tuple(dict.fromkeys((*names, *legacy_names)))
    answers, apex, mx = await asyncio.gather(
        walk(session, asked),
        session.query(domain, "TXT"),
        session.query(domain, "MX"),
    )
    exists = author_exists(mx, answers[domain])
    org = from_answers(domain, answers)
    current = discover(
        domain, answers, names, method="rfc9989", organizational=org.domain, author_exists=exists
    )
    legacy = discover(
        domain,
        answers,
        legacy_names,
        method="rfc7489",
        organizational=legacy_org,
        author_exists=exists,
    )
    findings: list[Finding] = []
    findings.extend(_placement_findings(domain, answers, names, apex))
    destinations: tuple[ReportDestination, ...] = ()
    if current.unknown:
        findings.append(
            LOOKUP_FAILED.unknown(
                domain,
                f"DMARC discovery stopped on a DNS failure: {current.unknown}. Receivers "
                "either accept the mail unchecked or defer it; the policy cannot be known.",
            )
        )
    elif current.record is None:
        findings.append(_missing(domain, names))
    else:
        # The pass of the rule that fails when the record goes: its removal is a regression.
        findings.append(
            MISSING.passed(
                domain,
                f"A DMARC record applies to {domain}",
                f"Found at _dmarc.{current.policy_domain}.",
                policy_domain=current.policy_domain,
            )
        )
        findings.extend(record_findings(domain, current))
        destinations, report_findings = await _destinations(session, current, answers)
        findings.extend(report_findings)
    differs = _differs(domain, current, legacy)
    if differs is not None:
        findings.append(differs)
    record = current.record
    facts = DmarcFacts(
        domain=domain,
        record=record.text if record else None,
        policy_domain=current.policy_domain,
        organizational_domain=org.domain,
        legacy_organizational_domain=legacy_org,
        tags=dict(record.tags) if record else {},
        policy=current.requested,
        applied_policy=current.applied,
        policy_tag=current.tag,
        legacy_policy_domain=legacy.policy_domain,
        legacy_policy=legacy.applied,
        walk=tuple(_step(answers[n]) for n in names),
        destinations=destinations,
        unknown=current.unknown,
        author_exists=exists,
    )
    return Section(tuple(findings), facts)


def _step(answer: WalkAnswer) -> WalkStep:
    record = answer.record
    return WalkStep(
        answer.name,
        f"_dmarc.{answer.name}",
        answer.lookup.outcome.value,
        answer.lookup.texts(),
        len(answer.records),
        record.psd if record else None,
    )


def _missing(domain: str, names: Sequence[str]) -> Finding:
    asked = ", ".join(f"_dmarc.{n}" for n in names)
    return MISSING.failed(
        domain,
        f"No DMARC policy applies to {domain}",
        f"No valid DMARC record at {asked} (TXT). Receivers do no DMARC checks for "
        f"{domain}, so anyone can put it in From.",
        "Start monitoring with "
        + txt(f"_dmarc.{domain}", f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}")
        + f" (replace `dmarc-reports@{domain}` with a mailbox you read), then move to "
        "quarantine and reject in stages.",
        asked=[f"_dmarc.{n}" for n in names],
    )


def _placement_findings(
    domain: str, answers: Mapping[str, WalkAnswer], names: Sequence[str], apex: Lookup
) -> list[Finding]:
    """Records in the wrong place or shape: at the apex, SPF at _dmarc, several at one name,
    or meant as DMARC but not starting with ``v=DMARC1``."""
    findings: list[Finding] = []
    own = answers[domain]
    apex_dmarc = [t for t in apex.texts() if starts_with_version(t) or looks_like_dmarc(t)]
    if apex_dmarc:
        findings.append(
            AT_APEX.failed(
                domain,
                f"A DMARC record is published at {domain} instead of _dmarc.{domain}",
                f"TXT {domain}: `{apex_dmarc[0]}`. Receivers only look at _dmarc.{domain}.",
                f"Publish it as {txt('_dmarc.' + domain, apex_dmarc[0].strip())} and remove "
                "it from the apex"
                + (" (a record is already there; keep that one)." if own.record else "."),
            )
        )
    spf = [t for t in own.lookup.texts() if t.lower().startswith("v=spf1")]
    if spf:
        findings.append(
            SPF_AT_DMARC.failed(
                domain,
                f"_dmarc.{domain} answers with an SPF record",
                f"TXT _dmarc.{domain}: `{spf[0]}`. This usually means a wildcard TXT "
                f"(`*.{domain}`) answers for names that do not exist; it is not a DMARC policy.",
                f"Publish an explicit DMARC record at _dmarc.{domain}, e.g. "
                + txt(f"_dmarc.{domain}", f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}")
                + ", and reconsider the wildcard TXT.",
            )
        )
    for name in names:
        answer = answers[name]
        if len(answer.records) > 1:
            findings.append(
                MULTIPLE.failed(
                    name,
                    f"_dmarc.{name} has {len(answer.records)} DMARC records; all are ignored",
                    "TXT _dmarc."
                    + name
                    + ": "
                    + "; ".join(f"`{r.text}`" for r in answer.records)
                    + ". With more than one, receivers discard them all and keep walking.",
                    f"Keep exactly one TXT record at _dmarc.{name}, e.g. "
                    f"{txt('_dmarc.' + name, answer.records[0].text)}, and delete the others.",
                    count=len(answer.records),
                )
            )
        broken = [t for t in answer.lookup.texts() if looks_like_dmarc(t)]
        for text in broken:
            findings.append(
                LEADING_WHITESPACE.failed(
                    name,
                    f"The record at _dmarc.{name} does not start with `v=DMARC1`",
                    f"TXT _dmarc.{name}: `{text}`. The first characters must be exactly "
                    "`v=DMARC1` (no leading space, upper-case DMARC1), then `;` before the next "
                    "tag; receivers discard it.",
                    f"Publish {txt('_dmarc.' + name, repair_version(text))}.",
                )
            )
    return findings


def _differs(domain: str, current: Policy, legacy: Policy) -> Finding | None:
    if current.unknown or legacy.unknown:
        return None
    now: tuple[str | None, ...] = (current.policy_domain, current.applied)
    old: tuple[str | None, ...] = (legacy.policy_domain, legacy.applied)
    if current.record is not None or legacy.record is not None:
        # With a policy in force, the organizational domain decides relaxed alignment too;
        # without one, neither view applies DMARC and the difference means nothing.
        now, old = (*now, current.organizational_domain), (*old, legacy.organizational_domain)
    if now == old:
        return None

    def say(p: Policy) -> str:
        where = f"_dmarc.{p.policy_domain}" if p.policy_domain else "no record"
        return f"policy {p.applied or 'none applies'} ({where}), organizational domain " + (
            p.organizational_domain
        )

    return DIFFERS.failed(
        domain,
        "Receivers following RFC 9989 and those still on RFC 7489 see different policies",
        f"RFC 9989 tree walk: {say(current)}. RFC 7489 (public suffix list): {say(legacy)}.",
        "Publish a record at the organizational domain that both methods find (or at "
        f"_dmarc.{domain} itself), so every receiver applies the same policy.",
        rfc9989_policy_domain=current.policy_domain,
        rfc9989_policy=current.applied,
        rfc9989_organizational_domain=current.organizational_domain,
        rfc7489_policy_domain=legacy.policy_domain,
        rfc7489_policy=legacy.applied,
        rfc7489_organizational_domain=legacy.organizational_domain,
    )


# -- report destinations ---------------------------------------------------------------


async def _destinations(
    session: DnsSession, policy: Policy, answers: Mapping[str, WalkAnswer]
) -> tuple[tuple[ReportDestination, ...], list[Finding]]:
    record = policy.record
    policy_domain = policy.policy_domain
    assert record is not None and policy_domain is not None
    parent = answers[policy_domain].lookup
    own_org = from_answers(policy_domain, answers)
    uris = [("rua", u) for u in record.rua] + [("ruf", u) for u in record.ruf]
    hosts = list(dict.fromkeys(u.domain for _, u in uris if u.domain))
    mailboxes = {u.domain for _, u in uris if u.scheme == "mailto"}
    results = await asyncio.gather(
        *(
            _destination_host(session, host, policy_domain, own_org, parent, host in mailboxes)
            for host in hosts
        )
    )
    by_host = dict(zip(hosts, results, strict=True))
    out: list[ReportDestination] = []
    findings: list[Finding] = []
    for tag, uri in uris:
        if not uri.domain:
            continue
        host = by_host[uri.domain]
        destination = ReportDestination(
            tag,
            uri.raw,
            uri.domain,
            host.external,
            host.org.domain,
            host.query,
            host.authorized,
            host.receives_mail,
            host.reason,
            host.override if tag == "rua" else (),
        )
        out.append(destination)
    for host_name in hosts:
        host = by_host[host_name]
        tags = sorted({t for t, u in uris if u.domain == host_name})
        findings.extend(_host_findings(policy_domain, own_org, host, tags))
    return tuple(out), findings


@dataclass(frozen=True, slots=True)
class _Host:
    name: str
    org: OrganizationalDomain
    external: bool
    query: str = ""
    authorized: bool | None = None
    auth_texts: tuple[str, ...] = ()
    auth_lookup: str = ""
    receives_mail: bool | None = None
    mail_detail: str = ""
    reason: str = ""
    override: tuple[str, ...] = ()
    override_ignored: tuple[str, ...] = ()


async def _destination_host(
    session: DnsSession,
    host: str,
    policy_domain: str,
    own_org: OrganizationalDomain,
    parent: Lookup,
    mailbox: bool,
) -> _Host:
    query = f"{policy_domain}._report._dmarc.{host}"
    same_tree = host == own_org.domain or host.endswith("." + own_org.domain)
    # A host outside the policy's organizational domain almost surely needs the
    # authorisation record, so ask for it alongside the host's own tree walk.
    speculative = (
        None if same_tree else asyncio.ensure_future(session.query(query, "TXT", after=parent))
    )
    walked, mail = await asyncio.gather(
        discover_organizational_domain(session, host, after=parent),
        _receives_mail(session, host, parent) if mailbox else _not_mail(),
    )
    receives, mail_detail = mail
    external = walked.domain != own_org.domain
    if not external:
        if speculative is not None:
            await speculative  # already answered or about to be; never leave it dangling
        return _Host(host, walked, False, receives_mail=receives, mail_detail=mail_detail)
    if speculative is not None:
        auth = await speculative
    else:
        # Inside the policy's tree but its own organization (psd=n below it): one more trip.
        auth = await session.query(query, "TXT", after=walked.lookups or parent)
    if auth.failed:
        return _Host(
            host,
            walked,
            True,
            query,
            None,
            auth_lookup=auth.describe(),
            receives_mail=receives,
            mail_detail=mail_detail,
            reason=auth.describe(),
        )
    texts = tuple(t for t in (auth.texts() if auth.ok else ()) if starts_with_version(t))
    override, ignored = authorization_override(host, texts)
    return _Host(
        host,
        walked,
        True,
        query,
        bool(texts),
        texts,
        auth.describe(),
        receives,
        mail_detail,
        override=override,
        override_ignored=ignored,
    )


def authorization_override(
    host: str, texts: Sequence[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The ``rua`` URIs an authorisation record puts in place of the original (RFC 9990 §4):
    only those with the destination's own host count; (used, ignored)."""
    for text in texts:
        record = parse(text)
        if record is not None and record.rua:
            used = tuple(u.raw for u in record.rua if u.domain == host)
            ignored = tuple(u.raw for u in record.rua if u.domain != host)
            return used, ignored
    return (), ()


async def _not_mail() -> tuple[bool | None, str]:
    return True, "not a mailbox (the URI is not mailto:)"


async def _receives_mail(
    session: DnsSession, domain: str, parent: Lookup
) -> tuple[bool | None, str]:
    """Whether mail to ``domain`` can be delivered: MX, null MX, or implicit MX (RFC 5321 §5.1)."""
    mx = await session.query(domain, "MX", after=parent)
    if mx.failed:
        return None, mx.describe()
    if mx.outcome is Outcome.NXDOMAIN:
        return False, f"{domain} does not exist (NXDOMAIN)"
    if mx.ok:
        exchanges = [str(r.exchange).rstrip(".") for r in mx.records]  # type: ignore[attr-defined]
        if exchanges and all(e in ("", ".") for e in exchanges):
            return False, f"{domain} publishes a null MX (it accepts no mail)"
        return True, f"MX {domain}: {', '.join(e for e in exchanges if e)}"
    a, aaaa = await session.query_many(((domain, "A"), (domain, "AAAA")), after=mx)
    if a.ok or aaaa.ok:
        return True, f"{domain} has no MX; mail goes to its address (implicit MX)"
    if a.failed or aaaa.failed:
        return None, (a if a.failed else aaaa).describe()
    return False, f"{domain} has no MX and no address record"


def _host_findings(
    policy_domain: str, own_org: OrganizationalDomain, host: _Host, tags: Sequence[str]
) -> list[Finding]:
    findings: list[Finding] = []
    which = "/".join(tags)
    if host.external:
        data: dict[str, Any] = {
            "destination": host.name,
            "query": host.query,
            "destination_organizational_domain": host.org.domain,
            "policy_organizational_domain": own_org.domain,
        }
        if host.authorized is None:
            findings.append(
                REPORT_UNAUTHORIZED.unknown(
                    host.name,
                    f"TXT {host.query} could not be read: {host.reason}. Whether {host.name} "
                    "accepts reports for the domain is unknown.",
                    **data,
                )
            )
        elif not host.authorized and (host.org.uncertain or own_org.uncertain):
            # Organizational domains decided on partial answers may be wrong, and then the
            # destination may not be external at all: do not claim it is unauthorised.
            findings.append(
                REPORT_UNAUTHORIZED.unknown(
                    host.name,
                    f"TXT {host.query}: {host.auth_lookup}; but whether {host.name} is outside "
                    f"the organization of {policy_domain} is uncertain: "
                    f"{host.org.uncertain or own_org.uncertain}.",
                    **data,
                )
            )
        elif host.authorized:
            findings.append(
                REPORT_AUTHORIZED.passed(
                    host.name,
                    f"{host.name} accepts DMARC reports ({which}) for {policy_domain}",
                    f"TXT {host.query}: `{host.auth_texts[0] if host.auth_texts else ''}`."
                    + (
                        f" Its rua sends the reports to {', '.join(host.override)} instead."
                        if host.override
                        else ""
                    )
                    + (
                        f" Its rua {', '.join(host.override_ignored)} is ignored: an "
                        f"authorisation may only redirect within {host.name}."
                        if host.override_ignored
                        else ""
                    ),
                    override=list(host.override),
                    override_ignored=list(host.override_ignored),
                    **data,
                )
            )
        else:
            findings.append(
                REPORT_UNAUTHORIZED.failed(
                    host.name,
                    f"{host.name} has not authorised DMARC reports ({which}) for {policy_domain}",
                    f"{host.name} belongs to {host.org.domain}, {policy_domain} to "
                    f"{own_org.domain}, so receivers first look for an authorisation: "
                    f"{host.auth_lookup}. Without one they send no reports there.",
                    f"The operator of {host.name} must publish {txt(host.query, 'v=DMARC1')} "
                    f"(or, for every domain, {txt('*._report._dmarc.' + host.name, 'v=DMARC1')}"
                    "); or point the URI at a mailbox in your own domain.",
                    **data,
                )
            )
    if host.receives_mail is None:
        findings.append(REPORT_NO_MX.unknown(host.name, host.mail_detail, destination=host.name))
    elif host.receives_mail is False:
        findings.append(
            REPORT_NO_MX.failed(
                host.name,
                f"Reports ({which}) to {host.name} cannot be delivered",
                f"{host.mail_detail}. DMARC reports are mail; they will bounce.",
                f"Publish an MX for {host.name} (e.g. `{host.name}. IN MX 10 mail.{host.name}.`) "
                "or use a report address in a domain that receives mail.",
                destination=host.name,
            )
        )
    return findings
