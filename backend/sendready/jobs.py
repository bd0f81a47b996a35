"""Scans as RQ jobs on Redis: one job per domain, idempotent, finished by its last job.

The web tier only creates the scan and enqueues; `sendready worker` processes run the
jobs. Each job id is derived from (scan, domain), so enqueueing a scan twice cannot queue a
domain twice, and the store ignores a second report for the same domain of the same scan
(a retried job), so a worker that dies after saving costs nothing. Whichever job sees the
scan complete finishes it; ``finish_scan`` is idempotent, and a Redis ``SET NX`` key makes
sure the regressions webhook fires once however many jobs race to the end.

A worker killed mid-job leaves its job in RQ's StartedJobRegistry. ``ScanWorker`` gives
that entry a lifetime of the job timeout plus a few seconds (a live job is killed at its
timeout, so an older entry is certainly abandoned) and runs RQ's registry maintenance every
few seconds, which requeues abandoned jobs while they have retries left; the failure
callback records a domain whose retries ran out as an error, so the scan still completes.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import math
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

from redis import Redis, RedisError
from rq import Callback, Queue, Retry, SimpleWorker
from rq.exceptions import AbandonedJobError
from rq.job import Job

from .config import Settings
from .dns import DnsCache, Resolver
from .engine import Engine
from .model import Report

if TYPE_CHECKING:  # SQLAlchemy is imported where a store is opened, not by the web tier
    from .store import Store

log = logging.getLogger(__name__)

QUEUE = "sendready-scans"
#: Seconds a job may run beyond the check budget (store writes, the webhook, a slow start).
JOB_MARGIN = 10
#: Seconds past its timeout after which a started job's registry entry counts as abandoned.
ABANDON_MARGIN = 3
#: Times a job is run again after its worker died (or it crashed) before it counts as failed.
RETRIES = 2
#: Seconds between the registry maintenance runs that requeue abandoned jobs.
MAINTENANCE_INTERVAL = 5
#: A worker's registration lifetime: it blocks on the queue for this minus 15 s at a time.
WORKER_TTL = 20
#: How long finished jobs and the once-only keys stay in Redis (a 10,000-domain scan keeps
#: about 10 MB there). Later, a re-enqueue would run a domain again, and the store would
#: still keep one report per domain.
KEEP_SECONDS = 24 * 3600
FINISHED_KEY = "sendready:scan-finished:"
STARTED_KEY = "sendready:scan-started:"
TOTAL_KEY = "sendready:scan-total:"
DONE_KEY = "sendready:scan-done:"
SCHEDULE_KEY = "sendready:scheduled-scan:"

ScanFn = Callable[..., Report]  # scan.scan_domain(engine, domain, settings, probe_smtp=...)
Notify = Callable[["JobContext", str], None]


def job_id(scan_id: str, domain: str) -> str:
    """The job of one domain of one scan. RQ ids allow only [A-Za-z0-9_-], hence the hash."""
    digest = hashlib.sha256(domain.encode()).hexdigest()[:24]
    return f"scan-{scan_id}-{digest}"


def job_timeout(settings: Settings) -> int:
    """Seconds one domain's job may run: the check budget, SMTP included, plus the margin."""
    return math.ceil(settings.check_budget) + JOB_MARGIN


def scan_queue(connection: Redis, name: str = QUEUE) -> Queue:
    return Queue(name, connection=connection)


def enqueue_scan(
    store: Store,
    queue: Queue,
    domains: Sequence[str],
    tenant: str | None = None,
    kind: str = "manual",
    *,
    settings: Settings | None = None,
    probe_smtp: bool = True,
) -> str:
    """Create the scan and queue one job per domain; returns the scan id."""
    scan_id = store.create_scan(tenant, domains, kind)
    view = store.scan(scan_id)
    assert view is not None  # just created
    try:
        enqueue_domains(
            queue, scan_id, view.domains, settings or Settings.from_env(), probe_smtp=probe_smtp
        )
    except RedisError:
        # Nothing will run it: close it as failed rather than leave it queued for ever.
        for domain in view.domains:
            store.record_error(scan_id, domain, "could not be queued: Redis is unreachable")
        store.finish_scan(scan_id)
        raise
    return scan_id


