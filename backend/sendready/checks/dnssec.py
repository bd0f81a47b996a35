"""DNSSEC (RFC 4033–4035) and DANE for SMTP (RFC 7672): our own chain of trust from a configured
anchor through each DS to the DNSKEY to the RRSIGs of the sender domain's zone and of each MX
host's zone, and the TLSA records at _25._tcp.<mx> read under that chain.

The AD bit is never trusted (a stub may set or drop it); only a chain we validate is "secure".
"""

from __future__ import annotations

import asyncio
import enum
import time
from dataclasses import dataclass

import dns.dnssec
import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from ..dns import DnsSession, Lookup
from ..engine import CheckContext, Section
from ..model import Finding, Severity, rule
from .services import mx_names

#: Extended DNS Error codes that mean a validating resolver found the data bogus (RFC 8914 §4).
BOGUS_EDE = frozenset({6, 7, 8, 9, 10, 11, 12})

SECURE = rule(
    "dnssec.secure",
    "The zone is DNSSEC-signed and its chain of trust validates from the trust anchor.",
    "RFC 4035 §5",
    Severity.INFO,
)
UNSIGNED = rule(
    "dnssec.unsigned",
    "The zone is not DNSSEC-signed (no DS at the parent): answers can be forged, no DANE.",
    "RFC 4035 §5.2; RFC 4033 §2",
    Severity.INFO,
)
BOGUS = rule(
    "dnssec.bogus",
    "The DNSSEC chain is broken: validating receivers get SERVFAIL for every record of the zone.",
    "RFC 4035 §5; RFC 8914 §4",
    Severity.CRITICAL,
)
TLSA_PRESENT = rule(
    "dane.tlsa",
    "TLSA records at _25._tcp.<mx> in a signed zone: senders that do DANE require TLS.",
    "RFC 7672 §2.2.3",
    Severity.INFO,
)
TLSA_MISSING = rule(
    "dane.not_published",
    "No TLSA records for the MX hosts: no DANE for SMTP.",
    "RFC 7672 §2.2",
    Severity.INFO,
)
TLSA_INSECURE = rule(
    "dane.insecure",
    "TLSA records in a zone that does not validate as secure: senders ignore them.",
    "RFC 7672 §2.2",
    Severity.INFO,
)
TLSA_UNUSABLE = rule(
    "dane.unusable_usage",
    "TLSA usage PKIX-TA(0) or PKIX-EE(1) is unusable for SMTP; use DANE-TA(2) or DANE-EE(3).",
    "RFC 7672 §3.1.3",
    Severity.WARNING,
)
TLSA_SINGLE = rule(
    "dane.single_record",
    "Only one TLSA record: a certificate or key change breaks delivery; publish the next too.",
    "RFC 7671 §8.1",
    Severity.WARNING,
)
TLSA_SYNTAX = rule(
    "dane.syntax_error",
    "A TLSA record cannot match anything (bad selector, matching type or digest length).",
    "RFC 6698 §2.1; RFC 7672 §3.1",
    Severity.CRITICAL,
)
TLSA_FAILED = rule(
    "dane.lookup_failed",
    "The TLSA lookup of an MX host failed in a signed zone: DANE senders treat the MX as unusable.",
    "RFC 7672 §2.1.1",
    Severity.CRITICAL,
)


class State(enum.StrEnum):
    SECURE = "secure"
    INSECURE = "insecure"
    BOGUS = "bogus"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ZoneResult:
    """The DNSSEC state of one zone and how we got there (the steps of the chain)."""

    zone: str
    state: State
    reason: str = ""
    chain: tuple[str, ...] = ()
    anchor: str = ""


@dataclass(frozen=True, slots=True)
class DnssecFacts:
    domain: str
    zones: tuple[ZoneResult, ...] = ()
    mx_zones: tuple[tuple[str, str], ...] = ()  # (MX host, its zone)

    def state_of(self, zone: str) -> State:
        return next((z.state for z in self.zones if z.zone == zone), State.UNKNOWN)


class _Bogus(Exception):
    """Validation failed: the chain is broken (the message says where)."""


