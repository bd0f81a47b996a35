"""Plans and runs every check of one request concurrently, within the request's deadline.

Each check is an ``async def check(ctx) -> Section`` that asks the DNS session (and, for
probes, the SMTP and HTTPS clients) for what it needs. All checks start at once; a check
that needs another's result awaits ``ctx.section(name)``, and a dependent lookup starts the
moment its parent answers, so wall time approaches the critical path of round trips.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from .config import Settings
from .dns import Deadline, DnsCache, DnsSession, Resolver
from .dns.cache import RedisDnsCache
from .model import CheckRequest, Finding, Report, Severity, rule

log = logging.getLogger(__name__)

T = TypeVar("T")

TIMED_OUT = rule(
    "engine.timeout",
    "A check did not finish within the request's time budget.",
    "SendReady: request budget",
    Severity.WARNING,
)
CHECK_CRASHED = rule(
    "engine.internal_error",
    "A check stopped on an internal error; its result is unknown.",
    "SendReady",
    Severity.WARNING,
)


@dataclass(frozen=True, slots=True)
class Section:
    """What one check returns: its findings, and the facts it saw (a frozen dataclass)."""

    findings: tuple[Finding, ...] = ()
    facts: Any = None


CheckFn = Callable[["CheckContext"], Awaitable[Section]]


@dataclass
class CheckContext:
    """What a check may use. Checks never open sockets themselves."""

    request: CheckRequest
    dns: DnsSession
    settings: Settings
    deadline: Deadline
    services: Mapping[str, Any] = field(default_factory=dict)
    _sections: dict[str, asyncio.Task[Section]] = field(default_factory=dict)

    async def section(self, name: str) -> Section:
        """The result of another check of this request (it runs concurrently)."""
        task = self._sections.get(name)
        if task is None:
            raise KeyError(f"no check named {name!r} in this plan")
        return await asyncio.shield(task)

    async def optional(self, name: str) -> Section | None:
        """Another check's result when it is in this plan, else None (a narrower plan, such
        as a recipients-only check, leaves it out)."""
        task = self._sections.get(name)
        return None if task is None else await asyncio.shield(task)


def default_checks() -> dict[str, CheckFn]:
    """The checks of a sender-domain request, by section name, in display order."""
    from .checks import (
        alignment,
        bimi,
        dkim,
        dmarc,
        dnssec,
        mta_sts,
        mx,
        ptr,
        recipients,
        requirements,
        sendas,
        services,
        smtp,
        spf,
        tlsrpt,
    )

    return {
        "services": services.check,
        "mx": mx.check,
        "spf": spf.check,
        "dkim": dkim.check,
        "dmarc": dmarc.check,
        "alignment": alignment.check,
        "sendas": sendas.check,
        "requirements": requirements.check,
        "mta_sts": mta_sts.check,
        "tlsrpt": tlsrpt.check,
        "bimi": bimi.check,
        "dnssec": dnssec.check,
        "dane": dnssec.check_dane,
        "ptr": ptr.check,
        "smtp": smtp.check,
        "recipients": recipients.check,
    }


def _policy_fetcher(ctx: CheckContext) -> Callable[[str], Awaitable[str | None]]:
    """Fetch a domain's MTA-STS policy body over guarded, verified HTTPS (None when it cannot)."""

    async def get(domain: str) -> str | None:
        from .checks.mta_sts import POLICY_PATH
        from .fetch import MTA_STS_LIMIT, fetch

        url = f"https://mta-sts.{domain}{POLICY_PATH}"
        result = await fetch(url, ctx.dns, ctx.settings, max_bytes=MTA_STS_LIMIT)
        return result.body.decode("utf-8", errors="replace") if result.ok else None

    return get


def make_dns_cache(settings: Settings) -> DnsCache:
    """In-process by default; shared through Redis when SENDREADY_REDIS_URL is set."""
    if not settings.redis_url:
        return DnsCache(settings.dns_cache_size)
    import redis

    client = redis.Redis.from_url(
        settings.redis_url, socket_timeout=0.25, socket_connect_timeout=0.25
    )
    return RedisDnsCache(client, min(settings.dns_cache_size, 2_000))


class Engine:
    """Owns the resolver (with its cache and single-flight table) and one event loop thread,
    so concurrent requests from any thread share in-flight queries and cached answers."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        resolver: Resolver | None = None,
        checks: Mapping[str, CheckFn] | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.resolver = resolver or Resolver(
            self.settings.nameservers(),
            timeout=self.settings.dns_timeout,
            cache=make_dns_cache(self.settings),
        )
        self.checks = dict(checks) if checks is not None else default_checks()
        if "dmarc" in self.checks:
            # Parse the public suffix list now, not on the event loop of the first request.
            from .checks.dmarc_orgdomain import bundled_suffix_list

            bundled_suffix_list()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- running -----------------------------------------------------------------

    async def run(self, request: CheckRequest) -> Report:
        """Check one request on the running event loop."""
        budget = request.budget or self.settings.check_budget
        deadline = Deadline.after(budget)
        started = time.monotonic()
        checked_at = datetime.now(UTC).isoformat(timespec="seconds")
        ctx = CheckContext(request, self.resolver.session(deadline), self.settings, deadline)
        ctx.services = {"mta_sts_policy": _policy_fetcher(ctx)}
        for name, fn in self.checks.items():
            ctx._sections[name] = asyncio.ensure_future(self._guarded(name, fn, ctx, budget))
        results = await asyncio.gather(*ctx._sections.values())
        findings: list[Finding] = []
        facts: dict[str, Any] = {}
        for name, section in zip(ctx._sections, results, strict=True):
            findings.extend(section.findings)
            if section.facts is not None:
                facts[name] = section.facts
        stats = ctx.dns.stats
        facts["dns"] = {
            "queries": stats.sent,
            "tcp_retries": stats.tcp,
            "cache_hits": stats.cache_hits,
            "critical_path": stats.max_depth,
            "nameservers": self.resolver.key,
        }
        # Only now are the facts of every section in: the fixes read across sections (SPF
        # needs the detected services, MTA-STS the MX hosts).
        from .fixes import attach

        return Report(
            domain=request.domain,
            address=request.address,
            checked_at=checked_at,
            duration_ms=(time.monotonic() - started) * 1000,
            findings=attach(findings, facts, request, self.settings),
            facts=facts,
        )

    async def _guarded(self, name: str, fn: CheckFn, ctx: CheckContext, budget: float) -> Section:
        # Lookups already stop at the deadline and come back as `unknown` values; this
        # outer bound is the backstop for a check that waits on something else.
        grace = 0.25
        try:
            return await asyncio.wait_for(fn(ctx), budget + grace)
        except TimeoutError:
            return Section(
                (
                    TIMED_OUT.unknown(
                        ctx.request.domain,
                        f"the {name} check did not finish within {budget:g} s",
                        check=name,
                    ),
                )
            )
        except Exception as exc:
            log.exception("check %s crashed for %s", name, ctx.request.domain)
            return Section(
                (
                    CHECK_CRASHED.unknown(
                        ctx.request.domain,
                        f"the {name} check failed: {type(exc).__name__}",
                        check=name,
                    ),
                )
            )

    def check(self, request: CheckRequest) -> Report:
        """Check one request from synchronous code (any thread), on the engine's loop."""
        return self.call(self.run(request))

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._ensure_loop()).result()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="sendready-engine", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def close(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            loop.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
