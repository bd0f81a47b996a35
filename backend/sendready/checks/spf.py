"""SPF (RFC 7208): the sender domain's policy, its include/redirect tree, its limits, and
findings with exact fixes. ``check_host()`` itself lives in ``spf_eval``.

The analysis expands the whole tree breadth-first in parallel: the moment a record answers,
every include, the redirect, and the lookups of its ``a``/``mx``/``exists`` terms start at
once (each passing ``after=`` the record's lookup), so wall time follows the depth of the
tree, not its size. Lookups are counted the way §4.6.4 counts them during an evaluation.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, replace

from ..dns import DnsSession, Lookup
from ..engine import CheckContext, Section
from ..model import Finding, Severity, rule
from ..providers import Catalog, catalog
from .spf_eval import (
    LOOKUP_LIMIT,
    MX_HOST_LIMIT,
    VOID_LIMIT,
    SpfResult,
    SpfResultCode,
    check_host,
    query_name,
    valid_domain,
)
from .spf_syntax import (
    Mechanism,
    Modifier,
    SpfRecord,
    SpfSyntaxError,
    parse_record,
    select_records,
)

#: §3.4: keep the name plus the TXT strings under this, so the answer fits in 512 octets.
ANSWER_OCTETS = 450
#: Bounds on the tree walk. A tree this large is over the limit of 10 many times over, so
#: walking further would only spend queries on a hostile or broken policy.
MAX_NODES = 25
MAX_DEPTH = 11
#: Term lookups resolved per record (counting goes on past it).
MAX_TERM_LOOKUPS = 10
#: Said where the domain's own record needs a change: fixes.py attaches one corrected record
#: that makes every such change at once, so the findings do not send the admin in circles.
COMBINED = (
    " The record to publish (below) makes this and every other change the SPF record needs "
    "at once; its note lists each change."
)

MISSING = rule(
    "spf.missing",
    "The domain publishes no SPF record (check_host() result none).",
    "RFC 7208 §4.5",
    Severity.CRITICAL,
)
MULTIPLE = rule(
    "spf.multiple_records",
    "More than one SPF record is published at one name; receivers return permerror.",
    "RFC 7208 §3.2, §4.5",
    Severity.CRITICAL,
)
SYNTAX = rule(
    "spf.syntax_error",
    "An SPF record does not follow the grammar; receivers return permerror.",
    "RFC 7208 §4.6, §12",
    Severity.CRITICAL,
)
TOO_MANY_LOOKUPS = rule(
    "spf.too_many_lookups",
    "The policy needs more than 10 DNS-querying terms; receivers return permerror.",
    "RFC 7208 §4.6.4",
    Severity.CRITICAL,
)
TOO_MANY_VOID = rule(
    "spf.too_many_void_lookups",
    "More than two terms of the policy look up names that do not exist or have no records.",
    "RFC 7208 §4.6.4",
    Severity.CRITICAL,
)
LOOP = rule(
    "spf.include_loop",
    "An include or redirect leads back to a record already being evaluated.",
    "RFC 7208 §4.6.4, §5.2, §6.1",
    Severity.CRITICAL,
)
PERMISSIVE_ALL = rule(
    "spf.permissive_all",
    "The policy does not reject unlisted senders (`+all`, `?all` or no `all`).",
    "RFC 7208 §5.1, §4.7; SendReady product rule",
    Severity.WARNING,
)
NOT_AUTHORIZED = rule(
    "spf.sender_not_authorized",
    "The sending IP is not authorised by the SPF policy of the MAIL FROM domain.",
    "RFC 7208 §2.6, §4",
    Severity.CRITICAL,
)
PTR_USED = rule(
    "spf.ptr_used",
    "The policy uses the `ptr` mechanism, which RFC 7208 says not to use.",
    "RFC 7208 §5.5",
    Severity.WARNING,
)
AFTER_ALL = rule(
    "spf.terms_after_all",
    "Terms follow `all`; they are never evaluated.",
    "RFC 7208 §5.1",
    Severity.WARNING,
)
TOO_LONG = rule(
    "spf.record_too_long",
    "The SPF answer is longer than 450 octets and may not fit a 512-octet UDP reply.",
    "RFC 7208 §3.4",
    Severity.WARNING,
)
INCLUDE_NO_RECORD = rule(
    "spf.include_target_missing",
    "An include names a domain without an SPF record; receivers return permerror.",
    "RFC 7208 §5.2",
    Severity.CRITICAL,
)
REDIRECT_NO_RECORD = rule(
    "spf.redirect_target_missing",
    "The redirect names a domain without an SPF record; receivers return permerror.",
    "RFC 7208 §6.1",
    Severity.CRITICAL,
)
MX_TOO_MANY = rule(
    "spf.mx_too_many_hosts",
    "An `mx` term names a domain with more than 10 MX hosts; that term is a permerror.",
    "RFC 7208 §4.6.4",
    Severity.CRITICAL,
)
LOOKUP_FAILED = rule(
    "spf.lookup_failed",
    "A DNS lookup needed by the SPF policy failed; receivers may return temperror.",
    "RFC 7208 §4.4, §5.2",
    Severity.WARNING,
)
TYPE99 = rule(
    "spf.type99_record",
    "The domain also publishes the obsolete SPF (type 99) record; receivers ignore it.",
    "RFC 7208 §3.1, §14.1",
    Severity.INFO,
)
VALID = rule(
    "spf.valid",
    "The domain publishes one valid SPF record within the lookup limits.",
    "RFC 7208 §4",
    Severity.INFO,
)


class NodeStatus(enum.StrEnum):
    """What the walk found at one name of the tree."""

    OK = "ok"
    NO_RECORD = "no_record"
    MULTIPLE = "multiple_records"
    SYNTAX_ERROR = "syntax_error"
    DNS_ERROR = "dns_error"
    LOOP = "loop"
    NOT_FOLLOWED = "not_followed"


@dataclass(frozen=True, slots=True)
class TermFact:
    """One term of a record, as the analysis saw it."""

    text: str
    kind: str
    lookups: int = 0
    target: str | None = None
    per_message: bool = False
    after_all: bool = False
    void_ipv4: bool = False
    void_ipv6: bool = False
    mx_hosts: int | None = None
    error: str = ""


@dataclass(frozen=True, slots=True)
class SpfNode:
    """One record of the include/redirect tree, with its own and its subtree's lookups."""

    domain: str
    via: str
    term: str
    status: NodeStatus
    reason: str = ""
    record: str | None = None
    records: tuple[str, ...] = ()
    terms: tuple[TermFact, ...] = ()
    children: tuple[SpfNode, ...] = ()
    lookups: int = 0
    subtree_lookups: int = 0
    void_ipv4: int = 0
    void_ipv6: int = 0
    service: str | None = None
    all: str | None = None

    @property
    def void_lookups(self) -> int:
        return max(self.void_ipv4, self.void_ipv6)

    @property
    def all_from_redirect(self) -> bool:
        """The record has no ``all`` of its own: it ends with its redirect target's."""
        return self.all is None and any(c.via == "redirect" for c in self.children)

    def walk(self) -> tuple[SpfNode, ...]:
        """This node and every node below it, breadth-first."""
        out: list[SpfNode] = []
        queue = [self]
        while queue:
            node = queue.pop(0)
            out.append(node)
            queue.extend(node.children)
        return tuple(out)


