"""PTR and forward-confirmed reverse DNS (FCrDNS) for each MX address (DOMAIN.md §1.10): the PTR
of the address, and whether one of its names resolves back to the address. Info/warning only:
receiving-side PTRs are a habit of operators, not a standard requirement."""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass

import dns.reversename

from ..dns import DnsSession, Lookup
from ..engine import CheckContext, Section
from ..model import Finding, Severity, rule
from .services import mx_names

MISSING = rule(
    "ptr.missing",
    "An MX address has no PTR record (no reverse DNS).",
    "RFC 1912 §2.1; DOMAIN.md §1.10",
    Severity.WARNING,
)
FCRDNS = rule(
    "ptr.fcrdns",
    "The PTR name of an MX address resolves back to the address (forward-confirmed).",
    "RFC 8601 §3 (iprev); DOMAIN.md §1.10",
    Severity.WARNING,
)


@dataclass(frozen=True, slots=True)
class AddressFacts:
    host: str
    address: str
    reverse: str
    ptr_names: tuple[str, ...] = ()
    confirmed: tuple[str, ...] = ()  # PTR names whose A/AAAA contain the address
    outcome: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class PtrFacts:
    domain: str
    addresses: tuple[AddressFacts, ...] = ()


def reverse_name(address: str) -> str:
    return dns.reversename.from_address(address).to_text().rstrip(".").lower()


def findings(facts: AddressFacts) -> list[Finding]:
    """The finding of one MX address (pure)."""
    where = f"{facts.address} ({facts.host})"
    if facts.outcome not in ("answer", "nxdomain", "nodata"):
        return [MISSING.unknown(where, f"PTR {facts.reverse}: {facts.reason or facts.outcome}")]
    if not facts.ptr_names:
        return [
            MISSING.failed(
                where,
                f"The MX address {facts.address} has no PTR record",
                f"PTR {facts.reverse}: {facts.outcome}",
                f"Ask the owner of {facts.address} (the hosting or network provider) to set "
                f"its PTR to {facts.host}.",
                address=facts.address,
                host=facts.host,
            )
        ]
    names = ", ".join(facts.ptr_names)
    if facts.confirmed:
        return [
            FCRDNS.passed(
                where,
                f"{facts.address} → {facts.confirmed[0]} → {facts.address} (forward-confirmed)",
                f"PTR {facts.reverse}: {names}",
                address=facts.address,
                ptr=list(facts.ptr_names),
            )
        ]
    return [
        FCRDNS.failed(
            where,
            f"The PTR of {facts.address} ({names}) does not resolve back to it",
            f"PTR {facts.reverse}: {names}; none of these names has {facts.address} in its "
            "A/AAAA records.",
            f"Point the PTR of {facts.address} at {facts.host}, or add {facts.address} to the "
            f"address records of {facts.ptr_names[0]}.",
            address=facts.address,
            ptr=list(facts.ptr_names),
        )
    ]


async def address_facts(dns_session: DnsSession, host: str, address: str) -> AddressFacts:
    rev = reverse_name(address)
    ptr: Lookup = await dns_session.query(rev, "PTR")
    names = tuple(
        dict.fromkeys(
            str(r.target).rstrip(".").lower()  # type: ignore[attr-defined]
            for r in ptr.records
        )
    )
    rdtype = "AAAA" if ipaddress.ip_address(address).version == 6 else "A"
    forward = await asyncio.gather(*(dns_session.query(n, rdtype, after=ptr) for n in names))
    want = ipaddress.ip_address(address)
    confirmed = tuple(
        n
        for n, lk in zip(names, forward, strict=True)
        if any(ipaddress.ip_address(str(r)) == want for r in lk.records)
    )
    return AddressFacts(host, address, rev, names, confirmed, ptr.outcome.value, ptr.reason)


async def check(ctx: CheckContext) -> Section:
    """The "ptr" section: PTR and FCrDNS of every MX address, all at once."""
    mx = await mx_names(ctx)
    pairs = [(h, a) for h in mx.hosts for a in dict.fromkeys(mx.addresses.get(h, ()))]
    results = await asyncio.gather(*(address_facts(ctx.dns, h, a) for h, a in pairs))
    out: list[Finding] = []
    for result in results:
        out.extend(findings(result))
    if mx.reason:
        out.append(MISSING.unknown(ctx.request.domain, f"The MX hosts are not known: {mx.reason}"))
    return Section(tuple(out), PtrFacts(ctx.request.domain, tuple(results)))
