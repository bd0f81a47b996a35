"""The RFC 7208 §4 ``check_host()`` evaluator: one client IP, one sender, one verdict.

Evaluation follows the record's order of terms (§4.6.2, §5), so it is sequential by nature;
only the address lookups of one ``mx`` or ``ptr`` run in parallel. Every query passes the
lookup it depends on as ``after=``, so the session measures the critical path. Results are
values; the two private exceptions below never leave :func:`check_host`.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import time
import urllib.parse
from dataclasses import dataclass, field

from ..dns import DnsSession, Lookup
from .spf_syntax import (
    Macro,
    MacroString,
    Mechanism,
    SpfRecord,
    SpfSyntaxError,
    parse_explanation,
    parse_record,
    select_records,
)

LOOKUP_LIMIT = 10
VOID_LIMIT = 2
MX_HOST_LIMIT = 10
PTR_NAME_LIMIT = 10
MAX_NAME = 253

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class SpfResultCode(enum.StrEnum):
    """The results of check_host() (RFC 7208 §2.6, §8)."""

    NONE = "none"
    NEUTRAL = "neutral"
    PASS = "pass"
    FAIL = "fail"
    SOFTFAIL = "softfail"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


@dataclass(frozen=True, slots=True)
class SpfResult:
    """The verdict, why, and what the evaluation used up."""

    result: SpfResultCode
    domain: str
    reason: str = ""
    mechanism: str | None = None
    #: The expanded ``exp=`` text on a fail; None means the receiver's default explanation.
    explanation: str | None = None
    lookups: int = 0
    void_lookups: int = 0
    record: str | None = None


class _PermError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _TempError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _State:
    ip: IPAddress
    sender: str
    local: str
    sender_domain: str
    helo: str
    dns: DnsSession
    lookups: int = 0
    voids: int = 0
    validated: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def count_lookup(self, term: str) -> None:
        self.lookups += 1
        if self.lookups > LOOKUP_LIMIT:
            raise _PermError(
                f"`{term}` is DNS-querying term number {self.lookups}; at most "
                f"{LOOKUP_LIMIT} are allowed (RFC 7208 §4.6.4)"
            )

    def count_void(self, lookup: Lookup) -> None:
        self.voids += 1
        if self.voids > VOID_LIMIT:
            raise _PermError(
                f"{lookup.describe()}: void lookup number {self.voids}; at most {VOID_LIMIT} "
                "are allowed (RFC 7208 §4.6.4)"
            )


def client_ip(text: str) -> IPAddress:
    """Parse the client address; an IPv4-mapped IPv6 address is IPv4 (RFC 7208 §5)."""
    ip = ipaddress.ip_address(text.strip())
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def valid_domain(domain: str) -> bool:
    """§4.3: a well-formed, multi-label domain name (not an address literal)."""
    name = domain[:-1] if domain.endswith(".") else domain
    labels = name.split(".")
    if len(labels) < 2 or len(name) > MAX_NAME:
        return False
    for label in labels:
        if not label or len(label.encode()) > 63:
            return False
        if not all(c.isalnum() or c in "-_" for c in label):
            return False
    return not labels[-1].isdigit()


def split_sender(mail_from: str, helo: str) -> tuple[str, str, str]:
    """(sender, local-part, domain) of a MAIL FROM; empty MAIL FROM uses the HELO (§4.3)."""
    if not mail_from:
        return f"postmaster@{helo}", "postmaster", helo
    local, at, domain = mail_from.rpartition("@")
    if not at:
        return f"postmaster@{mail_from}", "postmaster", mail_from
    local = local or "postmaster"
    return f"{local}@{domain}", local, domain


async def check_mail_from(ip: str, mail_from: str, helo: str, dns: DnsSession) -> SpfResult:
    """check_host() for a MAIL FROM identity (or the HELO identity when it is empty)."""
    sender, _, domain = split_sender(mail_from, helo)
    return await check_host(ip, domain, sender, helo, dns)


async def check_host(ip: str, domain: str, sender: str, helo: str, dns: DnsSession) -> SpfResult:
    """RFC 7208 §4: evaluate ``domain``'s SPF policy for mail from ``ip`` and ``sender``."""
    domain = domain.lower()
    try:
        address = client_ip(ip)
    except ValueError:
        return SpfResult(SpfResultCode.PERMERROR, domain, f"{ip!r} is not an IP address")
    sender_full, local, sender_domain = split_sender(sender, helo)
    if not valid_domain(domain):
        return SpfResult(SpfResultCode.NONE, domain, f"{domain!r} is not a valid domain name")
    domain = domain.removesuffix(".")
    state = _State(address, sender_full, local, sender_domain, helo, dns)
    try:
        result = await _evaluate(domain, state, None, want_exp=True, chain=(domain,))
    except _PermError as err:
        return SpfResult(
            SpfResultCode.PERMERROR, domain, err.reason, None, None, state.lookups, state.voids
        )
    except _TempError as err:
        return SpfResult(
            SpfResultCode.TEMPERROR, domain, err.reason, None, None, state.lookups, state.voids
        )
    return SpfResult(
        result.result,
        domain,
        result.reason,
        result.mechanism,
        result.explanation,
        state.lookups,
        state.voids,
        result.record,
    )