@dataclass(frozen=True, slots=True)
class SpfFacts:
    """What the SPF check saw: the record, its sizes, and the tree with counts."""

    domain: str
    record: str | None = None
    records: tuple[str, ...] = ()
    strings: tuple[int, ...] = ()
    answer_octets: int = 0
    lookups: int = 0
    limit: int = LOOKUP_LIMIT
    void_lookups: int = 0
    void_ipv4: int = 0
    void_ipv6: int = 0
    used: str = ""
    tree: SpfNode | None = None
    type99: tuple[str, ...] = ()
    per_message_terms: tuple[str, ...] = ()
    truncated: bool = False


# -- the tree walk -----------------------------------------------------------------


@dataclass
class _Walk:
    dns: DnsSession
    services: Catalog | None
    nodes: int = 0
    truncated: bool = False


async def analyze(domain: str, dns: DnsSession, services: Catalog | None = None) -> SpfFacts:
    """Fetch the domain's SPF record and expand its whole tree (facts only, no findings)."""
    domain = domain.rstrip(".").lower()
    walk = _Walk(dns, services)
    txt, type99 = await asyncio.gather(
        dns.query(query_name(domain), "TXT"), dns.query(query_name(domain), "SPF")
    )
    tree = await _node(domain, "apex", "", txt, None, (domain,), walk, 0)
    # §3.4 counts every TXT string of the answer, not only those of the SPF record.
    strings = tuple(len(piece) for rr in txt.strings() for piece in rr) if txt.ok else ()
    spf_strings: tuple[int, ...] = ()
    if tree.record is not None:
        for raw, text in zip(txt.strings(), txt.texts(), strict=True):
            if text == tree.record:
                spf_strings = tuple(len(s) for s in raw)
    answer = len(domain) + sum(strings)
    per_message = tuple(
        f"{node.domain}: {term.text}"
        for node in tree.walk()
        for term in node.terms
        if term.per_message and term.lookups
    )
    return SpfFacts(
        domain=domain,
        record=tree.record,
        records=tree.records,
        strings=spf_strings,
        answer_octets=answer,
        lookups=tree.subtree_lookups,
        void_lookups=tree.void_lookups,
        void_ipv4=tree.void_ipv4,
        void_ipv6=tree.void_ipv6,
        used=f"{tree.subtree_lookups} of {LOOKUP_LIMIT} used",
        tree=tree,
        type99=_joined(type99) if type99.ok else (),
        per_message_terms=per_message,
        truncated=walk.truncated,
    )


