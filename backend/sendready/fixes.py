"""Ready-to-paste fixes: from the facts the checks gathered to the exact records to publish.

Every builder here is pure (facts in, :class:`Record` values out); :func:`attach` runs once
all sections of a request are in and fills ``Finding.records`` of each fixable failing
finding. The values agree with the checks' own fix texts (they are built with the same
helpers: ``dmarc_record.render``, the SPF terms as written) and every value parses with the
project's own parsers (tests feed each one back through them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from .checks.alignment import m365_selector
from .checks.dkim import DkimFacts
from .checks.dmarc import DmarcFacts, stage_changes
from .checks.dmarc_record import REMOVED, DmarcRecord, parse, render
from .checks.mta_sts import (
    POLICY_PATH,
    SUGGESTED_MAX_AGE,
    MtaStsFacts,
    meant_mode,
    policy_text,
)
from .checks.mx import MxFacts
from .checks.services import ServicesFacts
from .checks.spf import NodeStatus, SpfFacts, SpfNode, TermFact, strictest_first
from .checks.spf_eval import LOOKUP_LIMIT, VOID_LIMIT
from .checks.spf_syntax import (
    Mechanism,
    Modifier,
    SpfRecord,
    SpfSyntaxError,
    Term,
    parse_record,
)
from .checks.tlsrpt import report_mailbox, suggested_record
from .config import Settings
from .model import CheckRequest, Finding, Record, Status
from .providers import Catalog, Service, catalog

#: TTL of every suggested DNS record: an hour lets a mistake be corrected the same day.
TTL = 3600
#: TXT character-strings hold at most 255 octets (RFC 7208 §3.3); longer values are split.
TXT_STRING = 255

F = TypeVar("F")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FixContext:
    """What the builders may read: the request's domain and the facts of each section."""

    domain: str
    facts: Mapping[str, Any]
    catalog: Catalog
    request: CheckRequest
    policy_id: str

    def section(self, name: str, kind: type[F]) -> F | None:
        """The facts of one section when that check ran and produced facts of ``kind``."""
        value = self.facts.get(name)
        return value if isinstance(value, kind) else None


#: A fix builder: the records for one failing finding, () when none can be computed.
_Builder = Callable[[Finding, FixContext], tuple[Record, ...]]


def attach(
    findings: Sequence[Finding],
    facts: Mapping[str, Any],
    request: CheckRequest,
    settings: Settings,
    *,
    now: datetime | None = None,
) -> tuple[Finding, ...]:
    """The findings with ``records`` filled for each failing finding a record can fix."""
    moment = now or datetime.now(UTC)
    ctx = FixContext(
        request.domain,
        facts,
        catalog(settings.provider_aliases),
        request,
        moment.strftime("%Y%m%dT%H%M%S%f"),
    )
    out: list[Finding] = []
    for finding in findings:
        builder = _BUILDERS.get(finding.id)
        if builder is not None and finding.status is Status.FAIL and not finding.records:
            records = _built(builder, finding, ctx)
            if records:
                finding = replace(finding, records=records)
        out.append(finding)
    return tuple(out)


def _built(builder: _Builder, finding: Finding, ctx: FixContext) -> tuple[Record, ...]:
    """The builder's records; a failing builder costs its records only, never the report
    (the finding keeps its fix text), and is logged."""
    try:
        return builder(finding, ctx)
    except Exception:
        log.exception("building the records of %s for %s failed", finding.id, ctx.domain)
        return ()


# -- SPF ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpfFix:
    """The corrected record, what changed (for the note), and its DNS lookup count."""

    value: str
    changes: tuple[str, ...]
    lookups: int
    uncounted: tuple[str, ...]
    costs: tuple[tuple[str, int], ...]
    added: tuple[str, ...]
    #: Void lookups left after the removals (the worse address family), as counted.
    void_lookups: int = 0

    @property
    def over_limit(self) -> bool:
        return self.lookups > LOOKUP_LIMIT