async def _evaluate(
    domain: str,
    state: _State,
    parent: Lookup | None,
    *,
    want_exp: bool,
    chain: tuple[str, ...],
) -> SpfResult:
    txt = await state.dns.query(query_name(domain), "TXT", after=parent)
    if txt.failed:
        raise _TempError(txt.describe())
    records = select_records(txt.texts()) if txt.ok else ()
    if not records:
        why = txt.describe() if txt.absent else f"TXT {domain}: no record starts with `v=spf1`"
        return SpfResult(SpfResultCode.NONE, domain, why)
    if len(records) > 1:
        raise _PermError(f"{domain} publishes {len(records)} SPF records; exactly one is allowed")
    record = parse_record(records[0])
    if isinstance(record, SpfSyntaxError):
        raise _PermError(f"{domain}: syntax error in {record}")
    for mechanism in record.mechanisms:
        if await _matches(mechanism, domain, state, txt, chain):
            result = SpfResultCode(mechanism.qualifier.result)
            explanation = None
            if result is SpfResultCode.FAIL and want_exp:
                explanation = await _explain(record, domain, state, txt)
            return SpfResult(
                result,
                domain,
                f"matched `{mechanism.text}`",
                mechanism.text,
                explanation,
                record=record.text,
            )
    redirect = record.redirect
    if redirect is not None and record.redirect_used:
        state.count_lookup(redirect.text)
        target = await _target(redirect.value, domain, state, txt)
        if target in chain:
            raise _PermError(
                f"redirect loop: {' -> '.join((*chain, target))} (RFC 7208 §4.6.4, §6.1)"
            )
        inner = await _evaluate(target, state, txt, want_exp=want_exp, chain=(*chain, target))
        if inner.result is SpfResultCode.NONE:
            raise _PermError(f"`{redirect.text}`: {target} has no SPF record (RFC 7208 §6.1)")
        return inner
    return SpfResult(
        SpfResultCode.NEUTRAL, domain, "no mechanism matched (default result)", record=record.text
    )


