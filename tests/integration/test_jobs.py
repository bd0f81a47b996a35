"""Scans as RQ jobs on a real Redis, Knot and store: a job per chunk of domains checked at
once, each domain checked once, re-enqueues and repeated chunks change nothing, a worker
SIGKILLed mid-chunk is recovered checking only what it had not stored, a chunk out of
retries becomes its domains' errors, the last job notifies once, the daily scan is enqueued
by one worker of many, and a tenant scan's checks get the tenant's initial domain."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq import Queue
from rq.exceptions import AbandonedJobError
from rq.job import Job
from rq.registry import StartedJobRegistry

from sendready.config import Settings
from sendready.dns import parse_nameservers
from sendready.engine import Engine
from sendready.jobs import (
    ABANDON_MARGIN,
    DONE_KEY,
    QUEUE,
    JobContext,
    complete_if_done,
    enqueue_domains,
    enqueue_scan,
    job_id,
    job_timeout,
    make_worker,
    on_job_failure,
    parse_schedule,
    run_chunk,
    run_schedule,
    scan_queue,
    use_context,
)
from sendready.model import Report
from sendready.scan import TenantListing, scan_domain
from sendready.store import Store, open_store
from tests.conftest import NET, Pki, addr, wait_until
from tests.fixtures.issuer import API_CLIENT_ID, API_SECRET, TENANT
from tests.fixtures.knot import ZONES, KnotServer
from tests.servers.fake_issuer import FakeIssuer
from tests.servers.tiny_dns import TinyDns

DOMAINS = ["m365-good.test", "google.test", "sendgrid.test"]
#: The console script an operator runs (``python -m sendready.cli`` would load cli twice).
SENDREADY = str(Path(sys.executable).with_name("sendready"))


def job_settings(nameserver: str, tmp_path: Path, redis_url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "dns_servers": parse_nameservers(nameserver),
        "allow_private_targets": (ipaddress.ip_network(f"{NET}.0/24"),),
        "instance_path": str(tmp_path),
        "redis_url": redis_url,
        "check_budget": 3.0,
        "scan_chunk": 2,  # three domains: two chunks
        "scan_concurrency": 2,
        **extra,
    }
    return Settings(**values)


@pytest.fixture
def settings(dns_server: KnotServer, tmp_path: Path, redis_url: str) -> Settings:
    return job_settings(dns_server.nameserver, tmp_path, redis_url)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    opened = open_store(settings)
    yield opened
    opened.close()


class Notified:
    """Counts the regressions notifications (the webhook itself is scan.py's, tested there)."""

    def __init__(self) -> None:
        self.scans: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, ctx: JobContext, scan_id: str) -> None:
        with self._lock:
            self.scans.append(scan_id)


@pytest.fixture
def notified() -> Notified:
    return Notified()


class CountingScan:
    """scan_domain as the worker calls it, counting every check and the most running at once."""

    def __init__(self, fails: frozenset[str] = frozenset()) -> None:
        self.checked: list[str] = []
        self.options: list[dict[str, Any]] = []
        self.running = 0
        self.peak = 0
        self.fails = fails
        self._lock = threading.Lock()

    def __call__(self, engine: Engine, domain: str, settings: Settings, **options: Any) -> Report:
        with self._lock:
            self.checked.append(domain)
            self.options.append(options)
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            if domain in self.fails:
                raise RuntimeError("a bug in one check")
            return scan_domain(engine, domain, settings, **options)
        finally:
            with self._lock:
                self.running -= 1


def listing(domains: list[str], initial: str | None = None) -> TenantListing:
    return TenantListing(tuple(domains), initial)


@pytest.fixture
def ctx(
    settings: Settings, store: Store, redis_url: str, notified: Notified
) -> Iterator[JobContext]:
    """The context in-process workers run jobs with: the test's store, a real engine."""
    context = JobContext(
        settings=settings,
        engine=Engine(settings),
        store=store,
        redis=Redis.from_url(redis_url),
        scan=scan_domain,
        notify=notified,
    )
    use_context(context)
    yield context
    use_context(None)
    context.engine.close()
    context.redis.close()


@pytest.fixture
def queue(ctx: JobContext) -> Queue:
    return scan_queue(ctx.redis)