def corrected_spf(facts: SpfFacts, services: Sequence[Service]) -> SpfFix | None:
    """One SPF record that keeps every published term (merging several records), adds the
    includes of ``services`` before ``all``, drops only repeats, extra ``all``s, ``ptr`` and
    includes or a redirect whose target has no record (each named in ``changes``), and ends
    in a protective ``all`` or the redirect.

    None when there is nothing to build on: a syntax error (the check says which term), a
    tree that could not be read, or no record and no known service to authorise.
    """
    tree = facts.tree
    if tree is None or tree.status not in (
        NodeStatus.OK,
        NodeStatus.MULTIPLE,
        NodeStatus.NO_RECORD,
    ):
        return None
    sources = tree.records if tree.status is not NodeStatus.NO_RECORD else ()
    parsed = [parse_record(text) for text in sources]
    records = [p for p in parsed if not isinstance(p, SpfSyntaxError)]
    broken = [p for p in parsed if isinstance(p, SpfSyntaxError)]
    if broken and not records:
        return None
    changes: list[str] = []
    if len(sources) > 1:
        changes.append(f"merges the {len(sources)} published records into one")
    changes += [
        f"leaves out `{p.record}`, which does not parse ({p.reason}): add back what it meant"
        for p in broken
    ]
    dead = _dead_terms(tree)
    merged = _merge_terms([t for p in records for t in p.terms], dead)
    changes += merged.changes
    changes += [
        f"moves `{m.text}` before `all` (after it, it was never evaluated)"
        for p in records
        for m in p.after_all
        if m.name != "all" and m.text in merged.mechanisms
    ]
    present = _included(tree, records)
    added = [
        (include, service.name)
        for service in services
        for include in service.spf_includes
        if include not in present
    ]
    if not sources and not added:
        return None
    mechanisms = [*merged.mechanisms, *(f"include:{include}" for include, _ in added)]
    changes += [f"adds `include:{include}` for {name}" for include, name in added]
    ending, ending_changes = _ending(merged.alls, merged.redirect, published=bool(sources))
    changes += ending_changes
    value = " ".join(["v=spf1", *mechanisms, *ending, *merged.modifiers])
    counted = [(t.text, _cost(tree, t)) for t in _lookup_terms(value)]
    return SpfFix(
        value=value,
        changes=tuple(changes),
        lookups=sum(max(cost, 1) for _, cost in counted),
        uncounted=tuple(term for term, cost in counted if cost == 0),
        costs=tuple(sorted(((t, c) for t, c in counted if c > 1), key=lambda tc: -tc[1])),
        added=tuple(f"include:{include}" for include, _ in added),
        void_lookups=_voids_left(tree, dead),
    )


@dataclass(frozen=True, slots=True)
class _Merged:
    mechanisms: tuple[str, ...]
    alls: tuple[str, ...]
    redirect: str
    modifiers: tuple[str, ...]
    changes: tuple[str, ...]


def _dead_terms(tree: SpfNode) -> dict[str, str]:
    """The record's own terms that can only do harm, with why they go: includes and a
    redirect whose target has no SPF record (a permerror), and ``a``/``mx``/``exists``
    terms whose name has no records of either address family (a void lookup that can
    never match)."""
    if tree.status is not NodeStatus.OK:
        return {}
    dead = {
        child.term: f"{child.domain} has no SPF record, so receivers return permerror there"
        for child in tree.children
        if child.status is NodeStatus.NO_RECORD
    }
    for term in tree.terms:
        if term.kind in ("a", "mx", "exists") and term.void_ipv4 and term.void_ipv6:
            dead.setdefault(
                term.text,
                f"{term.target or tree.domain} has no records, so it never matches and "
                "counts as a void lookup",
            )
    return dead


def _voids_left(tree: SpfNode, dead: Mapping[str, str]) -> int:
    """Void lookups of the tree once the ``dead`` terms are gone (the worse family)."""
    gone: list[TermFact | SpfNode] = [t for t in tree.terms if t.text in dead]
    gone += [c for c in tree.children if c.term in dead]
    v4 = tree.void_ipv4 - sum(int(g.void_ipv4) for g in gone)
    v6 = tree.void_ipv6 - sum(int(g.void_ipv6) for g in gone)
    return max(v4, v6)


