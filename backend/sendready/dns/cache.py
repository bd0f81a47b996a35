"""A bounded, TTL-respecting cache of DNS answers, keyed by resolver configuration and question."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .resolver import Lookup

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