def _joined(lookup: Lookup) -> tuple[str, ...]:
    """Character-strings of each TXT-format record joined (Lookup.texts() takes TXT only)."""
    return tuple(
        b"".join(getattr(r, "strings", ())).decode("utf-8", errors="replace")
        for r in lookup.records
    )


async def _node(
    domain: str,
    via: str,
    term: str,
    txt: Lookup | None,
    parent: Lookup | None,
    ancestors: tuple[str, ...],
    walk: _Walk,
    depth: int,
) -> SpfNode:
    walk.nodes += 1
    service = walk.services.by_spf_include(domain) if walk.services and via != "apex" else None
    base = SpfNode(domain, via, term, NodeStatus.OK, service=service.name if service else None)
    if txt is None:
        txt = await walk.dns.query(query_name(domain), "TXT", after=parent)
    if txt.failed:
        return replace(base, status=NodeStatus.DNS_ERROR, reason=txt.describe())
    records = select_records(txt.texts()) if txt.ok else ()
    if not records:
        why = txt.describe() if txt.absent else f"TXT {domain}: no record starts with `v=spf1`"
        void = int(txt.absent)
        return replace(
            base, status=NodeStatus.NO_RECORD, reason=why, void_ipv4=void, void_ipv6=void
        )
    if len(records) > 1:
        return replace(
            base,
            status=NodeStatus.MULTIPLE,
            reason=f"{len(records)} records start with `v=spf1`",
            records=records,
        )
    parsed = parse_record(records[0])
    if isinstance(parsed, SpfSyntaxError):
        return replace(
            base,
            status=NodeStatus.SYNTAX_ERROR,
            reason=str(parsed),
            record=records[0],
            records=records,
        )
    return await _expand(
        replace(base, record=parsed.text, records=records), parsed, txt, ancestors, walk, depth
    )


async def _expand(
    base: SpfNode,
    record: SpfRecord,
    txt: Lookup,
    ancestors: tuple[str, ...],
    walk: _Walk,
    depth: int,
) -> SpfNode:
    """Start every dependent lookup of one record at once, then assemble the node."""
    after_all = {id(m) for m in record.after_all}
    jobs: list[Awaitable[TermFact | SpfNode]] = []
    resolved = 0
    for term in record.terms:
        if isinstance(term, Modifier):
            if term.name != "redirect":
                continue
            if not record.redirect_used:
                ignored = "ignored: the record has an `all` mechanism (RFC 7208 §6.1)"
                jobs.append(_value(TermFact(term.text, "redirect", error=ignored)))
                continue
        elif not term.queries_dns or id(term) in after_all:
            jobs.append(_value(TermFact(term.text, term.name, 0, after_all=id(term) in after_all)))
            continue
        spec = term.value if isinstance(term, Modifier) else term.domain
        target = base.domain if spec is None else spec.literal
        kind = term.name
        if target is not None:
            target = target.rstrip(".").lower()
        if target is None or kind == "ptr":
            # Depends on the message (macros) or the client IP (ptr): counted, not resolved.
            jobs.append(_value(TermFact(term.text, kind, 1, target, per_message=True)))
        elif kind in ("include", "redirect"):
            jobs.append(_child(target, kind, term.text, txt, ancestors, walk, depth))
        elif resolved >= MAX_TERM_LOOKUPS:
            unresolved = "not resolved: the record has too many terms"
            jobs.append(_value(TermFact(term.text, kind, 1, target, error=unresolved)))
        else:
            resolved += 1
            jobs.append(_term_lookup(term.text, kind, target, txt, walk))
    results = await asyncio.gather(*jobs)
    terms: list[TermFact] = []
    children: list[SpfNode] = []
    for result in results:
        if isinstance(result, SpfNode):
            children.append(result)
            terms.append(TermFact(result.term, result.via, 1, result.domain))
        else:
            terms.append(result)
    own = sum(t.lookups for t in terms)
    v4 = sum(t.void_ipv4 for t in terms) + sum(c.void_ipv4 for c in children)
    v6 = sum(t.void_ipv6 for t in terms) + sum(c.void_ipv6 for c in children)
    all_term = record.all
    return replace(
        base,
        terms=tuple(terms),
        children=tuple(children),
        lookups=own,
        subtree_lookups=own + sum(c.subtree_lookups for c in children),
        void_ipv4=v4,
        void_ipv6=v6,
        all=all_term.text if all_term is not None else None,
    )