def _merge_terms(terms: Iterable[Term], dead: Mapping[str, str]) -> _Merged:
    """Terms in published order, each once; ``all`` and ``redirect`` are set aside, and
    the ``dead`` ones (include or redirect targets without a record) are left out."""
    mechanisms: list[str] = []
    modifiers: list[str] = []
    alls: list[str] = []
    redirects: list[str] = []
    seen: dict[str, str] = {}
    changes: list[str] = []
    for term in terms:
        if term.text in dead:
            changes.append(f"removes `{term.text}`: {dead[term.text]}")
            continue
        if isinstance(term, Mechanism) and term.name == "all":
            alls.append(term.text)
            continue
        if isinstance(term, Modifier) and term.name == "redirect":
            redirects.append(term.text)
            continue
        # A mechanism repeated with another qualifier never matches: the first one does.
        key = term.text.lower().lstrip("+-~?") if isinstance(term, Mechanism) else term.text
        if key in seen:
            changes.append(f"removes `{term.text}`, a repeat of `{seen[key]}`")
            continue
        seen[key] = term.text
        if isinstance(term, Mechanism) and term.name == "ptr":
            changes.append(
                f"removes `{term.text}` (RFC 7208 §5.5: do not use ptr); list the ip4:/ip6: "
                "ranges or a: names of the hosts it matched, if any still send"
            )
            continue
        if (
            isinstance(term, Modifier)
            and term.name == "exp"
            and any(m.startswith("exp=") for m in modifiers)
        ):
            changes.append(f"removes `{term.text}`: a record may have one exp= (RFC 7208 §6)")
            continue
        (modifiers if isinstance(term, Modifier) else mechanisms).append(term.text)
    redirect = redirects[0] if redirects else ""
    changes += [
        f"removes `{r}`: a record may have one redirect= (RFC 7208 §6)" for r in redirects[1:]
    ]
    return _Merged(tuple(mechanisms), tuple(alls), redirect, tuple(modifiers), tuple(changes))


def _ending(alls: Sequence[str], redirect: str, *, published: bool) -> tuple[list[str], list[str]]:
    """The closing terms: the strictest published ``all`` (``+all``/``?all`` become
    ``~all``), ``-all`` for a new record, or the redirect alone when there is no ``all``."""
    changes: list[str] = []
    if not alls:
        if redirect:
            return [redirect], changes
        if published:
            changes.append("ends with `~all` (there was no `all`: unlisted hosts got neutral)")
            return ["~all"], changes
        return ["-all"], changes
    ranked = strictest_first(alls)
    best = ranked[0]
    if best[0] not in "-~":
        changes.append(f"replaces `{best}` by `~all` (`{best}` does not reject unlisted hosts)")
        best = "~all"
    changes += [f"removes `{a}`: one `all` ends the record" for a in ranked[1:]]
    ending = [best]
    if redirect:
        changes.append(f"keeps `{redirect}`, which has no effect beside `all` (RFC 7208 §6.1)")
        ending.append(redirect)
    return ending, changes


def _lookup_terms(value: str) -> list[Term]:
    """The terms of a built record that cost a DNS lookup (RFC 7208 §4.6.4), in order; a
    redirect beside ``all`` is never followed (§6.1), so it costs nothing."""
    record = parse_record(value)
    if isinstance(record, SpfSyntaxError):
        # Every term was parsed before it was kept, so this is a bug here, not in the zone.
        raise ValueError(f"the corrected SPF record does not parse: {record}")
    terms: list[Term] = [m for m in record.mechanisms if m.queries_dns]
    if record.redirect_used and record.redirect is not None:
        terms.append(record.redirect)
    return terms


def _literal_target(term: Term) -> str | None:
    """The domain an include or redirect names, normalised; None when it has macros."""
    spec = term.value if isinstance(term, Modifier) else term.domain
    literal = spec.literal if spec is not None else None
    return literal.lower().rstrip(".") if literal is not None else None


def _included(tree: SpfNode, records: Iterable[SpfRecord]) -> set[str]:
    """Every target already reached: included by the records, or anywhere below them
    (an include or the redirect)."""
    targets = {
        target
        for record in records
        for m in record.mechanisms
        if m.name == "include" and (target := _literal_target(m)) is not None
    }
    targets |= {node.domain for node in tree.walk() if node.via in ("include", "redirect")}
    return targets


