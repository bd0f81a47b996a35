"""The latest report per domain, for GET /api/v1/domains/<domain>: in process, or in Redis."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol


class ReportCache(Protocol):
    def get(self, domain: str) -> bytes | None: ...
    def put(self, domain: str, body: bytes) -> None: ...
    def ping(self) -> None: ...


class MemoryReportCache:
    """Bounded LRU with a fixed time to live; the embedded default."""

    def __init__(
        self, ttl: float, limit: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._limit = limit
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, domain: str) -> bytes | None:
        with self._lock:
            item = self._items.get(domain)
            if item is None:
                return None
            if item[0] <= self._clock():
                del self._items[domain]
                return None
            self._items.move_to_end(domain)
            return item[1]

    def put(self, domain: str, body: bytes) -> None:
        if self._ttl <= 0:
            return
        with self._lock:
            self._items[domain] = (self._clock() + self._ttl, body)
            self._items.move_to_end(domain)
            while len(self._items) > self._limit:
                self._items.popitem(last=False)

    def ping(self) -> None:
        return None


class RedisReportCache:
    """Shared by every worker and machine (SENDREADY_REDIS_URL)."""

    def __init__(self, client: Any, ttl: float, prefix: str = "sendready:report:") -> None:
        self._client = client
        self._ttl = ttl
        self._prefix = prefix

    def get(self, domain: str) -> bytes | None:
        value = self._client.get(self._prefix + domain)
        return value if isinstance(value, bytes) else None

    def put(self, domain: str, body: bytes) -> None:
        if self._ttl > 0:
            self._client.set(self._prefix + domain, body, ex=max(1, int(self._ttl)))

    def ping(self) -> None:
        self._client.ping()
