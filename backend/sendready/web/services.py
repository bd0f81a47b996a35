"""What one app instance owns: the engine, caches, auth clients and metrics (no globals)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from redis.exceptions import RedisError

from ..auth.graph import TenantDomains
from ..auth.msal_client import TokenBroker
from ..auth.tokens import TokenValidator
from ..config import Settings
from ..engine import Engine
from ..model import CheckRequest, Report
from .cache import ReportCache
from .metrics import Metrics

log = logging.getLogger(__name__)

#: How long a tenant's domains are kept: they change when an admin adds a domain, rarely.
TENANT_TTL = 86_400.0
#: How long a failed lookup is remembered, so a Graph outage costs one call per tenant per
#: ten minutes instead of one per check.
TENANT_FAILURE_TTL = 600.0
TENANT_KEY = "sendready:tenant-domain:"


class TenantDomainCache:
    """Each tenant's initial and verified domains by tenant id: in process, and in Redis when
    one is configured (shared by every worker), so Graph is asked once per tenant per day.

    ``None`` (the lookup failed) is cached too, for a shorter time; two checks of a tenant
    that miss at the same moment may both ask Graph, which is harmless."""

    def __init__(
        self,
        ttl: float = TENANT_TTL,
        failure_ttl: float = TENANT_FAILURE_TTL,
        limit: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl, self._failure_ttl, self._limit, self._clock = ttl, failure_ttl, limit, clock
        self._items: OrderedDict[str, tuple[float, TenantDomains | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, tid: str, redis: Any | None, load: Callable[[], TenantDomains | None]
    ) -> TenantDomains | None:
        """The tenant's domains from this process, else Redis, else ``load()`` (Graph)."""
        with self._lock:
            item = self._items.get(tid)
            if item is not None and item[0] > self._clock():
                self._items.move_to_end(tid)
                return item[1]
        found, value = self._shared(tid, redis)
        if not found:
            value = load()
            self._share(tid, redis, value)
        self._keep(tid, value)
        return value

    def _keep(self, tid: str, value: TenantDomains | None) -> None:
        ttl = self._ttl if value is not None else self._failure_ttl
        with self._lock:
            self._items[tid] = (self._clock() + ttl, value)
            self._items.move_to_end(tid)
            while len(self._items) > self._limit:
                self._items.popitem(last=False)

    def _shared(self, tid: str, redis: Any | None) -> tuple[bool, TenantDomains | None]:
        """(whether Redis had the tenant, its domains); an unreachable Redis is a miss."""
        if redis is None:
            return False, None
        try:
            raw = redis.get(TENANT_KEY + tid)
        except RedisError as exc:
            log.warning("tenant domain cache unavailable: %s", type(exc).__name__)
            return False, None
        if not isinstance(raw, bytes):
            return False, None
        try:
            data = json.loads(raw)
        except ValueError:
            return False, None
        if not isinstance(data, dict):
            return False, None
        if data.get("failed") is True:
            return True, None
        initial, verified = data.get("initial"), data.get("verified")
        if not (initial is None or isinstance(initial, str)) or not isinstance(verified, list):
            return False, None  # written by another version: ask Graph again
        return True, TenantDomains(initial, frozenset(str(v) for v in verified))

    def _share(self, tid: str, redis: Any | None, value: TenantDomains | None) -> None:
        if redis is None:
            return
        body: dict[str, object]
        if value is None:
            body, ttl = {"failed": True}, self._failure_ttl
        else:
            body, ttl = {"initial": value.initial, "verified": sorted(value.verified)}, self._ttl
        try:
            redis.set(TENANT_KEY + tid, json.dumps(body), ex=max(1, int(ttl)))
        except RedisError as exc:
            log.warning("tenant domain cache unavailable: %s", type(exc).__name__)


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: Engine
    cache: ReportCache
    metrics: Metrics
    session: requests.Session
    validator: TokenValidator | None  # None: development mode without sign-in
    broker: TokenBroker | None  # None: no client secret or certificate configured
    redis: Any | None
    tenants: TenantDomainCache = field(default_factory=TenantDomainCache)

    def run(self, check: CheckRequest) -> Report:
        report = self.engine.check(check)
        self.metrics.observe_report(report)
        return report
