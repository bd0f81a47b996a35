"""Asynchronous stub resolver over dnspython: configured servers, EDNS0, TCP on truncation,
CNAME chains followed by the layer itself, TTL cache, single-flight, failures as values."""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import logging
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import dns.asyncbackend
import dns.asyncquery
import dns.edns
import dns.exception
import dns.flags
import dns.inet
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from .cache import DnsCache

log = logging.getLogger(__name__)

MAX_CNAME_CHAIN = 8
EDNS_PAYLOAD = 1232


class Outcome(enum.StrEnum):
    """What the network said. Only NXDOMAIN and NODATA mean that a record is absent."""

    ANSWER = "answer"
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"
    SERVFAIL = "servfail"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Nameserver:
    host: str
    port: int = 53

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_nameservers(text: str | Iterable[str]) -> tuple[Nameserver, ...]:
    """Parse ``ip[:port],...`` (IPv6 as ``[addr]:port`` or a bare address)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    servers: list[Nameserver] = []
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        host, port = item, 53
        if item.startswith("["):
            host, sep, rest = item[1:].partition("]")
            if not sep:
                raise ValueError(f"{item!r}: missing ']'")
            if rest:
                if not rest.startswith(":"):
                    raise ValueError(f"{item!r}: expected ':port' after ']'")
                port = _port(rest[1:], item)
        elif item.count(":") == 1:
            host, _, port_text = item.partition(":")
            port = _port(port_text, item)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{item!r}: a nameserver must be an IP address") from None
        servers.append(Nameserver(host, port))
    if not servers:
        raise ValueError("no nameserver given")
    return tuple(servers)


def _port(text: str, item: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{item!r}: the port must be a number from 1 to 65535")
    return int(text)


def system_nameservers() -> tuple[Nameserver, ...]:
    """The nameservers of /etc/resolv.conf (only used when none are configured)."""
    import dns.resolver

    try:
        return tuple(
            Nameserver(str(ns)) for ns in dns.resolver.Resolver(configure=True).nameservers
        )
    except dns.exception.DNSException:
        return (Nameserver("127.0.0.1"),)


@dataclass(frozen=True, slots=True)
class Lookup:
    """The answer to one (name, type) question, or why there is none."""

    name: str
    rdtype: str
    outcome: Outcome
    records: tuple[dns.rdata.Rdata, ...] = ()
    ttl: int = 0
    cname_chain: tuple[str, ...] = ()
    reason: str = ""
    ede: tuple[int, ...] = ()
    rrsigs: tuple[dns.rdata.Rdata, ...] = ()
    authenticated: bool = False
    depth: int = 0
    from_cache: bool = False
    server: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.ANSWER

    @property
    def absent(self) -> bool:
        """Authoritatively not there: NXDOMAIN or NODATA."""
        return self.outcome in (Outcome.NXDOMAIN, Outcome.NODATA)

    @property
    def failed(self) -> bool:
        """Nothing was learned: SERVFAIL, REFUSED, timeout or another error."""
        return not (self.ok or self.absent)

    @property
    def canonical_name(self) -> str:
        return self.cname_chain[-1] if self.cname_chain else self.name

    def texts(self) -> tuple[str, ...]:
        """TXT records, each with its character-strings joined without separator."""
        return tuple(
            b"".join(r.strings).decode("utf-8", errors="replace")  # type: ignore[attr-defined]
            for r in self.records
            if r.rdtype == dns.rdatatype.TXT
        )

    def strings(self) -> tuple[tuple[bytes, ...], ...]:
        """The raw character-strings of each TXT record, for size rules."""
        return tuple(tuple(r.strings) for r in self.records if r.rdtype == dns.rdatatype.TXT)  # type: ignore[attr-defined]

    def describe(self) -> str:
        """A short phrase for a finding's detail: what this lookup showed."""
        what = f"{self.rdtype} {self.name}"
        if self.ok:
            return f"{what}: {len(self.records)} record(s)"
        if self.outcome is Outcome.NXDOMAIN:
            return f"{what}: the name does not exist (NXDOMAIN)"
        if self.outcome is Outcome.NODATA:
            return f"{what}: the name exists but has no {self.rdtype} record"
        return f"{what}: {self.reason or self.outcome.value}"