async def _matches(
    mechanism: Mechanism, domain: str, state: _State, txt: Lookup, chain: tuple[str, ...]
) -> bool:
    ip = state.ip
    name = mechanism.name
    if name == "all":
        return True
    if name in ("ip4", "ip6"):
        network = mechanism.network
        return network is not None and ip.version == network.version and ip in network
    state.count_lookup(mechanism.text)
    target = (
        domain if mechanism.domain is None else await _target(mechanism.domain, domain, state, txt)
    )
    if name == "include":
        if target in chain:
            raise _PermError(
                f"include loop: {' -> '.join((*chain, target))} (RFC 7208 §4.6.4, §5.2)"
            )
        inner = await _evaluate(target, state, txt, want_exp=False, chain=(*chain, target))
        if inner.result is SpfResultCode.PASS:
            return True
        if inner.result is SpfResultCode.NONE:
            raise _PermError(f"`{mechanism.text}`: {target} has no SPF record (RFC 7208 §5.2)")
        return False
    if name == "exists":
        found = await state.dns.query(query_name(target), "A", after=txt)
        if found.failed:
            raise _TempError(found.describe())
        if found.absent:
            state.count_void(found)
        return found.ok
    if name == "a":
        lookup = await state.dns.query(query_name(target), _family(ip), after=txt)
        if lookup.failed:
            raise _TempError(lookup.describe())
        if lookup.absent:
            state.count_void(lookup)
        return _in_any(ip, lookup, mechanism)
    if name == "mx":
        return await _mx_matches(mechanism, target, state, txt)
    return await _ptr_matches(target, state, txt)


async def _mx_matches(mechanism: Mechanism, target: str, state: _State, txt: Lookup) -> bool:
    mx = await state.dns.query(query_name(target), "MX", after=txt)
    if mx.failed:
        raise _TempError(mx.describe())
    if mx.absent:
        state.count_void(mx)
        return False
    hosts = [str(r.exchange).rstrip(".") for r in mx.records]  # type: ignore[attr-defined]
    if len(hosts) > MX_HOST_LIMIT:
        raise _PermError(
            f"`{mechanism.text}`: {target} has {len(hosts)} MX hosts; at most {MX_HOST_LIMIT} "
            "may be looked up (RFC 7208 §4.6.4)"
        )
    hosts = [h for h in hosts if h]  # a null MX names no host
    answers = await asyncio.gather(
        *(state.dns.query(query_name(h), _family(state.ip), after=mx) for h in hosts)
    )
    if any(_in_any(state.ip, a, mechanism) for a in answers):
        return True
    failed = next((a for a in answers if a.failed), None)
    if failed is not None:
        raise _TempError(failed.describe())
    return False


async def _ptr_matches(target: str, state: _State, txt: Lookup) -> bool:
    names = await _validated_names(state, txt, count_void=True)
    target = target.lower()
    return any(n == target or n.endswith("." + target) for n in names)


async def _validated_names(
    state: _State, parent: Lookup | None, *, count_void: bool
) -> tuple[str, ...]:
    """§5.5: the PTR names of the client IP whose own addresses include it."""
    key = "ptr"
    if key in state.validated:
        return state.validated[key]
    ptr = await state.dns.query(state.ip.reverse_pointer, "PTR", after=parent)
    if ptr.absent and count_void:
        state.count_void(ptr)
    if not ptr.ok:
        return ()  # §5.5: a DNS error on the PTR lookup means no match, not temperror
    names = [str(r.target).rstrip(".").lower() for r in ptr.records][:PTR_NAME_LIMIT]  # type: ignore[attr-defined]
    answers = await asyncio.gather(
        *(state.dns.query(query_name(n), _family(state.ip), after=ptr) for n in names)
    )
    validated = tuple(
        n
        for n, answer in zip(names, answers, strict=True)
        if answer.ok and any(_address(r) == state.ip for r in answer.records)
    )
    state.validated[key] = validated
    return validated


async def _explain(record: SpfRecord, domain: str, state: _State, txt: Lookup) -> str | None:
    """§6.2: the expanded explanation, or None when any step fails (default explanation)."""
    exp = record.exp
    if exp is None:
        return None
    try:
        target = await _target(exp.value, domain, state, txt)
    except (_PermError, _TempError):
        return None
    found = await state.dns.query(query_name(target), "TXT", after=txt)
    texts = found.texts() if found.ok else ()
    if len(texts) != 1 or not texts[0].isascii():
        return None
    text = parse_explanation(texts[0])
    if text is None:
        return None
    try:
        return await expand(text, domain, state, found, exp=True)
    except (_PermError, _TempError):
        return None


# -- macros ------------------------------------------------------------------------