async def _value(value: TermFact) -> TermFact:
    return value


async def _child(
    target: str,
    via: str,
    term: str,
    parent: Lookup,
    ancestors: tuple[str, ...],
    walk: _Walk,
    depth: int,
) -> SpfNode:
    if target in ancestors:
        return SpfNode(
            target,
            via,
            term,
            NodeStatus.LOOP,
            reason=" -> ".join((*ancestors, target)),
        )
    if not valid_domain(target):
        return SpfNode(
            target, via, term, NodeStatus.NO_RECORD, reason=f"{target!r} is not a valid domain name"
        )
    if depth + 1 > MAX_DEPTH or walk.nodes >= MAX_NODES:
        walk.truncated = True
        return SpfNode(
            target,
            via,
            term,
            NodeStatus.NOT_FOLLOWED,
            reason=f"not followed: the tree is larger than {MAX_NODES} records or deeper "
            f"than {MAX_DEPTH} levels, far past the limit of {LOOKUP_LIMIT} lookups",
        )
    return await _node(target, via, term, None, parent, (*ancestors, target), walk, depth + 1)


async def _term_lookup(text: str, kind: str, target: str, parent: Lookup, walk: _Walk) -> TermFact:
    """Resolve an a/mx/exists term now, to learn whether it is a void lookup."""
    name = query_name(target)
    if kind == "mx":
        mx = await walk.dns.query(name, "MX", after=parent)
        if mx.failed:
            return TermFact(text, kind, 1, target, error=mx.describe())
        hosts = len(mx.records) if mx.ok else 0
        error = ""
        if hosts > MX_HOST_LIMIT:
            error = f"{target} has {hosts} MX hosts; at most {MX_HOST_LIMIT} may be looked up"
        return TermFact(
            text,
            kind,
            1,
            target,
            void_ipv4=mx.absent,
            void_ipv6=mx.absent,
            mx_hosts=hosts,
            error=error,
        )
    if kind == "exists":
        found = await walk.dns.query(name, "A", after=parent)
        if found.failed:
            return TermFact(text, kind, 1, target, error=found.describe())
        return TermFact(text, kind, 1, target, void_ipv4=found.absent, void_ipv6=found.absent)
    a, aaaa = await asyncio.gather(
        walk.dns.query(name, "A", after=parent), walk.dns.query(name, "AAAA", after=parent)
    )
    failed = next((x for x in (a, aaaa) if x.failed), None)
    return TermFact(
        text,
        kind,
        1,
        target,
        void_ipv4=a.absent,
        void_ipv6=aaaa.absent,
        error=failed.describe() if failed else "",
    )


# -- findings ----------------------------------------------------------------------


async def check(ctx: CheckContext) -> Section:
    """The SPF section of a sender-domain report."""
    domain = ctx.request.domain
    facts = await analyze(domain, ctx.dns, catalog(ctx.settings.provider_aliases))
    return Section(tuple(findings(facts)), facts)


