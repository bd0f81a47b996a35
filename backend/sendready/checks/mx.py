"""MX: where mail for the domain goes (RFC 5321 §5.1, RFC 7505 null MX, RFC 2181 §10.3)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

from ..dns import Lookup, Outcome
from ..dns.names import is_ip
from ..engine import CheckContext, Section
from ..model import Finding, Severity, rule
from ..providers import COMMON_SELECTORS, catalog
from ..smtp.guard import why_not_public

MAX_HOSTS = 10

MISSING = rule(
    "mx.missing",
    "The domain has no MX and no address, so it cannot receive mail.",
    "RFC 5321 §5.1",
    Severity.CRITICAL,
)
NOT_FOUND = rule(
    "mx.domain_not_found",
    "The domain does not exist in DNS (NXDOMAIN).",
    "RFC 1035 §4.1.1; RFC 8020",
    Severity.CRITICAL,
)
IMPLICIT = rule(
    "mx.implicit",
    "The domain has no MX record; mail is delivered to its own address (implicit MX).",
    "RFC 5321 §5.1",
    Severity.WARNING,
)
NULL_MX_SENDING = rule(
    "mx.null_mx_on_sending_domain",
    "The domain publishes a null MX (accepts no mail) but also sends mail.",
    "RFC 7505 §4",
    Severity.CRITICAL,
)
NULL_MX = rule(
    "mx.null_mx",
    "The domain publishes a null MX: it accepts no mail.",
    "RFC 7505 §3",
    Severity.INFO,
)
NULL_MX_MIXED = rule(
    "mx.null_mx_mixed",
    "A null MX is published next to other MX records.",
    "RFC 7505 §3",
    Severity.CRITICAL,
)
CNAME = rule(
    "mx.cname",
    "An MX host name is an alias (CNAME); it must be a host name with addresses.",
    "RFC 2181 §10.3; RFC 5321 §5.1",
    Severity.WARNING,
)
IP_LITERAL = rule(
    "mx.ip_literal",
    "An MX record names an IP address instead of a host name.",
    "RFC 5321 §5.1; RFC 7505 §3",
    Severity.CRITICAL,
)
NO_ADDRESS = rule(
    "mx.no_address",
    "An MX host has no A or AAAA record.",
    "RFC 5321 §5.1",
    Severity.CRITICAL,
)
PRIVATE_ADDRESS = rule(
    "mx.private_address",
    "An MX host resolves to a loopback, private or otherwise non-public address.",
    "RFC 5321 §5.1; RFC 6890",
    Severity.CRITICAL,
)
DUPLICATE = rule(
    "mx.duplicate_host",
    "The same host is listed more than once.",
    "RFC 5321 §5.1",
    Severity.WARNING,
)
TOO_MANY = rule(
    "mx.too_many_hosts",
    "More MX hosts than SendReady checks; only the first ten are examined.",
    "RFC 5321 §5.1",
    Severity.INFO,
)
PRESENT = rule(
    "mx.present",
    "The domain has MX hosts with public addresses.",
    "RFC 5321 §5.1",
    Severity.INFO,
)


@dataclass(frozen=True, slots=True)
class MxHost:
    name: str
    preference: int
    addresses: tuple[str, ...] = ()
    cname_chain: tuple[str, ...] = ()
    service: str | None = None
    lookup_error: str = ""


@dataclass(frozen=True, slots=True)
class MxFacts:
    domain: str
    hosts: tuple[MxHost, ...] = ()
    null_mx: bool = False
    implicit: bool = False
    exists: bool = True
    ttl: int = 0


def _null_mx(lookup: Lookup) -> tuple[bool, bool]:
    """(has a null MX, has other MX records too)."""
    nulls = [r for r in lookup.records if str(r.exchange) == "."]  # type: ignore[attr-defined]
    return bool(nulls), len(nulls) < len(lookup.records)


async def check(ctx: CheckContext) -> Section:
    domain = ctx.request.domain
    mx = await ctx.dns.query(domain, "MX")
    if mx.outcome is Outcome.NXDOMAIN:
        return Section(
            (
                NOT_FOUND.failed(
                    domain,
                    f"{domain} does not exist",
                    f"MX {domain}: NXDOMAIN — no name at or below {domain} exists.",
                    "Check the spelling; if the domain is new, make sure it is registered and "
                    "delegated to nameservers that serve it.",
                ),
            ),
            MxFacts(domain, exists=False),
        )
    if mx.failed:
        return Section((MISSING.unknown(domain, mx.describe()),), MxFacts(domain))
    if mx.outcome is Outcome.NODATA:
        return await _implicit(ctx, mx)
    has_null, mixed = _null_mx(mx)
    if has_null:
        return await _null(ctx, mx, mixed)
    return await _hosts(ctx, mx)


async def _implicit(ctx: CheckContext, mx: Lookup) -> Section:
    domain = ctx.request.domain
    a, aaaa = await ctx.dns.query_many(((domain, "A"), (domain, "AAAA")), after=mx)
    addresses = _addresses(a, aaaa)
    facts = MxFacts(domain, implicit=True, ttl=mx.ttl)
    if addresses:
        host = MxHost(domain, 0, addresses)
        return Section(
            (
                IMPLICIT.failed(
                    domain,
                    f"{domain} has no MX record; mail goes to its A/AAAA address",
                    f"MX {domain}: no records. Addresses: {', '.join(addresses)}.",
                    f"Publish an MX record, e.g. `{domain}. 3600 IN MX 10 mail.{domain}.`, or a "
                    f"null MX (`{domain}. IN MX 0 .`) if the domain receives no mail.",
                ),
            ),
            MxFacts(domain, (host,), implicit=True, ttl=mx.ttl),
        )
    if a.failed or aaaa.failed:
        failed = a if a.failed else aaaa
        return Section((MISSING.unknown(domain, failed.describe()),), facts)
    return Section(
        (
            MISSING.failed(
                domain,
                f"{domain} cannot receive mail: no MX and no address",
                f"MX, A and AAAA {domain}: no records.",
                f"Publish the MX record your mail service gives you, e.g. "
                f"`{domain}. 3600 IN MX 10 mail.{domain}.`.",
            ),
        ),
        facts,
    )


async def _null(ctx: CheckContext, mx: Lookup, mixed: bool) -> Section:
    domain = ctx.request.domain
    facts = MxFacts(domain, null_mx=True, ttl=mx.ttl)
    if mixed:
        return Section(
            (
                NULL_MX_MIXED.failed(
                    domain,
                    "A null MX stands next to other MX records",
                    "MX " + domain + ": " + ", ".join(r.to_text() for r in mx.records),
                    "Remove the `0 .` record if the domain receives mail; otherwise remove the "
                    "other MX records.",
                ),
            ),
            facts,
        )
    selectors = tuple(dict.fromkeys((*ctx.request.selectors, *COMMON_SELECTORS)))
    questions = [(domain, "TXT"), *((f"{s}._domainkey.{domain}", "TXT") for s in selectors)]
    answers = await ctx.dns.query_many(questions)
    spf = [t for t in answers[0].texts() if t.lower().startswith("v=spf1")]
    sends_spf = [t for t in spf if t.strip().lower() not in ("v=spf1 -all", "v=spf1 ~all")]
    dkim = [
        sel
        for sel, lookup in zip(selectors, answers[1:], strict=True)
        if any("p=" in t and "p=;" not in t.replace(" ", "") for t in lookup.texts())
    ]
    if sends_spf or dkim:
        evidence = []
        if sends_spf:
            evidence.append(f"SPF authorises senders: `{sends_spf[0]}`")
        if dkim:
            evidence.append(f"DKIM keys are published at {', '.join(dkim)}")
        return Section(
            (
                NULL_MX_SENDING.failed(
                    domain,
                    f"{domain} sends mail but accepts none (null MX)",
                    f"MX {domain}: `0 .`; " + "; ".join(evidence) + ". Bounces cannot return, "
                    "and receivers may reject the mail with 550 5.7.27.",
                    "If the domain sends mail, replace the null MX with the MX of the mailbox that "
                    "receives replies and bounces; if it sends none, publish `v=spf1 -all` and "
                    "remove its DKIM keys.",
                    evidence=evidence,
                ),
            ),
            facts,
        )
    return Section(
        (
            NULL_MX.passed(
                domain,
                f"{domain} declares that it accepts no mail (null MX)",
                f"MX {domain}: `0 .`, and no SPF or DKIM authorises sending.",
            ),
        ),
        facts,
    )


async def _hosts(ctx: CheckContext, mx: Lookup) -> Section:
    domain = ctx.request.domain
    services = catalog(ctx.settings.provider_aliases)
    records = sorted(
        ((int(r.preference), str(r.exchange).rstrip(".").lower()) for r in mx.records),  # type: ignore[attr-defined]
        key=lambda p: p[0],
    )
    findings: list[Finding] = []
    seen: dict[str, int] = {}
    unique: list[tuple[int, str]] = []
    for preference, name in records:
        if name in seen:
            findings.append(
                DUPLICATE.failed(
                    name,
                    f"{name} is listed more than once",
                    f"MX {domain}: {name} at preferences {seen[name]} and {preference}.",
                    "Remove the duplicate MX record.",
                )
            )
            continue
        seen[name] = preference
        unique.append((preference, name))
    if len(unique) > MAX_HOSTS:
        findings.append(
            TOO_MANY.failed(
                domain,
                f"{len(unique)} MX hosts; the first {MAX_HOSTS} were checked",
                "",
                "",
                hosts=len(unique),
            )
        )
        unique = unique[:MAX_HOSTS]
    literals = [(p, n) for p, n in unique if is_ip(n)]
    for _, name in literals:
        findings.append(
            IP_LITERAL.failed(
                name,
                f"The MX record names the address {name}",
                f"MX {domain}: {name}",
                f"Point the MX at a host name with an A record, e.g. `mail.{domain}`.",
            )
        )
    named = [(p, n) for p, n in unique if not is_ip(n)]
    lookups = await asyncio.gather(
        *(ctx.dns.query_many(((n, "A"), (n, "AAAA")), after=mx) for _, n in named)
    )
    hosts: list[MxHost] = []
    usable = 0
    allowed = ctx.settings.allow_private_targets
    for (preference, name), (a, aaaa) in zip(named, lookups, strict=True):
        chain = a.cname_chain or aaaa.cname_chain
        addresses = _addresses(a, aaaa)
        service = services.by_mx(name)
        error = next((x.describe() for x in (a, aaaa) if x.failed), "")
        hosts.append(
            MxHost(name, preference, addresses, chain, service.id if service else None, error)
        )
        if chain:
            findings.append(
                CNAME.failed(
                    name,
                    f"MX host {name} is an alias for {chain[-1]}",
                    f"{name} CNAME {' -> '.join(chain)}",
                    f"Point the MX record directly at `{chain[-1]}`.",
                    cname_chain=list(chain),
                )
            )
        if not addresses:
            if error:
                findings.append(NO_ADDRESS.unknown(name, error))
            else:
                findings.append(
                    NO_ADDRESS.failed(
                        name,
                        f"MX host {name} has no address",
                        f"A and AAAA {name}: no records.",
                        f"Publish an A (and AAAA) record for {name}, or point the MX at a host "
                        "that has one.",
                    )
                )
            continue
        private = [(ip, why_not_public(ip, allowed)) for ip in addresses]
        bad = [(ip, why) for ip, why in private if why]
        if bad:
            findings.append(
                PRIVATE_ADDRESS.failed(
                    name,
                    f"MX host {name} resolves to a non-public address",
                    "; ".join(str(why) for _, why in bad),
                    f"Publish the public address of {name}; senders on the Internet cannot "
                    "reach a private or loopback one.",
                    addresses=[ip for ip, _ in bad],
                )
            )
        if len(bad) < len(addresses):
            usable += 1
    if usable and not any(f.is_problem and f.severity is Severity.CRITICAL for f in findings):
        names = ", ".join(f"{h.name} ({h.preference})" for h in hosts)
        findings.insert(
            0,
            PRESENT.passed(
                domain,
                f"{domain} receives mail at {len(hosts)} MX host(s)",
                f"MX {domain}: {names}.",
                hosts=[h.name for h in hosts],
            ),
        )
    if usable:
        # Other hosts take the mail, so one broken host delays rather than loses it.
        findings = [
            replace(f, severity=Severity.WARNING)
            if f.id in (NO_ADDRESS.id, PRIVATE_ADDRESS.id) and f.is_problem
            else f
            for f in findings
        ]
    # The pass of the rule that fails when the MX goes: its removal is a regression.
    findings.append(
        MISSING.passed(domain, f"{domain} publishes MX records", f"MX {domain}: {len(records)}.")
    )
    return Section(tuple(findings), MxFacts(domain, tuple(hosts), ttl=mx.ttl))


def _addresses(*lookups: Lookup) -> tuple[str, ...]:
    return tuple(str(r.address) for lookup in lookups if lookup.ok for r in lookup.records)  # type: ignore[attr-defined]