async def expand(
    spec: MacroString, domain: str, state: _State, parent: Lookup | None, *, exp: bool = False
) -> str:
    """§7.3/§7.4: expand a macro-string for the current domain."""
    out: list[str] = []
    for token in spec.tokens:
        if isinstance(token, str):
            out.append(token)
            continue
        value = await _macro_value(token, domain, state, parent, exp)
        out.append(transform(value, token))
    return "".join(out)


def transform(value: str, macro: Macro) -> str:
    """Split on the delimiters, reverse, keep the rightmost parts, rejoin with dots, escape."""
    delimiters = macro.delimiters or "."
    parts = [value]
    for delimiter in delimiters:
        parts = [piece for part in parts for piece in part.split(delimiter)]
    if macro.reverse:
        parts.reverse()
    if macro.digits is not None:
        parts = parts[-macro.digits :]
    joined = ".".join(parts)
    return urllib.parse.quote(joined, safe="") if macro.escape else joined


async def _macro_value(
    macro: Macro, domain: str, state: _State, parent: Lookup | None, exp: bool
) -> str:
    letter = macro.letter
    ip = state.ip
    if letter == "s":
        return state.sender
    if letter == "l":
        return state.local
    if letter == "o":
        return state.sender_domain
    if letter == "d":
        return domain
    if letter == "h":
        return state.helo
    if letter == "v":
        return "in-addr" if ip.version == 4 else "ip6"
    if letter == "i":
        if isinstance(ip, ipaddress.IPv4Address):
            return str(ip)
        return ".".join(ip.exploded.replace(":", ""))
    if letter == "p":
        return await _p_macro(domain, state, parent)
    if letter == "c":
        return str(ip)
    if letter == "r":
        return "unknown"
    if letter == "t":
        return str(int(time.time()))
    raise _PermError(f"unknown macro letter {letter!r}")  # the parser prevents this


async def _p_macro(domain: str, state: _State, parent: Lookup | None) -> str:
    """%{p} (§7.3): prefer the domain itself, then a subdomain of it, then any validated name."""
    names = await _validated_names(state, parent, count_void=False)
    for name in names:
        if name == domain:
            return name
    for name in names:
        if name.endswith("." + domain):
            return name
    return names[0] if names else "unknown"


async def _target(spec: MacroString, domain: str, state: _State, parent: Lookup | None) -> str:
    """Expand a domain-spec into the name to query: truncated (§7.3) and checked."""
    name = await expand(spec, domain, state, parent)
    name = name[:-1] if name.endswith(".") else name
    while len(name) > MAX_NAME and "." in name:
        name = name.split(".", 1)[1]  # §7.3: drop labels from the left until it fits
    labels = name.split(".")
    if not name or any(not label for label in labels):
        raise _PermError(f"`{spec.text}` expands to {name!r}, which has an empty label")
    long_label = next((label for label in labels if len(label.encode()) > 63), None)
    if long_label is not None:
        raise _PermError(f"`{spec.text}` expands to a name with a label longer than 63 octets")
    return name.lower()


def query_name(name: str) -> str:
    """Presentation form for the DNS layer: any byte that is not plain visible ASCII escaped."""
    out: list[str] = []
    for byte in name.encode("utf-8"):
        char = chr(byte)
        if byte < 0x21 or byte > 0x7E or char in '\\"();@$':
            out.append(f"\\{byte:03d}")
        else:
            out.append(char)
    return "".join(out)


def _family(ip: IPAddress) -> str:
    return "A" if ip.version == 4 else "AAAA"


def _address(record: object) -> IPAddress | None:
    try:
        return ipaddress.ip_address(str(record.address))  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return None


def _in_any(ip: IPAddress, lookup: Lookup, mechanism: Mechanism) -> bool:
    if not lookup.ok:
        return False
    prefix = (
        (mechanism.cidr4 if mechanism.cidr4 is not None else 32)
        if ip.version == 4
        else (mechanism.cidr6 if mechanism.cidr6 is not None else 128)
    )
    for record in lookup.records:
        address = _address(record)
        if address is None or address.version != ip.version:
            continue
        network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
        if ip in network:
            return True
    return False