def work(ctx: JobContext) -> None:
    """One in-process worker in burst mode: runs every queued job, then returns."""
    make_worker(ctx.redis, [QUEUE]).work(burst=True, logging_level="WARNING")


def dkim_cnames(report: dict[str, Any]) -> list[str]:
    """The CNAME targets the dkim.missing finding of a stored report tells the admin to publish."""
    (missing,) = [f for f in report["findings"] if f["id"] == "dkim.missing"]
    return [r["value"] for r in missing["records"]]


def reports_by_domain(store: Store, scan_id: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for stored in store.scan_reports(scan_id):
        counts[stored.domain] = counts.get(stored.domain, 0) + 1
    return counts


def worker_env(tmp_path: Path, nameserver: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of a real `sendready worker` on the test servers: this process's,
    without its SENDREADY_* settings, plus the test's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENDREADY_")}
    env.update(
        SENDREADY_DNS_SERVERS=nameserver,
        SENDREADY_REDIS_URL=redis_url,
        SENDREADY_INSTANCE_PATH=str(tmp_path),
        SENDREADY_CHECK_BUDGET="3",
        SENDREADY_ALLOW_PRIVATE_TARGETS=f"{NET}.0/24",
        **extra,
    )
    return env


def test_every_domain_is_checked_once_and_the_last_job_finishes_the_scan(
    ctx: JobContext, queue: Queue, store: Store, notified: Notified
) -> None:
    scan_id = enqueue_scan(store, queue, DOMAINS, settings=ctx.settings, probe_smtp=False)
    assert sorted(queue.job_ids) == [job_id(scan_id, 0), job_id(scan_id, 1)]  # chunks of 2
    assert store.scan(scan_id).state == "queued"  # type: ignore[union-attr]
    work(ctx)
    view = store.scan(scan_id)
    assert view is not None and view.state == "done" and view.done == len(DOMAINS)
    assert reports_by_domain(store, scan_id) == dict.fromkeys(DOMAINS, 1)
    assert notified.scans == [scan_id]
    first, last = (Job.fetch(job_id(scan_id, i), connection=ctx.redis) for i in (0, 1))
    assert tuple(first.args) == (scan_id, DOMAINS[:2], False, None, 2)
    assert tuple(last.args) == (scan_id, DOMAINS[2:], False, None, 2)
    assert first.timeout == job_timeout(ctx.settings, 2, 2) == job_timeout(ctx.settings, 1, 2)
    assert first.return_value() == 2 and last.return_value() == 1  # reports each run stored


def test_enqueueing_a_scan_again_queues_no_domain_twice(
    ctx: JobContext, queue: Queue, store: Store
) -> None:
    scan_id = enqueue_scan(store, queue, DOMAINS, settings=ctx.settings, probe_smtp=False)
    assert enqueue_domains(queue, scan_id, DOMAINS, ctx.settings) == []
    # Another chunk size later (a changed setting) cuts the chunks the first enqueue cut.
    other = dataclasses.replace(ctx.settings, scan_chunk=1)
    assert enqueue_domains(queue, scan_id, DOMAINS, other) == []
    assert queue.count == 2
    work(ctx)
    assert enqueue_domains(queue, scan_id, DOMAINS, ctx.settings) == []  # done jobs too
    assert queue.count == 0
    assert reports_by_domain(store, scan_id) == dict.fromkeys(DOMAINS, 1)


def test_a_repeated_chunk_checks_and_stores_nothing_twice_and_notifies_once(
    ctx: JobContext, store: Store, notified: Notified
) -> None:
    counting = CountingScan()
    ctx.scan = counting
    scan_id = store.create_scan(None, DOMAINS, "manual")
    assert run_chunk(ctx, scan_id, DOMAINS, probe_smtp=False, concurrency=3) == 3
    assert run_chunk(ctx, scan_id, DOMAINS, probe_smtp=False, concurrency=3) == 0
    assert sorted(counting.checked) == sorted(DOMAINS)  # the second run checked nothing
    assert reports_by_domain(store, scan_id) == dict.fromkeys(DOMAINS, 1)
    assert notified.scans == [scan_id]


def test_a_domain_whose_check_raises_is_its_error_not_the_chunks_failure(
    ctx: JobContext, store: Store, notified: Notified
) -> None:
    ctx.scan = CountingScan(fails=frozenset({"google.test"}))
    scan_id = store.create_scan(None, DOMAINS, "manual")
    assert run_chunk(ctx, scan_id, DOMAINS, probe_smtp=False, concurrency=3) == 2
    view = store.scan(scan_id)
    assert view is not None and view.state == "partial"
    assert view.errors == {"google.test": "the check failed: RuntimeError"}
    assert reports_by_domain(store, scan_id) == {"m365-good.test": 1, "sendgrid.test": 1}
    assert notified.scans == [scan_id]


def test_racing_last_jobs_finish_the_scan_and_notify_exactly_once(
    ctx: JobContext, store: Store, notified: Notified
) -> None:
    scan_id = store.create_scan(None, DOMAINS, "manual")
    for domain in DOMAINS:
        store.save_report(scan_id, scan_domain(ctx.engine, domain, ctx.settings, probe_smtp=False))
    threads = [threading.Thread(target=complete_if_done, args=(ctx, scan_id)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert store.scan(scan_id).state == "done"  # type: ignore[union-attr]
    assert notified.scans == [scan_id]


def test_a_job_out_of_retries_becomes_the_domains_error_and_the_scan_completes(
    ctx: JobContext, queue: Queue, store: Store
) -> None:
    scan_id = enqueue_scan(store, queue, DOMAINS, settings=ctx.settings, probe_smtp=False)
    lost = Job.fetch(job_id(scan_id, 1), connection=ctx.redis)
    lost.cancel()  # never runs; then its worker "dies" with no retries left
    work(ctx)
    assert store.scan(scan_id).state == "running"  # type: ignore[union-attr]
    lost.retries_left = 0
    on_job_failure(lost, ctx.redis, AbandonedJobError, AbandonedJobError(), None)
    view = store.scan(scan_id)
    assert view is not None and view.state == "partial"
    assert list(view.errors) == DOMAINS[2:]
    assert "worker" in view.errors[DOMAINS[2]] and "died" in view.errors[DOMAINS[2]]
    assert reports_by_domain(store, scan_id) == dict.fromkeys(DOMAINS[:2], 1)


def test_a_tenant_scans_jobs_give_every_check_the_tenants_initial_domain(
    dns_server: KnotServer, tmp_path: Path, redis_url: str
) -> None:
    initial = "fix-tenant.onmicrosoft.test"
    aliases = {"outlook.com": "outlook.test", "onmicrosoft.com": "onmicrosoft.test"}
    settings = job_settings(dns_server.nameserver, tmp_path, redis_url, provider_aliases=aliases)
    ctx = JobContext.from_settings(settings)
    counting = CountingScan()
    ctx.scan = counting
    use_context(ctx)
    try:
        names = ["fix-dkim.test", initial]
        queue = scan_queue(ctx.redis)
        scan_id = enqueue_scan(
            ctx.store, queue, names, TENANT, "tenant", settings=settings, probe_smtp=False,
            tenant_domain=initial,
        )  # fmt: skip
        work(ctx)
        assert [o["tenant_domain"] for o in counting.options] == [initial, initial]
        reports = {r.domain: r.report for r in ctx.store.scan_reports(scan_id)}
    finally:
        use_context(None)
        ctx.close()
    assert dkim_cnames(reports["fix-dkim.test"]) == [
        f"selector1-fix-dkim-test._domainkey.{initial}",
        f"selector2-fix-dkim-test._domainkey.{initial}",
    ]


def test_a_job_with_retries_left_is_not_an_error_when_its_worker_dies(
    ctx: JobContext, queue: Queue, store: Store
) -> None:
    scan_id = enqueue_scan(store, queue, DOMAINS[:1], settings=ctx.settings, probe_smtp=False)
    job = Job.fetch(job_id(scan_id, 0), connection=ctx.redis)
    on_job_failure(job, ctx.redis, AbandonedJobError, AbandonedJobError(), None)
    assert store.scan(scan_id).errors == {}  # type: ignore[union-attr]


# -- chunks on a slow DNS server: checks at once, a worker SIGKILLed mid-chunk -----------


def fleet_zone(names: list[str]) -> str:
    lines = ["$TTL 300", "chunk.test. IN SOA ns hostmaster 1 3600 600 86400 60"]
    for name in names:
        lines += [
            f"{name}. IN SOA ns.chunk.test. hostmaster.chunk.test. 1 3600 600 86400 60",
            f"{name}. IN MX 10 mx.chunk.test.",
            f'{name}. IN TXT "v=spf1 ip4:192.0.2.0/24 -all"',
            f'_dmarc.{name}. IN TXT "v=DMARC1; p=reject"',
        ]
    lines.append(f"mx.chunk.test. IN A {NET}.25")
    return "\n".join(lines) + "\n"


FLEET = [f"c{index:02d}.chunk.test" for index in range(16)]


@pytest.fixture
def slow_fleet(fault_dns: TinyDns) -> Iterator[TinyDns]:
    """16 small domains on tiny_dns, every answer 100 ms late (tests may slow it further)."""
    fault_dns.load_zone(fleet_zone(FLEET))
    fault_dns.faults.clear()
    fault_dns.delay_ms = 100
    yield fault_dns
    fault_dns.delay_ms = 0


@pytest.fixture
def fleet_ctx(slow_fleet: TinyDns, tmp_path: Path, redis_url: str) -> Iterator[JobContext]:
    settings = job_settings(slow_fleet.nameserver, tmp_path, redis_url)
    store = open_store(settings)
    context = JobContext(
        settings, Engine(settings), store, Redis.from_url(redis_url), CountingScan(), Notified()
    )
    yield context
    context.close()


@pytest.mark.parametrize("concurrency", [16, 4])
def test_a_chunk_checks_its_domains_at_once_up_to_its_concurrency(
    fleet_ctx: JobContext, concurrency: int
) -> None:
    counting = fleet_ctx.scan
    assert isinstance(counting, CountingScan)
    scan_id = fleet_ctx.store.create_scan(None, FLEET, "manual")
    assert run_chunk(fleet_ctx, scan_id, FLEET, probe_smtp=False, concurrency=concurrency) == 16
    assert counting.peak == concurrency  # that many checks were running at one moment
    assert sorted(counting.checked) == FLEET
    assert fleet_ctx.store.scan(scan_id).state == "done"  # type: ignore[union-attr]


def test_a_worker_killed_mid_chunk_is_recovered_checking_only_what_was_not_stored(
    fleet_ctx: JobContext, slow_fleet: TinyDns, tmp_path: Path, redis_url: str
) -> None:
    slow_fleet.delay_ms = 300  # a check takes a second or so: three rounds of two
    names = FLEET[:6]
    settings = dataclasses.replace(fleet_ctx.settings, scan_chunk=6, scan_concurrency=2)
    store, connection = fleet_ctx.store, fleet_ctx.redis
    queue = scan_queue(connection)
    env = worker_env(tmp_path, slow_fleet.nameserver, redis_url, SENDREADY_LOG_LEVEL="WARNING")
    log = (tmp_path / "worker.log").open("w")
    proc = subprocess.Popen(
        [SENDREADY, "worker"],
        env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        scan_id = enqueue_scan(store, queue, names, settings=settings, probe_smtp=False)
        done_key = DONE_KEY + scan_id
        wait_until(lambda: connection.scard(done_key) >= 2, 60, "the chunk's first round")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        stored = {m.decode() for m in connection.smembers(done_key)}
        assert 2 <= len(stored) < len(names), "the worker was to be killed mid-chunk"
        assert set(reports_by_domain(store, scan_id)) == stored  # saved as each completed
        job = Job.fetch(job_id(scan_id, 0), connection=connection)
        assert job.get_status() == "started"  # nobody will finish it

        # RQ's maintenance finds it once its entry outlives the job's own timeout:
        # simulated here by cleaning up "later" instead of waiting for it.
        started = StartedJobRegistry(queue=queue)
        later = time.time() + job_timeout(settings, 6, 2) + ABANDON_MARGIN + 1
        started.cleanup(timestamp=later)
        job.refresh()
        assert job.get_status() == "queued" and job.retries_left == 1
        slow_fleet.delay_ms = 0
        use_context(fleet_ctx)
        try:
            work(fleet_ctx)
        finally:
            use_context(None)
        counting = fleet_ctx.scan
        assert isinstance(counting, CountingScan)
        assert sorted(counting.checked) == sorted(set(names) - stored)  # only the missing
        view = store.scan(scan_id)
        assert view is not None and view.state == "done", view
        assert reports_by_domain(store, scan_id) == dict.fromkeys(names, 1)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()


# -- the daily scan --------------------------------------------------------------------


def test_the_daily_scan_is_enqueued_once_by_one_of_many_workers(
    ctx: JobContext, queue: Queue, store: Store
) -> None:
    at = parse_schedule("06:00")
    noon = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    early = datetime(2026, 12, 3, 5, 0, tzinfo=UTC)
    listed = lambda: listing(DOMAINS)  # noqa: E731
    assert run_schedule(store, queue, at, listed, early, settings=ctx.settings) is None
    made: list[str | None] = []
    lock = threading.Lock()

    def one_worker() -> None:
        scan = run_schedule(store, queue, at, listed, noon, tenant=TENANT, settings=ctx.settings)
        with lock:
            made.append(scan)

    threads = [threading.Thread(target=one_worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    scans = [s for s in made if s is not None]
    assert len(scans) == 1 and len(made) == 4
    view = store.scan(scans[0])
    assert view is not None and view.kind == "scheduled" and list(view.domains) == DOMAINS
    assert view.tenant == TENANT  # so the tenant's admins see it on the admin page
    next_day = datetime(2026, 12, 4, 6, 1, tzinfo=UTC)
    assert run_schedule(store, queue, at, listed, next_day, settings=ctx.settings)


def test_a_failed_domain_listing_lets_the_next_tick_try_again(
    ctx: JobContext, queue: Queue, store: Store
) -> None:
    at = parse_schedule("06:00")
    noon = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)

    def graph_down() -> TenantListing:
        raise RuntimeError("Graph is down")

    with pytest.raises(RuntimeError):
        run_schedule(store, queue, at, graph_down, noon, settings=ctx.settings)
    assert run_schedule(store, queue, at, lambda: listing(DOMAINS), noon, settings=ctx.settings)


def test_worker_without_redis_url_says_what_to_set(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENDREADY_")}
    done = subprocess.run(
        [SENDREADY, "worker", "--burst"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "SENDREADY_REDIS_URL" in done.stderr


def test_worker_stops_warm_on_sigterm(tmp_path: Path, redis_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENDREADY_")}
    env.update(SENDREADY_REDIS_URL=redis_url, SENDREADY_INSTANCE_PATH=str(tmp_path))
    connection = Redis.from_url(redis_url)
    proc = subprocess.Popen(
        [SENDREADY, "worker", "--name", "warm-test"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        # "idle": past its signal handlers, waiting on the queue.
        state = lambda: connection.hget("rq:worker:warm-test", "state") == b"idle"  # noqa: E731
        wait_until(state, 30, "the worker")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert connection.hget("rq:worker:warm-test", "death")  # it unregistered itself
        assert '"level": "info"' in out and "warm-test" in out  # JSON lines, RQ's too
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        connection.close()


def test_a_pool_of_worker_processes_runs_the_scan_and_exits_in_burst_mode(
    settings: Settings, store: Store, tmp_path: Path, redis_url: str, dns_server: KnotServer
) -> None:
    connection = Redis.from_url(redis_url)
    scan_id = enqueue_scan(store, scan_queue(connection), DOMAINS, settings=settings,
                           probe_smtp=False)  # fmt: skip
    env = worker_env(tmp_path, dns_server.nameserver, redis_url)
    done = subprocess.run(
        [SENDREADY, "worker", "--processes", "2", "--burst"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    connection.close()
    assert done.returncode == 0, done.stderr[-2000:]
    view = store.scan(scan_id)
    assert view is not None and view.state == "done"
    assert reports_by_domain(store, scan_id) == dict.fromkeys(DOMAINS, 1)


# -- the regressions webhook, for real -------------------------------------------------


@pytest.fixture
def hook() -> Iterator[tuple[str, list[bytes]]]:
    """A webhook receiver on loopback that records every body it is sent."""
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((addr(72), 8097), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{addr(72)}:8097/hooks/sendready", bodies
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_the_last_job_posts_the_scans_regressions_to_the_webhook_once(
    dns_server: KnotServer, tmp_path: Path, redis_url: str, hook: tuple[str, list[bytes]]
) -> None:
    url, bodies = hook
    settings = job_settings(
        dns_server.nameserver, tmp_path, redis_url, webhook_url=url, webhook_secret="s3cret"
    )
    ctx = JobContext.from_settings(settings)  # as a worker builds it: webhook and all
    store = ctx.store
    zone = (ZONES / "scan-drift.test.zone").read_text()
    use_context(ctx)
    try:
        queue = scan_queue(ctx.redis)
        enqueue_scan(store, queue, ["scan-drift.test"], settings=settings, probe_smtp=False)
        work(ctx)
        assert bodies == []  # nothing regressed: nothing sent
        lines = [line for line in zone.splitlines() if not line.startswith("_dmarc")]
        dns_server.publish("scan-drift.test", "\n".join(lines).replace("2026120301", "2026120332"))
        ctx.engine.resolver.cache.clear()
        second = enqueue_scan(store, queue, ["scan-drift.test"], settings=settings,
                              probe_smtp=False)  # fmt: skip
        work(ctx)
        for _ in range(3):  # other jobs that also see the scan complete
            complete_if_done(ctx, second)
        assert len(bodies) == 1
        sent = json.loads(bodies[0])
        assert sent["scan"] == second
        assert any(r["finding_id"] == "dmarc.missing" for r in sent["regressions"])
    finally:
        use_context(None)
        dns_server.publish("scan-drift.test", zone.replace("2026120301", "2026120333"))
        ctx.close()


# -- sendready worker --schedule, end to end --------------------------------------------


def test_worker_schedule_refuses_to_start_without_an_app_secret(
    tmp_path: Path, redis_url: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENDREADY_")}
    env.update(SENDREADY_REDIS_URL=redis_url, SENDREADY_INSTANCE_PATH=str(tmp_path))
    done = subprocess.run(
        [SENDREADY, "worker", "--schedule", "06:00", "--burst"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "--schedule" in done.stderr and "secret" in done.stderr


def test_a_scheduled_worker_lists_the_tenant_through_graph_and_scans_it(
    dns_server: KnotServer, tmp_path: Path, redis_url: str, issuer: FakeIssuer, pki: Pki
) -> None:
    initial = "fix-tenant.onmicrosoft.test"
    issuer.domains = [
        ("scan-good.test", True),
        ("fix-dkim.test", True),  # Microsoft 365 without DKIM: the fix names the CNAMEs
        (initial, True),
        ("unverified.test", False),
    ]
    issuer.domains_initial = initial
    env = worker_env(
        tmp_path,
        dns_server.nameserver,
        redis_url,
        SENDREADY_CLIENT_ID=API_CLIENT_ID,
        SENDREADY_CLIENT_SECRET=API_SECRET,
        SENDREADY_AUTHORITY=f"{issuer.base}/{TENANT}",
        SENDREADY_AUTH_CA_FILE=pki.ca,
        SENDREADY_GRAPH_URL=f"{issuer.base}/graph",
        SENDREADY_PROVIDER_ALIASES="outlook.com=outlook.test,onmicrosoft.com=onmicrosoft.test",
    )
    store = open_store(job_settings(dns_server.nameserver, tmp_path, redis_url))
    log = (tmp_path / "worker.log").open("w")
    proc = subprocess.Popen(
        [SENDREADY, "worker", "--schedule", "00:00"],  # due at once, whatever the time
        env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:

        def scheduled_scan_done() -> bool:
            return any(v.kind == "scheduled" and v.state == "done" for v in store.scans())

        wait_until(scheduled_scan_done, 60, "the scheduled scan")
        (view,) = store.scans()
        names = ["scan-good.test", "fix-dkim.test", initial]
        assert view.tenant == TENANT and list(view.domains) == names
        assert reports_by_domain(store, view.id) == dict.fromkeys(names, 1)
        reports = {r.domain: r.report for r in store.scan_reports(view.id)}
        assert dkim_cnames(reports["fix-dkim.test"]) == [
            f"selector1-fix-dkim-test._domainkey.{initial}",
            f"selector2-fix-dkim-test._domainkey.{initial}",
        ]
        assert all(r["facts"]["alignment"]["tenant_domain"] == initial for r in reports.values())
    finally:
        issuer.domains = []
        issuer.domains_initial = ""
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        store.close()
