"""Recipient domains: do they exist, accept mail, look like a typo of a big provider, need TLS?

Rules: RFC 1035 §4.1.1 (NXDOMAIN), RFC 5321 §5.1 (MX and the implicit MX), RFC 7505 (null
MX: delivery fails with 556 5.1.10), RFC 8461 §3.1/§3.2 (MTA-STS record and policy mode).
The typo rule is SendReady's own: a weighted edit distance (neighbouring keys cost less)
against the domains of the largest mailbox providers, plus top-level-domain slips (`.con`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from ..dns import BadAddress, BadName, Lookup, Outcome, normalize_domain, parse_address
from ..engine import CheckContext, Section
from ..model import Finding, Severity, rule

#: More distinct recipient domains than this are not checked (a mail to a big list).
MAX_DOMAINS = 50

DOMAIN_MISSING = rule(
    "recipient.domain_missing",
    "A recipient's domain does not exist in DNS, so the message cannot be delivered there.",
    "RFC 1035 §4.1.1; RFC 8020",
    Severity.CRITICAL,
)
NO_MAIL = rule(
    "recipient.no_mail",
    "A recipient's domain accepts no mail: a null MX, or no MX and no address.",
    "RFC 7505 §3; RFC 5321 §5.1",
    Severity.CRITICAL,
)
POSSIBLE_TYPO = rule(
    "recipient.possible_typo",
    "A recipient's domain looks like a mistyped major mailbox provider or top-level domain.",
    "SendReady: typo rule (edit distance over provider domains)",
    Severity.WARNING,
)
ACCEPTS_MAIL = rule(
    "recipient.accepts_mail",
    "A recipient's domain publishes where its mail goes (MX or implicit MX).",
    "RFC 5321 §5.1",
    Severity.INFO,
)
IMPLICIT_MX = rule(
    "recipient.implicit_mx",
    "A recipient's domain has no MX record; mail goes to its own address (implicit MX).",
    "RFC 5321 §5.1",
    Severity.INFO,
)
MTA_STS_ENFORCE = rule(
    "recipient.mta_sts_enforced",
    "A recipient's domain publishes MTA-STS: mail to it must travel over verified TLS.",
    "RFC 8461 §3.1, §5",
    Severity.INFO,
)
MTA_STS_BROKEN = rule(
    "recipient.mta_sts_invalid",
    "A recipient's domain publishes an MTA-STS record that senders cannot use.",
    "RFC 8461 §3.1",
    Severity.INFO,
)
TOO_MANY = rule(
    "recipient.too_many_domains",
    "More distinct recipient domains than SendReady checks in one request.",
    "SendReady: request limits",
    Severity.INFO,
)
BAD_ADDRESS = rule(
    "recipient.invalid_address",
    "A recipient address is not a valid mail address.",
    "RFC 5322 §3.4.1; RFC 5321 §4.1.2",
    Severity.CRITICAL,
)

#: The domains of the largest mailbox providers, most used first (ties go to the first).
PROVIDER_DOMAINS: tuple[str, ...] = (
    "gmail.com",
    "outlook.com",
    "hotmail.com",
    "yahoo.com",
    "icloud.com",
    "live.com",
    "aol.com",
    "msn.com",
    "googlemail.com",
    "me.com",
    "mac.com",
    "protonmail.com",
    "proton.me",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "t-online.de",
    "yandex.ru",
    "mail.ru",
    "zoho.com",
    "fastmail.com",
    "comcast.net",
    "verizon.net",
    "att.net",
    "sbcglobal.net",
    "btinternet.com",
    "orange.fr",
    "free.fr",
    "laposte.net",
    "libero.it",
    "qq.com",
    "163.com",
    "mail.com",
    "email.com",
    "ymail.com",
    "rocketmail.com",
    "hotmail.co.uk",
    "yahoo.co.uk",
    "outlook.de",
    "hotmail.fr",
    "yahoo.fr",
)

#: Top-level domains that do not exist but are one slip away from one that does. `.co` and
#: `.cm` are real (Colombia, Cameroon), so they count only next to a provider's name.
TLD_SLIPS: dict[str, str] = {
    "con": "com",
    "cmo": "com",
    "ocm": "com",
    "vom": "com",
    "xom": "com",
    "cpm": "com",
    "cim": "com",
    "coom": "com",
    "comm": "com",
    "copm": "com",
    "om": "com",
    "nte": "net",
    "ner": "net",
    "nett": "net",
    "ogr": "org",
    "orgg": "org",
}
PROVIDER_TLD_SLIPS: dict[str, str] = {"co": "com", "cm": "com", "ne": "net"}

#: Shortest provider label (the part before the first dot) checked by edit distance;
#: shorter ones (aol, msn, me) are a slip away from too many real domains.
MIN_LABEL = 5
#: Largest weighted distance still called a likely typo.
MAX_COST = 1.0

_KEYBOARD = ("1234567890-", "qwertyuiop", "asdfghjkl", "zxcvbnm")


def _neighbours() -> dict[str, frozenset[str]]:
    pos = {c: (r, i) for r, row in enumerate(_KEYBOARD) for i, c in enumerate(row)}
    near: dict[str, set[str]] = {c: set() for c in pos}
    for a, (ra, ia) in pos.items():
        for b, (rb, ib) in pos.items():
            # Staggered rows: a key touches the two keys below-left/below-right of it.
            if a != b and abs(ra - rb) <= 1 and abs(ia - ib) <= 1:
                near[a].add(b)
    return {c: frozenset(s) for c, s in near.items()}


NEIGHBOURS = _neighbours()


def typo_cost(typed: str, intended: str) -> float:
    """Optimal-string-alignment distance where hitting a neighbouring key costs 0.5 and a
    swap of two adjacent letters costs 0.5; other edits cost 1."""
    n, m = len(typed), len(intended)
    if abs(n - m) > 2:
        return float(abs(n - m))
    d = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        d[i][0] = float(i)
    for j in range(m + 1):
        d[0][j] = float(j)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            a, b = typed[i - 1], intended[j - 1]
            if a == b:
                sub = 0.0
            elif b in NEIGHBOURS.get(a, frozenset()):
                sub = 0.5
            else:
                sub = 1.0
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + sub)
            if i > 1 and j > 1 and a == intended[j - 2] and typed[i - 2] == b:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 0.5)
    return d[n][m]


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A likely intended domain and why SendReady thinks so."""

    domain: str
    reason: str
    cost: float