def _cost(tree: SpfNode, term: Term) -> int:
    """Lookups one term costs as the published tree counted it: 1 for the term plus the
    subtree it reaches; 0 when the tree never fetched it (an added or a merged include)."""
    if term.name not in ("include", "redirect"):
        return 1
    target = _literal_target(term)
    for node in tree.walk():
        if node.via in ("include", "redirect") and node.domain == target:
            return 1 + node.subtree_lookups if node.status is NodeStatus.OK else 1
    return 0


def spf_record(fix: SpfFix, domain: str) -> Record:
    """The corrected SPF record with a note of every change and the lookup count."""
    notes = [f"This record {'; '.join(fix.changes)}." if fix.changes else ""]
    count = f"{fix.lookups} of {LOOKUP_LIMIT} DNS lookups"
    if fix.uncounted:
        count += (
            ", plus the lookups inside "
            + ", ".join(f"`{t}`" for t in fix.uncounted)
            + " (not fetched by this check)"
        )
    notes.append(f"It needs {count}.")
    if fix.over_limit:
        costly = ", ".join(f"`{term}` ({cost})" for term, cost in fix.costs[:3]) or "the includes"
        notes.append(
            f"That is over the limit of {LOOKUP_LIMIT}: receivers return permerror. Flattening "
            f"is needed: replace the costliest includes ({costly}) by the ip4:/ip6: ranges "
            "their owners publish, and keep those ranges up to date, or move a service to its "
            "own MAIL FROM subdomain."
        )
    if "-all" not in fix.value.split() and "~all" in fix.value.split():
        notes.append(
            "Change `~all` to `-all` once every service that sends as the domain is listed."
        )
    if len(fix.value) > TXT_STRING:
        notes.append(
            f"The value is {len(fix.value)} characters: DNS hosts that do not split long TXT "
            f"values need it as several quoted strings of at most {TXT_STRING}."
        )
    return Record("TXT", domain, fix.value, TTL, " ".join(n for n in notes if n))


def _spf_services(ctx: FixContext) -> list[Service]:
    """Detected services whose mail carries the domain itself as MAIL FROM, so that the
    domain's own SPF record must authorise them (DOMAIN.md §2)."""
    detected = ctx.section("services", ServicesFacts)
    ids = detected.ids if detected is not None else ()
    services = [ctx.catalog.get(i) for i in ids]
    return [s for s in services if s is not None and s.return_path == "from" and s.spf_includes]


def _spf_fix(finding: Finding, ctx: FixContext) -> tuple[Record, ...]:
    facts = ctx.section("spf", SpfFacts)
    if facts is None or facts.domain != ctx.domain or facts.tree is None:
        return ()
    if finding.id in ("spf.include_target_missing", "spf.redirect_target_missing"):
        # About the target: fixable here only when the domain's own record names it.
        dead = (c for c in facts.tree.children if c.status is NodeStatus.NO_RECORD)
        if not any(c.domain == finding.subject for c in dead):
            return ()
    elif finding.subject != facts.domain:
        return ()
    fix = corrected_spf(facts, _spf_services(ctx))
    if fix is None:
        return ()
    if finding.id == "spf.too_many_lookups" and fix.over_limit:
        return ()
    if finding.id == "spf.too_many_void_lookups" and fix.void_lookups > VOID_LIMIT:
        return ()
    if finding.id == "spf.sender_not_authorized" and not fix.added:
        return ()
    if finding.id == "spf.permissive_all" and facts.tree.all_from_redirect:
        return ()
    if finding.id in ("spf.ptr_used", "spf.terms_after_all", "spf.too_many_lookups") and (
        fix.value == facts.record
    ):
        return ()
    return (spf_record(fix, facts.domain),)


# -- DMARC -------------------------------------------------------------------------------

_STAGE_NOTES = (
    "Stage 1 of 3 (monitoring): nothing is blocked yet. Read the aggregate reports for two to "
    "four weeks, until every service that sends as the domain passes SPF or DKIM aligned.",
    "Stage 2 of 3: publish when the reports show no legitimate source failing. Failing mail "
    "now goes to spam; keep reading the reports for a few weeks for anything legitimate that "
    "still fails.",
    "Stage 3 of 3: publish after a few weeks at quarantine without legitimate failures. "
    "Failing mail is now rejected.",
)