class _Unknown(Exception):
    """Nothing was learned (timeout, SERVFAIL without EDE): not bogus, not insecure."""


# -- trust anchors (pure) -------------------------------------------------------------


def parse_anchors(texts: tuple[str, ...]) -> dict[str, list[dns.rdata.Rdata]]:
    """``name [ttl] [IN] DS tag alg type digest`` lines, by owner name (lower case, no dot)."""
    out: dict[str, list[dns.rdata.Rdata]] = {}
    for text in texts:
        words = text.split()
        if "DS" not in (w.upper() for w in words):
            raise ValueError(f"trust anchor {text!r} is not a DS record")
        at = [w.upper() for w in words].index("DS")
        owner = _norm(words[0]) if at > 0 else ""
        rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.DS, " ".join(words[at + 1 :]))
        out.setdefault(owner, []).append(rdata)
    return out


def _norm(name: str) -> str:
    return name.lower().rstrip(".")


def _ancestors(name: str) -> list[str]:
    """name, its parent, ..., '' (the root)."""
    labels = name.split(".") if name else []
    return [".".join(labels[i:]) for i in range(len(labels))] + [""]


def _dname(name: str) -> dns.name.Name:
    return dns.name.from_text(name or ".")


def _rrset(name: str, records: tuple[dns.rdata.Rdata, ...], ttl: int) -> dns.rrset.RRset:
    return dns.rrset.from_rdata_list(_dname(name), max(ttl, 0), list(records))


def ds_matches(zone: str, key: dns.rdata.Rdata, ds: dns.rdata.Rdata) -> bool:
    """Does the DNSKEY ``key`` of ``zone`` hash to ``ds`` (RFC 4034 §5.1.4)?"""
    try:
        made = dns.dnssec.make_ds(
            _dname(zone),
            key,
            ds.digest_type,  # type: ignore[attr-defined]
            validating=True,
        )
    except (dns.exception.UnsupportedAlgorithm, dns.exception.DNSException, ValueError):
        return False
    return bool(made == ds and key.algorithm == ds.algorithm)  # type: ignore[attr-defined]


def check_rrsig(
    name: str,
    records: tuple[dns.rdata.Rdata, ...],
    ttl: int,
    rrsigs: tuple[dns.rdata.Rdata, ...],
    zone: str,
    keys: tuple[dns.rdata.Rdata, ...],
) -> None:
    """Raise _Bogus unless one RRSIG over the RRset verifies with one of ``keys``."""
    if not rrsigs:
        raise _Bogus(f"{name or '.'}: the answer carries no RRSIG")
    try:
        dns.dnssec.validate(
            _rrset(name, records, ttl),
            _rrset(name, rrsigs, ttl),
            {_dname(zone): _rrset(zone, keys, ttl)},
        )
    except dns.exception.UnsupportedAlgorithm as exc:
        raise _Bogus(
            f"{name or '.'}: the signature uses an algorithm we cannot check: {exc}"
        ) from None
    except (dns.exception.ValidationFailure, dns.exception.DNSException, ValueError) as exc:
        when = ""
        for sig in rrsigs:
            if int(sig.expiration) < _now():  # type: ignore[attr-defined]
                when = " (the RRSIG has expired)"
                break
        raise _Bogus(f"{name or '.'}: no RRSIG verifies: {exc}{when}") from None


def _now() -> float:
    return time.time()


# -- the chain (I/O through the session only) -----------------------------------------------


def _outcome(lookup: Lookup, what: str) -> None:
    """Raise for a lookup that failed: bogus when the resolver said so (EDE), else unknown."""
    if not lookup.failed:
        return
    if set(lookup.ede) & BOGUS_EDE:
        raise _Bogus(f"{what}: {lookup.describe()} (Extended DNS Error {lookup.ede[0]})")
    raise _Unknown(f"{what}: {lookup.describe()}")


