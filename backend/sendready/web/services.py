"""What one app instance owns: the engine, caches, auth clients and metrics (no globals),
and what it adds to a check from Graph (the user's addresses, the tenant's initial domain)."""

from __future__ import annotations

import dataclasses
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

from ..auth.graph import TenantDomains, organization_domains, proxy_addresses
from ..auth.msal_client import ServiceAuthError, TokenBroker
from ..auth.tokens import Principal, TokenValidator
from ..config import Settings
from ..dns import InvalidInput, parse_address
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

    def _user_read_token(self, broker: TokenBroker, principal: Principal) -> str:
        """A Graph token on behalf of the user with User.Read (enough for /me and
        /organization, the permission the pane already has)."""
        return broker.on_behalf_of(principal.token, [f"{self.settings.graph_url}/User.Read"])

    def own_addresses(self, principal: Principal) -> list[str]:
        """The signed-in user's SMTP addresses, from Graph on behalf of the user."""
        if self.broker is None:
            raise ServiceAuthError(
                501,
                "graph_unavailable",
                "Microsoft Graph is not configured",
                "the user's addresses need a client secret or certificate on the server",
            )
        token = self._user_read_token(self.broker, principal)
        return proxy_addresses(self.session, self.settings.graph_url, token)

    def with_mailbox(self, check: CheckRequest, principal: Principal | None) -> CheckRequest:
        """Fill the signed-in mailbox from the token and, only for a From that differs from
        it (a Send As), the user's own addresses from Graph; a Graph failure leaves them None
        so the Send As check says it could not judge, and never blocks the check."""
        if principal is None or check.address is None:
            return check
        try:
            parse_address(principal.name)
        except InvalidInput:
            return check  # the token names no mailbox address
        mailbox = principal.name.lower()
        if check.address.lower() == mailbox:
            return dataclasses.replace(check, mailbox=mailbox)
        try:
            own: tuple[str, ...] | None = tuple(self.own_addresses(principal))
        except (ServiceAuthError, requests.RequestException, ValueError) as exc:
            log.warning("own addresses unavailable for Send As: %s", type(exc).__name__)
            own = None
        return dataclasses.replace(check, mailbox=mailbox, own_addresses=own)

    def _tenant_domains(self, broker: TokenBroker, principal: Principal) -> TenantDomains | None:
        """The caller's tenant domains from Graph /organization on behalf of the user; None
        when that fails, for whatever reason."""
        try:
            token = self._user_read_token(broker, principal)
            return organization_domains(self.session, self.settings.graph_url, token)
        except (ServiceAuthError, requests.RequestException, ValueError) as exc:
            log.warning("tenant domains unavailable: %s", type(exc).__name__)
            return None

    def with_tenant_domain(self, check: CheckRequest, principal: Principal | None) -> CheckRequest:
        """Fill the tenant's initial domain for a signed-in caller whose tenant has verified
        the checked domain (or a parent of it), so Microsoft 365's DKIM CNAMEs and signing
        domain can be named. Looked up once per tenant per day (TenantDomainCache); a failure
        leaves it None and never blocks the check."""
        broker = self.broker
        if principal is None or broker is None or check.tenant_domain is not None:
            return check
        tenant = self.tenants.get(
            principal.tid, self.redis, lambda: self._tenant_domains(broker, principal)
        )
        if tenant is None or tenant.initial is None or not tenant.covers(check.domain):
            return check
        return dataclasses.replace(check, tenant_domain=tenant.initial)
