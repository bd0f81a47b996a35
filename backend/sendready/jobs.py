"""Scans as RQ jobs on Redis: one job per chunk of domains, idempotent, finished by its last job.

The web tier only creates the scan and enqueues; `sendready worker` processes run the
jobs. A scan's domains are cut into chunks of ``scan_chunk`` when it is first queued, and
each chunk's job id is derived from (scan, chunk index) with the chunk's domains fixed in
its arguments, so enqueueing a scan twice cannot queue a domain twice. A check mostly waits
on DNS, so a job checks its chunk ``scan_concurrency`` domains at once (threads calling the
worker's one engine) and stores each report as soon as its check completes.

Progress is a Redis set of the scan's done domains, added to only after the store has the
domain's report or error. A retried chunk checks only the domains that set lacks, and the
store ignores a second report for the same domain of the same scan (a worker killed between
its store write and that set's update costs one repeated check, never a second row).
Whichever job sees the scan complete finishes it; ``finish_scan`` is idempotent, and a
Redis ``SET NX`` key makes sure the regressions webhook fires once however many race.

A worker killed mid-job leaves its job in RQ's StartedJobRegistry. ``ScanWorker`` gives
that entry a lifetime of the job timeout plus a few seconds (a live job is stopped at its
timeout, so an older entry is certainly abandoned) and runs RQ's registry maintenance every
few seconds, which requeues abandoned jobs while they have retries left; the failure
callback records the domains of a chunk whose retries ran out as errors, so the scan still
completes.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
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
    from .scan import TenantListing
    from .store import Store

log = logging.getLogger(__name__)

QUEUE = "sendready-scans"
#: Seconds a round of checks may run beyond the check budget (the scan's own grace for a
#: stuck check, store writes, the webhook, a slow start).
JOB_MARGIN = 10
#: Seconds past its timeout after which a started job's registry entry counts as abandoned.
ABANDON_MARGIN = 3
#: Times a job is run again after its worker died (or it crashed) before it counts as failed.
RETRIES = 2
#: Seconds between the registry maintenance runs that requeue abandoned jobs.
MAINTENANCE_INTERVAL = 5
#: A worker's registration lifetime: it blocks on the queue for this minus 15 s at a time.
WORKER_TTL = 20
#: Jobs queued per Redis pipeline (a 10,000-domain scan at chunks of 1 is 20 pipelines).
ENQUEUE_BATCH = 500
#: How long finished jobs and the once-only keys stay in Redis. Later, a re-enqueue would
#: check a domain again, and the store would still keep one report per domain.
KEEP_SECONDS = 24 * 3600
FINISHED_KEY = "sendready:scan-finished:"
STARTED_KEY = "sendready:scan-started:"
TOTAL_KEY = "sendready:scan-total:"
DONE_KEY = "sendready:scan-done:"
CHUNK_KEY = "sendready:scan-chunk:"
SCHEDULE_KEY = "sendready:scheduled-scan:"

#: scan.scan_domain(engine, domain, settings, probe_smtp=..., tenant_domain=...)
ScanFn = Callable[..., Report]
Notify = Callable[["JobContext", str], None]


def job_id(scan_id: str, index: int) -> str:
    """The job of one chunk of one scan (RQ ids allow only [A-Za-z0-9_-])."""
    return f"scan-{scan_id}-{index:05d}"


def chunks(domains: Sequence[str], size: int) -> list[tuple[str, ...]]:
    """``domains`` cut into consecutive chunks of at most ``size``, in their order."""
    if size < 1:
        raise ValueError("a chunk holds at least one domain")
    return [tuple(domains[start : start + size]) for start in range(0, len(domains), size)]


def job_timeout(settings: Settings, size: int, concurrency: int) -> int:
    """Seconds a chunk of ``size`` domains may run when ``concurrency`` run at once: one
    check budget (SMTP included) plus the margin for each round of checks."""
    rounds = math.ceil(size / max(1, concurrency))
    return rounds * (math.ceil(settings.check_budget) + JOB_MARGIN)


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
    tenant_domain: str | None = None,
) -> str:
    """Create the scan and queue its chunks' jobs; returns the scan id.

    ``tenant_domain`` is the Microsoft 365 tenant's initial domain (TenantListing.initial):
    every domain's check gets it, so the DKIM fixes can name the CNAME targets.
    """
    scan_id = store.create_scan(tenant, domains, kind)
    view = store.scan(scan_id)
    assert view is not None  # just created
    try:
        enqueue_domains(
            queue,
            scan_id,
            view.domains,
            settings or Settings.from_env(),
            probe_smtp=probe_smtp,
            tenant_domain=tenant_domain,
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
    tenant_domain: str | None = None,
) -> list[str]:
    """Queue the chunk jobs of ``domains`` that do not exist yet; returns the ids queued.

    The chunk size is fixed in Redis by the scan's first enqueue, so a later call cuts the
    same chunks under the same ids, and a job that still exists (queued, running, done or
    failed) is left alone: calling this twice for one scan never runs a domain twice.
    """
    connection = queue.connection
    connection.set(CHUNK_KEY + scan_id, settings.scan_chunk, nx=True, ex=KEEP_SECONDS)
    size = int(connection.get(CHUNK_KEY + scan_id) or settings.scan_chunk)
    cut = chunks(domains, size)
    ids = [job_id(scan_id, index) for index in range(len(cut))]
    with connection.pipeline() as pipe:
        for identifier in ids:
            pipe.exists(Job.key_for(identifier))
        existing = pipe.execute()
    connection.set(TOTAL_KEY + scan_id, len(domains), ex=KEEP_SECONDS)
    concurrency = settings.scan_concurrency
    fresh = [i for i, seen in enumerate(existing) if not seen]
    datas = [
        Queue.prepare_data(
            check_chunk_job,
            args=(scan_id, list(cut[i]), probe_smtp, tenant_domain, concurrency),
            timeout=job_timeout(settings, len(cut[i]), concurrency),
            result_ttl=KEEP_SECONDS,
            failure_ttl=KEEP_SECONDS,
            description=f"check {len(cut[i])} domains (chunk {i}) for scan {scan_id}",
            job_id=ids[i],
            retry=Retry(max=RETRIES),
            on_failure=Callback(on_job_failure),
        )
        for i in fresh
    ]
    for start in range(0, len(datas), ENQUEUE_BATCH):  # bounded pipelines for large tenants
        queue.enqueue_many(datas[start : start + ENQUEUE_BATCH])
    return [ids[i] for i in fresh]


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


def check_chunk_job(
    scan_id: str,
    domains: list[str],
    probe_smtp: bool = True,
    tenant_domain: str | None = None,
    concurrency: int = 1,
) -> int:
    """The RQ job: check one chunk of one scan. Returns how many reports this run stored.

    ``concurrency`` comes with the job, not from this worker's settings: the job's timeout
    was computed for it when the scan was queued.
    """
    return run_chunk(
        current_context(),
        scan_id,
        domains,
        probe_smtp=probe_smtp,
        tenant_domain=tenant_domain,
        concurrency=concurrency,
    )


def run_chunk(
    ctx: JobContext,
    scan_id: str,
    domains: Sequence[str],
    *,
    probe_smtp: bool = True,
    tenant_domain: str | None = None,
    concurrency: int = 1,
) -> int:
    """Check the chunk's domains not done yet, ``concurrency`` at once, storing each as its
    check completes, and finish the scan if it was the last chunk.

    A check that raises is recorded as that domain's error rather than failing the job:
    retrying a deterministic failure would only repeat it. A store or Redis failure does
    fail the job, and its retry checks only what is still missing.
    """
    if ctx.redis.set(STARTED_KEY + scan_id, "1", nx=True, ex=KEEP_SECONDS):
        ctx.store.start_scan(scan_id)  # the scan's first job
    pending = not_done(ctx, scan_id, domains)
    if len(pending) < len(domains):
        log.info(
            "scan %s: %d of a chunk's domains were done already",
            scan_id,
            len(domains) - len(pending),
        )
    saved = 0
    complete = may_be_complete(ctx, scan_id, ()) if not pending else False
    pool = ThreadPoolExecutor(max(1, min(concurrency, len(pending))), "sendready-check")
    try:
        futures: dict[Future[Report], str] = {
            pool.submit(
                ctx.scan,
                ctx.engine,
                domain,
                ctx.settings,
                probe_smtp=probe_smtp,
                tenant_domain=tenant_domain,
            ): domain
            for domain in pending
        }
        for future in as_completed(futures):
            saved += store_outcome(ctx, scan_id, futures[future], future)
            complete = may_be_complete(ctx, scan_id, (futures[future],))
    finally:
        # On a job timeout: no new checks; the running ones end within their own bound.
        pool.shutdown(wait=True, cancel_futures=True)
    if complete:
        complete_if_done(ctx, scan_id)
    return saved


def not_done(ctx: JobContext, scan_id: str, domains: Sequence[str]) -> list[str]:
    """The domains of ``domains`` the scan's done set lacks (all of them on a first run)."""
    if not domains:
        return []
    members = ctx.redis.smismember(DONE_KEY + scan_id, list(domains))
    return [d for d, member in zip(domains, members, strict=True) if not member]


