"""Sending-service detection: which services (Microsoft 365, Google, SendGrid...) a domain uses,
from its SPF includes, its MX hosts and the CNAME targets of its DKIM selectors (DOMAIN.md §2.6).

Also home of the small helpers the other record checks share: the MX host names of the domain
(from the MX check's facts when that check is in the plan, else asked directly; the session
memo makes the second ask free).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from ..dns import Lookup
from ..engine import CheckContext, Section
from ..model import Finding, Severity, rule
from ..providers import COMMON_SELECTORS, Catalog, catalog

DETECTED = rule(
    "services.detected",
    "The sending services the domain's DNS names (SPF includes, MX hosts, DKIM CNAME targets).",
    "DOMAIN.md §2.6 (provider profiles)",
    Severity.INFO,
)

_INCLUDE = re.compile(r"^[+?~-]?(?:include:|redirect=)(\S+)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class DetectedService:
    """One service and the DNS evidence that names it."""

    id: str
    name: str
    evidence: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ServicesFacts:
    domain: str
    detected: tuple[DetectedService, ...] = ()

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(d.id for d in self.detected)


@dataclass(frozen=True, slots=True)
class MxNames:
    """The domain's MX host names (lowest preference first), or why they are not known."""

    hosts: tuple[str, ...]
    addresses: dict[str, tuple[str, ...]]
    reason: str = ""
    lookups: tuple[Lookup, ...] = ()


def spf_targets(texts: tuple[str, ...]) -> tuple[str, ...]:
    """The include: and redirect= targets of the v=spf1 records among ``texts`` (pure)."""
    out: list[str] = []
    for text in texts:
        terms = text.split()
        if not terms or terms[0].lower() != "v=spf1":
            continue
        for term in terms[1:]:
            match = _INCLUDE.match(term)
            if match and "%" not in match.group(1):
                out.append(match.group(1).lower().rstrip("."))
    return tuple(out)


async def mx_names(ctx: CheckContext) -> MxNames:
    """The MX hosts, from the MX check's facts if it runs in this plan, else from DNS."""
    section = await ctx.optional("mx")
    facts = section.facts if section is not None else None
    hosts = getattr(facts, "hosts", None)
    if hosts is not None:
        return MxNames(tuple(h.name for h in hosts), {h.name: tuple(h.addresses) for h in hosts})
    mx = await ctx.dns.query(ctx.request.domain, "MX")
    if mx.failed:
        return MxNames((), {}, mx.describe(), (mx,))
    names = [
        str(r.exchange).rstrip(".").lower()  # type: ignore[attr-defined]
        for r in sorted(mx.records, key=lambda r: int(r.preference))  # type: ignore[attr-defined]
    ]
    names = [n for n in dict.fromkeys(names) if n]
    answers = await asyncio.gather(
        *(ctx.dns.query_many(((n, "A"), (n, "AAAA")), after=mx) for n in names)
    )
    addresses = {
        n: tuple(str(r) for lk in pair for r in lk.records)
        for n, pair in zip(names, answers, strict=True)
    }
    return MxNames(tuple(names), addresses, "", (mx,))


def dkim_name(selector: str, domain: str) -> str:
    return f"{selector}._domainkey.{domain}"


async def detect(ctx: CheckContext) -> ServicesFacts:
    """Detect services from SPF, MX and DKIM CNAMEs; all lookups start at once."""
    domain = ctx.request.domain
    services = catalog(ctx.settings.provider_aliases)
    selectors = tuple(dict.fromkeys((*ctx.request.selectors, *COMMON_SELECTORS)))
    key_tasks = [
        asyncio.ensure_future(ctx.dns.query(dkim_name(s, domain), "TXT")) for s in selectors
    ]
    apex, mx, spf_section = await asyncio.gather(
        ctx.dns.query(domain, "TXT"), mx_names(ctx), ctx.optional("spf")
    )
    keys = await asyncio.gather(*key_tasks)
    evidence: dict[str, list[str]] = {}

    def add(service_id: str | None, what: str) -> None:
        if service_id is not None and what not in evidence.setdefault(service_id, []):
            evidence[service_id].append(what)

    if ctx.request.service and services.get(ctx.request.service):
        add(ctx.request.service, "named in the request")
    targets = list(spf_targets(apex.texts()))
    tree = getattr(getattr(spf_section, "facts", None), "tree", None)
    if tree is not None:
        for node in tree.walk():
            if node.via != "apex":
                targets.append(node.domain)
    for target in dict.fromkeys(targets):
        found = services.by_spf_include(target)
        add(found.id if found else None, f"SPF include:{target}")
    for host in mx.hosts:
        found = services.by_mx(host)
        add(found.id if found else None, f"MX {host}")
    for selector, key in zip(selectors, keys, strict=True):
        for target in key.cname_chain:
            found = services.by_dkim_target(target)
            if found is not None:
                add(found.id, f"DKIM {selector}._domainkey CNAME {target}")
                break
    detected = tuple(
        DetectedService(s.id, s.name, tuple(evidence[s.id]))
        for s in services.services
        if s.id in evidence
    )
    return ServicesFacts(domain, detected)


async def services_of(ctx: CheckContext) -> ServicesFacts:
    """The services section's facts when it runs in this plan, else a detection of our own."""
    section = await ctx.optional("services")
    if section is not None and isinstance(section.facts, ServicesFacts):
        return section.facts
    return await detect(ctx)


def findings(facts: ServicesFacts) -> list[Finding]:
    if not facts.detected:
        return [
            DETECTED.passed(
                facts.domain,
                "No known sending service recognised in SPF, MX or DKIM",
                "SendReady knows Microsoft 365, Google Workspace, SendGrid, Amazon SES, "
                "Mailchimp, Mandrill, Mailgun and the DKIM targets of DOMAIN.md §2.6; none "
                "appears in this domain's records. Name the service in the request if it sends "
                "for the domain.",
                services=[],
            )
        ]
    names = ", ".join(d.name for d in facts.detected)
    detail = "; ".join(f"{d.name}: {', '.join(d.evidence)}" for d in facts.detected)
    return [
        DETECTED.passed(
            facts.domain,
            f"Sending services found: {names}",
            detail,
            services=[d.id for d in facts.detected],
        )
    ]


async def check(ctx: CheckContext) -> Section:
    """The "services" section: which sending services the domain uses, and the evidence."""
    facts = await detect(ctx)
    return Section(tuple(findings(facts)), facts)


def known(ctx: CheckContext) -> Catalog:
    return catalog(ctx.settings.provider_aliases)