async def zone_of(dns_session: DnsSession, name: str) -> str | None:
    """The zone apex that holds ``name``: the closest enclosing name with an SOA answer."""
    candidates = _ancestors(name)[:-1]
    lookups = await asyncio.gather(*(dns_session.query(c or ".", "SOA") for c in candidates))
    for candidate, lookup in zip(candidates, lookups, strict=True):
        if lookup.ok and not lookup.cname_chain:
            return candidate
        if lookup.failed:
            return None
    return None


async def _trusted_keys(
    dns_session: DnsSession, zone: str, ds_set: list[dns.rdata.Rdata], steps: list[str]
) -> tuple[dns.rdata.Rdata, ...]:
    lookup = await dns_session.query(zone or ".", "DNSKEY", want_dnssec=True)
    _outcome(lookup, f"DNSKEY {zone or '.'}")
    if not lookup.ok:
        raise _Bogus(f"{zone or '.'} has a DS but publishes no DNSKEY")
    keys = lookup.records
    matched = tuple(k for k in keys if any(ds_matches(zone, k, d) for d in ds_set))
    if not matched:
        tags = ", ".join(str(d.key_tag) for d in ds_set)  # type: ignore[attr-defined]
        have = ", ".join(str(dns.dnssec.key_id(k)) for k in keys)  # type: ignore[arg-type]
        raise _Bogus(
            f"no DNSKEY of {zone or '.'} matches its DS (DS key tags {tags}; DNSKEY tags {have})"
        )
    check_rrsig(zone, keys, lookup.ttl, lookup.rrsigs, zone, matched)
    steps.append(
        f"DNSKEY {zone or '.'}: key "
        + ", ".join(str(dns.dnssec.key_id(k)) for k in matched)  # type: ignore[arg-type]
        + " matches the DS and signs the key set"
    )
    return keys


async def validate_zone(
    dns_session: DnsSession, zone: str, anchors: dict[str, list[dns.rdata.Rdata]]
) -> ZoneResult:
    """Walk from the closest trust anchor down to ``zone``, DS → DNSKEY → RRSIG at each cut."""
    covering = [a for a in _ancestors(zone) if a in anchors]
    if not covering:
        return ZoneResult(zone, State.UNKNOWN, "no configured trust anchor covers this zone")
    anchor = covering[0]
    steps: list[str] = [f"trust anchor: DS of {anchor or '.'}"]
    # The names strictly between the anchor and the zone that are zone apexes.
    between = _ancestors(zone)[: _ancestors(zone).index(anchor)][::-1]
    try:
        soa = await asyncio.gather(*(dns_session.query(n, "SOA") for n in between[:-1]))
        cuts = [n for n, lk in zip(between[:-1], soa, strict=True) if lk.ok and not lk.cname_chain]
        if zone != anchor:
            cuts.append(zone)
        keys = await _trusted_keys(dns_session, anchor, anchors[anchor], steps)
        parent = anchor
        for child in cuts:
            ds = await dns_session.query(child, "DS", want_dnssec=True)
            _outcome(ds, f"DS {child}")
            if not ds.ok:
                # The denial is not proven (the DNS layer gives no authority section to read
                # NSEC from): say so in the reason.
                return ZoneResult(
                    zone,
                    State.INSECURE,
                    f"{parent or '.'} has no DS for {child} ({ds.outcome.value}; the NSEC "
                    "denial was not validated)",
                    tuple(steps),
                    anchor,
                )
            check_rrsig(child, ds.records, ds.ttl, ds.rrsigs, parent, keys)
            steps.append(f"DS {child}: signed by {parent or '.'}")
            keys = await _trusted_keys(dns_session, child, list(ds.records), steps)
            parent = child
        soa_zone = await dns_session.query(zone or ".", "SOA", want_dnssec=True)
        _outcome(soa_zone, f"SOA {zone}")
        check_rrsig(zone, soa_zone.records, soa_zone.ttl, soa_zone.rrsigs, zone, keys)
        steps.append(f"SOA {zone}: RRSIG verifies")
    except _Bogus as exc:
        return ZoneResult(zone, State.BOGUS, str(exc), tuple(steps), anchor)
    except _Unknown as exc:
        return ZoneResult(zone, State.UNKNOWN, str(exc), tuple(steps), anchor)
    return ZoneResult(zone, State.SECURE, "", tuple(steps), anchor)