def enqueue_domains(
    queue: Queue,
    scan_id: str,
    domains: Sequence[str],
    settings: Settings,
    *,
    probe_smtp: bool = True,
) -> list[str]:
    """Queue the jobs of ``domains`` that do not exist yet; returns the ids queued.

    A job that still exists (queued, running, done or failed) is left alone, so calling
    this twice for one scan never runs a domain twice.
    """
    ids = {domain: job_id(scan_id, domain) for domain in domains}
    with queue.connection.pipeline() as pipe:
        for identifier in ids.values():
            pipe.exists(Job.key_for(identifier))
        existing = pipe.execute()
    fresh = [d for d, seen in zip(ids, existing, strict=True) if not seen]
    queue.connection.set(TOTAL_KEY + scan_id, len(domains), ex=KEEP_SECONDS)
    timeout = job_timeout(settings)
    datas = [
        Queue.prepare_data(
            check_domain_job,
            args=(scan_id, domain, probe_smtp),
            timeout=timeout,
            result_ttl=KEEP_SECONDS,
            failure_ttl=KEEP_SECONDS,
            description=f"check {domain} for scan {scan_id}",
            job_id=ids[domain],
            retry=Retry(max=RETRIES),
            on_failure=Callback(on_job_failure),
        )
        for domain in fresh
    ]
    for start in range(0, len(datas), 500):  # bounded pipelines for very large tenants
        queue.enqueue_many(datas[start : start + 500])
    return [ids[d] for d in fresh]


# -- the worker side ---------------------------------------------------------------


@dataclass
class JobContext:
    """What a worker process owns while it runs jobs: settings, engine, store and Redis."""

    settings: Settings
    engine: Engine
    store: Store
    redis: Redis
    scan: ScanFn
    notify: Notify

    @classmethod
    def from_settings(cls, settings: Settings) -> JobContext:
        """The context as the worker was started: its environment's settings."""
        from .scan import scan_domain
        from .store import open_store

        if not settings.redis_url:
            raise ValueError("SENDREADY_REDIS_URL is not set")
        # A worker process lives long and checks many domains of the same providers: its
        # own in-memory DNS cache keeps their answers at no cost, where the Redis cache the
        # web tier shares would add a round trip (and CPU) to every one of ~40 lookups.
        resolver = Resolver(
            settings.nameservers(),
            timeout=settings.dns_timeout,
            cache=DnsCache(settings.dns_cache_size),
        )
        return cls(
            settings=settings,
            engine=Engine(settings, resolver=resolver),
            store=open_store(settings),
            redis=Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5),
            scan=scan_domain,
            notify=send_regressions,
        )

    def close(self) -> None:
        self.engine.close()
        self.store.close()
        self.redis.close()


_context: tuple[int, JobContext] | None = None
_context_lock = threading.Lock()


def use_context(context: JobContext | None) -> None:
    """Set the context jobs of this process run with (the worker does, tests do)."""
    global _context
    with _context_lock:
        _context = (os.getpid(), context) if context is not None else None


def current_context() -> JobContext:
    """The context of this process, built from the environment on first use.

    RQ calls jobs by their dotted name with plain arguments, so the engine (with its DNS
    cache) and the store's connection pool live here, once per worker process; the pid
    check keeps a forked child from using its parent's sockets.
    """
    global _context
    with _context_lock:
        if _context is None or _context[0] != os.getpid():
            _context = (os.getpid(), JobContext.from_settings(Settings.from_env()))
        return _context[1]


