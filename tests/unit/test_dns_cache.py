"""The DNS cache: TTLs respected, negative answers for the SOA minimum, bounded, per resolver."""

from __future__ import annotations

from sendready.dns.cache import DEFAULT_NEGATIVE_TTL, DnsCache
from sendready.dns.resolver import Lookup, Outcome


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def answer(ttl: int, outcome: Outcome = Outcome.ANSWER) -> Lookup:
    return Lookup("example.com", "TXT", outcome, ttl=ttl)


def test_an_answer_lives_for_its_ttl_and_comes_back_with_the_ttl_left() -> None:
    clock = Clock()
    cache = DnsCache(clock=clock)
    cache.put("k", answer(300))
    clock.now += 100
    cached = cache.get("k")
    assert cached is not None and cached.ttl == 200
    clock.now += 200
    assert cache.get("k") is None


def test_negative_answers_live_for_their_soa_minimum() -> None:
    clock = Clock()
    cache = DnsCache(clock=clock)
    cache.put("nx", answer(60, Outcome.NXDOMAIN))
    cache.put("nodata", answer(0, Outcome.NODATA))
    clock.now += 59
    assert cache.get("nx") is not None
    clock.now += 2
    assert cache.get("nx") is None
    # No SOA in the answer: a short default, not forever and not zero.
    assert DEFAULT_NEGATIVE_TTL < 61 and cache.get("nodata") is None


def test_ttls_are_capped() -> None:
    clock = Clock()
    cache = DnsCache(max_ttl=600, clock=clock)
    cache.put("k", answer(86400))
    clock.now += 601
    assert cache.get("k") is None


def test_the_cache_is_bounded_and_evicts_the_least_recently_used() -> None:
    cache = DnsCache(max_entries=2, clock=Clock())
    cache.put("a", answer(300))
    cache.put("b", answer(300))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", answer(300))
    assert len(cache) == 2
    assert cache.get("b") is None
    assert cache.get("a") is not None and cache.get("c") is not None


def test_zero_ttl_answers_are_not_kept() -> None:
    cache = DnsCache(clock=Clock())
    cache.put("k", answer(0))
    assert cache.get("k") is None