def findings(facts: SpfFacts) -> list[Finding]:
    """Every finding the facts support (pure: unit-tested on hand-built facts)."""
    tree = facts.tree
    domain = facts.domain
    if tree is None:
        return [MISSING.unknown(domain, "the SPF analysis did not run")]
    if tree.status is NodeStatus.DNS_ERROR:
        return [
            LOOKUP_FAILED.unknown(
                domain,
                f"{tree.reason}. Receivers that see this return temperror and may defer the "
                "mail; nothing can be said about the record until the lookup succeeds.",
                title=f"Could not check SPF: the TXT lookup of {domain} failed",
            )
        ]
    if tree.status is NodeStatus.NO_RECORD:
        return [_missing(domain, tree)]
    # The pass of the rule that fails when the record goes: its removal is a regression.
    out: list[Finding] = [
        MISSING.passed(
            domain, f"{domain} publishes an SPF record", f"TXT {domain}: a record starts v=spf1."
        )
    ]
    if tree.status is NodeStatus.MULTIPLE:
        out.append(_multiple(tree, apex=True))
        return out
    if tree.status is NodeStatus.SYNTAX_ERROR:
        out.append(_syntax(tree, apex=True))
        return out
    out += _tree_findings(facts, tree)
    out += _record_findings(facts, tree)
    if facts.answer_octets > ANSWER_OCTETS:
        out.append(
            TOO_LONG.failed(
                domain,
                f"The SPF answer for {domain} is {facts.answer_octets} octets",
                f"TXT {domain}: {len(facts.strings)} string(s) of "
                f"{', '.join(str(n) for n in facts.strings)} octets in the SPF record; the "
                f"name plus all TXT strings come to {facts.answer_octets} octets (limit "
                f"{ANSWER_OCTETS}). Record: `{tree.record}`",
                "Shorten the record: merge ip4:/ip6: ranges into wider CIDR blocks, remove "
                "terms of services you no longer use, or move a service's terms to an include "
                "under a name of your own (e.g. `_spf."
                + domain
                + "`)."
                + (
                    " Other TXT records at the name travel in the same answer: remove those no "
                    "longer needed (old verification tokens)."
                    if facts.answer_octets - len(domain) > sum(facts.strings)
                    else ""
                ),
                octets=facts.answer_octets,
            )
        )
    if facts.type99:
        out.append(
            TYPE99.failed(
                domain,
                f"{domain} also publishes an SPF (type 99) record",
                "SPF " + domain + ": " + "; ".join(f"`{t}`" for t in facts.type99),
                "Remove the type 99 record; only the TXT record is used (RFC 7208 §3.1). "
                "It does no harm meanwhile.",
            )
        )
    if not any(f.is_problem and f.severity is Severity.CRITICAL for f in out) and not any(
        f.status.value == "unknown" for f in out
    ):
        out.insert(
            0,
            VALID.passed(
                domain,
                f"{domain} publishes a valid SPF record ({facts.lookups} of {LOOKUP_LIMIT} DNS "
                "lookups used)",
                f"TXT {domain}: `{tree.record}`. Lookups: {facts.used}; void lookups: "
                f"{tree.void_ipv4} (IPv4) and {tree.void_ipv6} (IPv6), at most {VOID_LIMIT} "
                "allowed."
                + (
                    " Evaluated per message (macros or ptr): "
                    + ", ".join(f"`{t}`" for t in facts.per_message_terms)
                    if facts.per_message_terms
                    else ""
                ),
                lookups=facts.lookups,
                void_lookups=facts.void_lookups,
            ),
        )
    return out


def _missing(domain: str, tree: SpfNode) -> Finding:
    nxdomain = "NXDOMAIN" in tree.reason
    title = (
        f"{domain} does not exist, so it has no SPF record"
        if nxdomain
        else f"{domain} publishes no SPF record"
    )
    return MISSING.failed(
        domain,
        title,
        f"{tree.reason}. Receivers get the result `none`: mail from this domain is not "
        "authenticated by SPF, and DMARC must rely on DKIM alone.",
        f"Publish one TXT record at {domain} listing the services that send its mail, e.g. "
        f'`{domain}. 3600 IN TXT "v=spf1 include:<your mail service\'s SPF domain> -all"`; '
        f'if the domain sends no mail at all, publish `{domain}. 3600 IN TXT "v=spf1 -all"`.',
        nxdomain=nxdomain,
    )


def _multiple(node: SpfNode, apex: bool) -> Finding:
    merged = _merge(node.records)
    where = "" if apex else f" (reached through `{node.term}`)"
    return MULTIPLE.failed(
        node.domain,
        f"{node.domain} publishes {len(node.records)} SPF records{where}",
        "TXT "
        + node.domain
        + ": "
        + "; ".join(f"`{r}`" for r in node.records)
        + ". Receivers return permerror: SPF fails for every message.",
        (COMBINED.lstrip() + " " if apex else "")
        + (f"Replace them with one record, e.g. `{merged}`." if merged else "Keep one record."),
        records=list(node.records),
    )


#: How an `all` treats unlisted hosts, strictest first; a bare `all` is `+all`.
_ALL_RANK = {"-": 0, "~": 1, "?": 2, "+": 3}


def strictest_first(alls: Iterable[str]) -> list[str]:
    """``all`` terms from the strictest (``-all``) to the most permissive (``+all``)."""
    return sorted(alls, key=lambda a: _ALL_RANK.get(a[0], 3))


def _merge(records: tuple[str, ...]) -> str:
    terms: list[str] = []
    all_terms: list[str] = []
    redirect = ""
    for text in records:
        parsed = parse_record(text)
        if isinstance(parsed, SpfSyntaxError):
            continue
        for term in parsed.terms:
            if isinstance(term, Mechanism) and term.name == "all":
                all_terms.append(term.text)
            elif isinstance(term, Modifier) and term.name == "redirect":
                redirect = redirect or term.text
            elif term.text not in terms:
                terms.append(term.text)
    alls = strictest_first(all_terms)
    # Keep the strictest `all`; a record that had only a redirect keeps the redirect.
    ending = alls[0] if alls else (redirect or "~all")
    return " ".join(["v=spf1", *terms, ending])