async def validate_rrset(
    dns_session: DnsSession, name: str, rdtype: str, zone: str
) -> tuple[Lookup, str]:
    """The lookup, and "" if its RRSIG verifies with the (already validated) zone keys."""
    lookup, keys = await asyncio.gather(
        dns_session.query(name, rdtype, want_dnssec=True),
        dns_session.query(zone or ".", "DNSKEY", want_dnssec=True),
    )
    if not lookup.ok or lookup.cname_chain:
        return lookup, ""  # absent, or an alias whose target another check reads
    signers = {_norm(sig.signer.to_text()) for sig in lookup.rrsigs}  # type: ignore[attr-defined]
    if signers and zone not in signers:
        return lookup, ""  # signed by another zone (a delegation below): not this zone's answer
    try:
        check_rrsig(name, lookup.records, lookup.ttl, lookup.rrsigs, zone, keys.records)
    except _Bogus as exc:
        return lookup, str(exc)
    return lookup, ""


# -- findings (pure) --------------------------------------------------------------------


def zone_findings(result: ZoneResult, role: str) -> list[Finding]:
    chain = "; ".join(result.chain)
    if result.state is State.SECURE:
        return [
            SECURE.passed(
                result.zone,
                f"DNSSEC validates for {result.zone} ({role})",
                chain,
                zone=result.zone,
                role=role,
            )
        ]
    if result.state is State.INSECURE:
        return [
            UNSIGNED.failed(
                result.zone,
                f"{result.zone} ({role}) is not DNSSEC-signed",
                result.reason,
                f"Turn on DNSSEC signing at the DNS host of {result.zone}, then publish the DS "
                "record it gives you at the registrar.",
                zone=result.zone,
                role=role,
            )
        ]
    if result.state is State.BOGUS:
        return [
            BOGUS.failed(
                result.zone,
                f"The DNSSEC chain of {result.zone} ({role}) is broken",
                f"{result.reason}. Chain so far: {chain}" if chain else result.reason,
                f"Make the DS at the parent of {result.zone} match a current DNSKEY (or remove "
                "the DS to go unsigned), and keep the zone's signatures fresh; until then "
                "validating receivers cannot resolve any record of the zone.",
                zone=result.zone,
                role=role,
            )
        ]
    return [
        SECURE.unknown(
            result.zone,
            result.reason,
            title=f"Could not check DNSSEC for {result.zone} ({role})",
            zone=result.zone,
            role=role,
        )
    ]


