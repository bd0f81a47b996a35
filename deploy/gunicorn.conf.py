"""gunicorn settings for `sendready serve` and for deployments: threaded workers sized for the
machine. Every value can be overridden by the environment (SENDREADY_LISTEN, SENDREADY_WORKERS,
SENDREADY_TLS_CERT/KEY) or on the gunicorn command line."""

import multiprocessing
import os

wsgi_app = "sendready.wsgi:app"
bind = [os.environ.get("SENDREADY_LISTEN", "127.0.0.1:8443")]

# Requests mostly wait on DNS and SMTP (in the engine's own event loop thread), so a few
# processes with many threads each serve far more than one process per core would.
_cpus = multiprocessing.cpu_count()
workers = int(os.environ.get("SENDREADY_WORKERS") or 0) or min(max(2, _cpus), 8)
worker_class = "gthread"
threads = int(os.environ.get("SENDREADY_THREADS") or 16)
# Each worker owns one Engine; load the app after forking so no event loop thread is shared.
preload_app = False
timeout = 30
graceful_timeout = 10
keepalive = 5
max_requests = 200000
max_requests_jitter = 20000

_cert, _key = os.environ.get("SENDREADY_TLS_CERT"), os.environ.get("SENDREADY_TLS_KEY")
if _cert and _key:
    certfile, keyfile = _cert, _key

# The app writes JSON lines itself; gunicorn's access log would duplicate them.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("SENDREADY_LOG_LEVEL", "info").lower()


def on_starting(server):  # type: ignore[no-untyped-def]
    """Start with an empty Prometheus folder: a previous run's values must not be summed in.

    `sendready serve` prepares it too; containers run gunicorn with this file directly.
    """
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder, exist_ok=True)


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    """Drop a dead worker's live gauges from the summed Prometheus values."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