def _syntax(node: SpfNode, apex: bool) -> Finding:
    record = node.record or ""
    bad = node.reason.split("`")[1] if node.reason.startswith("term `") else ""
    fixed = " ".join(t for t in record.split(" ") if t and t != bad) if bad else ""
    where = "" if apex else f", reached through `{node.term}`"
    fix = (
        f"Correct or remove `{bad}`; without it the record reads `{fixed}`."
        if bad
        else "Correct the record so it follows the RFC 7208 grammar."
    )
    if not apex:
        fix = f"The record belongs to {node.domain}: ask its owner to correct it, or " + (
            "remove the include." if node.via == "include" else "point the redirect elsewhere."
        )
    return SYNTAX.failed(
        node.domain,
        f"The SPF record of {node.domain} has a syntax error{where}",
        f"TXT {node.domain}: `{record}` — {node.reason}. Receivers return permerror.",
        fix,
        term=bad,
    )


def _tree_findings(facts: SpfFacts, tree: SpfNode) -> list[Finding]:
    out: list[Finding] = []
    domain = facts.domain
    for node in tree.walk()[1:]:
        parent = _parent_of(tree, node)
        quoted = f"TXT {parent}: `{_parent_node(tree, node).record}`. "
        if node.status is NodeStatus.LOOP:
            out.append(
                LOOP.failed(
                    node.domain,
                    f"`{node.term}` leads back to {node.domain}",
                    quoted
                    + f"The chain {node.reason} returns to a record already being evaluated; "
                    "receivers return permerror. SendReady did not follow it.",
                    f"Remove `{node.term}` from the record of {parent}.",
                    chain=node.reason.split(" -> "),
                )
            )
        elif node.status is NodeStatus.NO_RECORD:
            target_rule = INCLUDE_NO_RECORD if node.via == "include" else REDIRECT_NO_RECORD
            out.append(
                target_rule.failed(
                    node.domain,
                    f"`{node.term}` names {node.domain}, which has no SPF record",
                    quoted + f"{node.reason}: receivers return permerror when they reach "
                    f"`{node.term}`.",
                    f"Remove `{node.term}` from the record of {parent}, or replace it with the "
                    "SPF domain the service documents today."
                    + (COMBINED if parent == domain else ""),
                    target=node.domain,
                )
            )
        elif node.status is NodeStatus.MULTIPLE:
            out.append(_multiple(node, apex=False))
        elif node.status is NodeStatus.SYNTAX_ERROR:
            out.append(_syntax(node, apex=False))
        elif node.status is NodeStatus.DNS_ERROR:
            out.append(
                LOOKUP_FAILED.unknown(
                    node.domain,
                    f"{node.reason} (reached through `{node.term}` in {parent}). Receivers "
                    "that see this return temperror.",
                    title=f"Could not check the SPF record of {node.domain}",
                )
            )
    for node in tree.walk():
        for term in node.terms:
            if term.kind in ("a", "mx", "exists") and term.error and term.mx_hosts is None:
                out.append(
                    LOOKUP_FAILED.unknown(
                        node.domain,
                        f"`{term.text}` in {node.domain}: {term.error}",
                        title=f"Could not resolve `{term.text}`",
                    )
                )
            if term.mx_hosts is not None and term.mx_hosts > MX_HOST_LIMIT:
                out.append(
                    MX_TOO_MANY.failed(
                        node.domain,
                        f"`{term.text}` names {term.mx_hosts} MX hosts",
                        f"`{term.text}` in `{node.record}`: {term.error}; receivers return "
                        "permerror when they reach it.",
                        f"Replace `{term.text}` with the ip4:/ip6: ranges of the hosts that "
                        "really send mail.",
                        mx_hosts=term.mx_hosts,
                    )
                )
    if facts.lookups > LOOKUP_LIMIT:
        costs = sorted(
            ((t.lookups + _subtree(tree, t), t.text) for t in tree.terms if t.lookups),
            key=lambda c: -c[0],
        )
        costly = ", ".join(f"`{text}` ({n})" for n, text in costs[:3])
        out.append(
            TOO_MANY_LOOKUPS.failed(
                domain,
                f"The SPF policy of {domain} needs {facts.lookups} DNS lookups; the limit is "
                f"{LOOKUP_LIMIT}",
                f"TXT {domain}: `{tree.record}`. Counted across the include/redirect tree "
                f"({_per_node(tree)}). Receivers stop at the 11th and return permerror, so SPF "
                "fails for all mail.",
                f"Bring it to {LOOKUP_LIMIT} or fewer. Costliest terms: {costly}. Remove "
                "includes of services you no longer use, replace `a`/`mx` terms with "
                "ip4:/ip6: ranges, or move a service to its own MAIL FROM subdomain.",
                lookups=facts.lookups,
                limit=LOOKUP_LIMIT,
                costliest=[text for _, text in costs[:3]],
            )
        )
    v4, v6 = tree.void_ipv4, tree.void_ipv6
    if max(v4, v6) > VOID_LIMIT:
        # Mail over IPv4 (most of it) sees the A-lookup voids; over IPv6, the AAAA ones.
        ipv4 = v4 > VOID_LIMIT
        family = "void_ipv4" if ipv4 else "void_ipv6"
        voids = [
            f"`{t.text}` in {n.domain}" for n in tree.walk() for t in n.terms if getattr(t, family)
        ] + [
            f"`{n.term}` ({n.domain} does not exist)"
            for n in tree.walk()[1:]
            if getattr(n, family) and not n.terms
        ]
        count = v4 if ipv4 else v6
        scope = (
            "Receivers return permerror for mail sent over IPv4."
            if ipv4
            else "The names have IPv4 addresses but no IPv6 ones, so only mail sent over IPv6 "
            "gets permerror."
        )
        out.append(
            TOO_MANY_VOID.failed(
                domain,
                f"{count} terms of {domain}'s SPF policy look up names with no records",
                f"TXT {domain}: `{tree.record}`. Void lookups (NXDOMAIN or no records"
                + ("" if ipv4 else " of type AAAA")
                + "): "
                + "; ".join(voids)
                + f". More than {VOID_LIMIT} are a permerror (RFC 7208 §4.6.4). "
                + scope,
                "Remove the terms that name hosts or services that no longer exist: "
                + ", ".join(voids)
                + "."
                + ("" if ipv4 else " Or publish AAAA records for hosts that send over IPv6."),
                severity=None if ipv4 else Severity.WARNING,
                void_lookups=count,
                family="ipv4" if ipv4 else "ipv6",
            )
        )
    return out