def tlsa_findings(host: str, lookup: Lookup, zone_state: State, bogus: str) -> list[Finding]:
    """DANE findings of one MX host from its TLSA answer and its zone's DNSSEC state."""
    name = f"_25._tcp.{host}"
    if lookup.failed:
        if zone_state is State.SECURE:
            return [
                TLSA_FAILED.failed(
                    host,
                    f"The TLSA lookup for {host} failed in a signed zone",
                    f"TLSA {name}: {lookup.describe()}",
                    f"Make TLSA {name} answer (records, or a signed NODATA); DANE senders "
                    "defer mail to this MX until it does.",
                )
            ]
        return [TLSA_PRESENT.unknown(host, f"TLSA {name}: {lookup.describe()}")]
    if not lookup.ok:
        return [
            TLSA_MISSING.failed(
                host,
                f"No DANE TLSA records for {host}",
                f"TLSA {name}: {lookup.outcome.value}",
                f"With DNSSEC on the zone of {host}, publish TLSA {name} 3 1 1 <SHA-256 of the "
                "server key's SubjectPublicKeyInfo> (and one for the next key).",
            )
        ]
    shown = "; ".join(r.to_text() for r in lookup.records)
    if zone_state is not State.SECURE:
        return [
            TLSA_INSECURE.failed(
                host,
                f"TLSA records for {host}, but its zone is not DNSSEC-secure ({zone_state})",
                f"TLSA {name}: {shown}",
                f"Sign the zone of {host} with DNSSEC (with a DS at the parent), or remove "
                "the TLSA records.",
            )
        ]
    if bogus:
        return [
            TLSA_FAILED.failed(
                host,
                f"The TLSA records of {host} do not validate",
                f"{bogus}. A record that cannot be parsed (for example a digest of the wrong "
                "length for its matching type) is dropped from the answer, which also breaks "
                "the signature.",
                f"Re-sign TLSA {name}; DANE senders defer mail to this MX until it validates.",
            )
        ]
    out: list[Finding] = []
    usable = []
    for record in lookup.records:
        usage = int(record.usage)  # type: ignore[attr-defined]
        selector = int(record.selector)  # type: ignore[attr-defined]
        mtype = int(record.mtype)  # type: ignore[attr-defined]
        cert = bytes(record.cert)  # type: ignore[attr-defined]
        error = ""
        if usage > 3:
            error = f"usage {usage} is not defined"
        elif selector > 1:
            error = f"selector {selector} is not 0 (certificate) or 1 (SPKI)"
        elif mtype > 2:
            error = f"matching type {mtype} is not 0, 1 (SHA-256) or 2 (SHA-512)"
        elif mtype == 1 and len(cert) != 32:
            error = f"a SHA-256 digest is 32 bytes, this one is {len(cert)}"
        elif mtype == 2 and len(cert) != 64:
            error = f"a SHA-512 digest is 64 bytes, this one is {len(cert)}"
        if error:
            out.append(
                TLSA_SYNTAX.failed(
                    host,
                    f"A TLSA record of {host} cannot match: {error}",
                    f"TLSA {name}: {record.to_text()}",
                    f"Replace it with TLSA {name} 3 1 1 <SHA-256 of the server key's SPKI>.",
                )
            )
        elif usage in (0, 1):
            out.append(
                TLSA_UNUSABLE.failed(
                    host,
                    f"TLSA usage {usage} ({'PKIX-TA' if usage == 0 else 'PKIX-EE'}) of {host} "
                    "is unusable for SMTP",
                    f"TLSA {name}: {record.to_text()}",
                    f"Publish TLSA {name} 3 1 1 <SHA-256 of the server key's SPKI> "
                    "(DANE-EE) or 2 1 1 for the issuing CA (DANE-TA).",
                    usage=usage,
                )
            )
        else:
            usable.append(record)
    if usable and len(lookup.records) == 1:
        out.append(
            TLSA_SINGLE.failed(
                host,
                f"Only one TLSA record for {host}",
                f"TLSA {name}: {shown}",
                f"Publish a second TLSA at {name} for the next key (3 1 1 + 3 1 1, or 3 1 1 + "
                "2 1 1) before each rollover.",
            )
        )
    if usable:
        out.insert(
            0,
            TLSA_PRESENT.passed(
                host,
                f"DANE: {len(usable)} usable TLSA record(s) for {host}",
                f"TLSA {name}: {shown}",
                records=len(lookup.records),
            ),
        )
    elif not out:
        out.append(TLSA_PRESENT.unknown(host, f"TLSA {name}: no record read"))
    return out


# -- the checks -------------------------------------------------------------------------