def dmarc_stages(
    record: DmarcRecord | None, policy_domain: str, tag: str = "p"
) -> tuple[Record, ...]:
    """The three records from monitoring to enforcement, kept as published otherwise: the
    policy tag in force (``p``, or ``sp``/``np`` for an inherited one) goes none →
    quarantine → reject; a missing ``rua`` is added and ``t=y`` dropped (as in the DMARC
    check's staged fix text), and so are the tags RFC 9989 removed (pct, rf, ri)."""
    mailbox = f"dmarc-reports@{policy_domain}"
    policies = ("none", "quarantine", "reject")
    if record is None:
        values = [f"v=DMARC1; p={p}; rua=mailto:{mailbox}" for p in policies]
        dropped: list[str] = []
    else:
        target, extra = stage_changes(record, policy_domain, tag)
        dropped = [name for name in REMOVED if record.has(name)]
        changes: dict[str, str | None] = {**dict.fromkeys(dropped), **extra}
        values = [render(record, {target: p, **changes}) for p in policies]
    first = _STAGE_NOTES[0]
    if record is None or not record.rua:
        first += (
            f" Create the mailbox {mailbox} first (or put one you read in rua=): reports sent "
            "to a missing mailbox bounce."
        )
    if dropped:
        first += (
            " Drops " + ", ".join(f"{name}=" for name in dropped) + ": RFC 9989 removed it "
            "and receivers ignore it (the stages do its job)."
        )
    if record is not None and values[0] == record.text:
        first = "You publish this record now. " + first
    notes = (first, *_STAGE_NOTES[1:])
    name = f"_dmarc.{policy_domain}"
    return tuple(Record("TXT", name, v, TTL, n) for v, n in zip(values, notes, strict=True))


def _dmarc_record(ctx: FixContext) -> tuple[DmarcFacts | None, DmarcRecord | None]:
    facts = ctx.section("dmarc", DmarcFacts)
    if facts is None or facts.record is None or facts.policy_domain is None:
        return facts, None
    return facts, parse(facts.record)


def _dmarc_missing(finding: Finding, ctx: FixContext) -> tuple[Record, ...]:
    return dmarc_stages(None, ctx.domain)


def _dmarc_required(finding: Finding, ctx: FixContext) -> tuple[Record, ...]:
    """The providers' "a DMARC record is published" line: the same stages as dmarc.missing,
    when that is why it is not met."""
    facts = ctx.section("dmarc", DmarcFacts)
    if facts is None or facts.record is not None or facts.unknown:
        return ()
    return dmarc_stages(None, ctx.domain)


def _dmarc_staged(finding: Finding, ctx: FixContext) -> tuple[Record, ...]:
    """The stages for a record in force that does not enforce (none, or no valid policy),
    at the policy domain, which may be an ancestor whose record the domain inherits."""
    facts, record = _dmarc_record(ctx)
    if facts is None or record is None or facts.policy_domain is None:
        return ()
    if facts.policy not in (None, "none"):
        return ()  # never lower a stricter policy
    stages = dmarc_stages(record, facts.policy_domain, facts.policy_tag)
    if facts.policy_domain != ctx.domain:
        inherited = (
            f" This is the record of {facts.policy_domain}, whose policy applies to "
            f"{ctx.domain}: the change applies to its other subdomains too."
        )
        stages = tuple(replace(r, note=r.note + inherited) for r in stages)
    return stages


def _dmarc_edit(changes: Callable[[str], Mapping[str, str | None]], why: str) -> _Builder:
    """A builder for a one-record DMARC fix: the published record with ``changes``."""

    def build(finding: Finding, ctx: FixContext) -> tuple[Record, ...]:
        facts, record = _dmarc_record(ctx)
        if facts is None or record is None or facts.policy_domain is None:
            return ()
        domain = facts.policy_domain
        value = render(record, changes(domain))
        return (Record("TXT", f"_dmarc.{domain}", value, TTL, why.format(domain=domain)),)

    return build


def _report_authorization(finding: Finding, ctx: FixContext) -> tuple[Record, ...]:
    """The record the operator of an external report destination publishes to accept the
    domain's reports (RFC 9990 §4)."""
    facts = ctx.section("dmarc", DmarcFacts)
    if facts is None:
        return ()
    queries = {
        d.authorization_query
        for d in facts.destinations
        if d.domain == finding.subject and d.external and d.authorization_query
    }
    note = (
        f"Published by the operator of {finding.subject} in its own zone, not by you: ask "
        "them (a report service documents this), or send the reports to a mailbox in your "
        "own domain instead."
    )
    return tuple(Record("TXT", q, "v=DMARC1", TTL, note) for q in sorted(queries))