def _subtree(tree: SpfNode, term: TermFact) -> int:
    child = next((c for c in tree.children if c.term == term.text), None)
    return child.subtree_lookups if child is not None else 0


def _per_node(tree: SpfNode) -> str:
    return "; ".join(
        f"{n.domain}: {n.lookups}" + (f" ({n.service})" if n.service else "")
        for n in tree.walk()
        if n.status is NodeStatus.OK
    )


def _parent_of(tree: SpfNode, target: SpfNode) -> str:
    return _parent_node(tree, target).domain


def _parent_node(tree: SpfNode, target: SpfNode) -> SpfNode:
    for node in tree.walk():
        if any(child is target for child in node.children):
            return node
    return tree


def _record_findings(facts: SpfFacts, tree: SpfNode) -> list[Finding]:
    out: list[Finding] = []
    domain = facts.domain
    record = tree.record or ""
    effective, where = _effective_all(tree)
    lowered = (effective or "").lower()
    if effective is None or lowered in ("all", "+all") or lowered.startswith("?"):
        strong = _with_all(record, "~all") if where is tree else None
        if lowered in ("all", "+all"):
            out.append(
                PERMISSIVE_ALL.failed(
                    domain,
                    f"{domain}'s SPF record authorises every host on the Internet (`+all`)",
                    f"TXT {where.domain}: `{where.record}`. `{effective}` matches every "
                    "IP address, so anyone can send mail that passes SPF for this domain.",
                    _all_fix(strong, where),
                    severity=Severity.CRITICAL,
                    all=effective,
                )
            )
        else:
            what = f"`{effective}` (neutral)" if effective else "no `all` mechanism"
            out.append(
                PERMISSIVE_ALL.failed(
                    domain,
                    f"{domain}'s SPF record does not reject other senders ({what})",
                    f"TXT {where.domain}: `{where.record}`. With {what}, mail from unlisted "
                    "hosts gets the result neutral (RFC 7208 §4.7, §8.2): SPF offers no "
                    "protection against spoofing.",
                    _all_fix(strong, where),
                    all=effective or "",
                )
            )
    for node in tree.walk():
        if node.status is not NodeStatus.OK:
            continue
        ptrs = [t.text for t in node.terms if t.kind == "ptr" and not t.after_all]
        if ptrs:
            fix = (
                f"Replace {', '.join(f'`{p}`' for p in ptrs)} with the ip4:/ip6: ranges or "
                f"`a:` names of the hosts that send mail; without it: "
                f"`{' '.join(t for t in record.split(' ') if t and t not in ptrs)}`.{COMBINED}"
                if node is tree
                else f"The record belongs to {node.domain}; ask its owner to drop `ptr`."
            )
            out.append(
                PTR_USED.failed(
                    node.domain,
                    f"The SPF record of {node.domain} uses `ptr`",
                    f"TXT {node.domain}: `{node.record}`. `ptr` is slow, unreliable and puts "
                    "load on the reverse zones; RFC 7208 §5.5 says not to use it, and some "
                    "receivers skip it.",
                    fix,
                    terms=ptrs,
                )
            )
        after = [t.text for t in node.terms if t.after_all]
        if after:
            all_text = node.all or "all"
            head = record.split(" ")
            fixed = " ".join([t for t in head if t and t != all_text] + [all_text])
            out.append(
                AFTER_ALL.failed(
                    node.domain,
                    f"Terms after `{all_text}` in {node.domain}'s SPF record are never used",
                    f"TXT {node.domain}: `{node.record}`. Evaluation stops at `{all_text}`; "
                    f"{', '.join(f'`{a}`' for a in after)} never take effect.",
                    (
                        f"Move them before `{all_text}` if they are meant to apply: `{fixed}`."
                        + COMBINED
                        if node is tree
                        else f"The record belongs to {node.domain}; ask its owner to fix it."
                    ),
                    terms=after,
                )
            )
    return out