def suggest(domain: str, providers: Sequence[str] = PROVIDER_DOMAINS) -> Suggestion | None:
    """The domain the user probably meant, or None when ``domain`` looks intended."""
    domain = domain.lower().rstrip(".")
    if domain in providers or "." not in domain:
        return None
    label, _, suffix = domain.partition(".")
    best: Suggestion | None = None
    for provider in providers:
        p_label, _, p_suffix = provider.partition(".")
        if suffix == p_suffix:
            suffix_slip = False
        elif TLD_SLIPS.get(suffix) == p_suffix or PROVIDER_TLD_SLIPS.get(suffix) == p_suffix:
            suffix_slip = True
        else:
            continue
        if label == p_label:
            cost = 0.0
        elif len(p_label) >= MIN_LABEL:
            cost = typo_cost(label, p_label)
        else:
            continue
        if cost > MAX_COST or (cost == 0 and not suffix_slip):
            continue
        total = cost + (0.5 if suffix_slip else 0.0)
        if best is None or total < best.cost:
            parts = []
            if cost:
                parts.append(f"“{label}” is {_cost_words(cost)} from “{p_label}”")
            if suffix_slip:
                parts.append(f"“.{suffix}” is a slip for “.{p_suffix}”")
            best = Suggestion(provider, "; ".join(parts), total)
    if best is not None:
        return best
    # Any domain: a top-level domain that does not exist but is one slip from one that does.
    head, _, tld = domain.rpartition(".")
    if tld in TLD_SLIPS and head:
        fixed = f"{head}.{TLD_SLIPS[tld]}"
        return Suggestion(fixed, f"“.{tld}” is not a top-level domain; “.{TLD_SLIPS[tld]}” is", 0.5)
    return None


def _cost_words(cost: float) -> str:
    if cost <= 0.5:
        return "one neighbouring key or swapped letter away"
    return "one letter away" if cost <= 1 else "two small slips away"


def parse_mta_sts_mode(policy: str) -> str | None:
    """The `mode` of an MTA-STS policy body (RFC 8461 §3.2), or None if it has none."""
    for line in policy.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == "mode":
            return value.strip().lower()
    return None


def mta_sts_records(texts: Iterable[str]) -> list[str]:
    """The TXT strings that are MTA-STS records (RFC 8461 §3.1: start with `v=STSv1`)."""
    return [t for t in texts if t.replace(" ", "").startswith("v=STSv1;") or t == "v=STSv1"]


#: An optional service (``ctx.services["mta_sts_policy"]``) that fetches the policy body of
#: a domain over verified HTTPS, returning None when it cannot. Without it the pane still
#: learns that a recipient announces MTA-STS, but not its mode.
PolicyFetcher = Callable[[str], Awaitable[str | None]]