# -- DKIM (Microsoft 365) ---------------------------------------------------------------


def m365_dkim_cnames(domain: str, initial_domain: str) -> tuple[Record, ...]:
    """The two selector CNAMEs of Microsoft 365 DKIM in the format that uses the tenant's
    initial (onmicrosoft.com) domain (DOMAIN.md §2.1)."""
    note = (
        f"Format for domains added to Microsoft 365 before May 2025. Compare it with "
        f"`Get-DkimSigningConfig -Identity {domain} | Format-List Selector1CNAME, "
        "Selector2CNAME` (or the Defender portal: Email authentication settings → DKIM); if "
        "that shows a target under dkim.mail.microsoft (the newer format), publish that value "
        "instead. After both CNAMEs resolve, enable signing there."
    )
    return tuple(
        Record(
            "CNAME",
            f"{selector}._domainkey.{domain}",
            f"{m365_selector(selector, domain)}._domainkey.{initial_domain}",
            TTL,
            note,
        )
        for selector in ("selector1", "selector2")
    )


def initial_domain(request: CheckRequest) -> str | None:
    """The tenant's initial domain (``<tenant>.onmicrosoft.com``) when the caller knows it
    owns the checked domain (Graph /organization for a verified domain, a tenant scan,
    --tenant-domain). The signed-in user's own addresses do not say so: a user of one
    tenant may check, or send as, a domain of another, whose CNAMEs point elsewhere."""
    return request.tenant_domain.lower().rstrip(".") if request.tenant_domain else None


def _dkim_fix(finding: Finding, ctx: FixContext) -> tuple[Record, ...]:
    if finding.data.get("service") != "microsoft365":
        return ()
    m365 = ctx.catalog.get("microsoft365")
    facts = ctx.section("dkim", DkimFacts)
    if m365 is None or facts is None or facts.domain != ctx.domain:
        return ()
    tenant = initial_domain(ctx.request)
    if tenant is None:
        return ()  # the fix text names the admin-center step that shows the real targets
    published = {s.selector for s in facts.selectors if s.cname_chain}
    return tuple(
        r for r in m365_dkim_cnames(ctx.domain, tenant) if r.name.split(".")[0] not in published
    )


# -- MTA-STS -----------------------------------------------------------------------------


def mta_sts_records(domain: str, body: str, policy_id: str, *, new: bool) -> tuple[Record, ...]:
    """The policy FILE at its URL and the ``_mta-sts`` TXT record that announces it."""
    url = f"https://mta-sts.{domain}{POLICY_PATH}"
    host = (
        f" mta-sts.{domain} needs an A/AAAA record (or a CNAME) pointing at the web host that "
        "serves this file; SendReady cannot know your web host."
        if new
        else ""
    )
    file_note = (
        f"Serve this file at {url} over HTTPS with a certificate valid for mta-sts.{domain} "
        "from a public CA, status 200, no redirect, Content-Type text/plain." + host
    )
    if "mode: testing" in body:
        file_note += (
            " Start in testing mode; when the TLS-RPT reports show no failures for a few "
            "weeks, set mode: enforce, raise max_age (weeks or more) and change the TXT id."
        )
    return (Record("FILE", url, body, 0, file_note), sts_announcement(domain, policy_id))


def sts_announcement(domain: str, policy_id: str) -> Record:
    """The ``_mta-sts`` TXT record (RFC 8461 §3.1); ``policy_id`` is 1-32 letters and digits."""
    note = "Publish after the file is served; change id= whenever the policy file changes."
    return Record("TXT", f"_mta-sts.{domain}", f"v=STSv1; id={policy_id}", TTL, note)


def _mx_hosts(ctx: FixContext) -> tuple[str, ...]:
    mx = ctx.section("mx", MxFacts)
    if mx is not None and not mx.null_mx and not mx.implicit:
        return tuple(dict.fromkeys(h.name for h in mx.hosts))
    sts = ctx.section("mta_sts", MtaStsFacts)
    return sts.mx_hosts if sts is not None else ()