@dataclass(frozen=True, slots=True)
class Deadline:
    """A point in monotonic time after which no more waiting is allowed."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.at - time.monotonic()

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0


@dataclass(slots=True)
class QueryStats:
    """Counters for one resolver or one request session."""

    sent: int = 0
    tcp: int = 0
    cache_hits: int = 0
    joined: int = 0
    failures: int = 0
    max_depth: int = 0
    questions: list[tuple[str, str]] = field(default_factory=list)


class Resolver:
    """Shared by all requests of a process: holds the cache and the in-flight table.

    Use :meth:`session` per request; the session applies the request's deadline and keeps
    per-request counters and a memo so a question is asked at most once per request.
    """

    def __init__(
        self,
        nameservers: Sequence[Nameserver],
        *,
        timeout: float = 2.0,
        cache: DnsCache | None = None,
        edns_payload: int = EDNS_PAYLOAD,
    ) -> None:
        if not nameservers:
            raise ValueError("a resolver needs at least one nameserver")
        self.nameservers = tuple(nameservers)
        self.timeout = timeout
        self.cache = cache if cache is not None else DnsCache()
        self.edns_payload = edns_payload
        self.key = ",".join(str(ns) for ns in self.nameservers)
        self.stats = QueryStats()
        self._inflight: dict[tuple[object, ...], asyncio.Task[Lookup]] = {}

    def session(self, deadline: Deadline | None = None) -> DnsSession:
        return DnsSession(self, deadline)

    async def lookup(
        self,
        name: str,
        rdtype: str,
        *,
        deadline: Deadline | None = None,
        want_dnssec: bool = False,
        stats: QueryStats | None = None,
    ) -> Lookup:
        """Answer (name, rdtype), from cache, by joining an identical query, or by asking."""
        name = _normal(name)
        rdtype = rdtype.upper()
        cache_key = (self.key, name, rdtype, want_dnssec)
        cached = self.cache.get(cache_key)
        if cached is not None:
            self.stats.cache_hits += 1
            if stats is not None:
                stats.cache_hits += 1
            return replace(cached, from_cache=True, depth=0)
        loop = asyncio.get_running_loop()
        flight_key = (id(loop), *cache_key)
        task = self._inflight.get(flight_key)
        if task is None:
            # The query runs as a task of its own, so a caller that gives up (or is
            # cancelled) does not cancel it for the others waiting on it.
            task = loop.create_task(self._fetch(cache_key, deadline, want_dnssec, stats))
            self._inflight[flight_key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(flight_key, None))
        else:
            self.stats.joined += 1
            if stats is not None:
                stats.joined += 1
        return await _wait(task, deadline, name, rdtype)

    async def _fetch(
        self,
        cache_key: tuple[str, str, str, bool],
        deadline: Deadline | None,
        want_dnssec: bool,
        stats: QueryStats | None,
    ) -> Lookup:
        _, name, rdtype, _ = cache_key
        try:
            result = await self._resolve(name, rdtype, deadline, want_dnssec, stats, seen=(name,))
        except Exception as exc:  # a bug or a library surprise: a value, and logged
            log.exception("DNS lookup %s %s failed unexpectedly", name, rdtype)
            return Lookup(
                name, rdtype, Outcome.ERROR, reason=f"internal error: {type(exc).__name__}"
            )
        if result.ok or result.absent:
            self.cache.put(cache_key, result)
        return result

    async def _resolve(
        self,
        name: str,
        rdtype: str,
        deadline: Deadline | None,
        want_dnssec: bool,
        stats: QueryStats | None,
        seen: tuple[str, ...],
    ) -> Lookup:
        response, error = await self._ask(name, rdtype, deadline, want_dnssec, stats)
        if response is None:
            return error
        return await self._interpret(
            response, name, rdtype, deadline, want_dnssec, stats, seen, error
        )

    async def _interpret(
        self,
        response: dns.message.Message,
        name: str,
        rdtype: str,
        deadline: Deadline | None,
        want_dnssec: bool,
        stats: QueryStats | None,
        seen: tuple[str, ...],
        base: Lookup,
    ) -> Lookup:
        wanted = dns.rdatatype.from_text(rdtype)
        ede = tuple(int(opt.code) for opt in response.extended_errors())
        rcode = response.rcode()
        proto = Lookup(name, rdtype, Outcome.ERROR, ede=ede, server=base.server, depth=1)
        if rcode == dns.rcode.SERVFAIL:
            return replace(proto, outcome=Outcome.SERVFAIL, reason=_servfail_reason(ede))
        if rcode == dns.rcode.REFUSED:
            return replace(proto, outcome=Outcome.REFUSED, reason="the server refused the query")
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            return replace(
                proto,
                outcome=Outcome.ERROR,
                reason=f"the server answered {dns.rcode.to_text(rcode)}",
            )
        # Walk the CNAME chain inside this response.
        current = dns.name.from_text(name)
        chain: list[str] = []
        ttls: list[int] = []
        final: dns.rrset.RRset | None = None
        while True:
            rrset = _find(response.answer, current, wanted)
            if rrset is not None:
                final = rrset
                break
            if wanted == dns.rdatatype.CNAME:
                break
            alias = _find(response.answer, current, dns.rdatatype.CNAME)
            if alias is None:
                break
            target = _normal(alias[0].target.to_text())
            ttls.append(alias.ttl)
            if target in seen or target in chain:
                return replace(
                    proto,
                    outcome=Outcome.ERROR,
                    reason=f"CNAME loop: {' -> '.join((*seen, *chain, target))}",
                    cname_chain=(*chain, target),
                )
            chain.append(target)
            if len(seen) - 1 + len(chain) > MAX_CNAME_CHAIN:
                return replace(
                    proto,
                    outcome=Outcome.ERROR,
                    reason=f"CNAME chain longer than {MAX_CNAME_CHAIN} names",
                    cname_chain=tuple(chain),
                )
            current = dns.name.from_text(target)
        chain_t = tuple(chain)
        authenticated = bool(response.flags & dns.flags.AD)
        if final is not None:
            sigs = _find(response.answer, final.name, dns.rdatatype.RRSIG, covers=wanted)
            return replace(
                proto,
                outcome=Outcome.ANSWER,
                records=tuple(final),
                ttl=min([final.ttl, *ttls]),
                cname_chain=chain_t,
                rrsigs=tuple(sigs) if sigs is not None else (),
                authenticated=authenticated,
            )
        if chain and rcode == dns.rcode.NOERROR and not _has_soa(response):
            # The server gave the alias alone (it does not serve the target's zone): follow it.
            if deadline is not None and deadline.expired:
                return replace(
                    proto,
                    outcome=Outcome.TIMEOUT,
                    reason="the request deadline passed while following a CNAME",
                    cname_chain=chain_t,
                )
            rest = await self._resolve(
                chain[-1], rdtype, deadline, want_dnssec, stats, seen=(*seen, *chain[:-1])
            )
            return replace(
                rest,
                name=name,
                cname_chain=chain_t + rest.cname_chain,
                depth=rest.depth + 1,
                ttl=min([rest.ttl, *ttls]) if rest.ok or rest.absent else rest.ttl,
            )
        negative_ttl = _negative_ttl(response)
        outcome = Outcome.NXDOMAIN if rcode == dns.rcode.NXDOMAIN else Outcome.NODATA
        return replace(
            proto,
            outcome=outcome,
            ttl=min([negative_ttl, *ttls]),
            cname_chain=chain_t,
            authenticated=authenticated,
        )

    async def _ask(
        self,
        name: str,
        rdtype: str,
        deadline: Deadline | None,
        want_dnssec: bool,
        stats: QueryStats | None,
    ) -> tuple[dns.message.Message | None, Lookup]:
        """Send the question to the servers in turn until one answers usefully."""
        budget = self.timeout
        if deadline is not None:
            budget = min(budget, deadline.remaining())
        if budget <= 0:
            return None, Lookup(
                name, rdtype, Outcome.TIMEOUT, reason="the request deadline passed before the query"
            )
        started = time.monotonic()
        query = dns.message.make_query(
            name, rdtype, use_edns=0, payload=self.edns_payload, want_dnssec=want_dnssec
        )
        last = Lookup(name, rdtype, Outcome.TIMEOUT, reason=f"no answer within {_secs(budget)}")
        servers = self.nameservers
        for index, server in enumerate(servers):
            left = budget - (time.monotonic() - started)
            if left <= 0:
                break
            # Share what is left among the servers not yet tried, so one dead server
            # cannot use up the whole budget.
            attempt = left / (len(servers) - index)
            self._count(stats, name, rdtype)
            try:
                response = await self._exchange(query, server, attempt, stats)
            except (dns.exception.DNSException, OSError, EOFError) as exc:
                outcome, reason = _exchange_failure(exc, budget)
                last = Lookup(name, rdtype, outcome, reason=reason, server=str(server))
                self._fail(stats)
                continue
            rcode = response.rcode()
            if rcode in (dns.rcode.SERVFAIL, dns.rcode.REFUSED) and index + 1 < len(servers):
                self._fail(stats)
                continue  # another server may know better; the last one's word stands
            return response, Lookup(name, rdtype, Outcome.ANSWER, server=str(server))
        return None, replace(last, depth=1)

    async def _exchange(
        self,
        query: dns.message.Message,
        server: Nameserver,
        timeout: float,
        stats: QueryStats | None,
    ) -> dns.message.Message:
        started = time.monotonic()
        try:
            return await _udp(query, server, timeout)
        except dns.message.Truncated:
            self.stats.tcp += 1
            if stats is not None:
                stats.tcp += 1
            left = timeout - (time.monotonic() - started)
            if left <= 0:
                raise dns.exception.Timeout() from None  # type: ignore[no-untyped-call]
            return await dns.asyncquery.tcp(query, server.host, timeout=left, port=server.port)

    def _count(self, stats: QueryStats | None, name: str, rdtype: str) -> None:
        self.stats.sent += 1
        if stats is not None:
            stats.sent += 1

    def _fail(self, stats: QueryStats | None) -> None:
        self.stats.failures += 1
        if stats is not None:
            stats.failures += 1


class DnsSession:
    """One request's view of the resolver: its deadline, its counters, its memo.

    ``after`` names the lookups whose answers this question depends on; the session uses it
    to measure the critical path (the longest chain of round trips).
    """

    def __init__(self, resolver: Resolver, deadline: Deadline | None = None) -> None:
        self.resolver = resolver
        self.deadline = deadline
        self.stats = QueryStats()
        self._memo: dict[tuple[str, str, bool], asyncio.Task[Lookup]] = {}

    async def query(
        self,
        name: str,
        rdtype: str,
        *,
        after: Lookup | Sequence[Lookup] | None = None,
        want_dnssec: bool = False,
    ) -> Lookup:
        key = (_normal(name), rdtype.upper(), want_dnssec)
        task = self._memo.get(key)
        if task is None:
            task = asyncio.ensure_future(
                self.resolver.lookup(
                    key[0],
                    key[1],
                    deadline=self.deadline,
                    want_dnssec=want_dnssec,
                    stats=self.stats,
                )
            )
            self._memo[key] = task
            self.stats.questions.append((key[0], key[1]))
        result = await asyncio.shield(task)
        base = _depth_of(after)
        depth = base + result.depth
        if depth > self.stats.max_depth:
            self.stats.max_depth = depth
        return replace(result, depth=depth)

    async def query_many(
        self,
        questions: Iterable[tuple[str, str]],
        *,
        after: Lookup | Sequence[Lookup] | None = None,
    ) -> list[Lookup]:
        return list(await asyncio.gather(*(self.query(n, t, after=after) for n, t in questions)))


async def _udp(
    query: dns.message.Message, server: Nameserver, timeout: float
) -> dns.message.Message:
    """One UDP exchange that keeps an answer with a malformed record (dropping that record)
    instead of discarding the whole answer, and ignores packets that are not the reply."""
    backend = dns.asyncbackend.get_default_backend()
    family = dns.inet.af_for_address(server.host)
    destination: tuple[Any, ...] = (
        (server.host, server.port) if family == socket.AF_INET else (server.host, server.port, 0, 0)
    )
    expiration = time.time() + timeout
    sock = await backend.make_socket(family, socket.SOCK_DGRAM)  # type: ignore[no-untyped-call]
    garbage: dns.exception.DNSException | None = None
    async with sock:
        await dns.asyncquery.send_udp(sock, query, destination, expiration)
        while True:
            left = expiration - time.time()
            if left <= 0:
                if garbage is not None:
                    raise garbage  # only unparseable replies came: say so, not "no answer"
                raise dns.exception.Timeout()  # type: ignore[no-untyped-call]
            try:
                wire, source = await sock.recvfrom(65535, left)
            except dns.exception.Timeout:
                if garbage is not None:
                    raise garbage from None
                raise
            if source[0] != server.host or source[1] != server.port:
                continue
            try:
                response = dns.message.from_wire(
                    wire, raise_on_truncation=True, continue_on_error=True
                )
            except dns.message.Truncated:
                raise
            except dns.exception.DNSException as exc:
                garbage = exc  # keep waiting for the real reply until the timeout
                continue
            if not query.is_response(response):
                if response.errors:
                    garbage = dns.exception.FormError(str(response.errors[0].exception))  # type: ignore[no-untyped-call]
                continue
            return response


def _depth_of(after: Lookup | Sequence[Lookup] | None) -> int:
    if after is None:
        return 0
    if isinstance(after, Lookup):
        return after.depth
    return max((a.depth for a in after), default=0)


async def _wait(
    pending: asyncio.Task[Lookup], deadline: Deadline | None, name: str, rdtype: str
) -> Lookup:
    if deadline is None:
        return await asyncio.shield(pending)
    try:
        # A little grace, so a query bounded by the same deadline reports its own reason.
        return await asyncio.wait_for(asyncio.shield(pending), max(deadline.remaining(), 0) + 0.05)
    except TimeoutError:
        return Lookup(name, rdtype, Outcome.TIMEOUT, reason="the request deadline passed", depth=1)


def _normal(name: str) -> str:
    return name.strip().rstrip(".").lower() or "."  # the root keeps its one name


def _find(
    section: list[dns.rrset.RRset],
    name: dns.name.Name,
    rdtype: dns.rdatatype.RdataType,
    covers: dns.rdatatype.RdataType = dns.rdatatype.NONE,
) -> dns.rrset.RRset | None:
    for rrset in section:
        if rrset.rdtype == rdtype and rrset.name == name and rrset.covers == covers:
            return rrset
    return None


def _has_soa(response: dns.message.Message) -> bool:
    return any(r.rdtype == dns.rdatatype.SOA for r in response.authority)


def _negative_ttl(response: dns.message.Message) -> int:
    """RFC 2308 §5: the lesser of the SOA record's TTL and its MINIMUM field."""
    for rrset in response.authority:
        if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
            return int(min(rrset.ttl, rrset[0].minimum))
    return 0


_EDE_TEXT = {
    6: "DNSSEC bogus",
    7: "signature expired",
    8: "signature not yet valid",
    9: "DNSKEY missing",
    10: "RRSIGs missing",
    12: "NSEC missing",
    22: "no reachable authority",
    23: "network error",
}


def _servfail_reason(ede: tuple[int, ...]) -> str:
    extra = [_EDE_TEXT.get(code, f"extended error {code}") for code in ede]
    return (
        "the server failed to answer (SERVFAIL" + (": " + ", ".join(extra) if extra else "") + ")"
    )


def _exchange_failure(exc: BaseException, budget: float) -> tuple[Outcome, str]:
    """What a failed exchange with one server tells: a timeout, the network, or garbage."""
    if isinstance(exc, dns.exception.Timeout):
        return Outcome.TIMEOUT, f"no answer within {_secs(budget)}"
    if isinstance(exc, OSError | EOFError):
        return Outcome.ERROR, f"network error: {_oserror(exc)}"
    return Outcome.ERROR, f"malformed answer: {exc}"


def _secs(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


def _oserror(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__