def warm_up() -> None:
    """Import what jobs need and parse the public suffix list once, before a pool forks.

    Forked worker processes inherit both, instead of each paying a second or so of CPU
    (SQLAlchemy, Alembic, every check module) on its first job.
    """
    from .checks.dmarc_orgdomain import bundled_suffix_list

    for module in ("sendready.scan", "sendready.store.store", "sendready.store.migrate"):
        importlib.import_module(module)
    bundled_suffix_list()


def check_domain_job(scan_id: str, domain: str, probe_smtp: bool = True) -> bool:
    """The RQ job: check one domain of one scan. True if this run stored its report."""
    return run_check(current_context(), scan_id, domain, probe_smtp=probe_smtp)


def run_check(ctx: JobContext, scan_id: str, domain: str, *, probe_smtp: bool = True) -> bool:
    """Check ``domain``, store its report (once), and finish the scan if it was the last.

    A check that raises is recorded as this domain's error rather than failing the job:
    retrying a deterministic failure would only repeat it.
    """
    saved = False
    if ctx.redis.set(STARTED_KEY + scan_id, "1", nx=True, ex=KEEP_SECONDS):
        ctx.store.start_scan(scan_id)  # the scan's first job
    try:
        report = ctx.scan(ctx.engine, domain, ctx.settings, probe_smtp=probe_smtp)
    except Exception as exc:
        log.exception("scan %s: checking %s failed", scan_id, domain)
        ctx.store.record_error(scan_id, domain, f"the check failed: {type(exc).__name__}")
    else:
        saved = ctx.store.save_report(scan_id, report)
        if not saved:
            log.info("scan %s: %s was already stored (a repeated job)", scan_id, domain)
    if may_be_complete(ctx, scan_id, domain):
        complete_if_done(ctx, scan_id)
    return saved


def may_be_complete(ctx: JobContext, scan_id: str, domain: str) -> bool:
    """Count ``domain`` done in Redis; True once every domain of the scan may be.

    A set, not a counter, so a repeated job counts once; the store has the last word
    (complete_if_done), and is asked only then, not after every one of a thousand jobs.
    Without the scan's total in Redis (not enqueued by enqueue_domains) the store is asked.
    """
    with ctx.redis.pipeline() as pipe:
        pipe.sadd(DONE_KEY + scan_id, domain)
        pipe.expire(DONE_KEY + scan_id, KEEP_SECONDS)
        pipe.scard(DONE_KEY + scan_id)
        pipe.get(TOTAL_KEY + scan_id)
        _, _, done, total = pipe.execute()
    return total is None or int(done) >= int(total)


def complete_if_done(ctx: JobContext, scan_id: str) -> bool:
    """Finish the scan when every domain has a report or an error; notify exactly once.

    Safe under races: finish_scan is idempotent, and only the caller that wins the
    ``SET NX`` of the scan's key sends the regressions webhook.
    """
    view = ctx.store.scan(scan_id)
    if view is None or view.done < len(view.domains):
        return False
    ctx.store.finish_scan(scan_id)
    if ctx.redis.set(FINISHED_KEY + scan_id, "1", nx=True, ex=KEEP_SECONDS):
        log.info("scan %s finished: %d domains", scan_id, len(view.domains))
        try:
            ctx.notify(ctx, scan_id)
        except Exception:
            log.exception("scan %s: the regressions webhook failed", scan_id)
    return True


def send_regressions(ctx: JobContext, scan_id: str) -> None:
    """Post the scan's regressions to the configured webhook (scan.py knows how)."""
    from .scan import notify_regressions

    notify_regressions(ctx.settings, ctx.store, scan_id)