async def _facts(ctx: CheckContext) -> tuple[DnssecFacts, list[Finding]]:
    domain = ctx.request.domain
    try:
        anchors = parse_anchors(ctx.settings.dnssec_trust_anchors)
    except (ValueError, dns.exception.DNSException) as exc:
        reason = f"the dnssec_trust_anchors setting cannot be read: {exc}"
        return DnssecFacts(domain), [SECURE.unknown(domain, reason)]
    mx, own_zone = await asyncio.gather(mx_names(ctx), zone_of(ctx.dns, domain))
    hosts = mx.hosts
    host_zones = await asyncio.gather(*(zone_of(ctx.dns, h) for h in hosts))
    zones = list(dict.fromkeys(z for z in (own_zone, *host_zones) if z is not None))
    results = list(await asyncio.gather(*(validate_zone(ctx.dns, z, anchors) for z in zones)))
    # The chain covers the zone's keys; now the answers the other checks read must verify too.
    for index, result in enumerate(results):
        if result.state is not State.SECURE:
            continue
        questions = [
            (h, t)
            for h, z in zip(hosts, host_zones, strict=True)
            if z == result.zone
            for t in ("A", "AAAA")
        ]
        if result.zone == own_zone:
            questions = [*answer_questions(domain), *questions]
        results[index] = await _check_answers(ctx.dns, result, questions)
    facts = DnssecFacts(
        domain,
        tuple(results),
        tuple((h, z or "") for h, z in zip(hosts, host_zones, strict=True)),
    )
    out: list[Finding] = []
    if own_zone is None:
        out.append(SECURE.unknown(domain, f"the zone holding {domain} could not be found"))
    by_zone = {r.zone: r for r in results}
    for zone in zones:
        roles = []
        if zone == own_zone:
            roles.append("sender domain")
        roles += [f"MX {h}" for h, z in zip(hosts, host_zones, strict=True) if z == zone]
        out.extend(zone_findings(by_zone[zone], ", ".join(roles)))
    for host, host_zone in zip(hosts, host_zones, strict=True):
        if host_zone is None:
            out.append(SECURE.unknown(host, f"the zone holding the MX host {host} was not found"))
    if mx.reason:
        out.append(SECURE.unknown(domain, f"the MX hosts are not known: {mx.reason}"))
    return facts, out


def answer_questions(domain: str) -> list[tuple[str, str]]:
    """The sender-domain answers the record checks use, whose signatures must verify."""
    return [
        (domain, "MX"),
        (domain, "TXT"),
        (f"_dmarc.{domain}", "TXT"),
        (f"_mta-sts.{domain}", "TXT"),
        (f"_smtp._tls.{domain}", "TXT"),
        (f"default._bimi.{domain}", "TXT"),
    ]


async def _check_answers(
    dns_session: DnsSession, result: ZoneResult, questions: list[tuple[str, str]]
) -> ZoneResult:
    answers = await asyncio.gather(
        *(validate_rrset(dns_session, n, t, result.zone) for n, t in questions)
    )
    verified = [
        f"{t} {n}"
        for (n, t), (lk, bad) in zip(questions, answers, strict=True)
        if lk.ok and not bad and lk.rrsigs
    ]
    for (name, rdtype), (_lookup, bad) in zip(questions, answers, strict=True):
        if bad:
            return ZoneResult(
                result.zone,
                State.BOGUS,
                f"the {rdtype} answer at {name} does not validate: {bad}",
                result.chain,
                result.anchor,
            )
    if not verified:
        return result
    return ZoneResult(
        result.zone,
        result.state,
        result.reason,
        (*result.chain, "RRSIGs verify for " + ", ".join(verified)),
        result.anchor,
    )


async def check(ctx: CheckContext) -> Section:
    """The "dnssec" section: the sender domain's zone and each MX host's zone."""
    facts, out = await _facts(ctx)
    return Section(tuple(out), facts)


async def check_dane(ctx: CheckContext) -> Section:
    """The "dane" section: TLSA at _25._tcp.<mx> for each MX host, read under DNSSEC."""
    section = await ctx.optional("dnssec")
    facts = section.facts if section is not None else None
    if not isinstance(facts, DnssecFacts):
        facts, _ = await _facts(ctx)
    out: list[Finding] = []
    pairs = [(h, z) for h, z in facts.mx_zones if h]
    answers = await asyncio.gather(
        *(
            validate_rrset(ctx.dns, f"_25._tcp.{h}", "TLSA", z)
            if facts.state_of(z) is State.SECURE
            else _plain(ctx.dns, f"_25._tcp.{h}")
            for h, z in pairs
        )
    )
    for (host, zone), (lookup, bogus) in zip(pairs, answers, strict=True):
        out.extend(tlsa_findings(host, lookup, facts.state_of(zone), bogus))
    return Section(tuple(out), facts)


async def _plain(dns_session: DnsSession, name: str) -> tuple[Lookup, str]:
    return await dns_session.query(name, "TLSA", want_dnssec=True), ""