def _sts_fix(finding: Finding, ctx: FixContext) -> tuple[Record, ...]:
    facts = ctx.section("mta_sts", MtaStsFacts)
    if facts is None or facts.domain != ctx.domain:
        return ()
    if finding.id == "mta_sts.record_invalid":
        return (sts_announcement(ctx.domain, ctx.policy_id),)
    policy = facts.policy if facts.policy is not None and not facts.policy.error else None
    if policy is None:
        hosts = _mx_hosts(ctx)
        if not hosts:
            return ()  # without MX hosts there is nothing for a policy to cover
        # An invalid policy keeps the mode it meant, as the check's fix text says.
        body = policy_text(meant_mode(facts.policy), hosts)
        return mta_sts_records(ctx.domain, body, ctx.policy_id, new=True)
    mode = "enforce" if finding.id == "mta_sts.mode" else policy.mode
    max_age = SUGGESTED_MAX_AGE if policy.max_age is None else policy.max_age
    if finding.id == "mta_sts.max_age_short":
        max_age = max(max_age, SUGGESTED_MAX_AGE)
    body = policy_text(mode, dict.fromkeys((*policy.mx, *facts.uncovered)), max_age)
    return mta_sts_records(ctx.domain, body, ctx.policy_id, new=False)


# -- TLS-RPT -----------------------------------------------------------------------------


def tlsrpt_record(domain: str) -> Record:
    """The ``_smtp._tls`` record asking for daily TLS reports by mail (RFC 8460 §3)."""
    return Record(
        "TXT",
        f"_smtp._tls.{domain}",
        suggested_record(domain),
        TTL,
        f"Create the mailbox {report_mailbox(domain)} (or use an https: endpoint of a report "
        "service in rua=); reports arrive daily as gzip JSON. Publish only this one record.",
    )


def _tlsrpt_fix(finding: Finding, ctx: FixContext) -> tuple[Record, ...]:
    return (tlsrpt_record(ctx.domain),) if finding.subject == ctx.domain else ()


# -- dispatch ----------------------------------------------------------------------------

_RUA_WHY = (
    "Create the mailbox dmarc-reports@{domain} first (or put one you read): reports sent to "
    "a missing mailbox bounce."
)

_BUILDERS: dict[str, _Builder] = {
    **dict.fromkeys(
        (
            "spf.missing",
            "spf.multiple_records",
            "spf.permissive_all",
            "spf.ptr_used",
            "spf.terms_after_all",
            "spf.too_many_lookups",
            "spf.sender_not_authorized",
            "spf.include_target_missing",
            "spf.redirect_target_missing",
            "spf.too_many_void_lookups",
        ),
        _spf_fix,
    ),
    "dmarc.missing": _dmarc_missing,
    "requirements.dmarc_record": _dmarc_required,
    "dmarc.policy_none": _dmarc_staged,
    "dmarc.not_applied": _dmarc_staged,
    "dmarc.no_aggregate_reports": _dmarc_edit(
        lambda domain: {"rua": f"mailto:dmarc-reports@{domain}"}, _RUA_WHY
    ),
    "dmarc.report_destination_unauthorized": _report_authorization,
    "dmarc.testing": _dmarc_edit(
        lambda _: {"t": None},
        "Publish when the reports show no legitimate failures: the policy then applies in full.",
    ),
    "dmarc.subdomain_policy_none": _dmarc_edit(
        lambda _: {"sp": None},
        "Subdomains then follow p=. Keep sp=none only while a subdomain is still being set up.",
    ),
    "dkim.missing": _dkim_fix,
    "mta_sts.not_published": _sts_fix,
    "mta_sts.mx_mismatch": _sts_fix,
    "mta_sts.policy_unreachable": _sts_fix,
    "mta_sts.record_invalid": _sts_fix,
    "mta_sts.mode": _sts_fix,
    "mta_sts.max_age_short": _sts_fix,
    "tlsrpt.missing": _tlsrpt_fix,
    "tlsrpt.multiple_records": _tlsrpt_fix,
    "tlsrpt.syntax_error": _tlsrpt_fix,
}

#: The finding ids that can carry records (docs and tests read this).
FIXABLE: tuple[str, ...] = tuple(sorted(_BUILDERS))