@dataclass(frozen=True, slots=True)
class RecipientDomain:
    domain: str
    recipients: tuple[str, ...]
    exists: bool | None = None
    mx_hosts: tuple[str, ...] = ()
    null_mx: bool = False
    implicit: bool = False
    mta_sts: str | None = None  # "enforce", "testing", "none", "announced" or None
    suggestion: str | None = None


@dataclass(frozen=True, slots=True)
class RecipientFacts:
    domains: tuple[RecipientDomain, ...] = ()
    skipped: tuple[str, ...] = ()


def group_recipients(recipients: Iterable[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Recipients by normalised domain in first-seen order, and the addresses that are bad."""
    groups: dict[str, list[str]] = {}
    bad: list[str] = []
    for text in recipients:
        try:
            if "@" in text:
                local, domain = parse_address(text)
                address = f"{local}@{domain}"
            else:
                domain = normalize_domain(text)
                address = domain
        except (BadAddress, BadName):
            bad.append(text)
            continue
        members = groups.setdefault(domain, [])
        if address not in members:
            members.append(address)
    return groups, bad


async def check(ctx: CheckContext) -> Section:
    """Every distinct recipient domain, concurrently."""
    groups, bad = group_recipients(ctx.request.recipients)
    findings: list[Finding] = []
    for text in bad:
        findings.append(
            BAD_ADDRESS.failed(
                text,
                f"“{text}” is not a valid mail address",
                f"Recipient “{text}” could not be parsed as local-part@domain.",
                "Correct the address before sending.",
            )
        )
    domains = list(groups)
    skipped: list[str] = []
    if len(domains) > MAX_DOMAINS:
        skipped = domains[MAX_DOMAINS:]
        domains = domains[:MAX_DOMAINS]
        findings.append(
            TOO_MANY.failed(
                ctx.request.domain,
                f"{len(groups)} recipient domains; the first {MAX_DOMAINS} were checked",
                "Not checked: " + ", ".join(skipped[:10]) + (" …" if len(skipped) > 10 else ""),
                "",
                domains=len(groups),
            )
        )
    fetch = ctx.services.get("mta_sts_policy")
    results = await asyncio.gather(
        *(check_domain(ctx, d, tuple(groups[d]), fetch) for d in domains)
    )
    facts: list[RecipientDomain] = []
    for domain_findings, fact in results:
        findings.extend(domain_findings)
        facts.append(fact)
    return Section(tuple(findings), RecipientFacts(tuple(facts), tuple(skipped)))


async def check_domain(
    ctx: CheckContext,
    domain: str,
    recipients: tuple[str, ...],
    fetch: PolicyFetcher | None = None,
) -> tuple[list[Finding], RecipientDomain]:
    who = ", ".join(recipients)
    guess = suggest(domain)
    mx, sts = await ctx.dns.query_many(((domain, "MX"), (f"_mta-sts.{domain}", "TXT")))
    findings: list[Finding] = []
    fact = RecipientDomain(domain, recipients, suggestion=guess.domain if guess else None)
    if guess is not None:
        findings.append(_typo(domain, guess, who, recipients, mx))
    if mx.outcome is Outcome.NXDOMAIN:
        findings.append(
            DOMAIN_MISSING.failed(
                domain,
                f"{domain} does not exist",
                f"MX {domain}: NXDOMAIN, no such domain. Mail to {who} would bounce "
                "(550 5.1.2 or 5.4.4).",
                _spelling_fix(domain, guess),
                recipients=list(recipients),
            )
        )
        return findings, replace(fact, exists=False)
    if mx.failed:
        findings.append(_unknown_mail(domain, mx, recipients))
        return findings, fact
    fact = replace(fact, exists=True)
    if mx.ok:
        exchanges = [str(r.exchange).rstrip(".").lower() for r in mx.records]  # type: ignore[attr-defined]
        if any(x == "" for x in exchanges):
            findings.append(
                NO_MAIL.failed(
                    domain,
                    f"{domain} accepts no mail (null MX)",
                    f"MX {domain}: `0 .` — the domain declares that it receives no mail; "
                    f"mail to {who} fails with 556 5.1.10.",
                    _spelling_fix(domain, guess, "Ask the recipient for an address that "),
                    recipients=list(recipients),
                )
            )
            return findings, replace(fact, null_mx=True)
        hosts = tuple(sorted(set(exchanges)))
        fact = replace(fact, mx_hosts=hosts)
        findings.append(
            ACCEPTS_MAIL.passed(
                domain,
                f"{domain} accepts mail",
                f"MX {domain}: {', '.join(hosts)}.",
                mx_hosts=list(hosts),
                recipients=list(recipients),
            )
        )
    else:
        a, aaaa = await ctx.dns.query_many(((domain, "A"), (domain, "AAAA")), after=mx)
        if a.ok or aaaa.ok:
            fact = replace(fact, implicit=True)
            findings.append(
                IMPLICIT_MX.passed(
                    domain,
                    f"{domain} accepts mail at its own address (no MX record)",
                    f"MX {domain}: none; A/AAAA present, so senders use the implicit MX.",
                    recipients=list(recipients),
                )
            )
        elif a.failed or aaaa.failed:
            failed = a if a.failed else aaaa
            findings.append(_unknown_mail(domain, failed, recipients))
        else:
            findings.append(
                NO_MAIL.failed(
                    domain,
                    f"{domain} cannot receive mail: no MX and no address",
                    f"MX, A and AAAA {domain}: no records. Mail to {who} cannot be delivered.",
                    _spelling_fix(domain, guess, "Ask the recipient for an address that "),
                    recipients=list(recipients),
                )
            )
            return findings, fact
    sts_finding, mode = await _mta_sts(domain, sts, fetch)
    if sts_finding is not None:
        findings.append(sts_finding)
    return findings, replace(fact, mta_sts=mode)


def _typo(
    domain: str, guess: Suggestion, who: str, recipients: tuple[str, ...], mx: Lookup
) -> Finding:
    # A mistyped domain that receives mail (typo-squatters run MX hosts) is the worse case:
    # the message is delivered, to a stranger.
    if mx.outcome is Outcome.NXDOMAIN:
        seen = "It does not exist."
    elif mx.ok:
        seen = "It receives mail, possibly for someone else."
    elif mx.failed:
        seen = "Its DNS could not be checked."
    else:
        seen = "It publishes no MX."
    fixed = ", ".join(r.rpartition("@")[0] + "@" + guess.domain for r in recipients if "@" in r)
    return POSSIBLE_TYPO.failed(
        domain,
        f"Did you mean {guess.domain}?",
        f"{who}: {domain} looks like a slip for {guess.domain} ({guess.reason}). {seen}",
        f"Change the address to {fixed or guess.domain}."
        + " If the domain is right, ignore this warning.",
        suggestion=guess.domain,
        recipients=list(recipients),
    )


def _unknown_mail(domain: str, lookup: Lookup, recipients: tuple[str, ...]) -> Finding:
    return NO_MAIL.unknown(
        domain,
        lookup.describe(),
        title=f"Could not check whether {domain} accepts mail",
        recipients=list(recipients),
    )


def _spelling_fix(domain: str, guess: Suggestion | None, lead: str = "") -> str:
    if guess is not None:
        return f"Check the spelling: did you mean {guess.domain}?"
    if lead:
        return lead + "works; the domain's owner would have to publish an MX record."
    return f"Check the spelling of {domain}, or ask the recipient for the right address."


async def _mta_sts(
    domain: str, sts: Lookup, fetch: PolicyFetcher | None
) -> tuple[Finding | None, str | None]:
    if sts.failed:
        return MTA_STS_ENFORCE.unknown(domain, sts.describe()), None
    records = mta_sts_records(sts.texts()) if sts.ok else []
    if not records:
        return None, None
    if len(records) > 1:
        return (
            MTA_STS_BROKEN.failed(
                domain,
                f"{domain} publishes {len(records)} MTA-STS records",
                f"TXT _mta-sts.{domain}: " + " | ".join(records) + ". RFC 8461 §3.1: senders "
                "must then treat the domain as having no MTA-STS.",
                "Nothing to fix on your side; the recipient's admin should keep one record.",
                severity=Severity.INFO,
            ),
            None,
        )
    mode: str | None = None
    if fetch is not None:
        try:
            body = await fetch(domain)
        except Exception:  # a policy fetch failure must not hide the DNS findings
            body = None
        mode = parse_mta_sts_mode(body) if body else None
    if mode is None:
        return (
            MTA_STS_ENFORCE.passed(
                domain,
                f"{domain} announces MTA-STS",
                f"TXT _mta-sts.{domain}: `{records[0]}`. Its policy mode was not read.",
                mode=None,
            ),
            "announced",
        )
    text = {
        "enforce": "requires verified TLS for mail to it (MTA-STS enforce)",
        "testing": "tests MTA-STS (mode testing): TLS failures are reported, not enforced",
        "none": "has withdrawn its MTA-STS policy (mode none)",
    }.get(mode, f"publishes an MTA-STS policy with an unknown mode {mode!r}")
    return (
        MTA_STS_ENFORCE.passed(domain, f"{domain} {text}", f"Policy mode: {mode}.", mode=mode),
        mode,
    )