def on_job_failure(
    job: Job,
    connection: Redis,
    kind: type[BaseException] | None,
    value: BaseException | None,
    traceback: TracebackType | None,
) -> None:
    """RQ's failure callback: once a job has no retries left, its domain is an error.

    RQ calls this for an abandoned job (its worker died) before it decides to retry, so a
    job that will run again is left alone.
    """
    if job.retries_left:
        return
    scan_id, domain = job.args[0], job.args[1]
    reason = "the worker running the check died"
    if kind is not None and not issubclass(kind, AbandonedJobError):
        reason = f"the job failed: {kind.__name__}"
    ctx = current_context()
    ctx.store.record_error(scan_id, domain, f"{reason} (after {RETRIES} retries)")
    if may_be_complete(ctx, scan_id, domain):
        complete_if_done(ctx, scan_id)


class ScanWorker(SimpleWorker):
    """An RQ worker that runs jobs in its own process, reusing one engine and store.

    Forking a work horse per job would rebuild the engine (and parse the public suffix
    list) for every domain. Without a horse nothing refreshes a job's registry entry while
    it runs, so the entry lives exactly as long as the job may: its timeout plus a margin.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Short enough that an idle worker wakes every few seconds to look for abandoned
        # jobs (RQ's defaults: a 7-minute TTL and maintenance every 10 minutes).
        kwargs.setdefault("worker_ttl", WORKER_TTL)
        kwargs.setdefault("maintenance_interval", MAINTENANCE_INTERVAL)
        super().__init__(*args, **kwargs)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        timeout = job.timeout if job.timeout and job.timeout > 0 else WORKER_TTL
        return int(timeout) + ABANDON_MARGIN


def make_worker(connection: Redis, queues: Sequence[str], name: str | None = None) -> ScanWorker:
    """A ScanWorker on ``queues`` that checks for abandoned jobs every few seconds."""
    return ScanWorker(
        [Queue(q, connection=connection) for q in queues], connection=connection, name=name
    )


# -- scheduled scans ---------------------------------------------------------------


def parse_schedule(text: str) -> time:
    """``HH:MM`` (UTC) of the daily tenant scan."""
    hours, sep, minutes = text.strip().partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2:
        raise ValueError(f"{text!r}: expected HH:MM (UTC)")
    try:
        return time(int(hours), int(minutes), tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{text!r}: not a time of day") from None


def due_day(now: datetime, at: time) -> str | None:
    """The day whose scheduled scan is due at ``now`` (ISO date), or None before ``at``."""
    today = now.astimezone(UTC)
    start = datetime.combine(today.date(), at.replace(tzinfo=None), UTC)
    return today.date().isoformat() if today >= start else None


def run_schedule(
    store: Store,
    queue: Queue,
    at: time,
    domains: Callable[[], Sequence[str]],
    now: datetime | None = None,
    *,
    tenant: str | None = None,
    settings: Settings | None = None,
) -> str | None:
    """Enqueue today's scheduled tenant scan if it is due and nobody did yet.

    Every worker started with ``--schedule`` calls this; the day's ``SET NX`` key in Redis
    lets exactly one of them enqueue. Returns the new scan's id, if this call made it.
    """
    day = due_day(now or datetime.now(UTC), at)
    if day is None:
        return None
    key = SCHEDULE_KEY + day
    if not queue.connection.set(key, "pending", nx=True, ex=int(timedelta(days=2).total_seconds())):
        return None
    try:
        names = list(domains())
        scan_id = enqueue_scan(store, queue, names, tenant, "scheduled", settings=settings)
    except Exception:
        queue.connection.delete(key)  # let another worker (or the next tick) try again
        raise
    queue.connection.set(key, scan_id, ex=int(timedelta(days=2).total_seconds()))
    log.info("scheduled scan %s of %d domains enqueued for %s", scan_id, len(names), day)
    return scan_id


def schedule_loop(
    stop: threading.Event,
    tick: Callable[[], Any],
    interval: float = 30.0,
) -> None:
    """Call ``tick`` every ``interval`` seconds until ``stop`` is set (a daemon thread)."""
    while not stop.is_set():
        try:
            tick()
        except Exception:
            log.exception("the scheduled scan could not be enqueued")
        stop.wait(interval)
