"""Throughput of the web service serving a cached report (not a test: it measures and prints).

gunicorn with deploy/gunicorn.conf.py (gthread workers sized for the machine) on loopback,
in the development mode (loopback, no sign-in), answers GET /api/v1/domains/<domain> from
its report cache. The domain's report is computed once per worker against the project's
tiny_dns serving bench/zones on 127.0.10.155:53 (an address no test uses), then a bounded
asyncio load client (32 keep-alive connections on one event loop, 30 s, at most 5,000,000
requests) measures requests per second, p50, p99, errors, the workers' RSS and the server's
CPU time per request. The client's own event-loop delays count in its latencies, so they
overstate the server's, never understate them.

    .venv/bin/python bench/bench_web.py [--seconds 30] [--connections 32] [--workers N]
                                        [--client-processes 1]

Targets: >= 1,000 rps, p99 < 50 ms, 0 errors, worker RSS < 150 MB. Exit status 0 when all
are met, 1 when one is missed, 2 when it could not measure.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ZONES = ROOT / "bench" / "zones"
DNS_ADDRESS, DNS_PORT = "127.0.10.155", 53
HOST, PORT = "127.0.10.180", 8090
DOMAIN = "contoso.bench"
PATH = f"/api/v1/domains/{DOMAIN}"
MAX_REQUESTS = 5_000_000
TARGETS = {"rps": 1000.0, "p99_ms": 50.0, "errors": 0, "rss_mb": 150.0}


class BenchError(Exception):
    pass


def start_dns() -> Any:
    sys.path.insert(0, str(ROOT))
    from dnslib import RR  # type: ignore[import-untyped]
    from tests.servers.tiny_dns import TinyDns

    server = TinyDns(DNS_ADDRESS, DNS_PORT, 0)
    records: list[Any] = []
    for path in sorted(ZONES.glob("*.zone")):
        records += RR.fromZone(path.read_text())
    server.set_records(records)
    server.start()
    return server


def start_gunicorn(workers: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENDREADY_")}
    env.update(
        SENDREADY_LISTEN=f"{HOST}:{PORT}",
        SENDREADY_DNS_SERVERS=f"{DNS_ADDRESS}:{DNS_PORT}",
        SENDREADY_CHECK_BUDGET="3",
        SENDREADY_REPORT_CACHE_TTL="3600",
        SENDREADY_RATE_LIMIT_USER="100000000 per minute",
        SENDREADY_RATE_LIMIT_TENANT="100000000 per minute",
        SENDREADY_LOG_LEVEL="WARNING",  # one log line per request would measure the disk
    )
    if workers:
        env["SENDREADY_WORKERS"] = str(workers)
    conf = ROOT / "deploy" / "gunicorn.conf.py"
    out = open(log, "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(conf)],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=out,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError("gunicorn exited:\n" + log.read_text()[-2000:])
        try:
            with socket.create_connection((HOST, PORT), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise BenchError("gunicorn did not listen within 30 s")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("PPid:") and int(line.split()[1]) == pid:
                found.append(int(entry.name))
    return found


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def warm(workers: int) -> dict[str, Any]:
    """Ask until every worker has the report cached: 50 hits in a row, bounded in time."""
    deadline = time.monotonic() + 60
    streak, misses = 0, 0
    report: dict[str, Any] = {}
    for _ in range(10_000):
        if time.monotonic() > deadline:
            raise BenchError("the cache did not warm within 60 s")
        conn = http.client.HTTPConnection(HOST, PORT, timeout=10)
        conn.request("GET", PATH)
        response = conn.getresponse()
        body = response.read()
        conn.close()
        if response.status != 200:
            raise BenchError(f"warm-up got {response.status}: {body[:300]!r}")
        report = json.loads(body)
        if response.getheader("X-Cache") == "hit":
            streak += 1
            if streak >= 50:
                break
        else:
            streak, misses = 0, misses + 1
    return {"misses": misses, "findings": len(report.get("findings", [])), "bytes": len(body)}


async def _connection(stop_at: float, budget: int, latencies: list[float]) -> int:
    """One keep-alive connection asking GET PATH in a loop; returns its error count."""
    request = f"GET {PATH} HTTP/1.1\r\nHost: {HOST}:{PORT}\r\n\r\n".encode()
    errors = 0
    reader, writer = await asyncio.open_connection(HOST, PORT)
    perf = time.perf_counter
    try:
        for _ in range(budget):
            if time.monotonic() > stop_at:
                break
            began = perf()
            try:
                writer.write(request)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await asyncio.wait_for(reader.readexactly(length), 10)
                if not head.startswith(b"HTTP/1.1 200"):
                    errors += 1
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection(HOST, PORT)
                continue
            latencies.append(perf() - began)
    finally:
        writer.close()
    return errors


def _client_process(seconds: float, connections: int, budget: int) -> tuple[list[float], int]:
    """One load process: ``connections`` keep-alive connections on one asyncio loop (much
    less client CPU than a thread per connection, so the server gets the machine)."""

    async def run() -> tuple[list[float], int]:
        stop_at = time.monotonic() + seconds
        latencies: list[float] = []
        errors = await asyncio.gather(
            *(_connection(stop_at, budget, latencies) for _ in range(connections))
        )
        return latencies, sum(errors)

    return asyncio.run(run())


def load(seconds: float, connections: int, processes: int) -> dict[str, Any]:
    """``connections`` keep-alive connections spread over ``processes`` client processes,
    so the client's own GIL does not add to the latencies it measures."""
    import multiprocessing

    processes = max(1, min(processes, connections))
    shares = [connections // processes + (i < connections % processes) for i in range(processes)]
    budget = MAX_REQUESTS // connections
    began = time.monotonic()
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        results = pool.starmap(_client_process, [(seconds, n, budget) for n in shares])
    elapsed = time.monotonic() - began
    every = sorted(x for chunk, _ in results for x in chunk)
    if not every:
        raise BenchError("no request completed")
    return {
        "requests": len(every),
        "seconds": round(elapsed, 2),
        "rps": round(len(every) / elapsed, 1),
        "p50_ms": round(statistics.median(every) * 1000, 2),
        "p99_ms": round(every[int(len(every) * 0.99) - 1] * 1000, 2),
        "max_ms": round(every[-1] * 1000, 2),
        "errors": sum(errors for _, errors in results),
        "client_processes": processes,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=0, help="default: gunicorn.conf.py's")
    parser.add_argument("--client-processes", type=int, default=1)
    args = parser.parse_args()
    log = ROOT / "bench" / "results" / "bench_web-gunicorn.log"
    log.parent.mkdir(exist_ok=True)
    dns = start_dns()
    proc: subprocess.Popen[bytes] | None = None
    try:
        proc = start_gunicorn(args.workers, log)
        warmed = warm(args.workers)
        workers = children(proc.pid)
        cpu_before = sum(cpu_seconds(pid) for pid in workers)
        result = load(args.seconds, args.connections, args.client_processes)
        after = children(proc.pid)
        if sorted(after) != sorted(workers):
            raise BenchError(f"workers changed during the run: {workers} -> {after}")
        cpu = sum(cpu_seconds(pid) for pid in workers) - cpu_before
        # Load-independent: the server's own CPU time per answer.
        result["server_cpu_ms_per_request"] = round(cpu * 1000 / result["requests"], 3)
        rss = {pid: round(rss_mb(pid), 1) for pid in workers}
        result["worker_rss_mb"] = rss
        result["workers"] = len(workers)
        result["report"] = warmed
        result["loadavg"] = os.getloadavg()[0]
    except BenchError as exc:
        print(f"bench_web: {exc}", file=sys.stderr)
        return 2
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        dns.stop()
    worst_rss = max(rss.values(), default=0.0)
    print(
        f"GET {PATH} (cached report, {warmed['bytes']} bytes, {warmed['findings']} findings)\n"
        f"  {result['workers']} gthread workers, {args.connections} connections from "
        f"{result['client_processes']} client processes, "
        f"{result['seconds']} s, load average {result['loadavg']:.2f}\n"
        f"  requests {result['requests']}  rps {result['rps']}  p50 {result['p50_ms']} ms  "
        f"p99 {result['p99_ms']} ms  max {result['max_ms']} ms  errors {result['errors']}\n"
        f"  worker RSS MB {sorted(rss.values())}  server CPU per request "
        f"{result['server_cpu_ms_per_request']} ms"
    )
    met = {
        "rps": result["rps"] >= TARGETS["rps"],
        "p99_ms": result["p99_ms"] < TARGETS["p99_ms"],
        "errors": result["errors"] == TARGETS["errors"],
        "rss_mb": worst_rss < TARGETS["rss_mb"],
    }
    print("  targets: " + ", ".join(f"{k} {'met' if ok else 'MISSED'}" for k, ok in met.items()))
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (ROOT / "bench" / "results" / f"bench_web-{stamp}.json").write_text(
        json.dumps({**result, "worker_rss_mb": list(rss.values()), "targets_met": met}, indent=1)
    )
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