def _effective_all(tree: SpfNode) -> tuple[str | None, SpfNode]:
    """The ``all`` that ends evaluation: the record's own, else the redirect target's."""
    node = tree
    for _ in range(MAX_DEPTH):
        if node.all is not None:
            return node.all, node
        redirect = next((c for c in node.children if c.via == "redirect"), None)
        if redirect is None or redirect.status is not NodeStatus.OK:
            return None, node
        node = redirect
    return None, node


def _with_all(record: str, all_text: str) -> str:
    terms = [t for t in record.split(" ") if t]
    kept = [t for t in terms if t.lstrip("+-~?").lower() != "all"]
    return " ".join([*kept, all_text])


def _all_fix(strong: str | None, where: SpfNode) -> str:
    if strong is None:
        return (
            f"The effective `all` comes from {where.domain} (through redirect): publish your own "
            "record ending in `~all` or `-all` instead of relying on it."
        )
    return (
        f"Publish `{strong}` (or `{_with_all(strong, '-all')}` once every sending service is "
        "listed)." + ("" if where.all_from_redirect else COMBINED)
    )


def sender_authorization(ip: str, mail_from: str, result: SpfResult) -> Finding:
    """The ``spf.sender_not_authorized`` finding for one sending IP and MAIL FROM, from the
    check_host() result (the alignment check calls this for the service's MAIL FROM)."""
    domain = result.domain
    code = result.result
    detail = f"check_host({ip}, {domain}, {mail_from}) = {code.value}: {result.reason}" + (
        f" Record: `{result.record}`." if result.record else ""
    )
    if code is SpfResultCode.PASS:
        return NOT_AUTHORIZED.passed(
            domain,
            f"{ip} is authorised to send as {domain} (SPF pass)",
            detail,
            ip=ip,
            result=code.value,
        )
    if code is SpfResultCode.TEMPERROR:
        return NOT_AUTHORIZED.unknown(domain, detail, ip=ip, result=code.value)
    if code is SpfResultCode.NONE:
        fix = (
            f"Publish an SPF record at {domain} that includes the sending service (or `ip4:{ip}`)."
        )
    elif code is SpfResultCode.PERMERROR:
        fix = f"Correct the SPF record of {domain} first: {result.reason}."
    else:
        term = f"ip4:{ip}" if ":" not in ip else f"ip6:{ip}"
        fix = f"Add the sending service's include (or `{term}`) to the SPF record of {domain}" + (
            f", before its `all`: e.g. `{_add_term(result.record, term)}`."
            if result.record
            else "."
        )
    severity = Severity.WARNING if code in (SpfResultCode.NEUTRAL, SpfResultCode.SOFTFAIL) else None
    return NOT_AUTHORIZED.failed(
        domain,
        f"{ip} is not authorised to send as {domain} (SPF {code.value})",
        detail,
        fix,
        severity=severity,
        ip=ip,
        result=code.value,
    )


def _add_term(record: str | None, term: str) -> str:
    terms = [t for t in (record or "v=spf1").split(" ") if t]
    index = next((i for i, t in enumerate(terms) if t.lstrip("+-~?").lower() == "all"), len(terms))
    return " ".join([*terms[:index], term, *terms[index:]])


async def check_sender(
    ip: str, mail_from: str, helo: str, dns: DnsSession
) -> tuple[SpfResult, Finding]:
    """check_host() for a MAIL FROM and the finding that reports it."""
    from .spf_eval import split_sender

    sender, _, domain = split_sender(mail_from, helo)
    result = await check_host(ip, domain, sender, helo, dns)
    return result, sender_authorization(ip, mail_from, result)


__all__ = [
    "NodeStatus",
    "SpfFacts",
    "SpfNode",
    "TermFact",
    "analyze",
    "check",
    "check_sender",
    "findings",
    "sender_authorization",
]
