"""The DNS layer against real servers: Knot for cross-zone CNAMEs and EDNS, the project's
dnslib server for faults (SERVFAIL, REFUSED, drops, truncation, loops, long TXT)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from dnslib import QTYPE, RR, TXT

from sendready.dns import Deadline, DnsCache, Lookup, Nameserver, Outcome, Resolver
from tests.servers.tiny_dns import TinyDns

ZONE = """
$ORIGIN fault.test.
$TTL 300
@          IN SOA ns hostmaster 1 3600 600 86400 120
@          IN NS  ns
ns         IN A   192.0.2.53
@          IN TXT "v=spf1 -all"
exists     IN A   192.0.2.1
alias      IN CNAME exists
loop1      IN CNAME loop2
loop2      IN CNAME loop1
sub.empty  IN A   192.0.2.2
"""


@pytest.fixture
def faults(fault_dns: TinyDns) -> Iterator[TinyDns]:
    fault_dns.load_zone(ZONE)
    fault_dns.faults.clear()
    fault_dns.delay_ms = 0
    yield fault_dns
    fault_dns.faults.clear()
    fault_dns.delay_ms = 0


def resolver_for(server: TinyDns | str, timeout: float = 1.0) -> Resolver:
    if isinstance(server, str):
        host, _, port = server.partition(":")
        return Resolver([Nameserver(host, int(port))], timeout=timeout, cache=DnsCache())
    return Resolver([Nameserver(server.address, server.port)], timeout=timeout, cache=DnsCache())


def ask(resolver: Resolver, name: str, rdtype: str, budget: float = 5.0) -> Lookup:
    async def go() -> Lookup:
        return await resolver.session(Deadline.after(budget)).query(name, rdtype)

    return asyncio.run(go())


def test_nxdomain_and_nodata_are_told_apart(faults: TinyDns) -> None:
    r = resolver_for(faults)
    assert ask(r, "nothing-here.fault.test", "TXT").outcome is Outcome.NXDOMAIN
    assert ask(r, "exists.fault.test", "TXT").outcome is Outcome.NODATA
    # An empty non-terminal exists (RFC 8020): NODATA, not NXDOMAIN.
    assert ask(r, "empty.fault.test", "TXT").outcome is Outcome.NODATA


def test_negative_answers_carry_the_soa_minimum_as_ttl(faults: TinyDns) -> None:
    lookup = ask(resolver_for(faults), "nothing-here.fault.test", "TXT")
    assert lookup.ttl == 120


@pytest.mark.parametrize(
    ("kind", "outcome", "reason"),
    [
        ("servfail", Outcome.SERVFAIL, "SERVFAIL"),
        ("refused", Outcome.REFUSED, "refused"),
        ("timeout", Outcome.TIMEOUT, "no answer within"),
    ],
)
def test_failures_are_values_with_reasons_never_absence(
    faults: TinyDns, kind: str, outcome: Outcome, reason: str
) -> None:
    faults.fault("fault.test", "TXT", kind)
    lookup = ask(resolver_for(faults, timeout=0.3), "fault.test", "TXT")
    assert lookup.outcome is outcome
    assert lookup.failed and not lookup.absent
    assert reason in lookup.reason


def test_failures_are_not_cached(faults: TinyDns) -> None:
    r = resolver_for(faults, timeout=0.3)
    faults.fault("fault.test", "TXT", "servfail")
    assert ask(r, "fault.test", "TXT").outcome is Outcome.SERVFAIL
    faults.faults.clear()
    assert ask(r, "fault.test", "TXT").texts() == ("v=spf1 -all",)


def test_answers_are_cached_and_served_without_a_query(faults: TinyDns) -> None:
    r = resolver_for(faults)
    ask(r, "fault.test", "TXT")
    before = faults.queries
    again = ask(r, "fault.test", "TXT")
    assert faults.queries == before
    assert again.from_cache and again.texts() == ("v=spf1 -all",)


def test_a_truncated_udp_answer_is_retried_over_tcp(faults: TinyDns) -> None:
    faults.fault("fault.test", "TXT", "truncate")
    r = resolver_for(faults)
    lookup = ask(r, "fault.test", "TXT")
    assert lookup.texts() == ("v=spf1 -all",)
    assert r.stats.tcp == 1


def test_a_600_byte_txt_split_into_strings_is_joined_without_separator(faults: TinyDns) -> None:
    strings = ["a" * 255, "b" * 255, "c" * 90]
    faults.records.append(RR("long.fault.test", QTYPE.TXT, rdata=TXT(strings), ttl=300))
    lookup = ask(resolver_for(faults), "long.fault.test", "TXT")
    assert lookup.texts() == ("".join(strings),)
    assert [len(s) for s in lookup.strings()[0]] == [255, 255, 90]


def test_a_cname_loop_is_detected_and_named(faults: TinyDns) -> None:
    lookup = ask(resolver_for(faults), "loop1.fault.test", "A")
    assert lookup.outcome is Outcome.ERROR
    assert "CNAME loop" in lookup.reason and "loop2.fault.test" in lookup.reason


def test_cname_chains_longer_than_the_limit_are_cut(faults: TinyDns) -> None:
    faults.records += [
        RR.fromZone(f"c{i}.fault.test. 300 IN CNAME c{i + 1}.fault.test.")[0] for i in range(12)
    ]
    lookup = ask(resolver_for(faults), "c0.fault.test", "A")
    assert lookup.outcome is Outcome.ERROR
    assert "longer than 8" in lookup.reason


def test_the_request_deadline_bounds_every_query(faults: TinyDns) -> None:
    faults.fault("fault.test", "*", "timeout")
    r = resolver_for(faults, timeout=10)
    lookup = ask(r, "fault.test", "TXT", budget=0.3)
    assert lookup.outcome is Outcome.TIMEOUT


def test_identical_concurrent_queries_are_sent_once(faults: TinyDns) -> None:
    faults.delay_ms = 50
    r = resolver_for(faults)

    async def go() -> list[Lookup]:
        sessions = [r.session(Deadline.after(5)) for _ in range(5)]
        return list(await asyncio.gather(*(s.query("fault.test", "TXT") for s in sessions)))

    before = faults.queries
    results = asyncio.run(go())
    assert faults.queries - before == 1
    assert all(x.texts() == ("v=spf1 -all",) for x in results)
    assert r.stats.joined == 4


def test_a_dead_first_server_falls_over_to_the_next(faults: TinyDns) -> None:
    dead = Nameserver("127.0.10.99", 53)  # nothing listens there: the query times out
    r = Resolver([dead, Nameserver(faults.address, faults.port)], timeout=1.0)
    lookup = ask(r, "fault.test", "TXT")
    assert lookup.texts() == ("v=spf1 -all",)


def test_a_cname_into_another_zone_is_followed_by_the_layer(dns_server) -> None:  # type: ignore[no-untyped-def]
    # Knot answers a CNAME into another zone with the CNAME alone (TESTING.md §5.1).
    r = resolver_for(dns_server.nameserver)
    lookup = ask(r, "twohop.dnslayer.test", "A")
    assert lookup.ok
    assert lookup.cname_chain == ("outward.dnslayer.test", "mx1.good.mx.test")
    assert lookup.canonical_name == "mx1.good.mx.test"
    assert lookup.depth == 2  # one more round trip to follow the chain out of the zone


def test_a_cname_to_a_missing_name_is_nxdomain_with_the_chain(dns_server) -> None:  # type: ignore[no-untyped-def]
    lookup = ask(resolver_for(dns_server.nameserver), "dangling.dnslayer.test", "TXT")
    assert lookup.outcome is Outcome.NXDOMAIN
    assert lookup.cname_chain == ("nothing.mx.test",)


def test_edns_lets_a_large_answer_arrive_over_udp(faults: TinyDns) -> None:
    faults.records.append(
        RR("big.fault.test", QTYPE.TXT, rdata=TXT(["x" * 255, "y" * 255, "z" * 200]), ttl=300)
    )
    r = resolver_for(faults)
    lookup = ask(r, "big.fault.test", "TXT")
    assert len(lookup.texts()[0]) == 710
    assert r.stats.tcp == 0


def test_a_server_that_answers_only_garbage_gives_a_malformed_answer_error() -> None:
    import socket
    import threading

    from tests.conftest import addr

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((addr(55), 53))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(512)
            except TimeoutError:
                continue
            sock.sendto(data[:2] + b"\x81\x80\xff\xff garbage", peer)  # right id, nonsense body

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        lookup = ask(resolver_for(f"{addr(55)}:53", timeout=0.5), "fault.test", "TXT")
    finally:
        stop.set()
        thread.join(2)
        sock.close()
    assert lookup.outcome is Outcome.ERROR
    assert lookup.reason.startswith("malformed answer")
