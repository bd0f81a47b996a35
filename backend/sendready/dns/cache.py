"""A bounded, TTL-respecting cache of DNS answers, keyed by resolver configuration and question."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .resolver import Lookup

log = logging.getLogger(__name__)

#: Longest time any answer is kept, whatever its TTL says.
MAX_TTL = 3600
#: Shortest time a negative answer is kept when the SOA gives none.
DEFAULT_NEGATIVE_TTL = 30


class DnsCache:
    """LRU with per-entry expiry. Only answers and authoritative absence are stored:
    timeouts, SERVFAIL and REFUSED are never cached (the resolver does not offer them)."""

    def __init__(
        self,
        max_entries: int = 10_000,
        max_ttl: int = MAX_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_ttl = max_ttl
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, Lookup]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Lookup | None:
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            expires, lookup = entry
            if expires <= now:
                del self._entries[key]
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
        return _with_ttl(lookup, int(expires - now))

    def put(self, key: Hashable, lookup: Lookup) -> None:
        ttl = lookup.ttl if lookup.ok else (lookup.ttl or DEFAULT_NEGATIVE_TTL)
        ttl = min(ttl, self.max_ttl)
        if ttl <= 0 or self.max_entries <= 0:
            return
        with self._lock:
            self._entries[key] = (self._clock() + ttl, lookup)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def _with_ttl(lookup: Lookup, ttl: int) -> Lookup:
    from dataclasses import replace

    return replace(lookup, ttl=ttl)


class RedisDnsCache(DnsCache):
    """The same cache shared through Redis by every process of a deployment.

    A small in-process LRU sits in front, so a hot answer costs no Redis round trip; Redis
    being unreachable makes the cache a miss (logged once), never an error.
    """

    PREFIX = "sendready:dns:"

    def __init__(
        self,
        client: Any,
        max_entries: int = 10_000,
        max_ttl: int = MAX_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(max_entries, max_ttl, clock)
        self.client = client
        self._warned = False

    def get(self, key: Hashable) -> Lookup | None:
        local = super().get(key)
        if local is not None:
            return local
        try:
            raw = self.client.get(self._key(key))
        except Exception as exc:  # redis down: a miss
            self._warn(exc)
            return None
        if raw is None:
            return None
        try:
            lookup = _decode(json.loads(raw))
        except (ValueError, KeyError, TypeError):
            return None
        super().put(key, lookup)
        return lookup

    def put(self, key: Hashable, lookup: Lookup) -> None:
        super().put(key, lookup)
        ttl = min(lookup.ttl if lookup.ok else (lookup.ttl or DEFAULT_NEGATIVE_TTL), self.max_ttl)
        if ttl <= 0:
            return
        try:
            self.client.set(self._key(key), json.dumps(_encode(lookup)), ex=ttl)
        except Exception as exc:
            self._warn(exc)

    def _key(self, key: Hashable) -> str:
        parts = key if isinstance(key, tuple) else (key,)
        return self.PREFIX + "|".join(str(p) for p in parts)

    def _warn(self, exc: Exception) -> None:
        if not self._warned:
            log.warning("DNS cache: Redis unavailable (%s); using the local cache only", exc)
            self._warned = True


def _encode(lookup: Lookup) -> dict[str, Any]:
    return {
        "name": lookup.name,
        "rdtype": lookup.rdtype,
        "outcome": lookup.outcome.value,
        "records": [r.to_text() for r in lookup.records],
        "rrsigs": [r.to_text() for r in lookup.rrsigs],
        "ttl": lookup.ttl,
        "cname_chain": list(lookup.cname_chain),
        "ede": list(lookup.ede),
        "authenticated": lookup.authenticated,
        "server": lookup.server,
    }


def _decode(data: dict[str, Any]) -> Lookup:
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype

    from .resolver import Lookup, Outcome

    rdtype = dns.rdatatype.from_text(data["rdtype"])
    records = tuple(
        dns.rdata.from_text(dns.rdataclass.IN, rdtype, text) for text in data["records"]
    )
    rrsigs = tuple(
        dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.RRSIG, text) for text in data["rrsigs"]
    )
    return Lookup(
        name=data["name"],
        rdtype=data["rdtype"],
        outcome=Outcome(data["outcome"]),
        records=records,
        ttl=int(data["ttl"]),
        cname_chain=tuple(data["cname_chain"]),
        ede=tuple(data["ede"]),
        rrsigs=rrsigs,
        authenticated=bool(data["authenticated"]),
        server=data["server"],
    )
