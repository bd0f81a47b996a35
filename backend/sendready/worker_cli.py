"""`sendready worker`: run scan jobs from Redis (RQ), optionally enqueueing the daily tenant scan.

SIGTERM (or Ctrl+C) is a warm shutdown: the job in hand is finished, then the worker
exits; a second signal stops it at once. One process already checks SENDREADY_SCAN_CONCURRENCY
domains at once (a check mostly waits on DNS); ``--processes N`` runs a pool of N worker
processes on the queue, for more CPU than one process can use.
"""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Sequence
from datetime import time
from typing import IO, Any

from redis import Redis

from .auth.tokens import GUID
from .config import Settings

log = logging.getLogger("sendready.worker")

MAX_PROCESSES = 64


def register(subparsers: Any) -> None:
    """Add the ``worker`` subcommand to the CLI's parser."""
    from .jobs import QUEUE

    worker = subparsers.add_parser("worker", help="run scan jobs from Redis (SENDREADY_REDIS_URL)")
    worker.add_argument("--burst", action="store_true", help="quit once the queues are empty")
    worker.add_argument(
        "--queues", nargs="+", default=[QUEUE], metavar="NAME", help=f"default: {QUEUE}"
    )
    worker.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="worker processes (default 1; one process already checks SENDREADY_SCAN_CONCURRENCY "
        "domains at once, default 16, so more only help when one core is not enough)",
    )
    worker.add_argument("--name", help="this worker's name in Redis (default: a random id)")
    worker.add_argument(
        "--schedule",
        metavar="HH:MM",
        help="also enqueue a scan of the tenant's domains daily at HH:MM UTC "
        "(one worker enqueues it, whichever many have this option)",
    )
    worker.set_defaults(func=cmd_worker)


def cmd_worker(args: argparse.Namespace, out: IO[str]) -> int:
    from .cli import EXIT_OK, UsageError
    from .jobs import current_context, make_worker, parse_schedule, warm_up
    from .web.logs import configure_logging

    settings = Settings.from_env()
    if not settings.redis_url:
        raise UsageError("the worker needs a queue: set SENDREADY_REDIS_URL (redis://host:port/db)")
    if not 1 <= args.processes <= MAX_PROCESSES:
        raise UsageError(f"--processes must be between 1 and {MAX_PROCESSES}")
    at: time | None = None
    if args.schedule:
        try:
            at = parse_schedule(args.schedule)
        except ValueError as exc:
            raise UsageError(f"--schedule: {exc}") from None
        problem = schedule_problem(settings)
        if problem:
            raise UsageError(f"--schedule: {problem}")
    configure_logging(settings.log_level)
    _log_rq_as_json()
    connection = Redis.from_url(settings.redis_url)
    stop = threading.Event()
    if at is not None:
        _start_schedule(settings, connection, args.queues[0], at, stop)
    warm_up()
    try:
        if args.processes == 1:
            current_context()  # the engine and store are ready before the first job
            make_worker(connection, args.queues, args.name).work(
                burst=args.burst, logging_level=settings.log_level.upper()
            )
        else:
            _run_pool(connection, args.queues, args.processes, args.burst, settings.log_level)
    finally:
        stop.set()
    return EXIT_OK


def schedule_tenant(settings: Settings) -> str | None:
    """The tenant id the daily scan lists: the last path segment of SENDREADY_AUTHORITY."""
    from .scan import authority_tenant

    segment = authority_tenant(settings.authority).lower()
    return segment if GUID.match(segment) else None


def schedule_problem(settings: Settings) -> str:
    """Why the daily tenant scan cannot list the tenant's domains, or "" when it can."""
    if not settings.client_id or not (settings.client_secret or settings.client_cert):
        return (
            "listing the tenant's domains needs SENDREADY_CLIENT_ID and a client secret or "
            "certificate (the Domain.Read.All application permission)"
        )
    if schedule_tenant(settings) is None:
        return "SENDREADY_AUTHORITY must name the tenant (https://login.microsoftonline.com/<id>)"
    return ""


def _log_rq_as_json() -> None:
    """RQ's loggers go through the project's JSON handler (RQ adds none of its own then)."""
    source = logging.getLogger("sendready")
    for name in ("rq",):
        logger = logging.getLogger(name)
        logger.handlers[:] = list(source.handlers)
        logger.setLevel(source.level)
        logger.propagate = False


def _run_pool(
    connection: Redis, queues: Sequence[str], processes: int, burst: bool, level: str
) -> None:
    from rq.worker_pool import WorkerPool

    from .jobs import ScanWorker

    pool = WorkerPool(queues, connection=connection, num_workers=processes, worker_class=ScanWorker)
    pool.start(burst=burst, logging_level=level.upper())


def _start_schedule(
    settings: Settings, connection: Redis, queue_name: str, at: time, stop: threading.Event
) -> threading.Thread:
    """A daemon thread that enqueues the day's tenant scan once it is due (see run_schedule)."""
    from .auth.http import make_session
    from .auth.msal_client import TokenBroker
    from .jobs import run_schedule, scan_queue, schedule_loop
    from .scan import tenant_listing
    from .store import open_store

    store = open_store(settings)
    queue = scan_queue(connection, queue_name)
    broker = TokenBroker(settings, make_session(settings))

    tenant = schedule_tenant(settings)

    def tick() -> None:
        run_schedule(
            store,
            queue,
            at,
            lambda: tenant_listing(settings, broker),
            tenant=tenant,
            settings=settings,
        )

    thread = threading.Thread(
        target=schedule_loop, args=(stop, tick), name="sendready-schedule", daemon=True
    )
    thread.start()
    log.info("daily tenant scan at %s UTC", at.strftime("%H:%M"))
    return thread