def store_outcome(ctx: JobContext, scan_id: str, domain: str, future: Future[Report]) -> int:
    """Store one finished check: its report, or the domain's error. 1 if a report was new."""
    try:
        report = future.result()
    except Exception as exc:
        log.exception("scan %s: checking %s failed", scan_id, domain)
        ctx.store.record_error(scan_id, domain, f"the check failed: {type(exc).__name__}")
        return 0
    if ctx.store.save_report(scan_id, report):
        return 1
    log.info("scan %s: %s was already stored (a repeated job)", scan_id, domain)
    return 0


def may_be_complete(ctx: JobContext, scan_id: str, domains: Sequence[str]) -> bool:
    """Count ``domains`` done in Redis; True once every domain of the scan may be.

    A set, not a counter, so a repeated job counts once; the store has the last word
    (complete_if_done), and is asked only then, not after every one of a thousand checks.
    Without the scan's total in Redis (not enqueued by enqueue_domains) the store is asked.
    """
    key = DONE_KEY + scan_id
    with ctx.redis.pipeline() as pipe:
        if domains:
            pipe.sadd(key, *domains)
            pipe.expire(key, KEEP_SECONDS)
        pipe.scard(key)
        pipe.get(TOTAL_KEY + scan_id)
        *_, done, total = pipe.execute()
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
    """RQ's failure callback: once a chunk has no retries left, its missing domains are
    errors (the ones it stored stay stored).

    RQ calls this for an abandoned job (its worker died) before it decides to retry, so a
    job that will run again is left alone.
    """
    if job.retries_left:
        return
    scan_id, domains = job.args[0], list(job.args[1])
    reason = "the worker running the check died"
    if kind is not None and not issubclass(kind, AbandonedJobError):
        reason = f"the job failed: {kind.__name__}"
    ctx = current_context()
    missing = not_done(ctx, scan_id, domains)
    for domain in missing:  # a domain stored after all is not made an error by the store
        ctx.store.record_error(scan_id, domain, f"{reason} (after {RETRIES} retries)")
    if may_be_complete(ctx, scan_id, missing):
        complete_if_done(ctx, scan_id)


class ScanWorker(SimpleWorker):
    """An RQ worker that runs jobs in its own process, reusing one engine and store.

    Forking a work horse per job would rebuild the engine (and parse the public suffix
    list) for every chunk. Without a horse nothing refreshes a job's registry entry while
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
    listing: Callable[[], TenantListing],
    now: datetime | None = None,
    *,
    tenant: str | None = None,
    settings: Settings | None = None,
) -> str | None:
    """Enqueue today's scheduled tenant scan if it is due and nobody did yet.

    Every worker started with ``--schedule`` calls this; the day's ``SET NX`` key in Redis
    lets exactly one of them enqueue. ``listing`` gives the tenant's domains and its
    initial domain, which every check of the scan gets. Returns the new scan's id, if this
    call made it.
    """
    day = due_day(now or datetime.now(UTC), at)
    if day is None:
        return None
    key = SCHEDULE_KEY + day
    if not queue.connection.set(key, "pending", nx=True, ex=int(timedelta(days=2).total_seconds())):
        return None
    try:
        listed = listing()
        names = list(listed.domains)
        scan_id = enqueue_scan(
            store,
            queue,
            names,
            tenant,
            "scheduled",
            settings=settings,
            tenant_domain=listed.initial,
        )
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
