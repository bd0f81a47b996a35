"""Scan benchmark: 1,000 fixture domains at 20 ms per DNS answer, checked by 2 `sendready
worker` processes through RQ on Redis into the history store (see bench/README.md). Each
job is a chunk of domains the worker checks several at once.

Run from the project root (as root, for the network namespace):

    .venv/bin/python bench/bench_scan.py                  # about 2 minutes
    .venv/bin/python bench/bench_scan.py --update-readme  # and rewrite the figures

The script re-executes itself inside a fresh network namespace (``unshare --net``) with
only a loopback interface, so its DNS server, Redis and workers cannot collide with anyone
else's on 127.0.0.0/8 and nothing can leave the host. SMTP probes are off (a scan of a
thousand look-alike domains has no MTAs to talk to).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from figures import replace_figures

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
ZONES = BENCH / "zones"
RESULTS = BENCH / "results"
SENDREADY = ROOT / ".venv" / "bin" / "sendready"

#: Inside the namespace these addresses are the benchmark's alone.
DNS_ADDRESS = "127.0.10.155"
REDIS_ADDRESS = "127.0.10.156"
REDIS_PORT = 6379
NETNS_MARK = "SRBENCH_SCAN_IN_NETNS"
SUFFIX = "fleet.bench"

#: The service zones the generated domains lean on (SPF includes, MX hosts, DKIM keys,
#: report authorisations, reverse zones, the unsigned root).
SERVICE_ZONES = (
    "outlook.bench",
    "onmicrosoft.bench",
    "google.bench",
    "1e100.bench",
    "dmarc-reports.bench",
    "113.0.203.in-addr.arpa",
    "100.51.198.in-addr.arpa",
    "8.b.d.0.1.0.0.2.ip6.arpa",
    "root",
)
ALIASES = {
    "outlook.com": "outlook.bench",
    "onmicrosoft.com": "onmicrosoft.bench",
    "google.com": "google.bench",
}
DOCUMENTATION_RANGES = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")

CHECK_BUDGET_S = 10.0  # far above one check at 20 ms; a domain that hits it is a finding
SCAN_TIMEOUT_S = 600.0  # hard bound on one scan
OVERALL_TIMEOUT_S = 1800.0  # hard bound on the whole benchmark
TARGET_S = 60.0
#: The DNS server's socket receive buffer (unbound's recommended so-rcvbuf). The kernel's
#: default, 208 KB, holds a few hundred queries: the first waves of 32 checks begun at once
#: overflowed it, and every dropped query became a 2 s timeout and an `unknown` finding.
DNS_RCVBUF = 4 << 20
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # Linux; root may exceed rmem_max


class BenchError(RuntimeError):
    """The benchmark could not measure (exit status 2)."""


# -- fixture domains ---------------------------------------------------------------


def domain_name(index: int) -> str:
    return f"d{index:04d}.{SUFFIX}"


def domain_zone(index: int) -> str:
    """One generated sender domain. Three shapes, as a tenant's domains come: a Microsoft
    365 domain with DKIM CNAMEs and DMARC reject; a Google Workspace domain with DMARC at
    p=none; and every tenth a parked domain with a null MX, SPF -all and no DMARC."""
    name = domain_name(index)
    head = [
        f"$ORIGIN {name}.",
        "$TTL 3600",
        f"@ IN SOA ns1.{SUFFIX}. hostmaster.{SUFFIX}. 2026120301 3600 600 86400 300",
        f"@ IN NS ns1.{SUFFIX}.",
    ]
    if index % 10 == 9:
        return "\n".join([*head, "@ IN MX 0 .", '@ IN TXT "v=spf1 -all"']) + "\n"
    if index % 3 == 2:
        body = [
            "@ IN MX 1 aspmx.l.google.bench.",
            "@ IN MX 5 alt1.aspmx.l.google.bench.",
            '@ IN TXT "v=spf1 include:_spf.google.bench ~all"',
            '_dmarc IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@' + name + '"',
        ]
        return "\n".join([*head, *body]) + "\n"
    body = [
        "@ IN MX 0 contoso-bench.mail.protection.outlook.bench.",
        '@ IN TXT "v=spf1 include:spf.protection.outlook.bench -all"',
        f'@ IN TXT "MS=ms{index:08d}"',
        "selector1._domainkey IN CNAME "
        "selector1-contoso-bench._domainkey.contosotenant.onmicrosoft.bench.",
        "selector2._domainkey IN CNAME "
        "selector2-contoso-bench._domainkey.contosotenant.onmicrosoft.bench.",
        f'_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@{name}; adkim=s; aspf=s"',
        f'_smtp._tls IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@{name}"',
    ]
    return "\n".join([*head, *body]) + "\n"


def parent_zone() -> str:
    return (
        "\n".join(
            [
                f"$ORIGIN {SUFFIX}.",
                "$TTL 3600",
                "@ IN SOA ns1 hostmaster 2026120301 3600 600 86400 300",
                "@ IN NS ns1",
                f"ns1 IN A {DNS_ADDRESS}",
            ]
        )
        + "\n"
    )


# -- servers -----------------------------------------------------------------------


def start_dns(delay_ms: float, count: int) -> Any:
    """tiny_dns (tests/servers/tiny_dns.py) with an index by owner name: its linear scan
    over 15,000 records would cost ~18 ms of CPU per answer, more than the latency we mean
    to simulate. Answers, faults and the delay are tiny_dns's own."""
    sys.path.insert(0, str(ROOT))
    from dnslib import RR  # type: ignore[import-untyped]
    from tests.servers.tiny_dns import TinyDns, _name

    class IndexedDns(TinyDns):  # type: ignore[misc]
        def set_records(self, records: Sequence[Any]) -> None:
            super().set_records(records)
            self.by_name: dict[str, list[Any]] = {}
            self.names: set[str] = set()
            self.soas: dict[str, Any] = {}
            for rr in self.records:
                owner = _name(rr.rname)
                self.by_name.setdefault(owner, []).append(rr)
                labels = owner.split(".")
                self.names.update(".".join(labels[i:]) for i in range(len(labels)))
                if rr.rtype == 6:  # SOA
                    self.soas[owner] = rr

        def start(self) -> None:
            super().start()
            for server in self._servers:
                if server.server.socket.type == socket.SOCK_DGRAM:
                    server.server.socket.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, DNS_RCVBUF)

        def _here(self, name: str) -> list[Any]:
            return self.by_name.get(name, [])

        def _answer(self, reply: Any, qname: str, qtype: int) -> None:
            name = qname
            for _hop in range(16):
                here = self._here(name)
                matches = [rr for rr in here if rr.rtype == qtype or qtype == 255]
                if matches:
                    for rr in matches:
                        reply.add_answer(rr)
                    return
                aliases = [rr for rr in here if rr.rtype == 5]  # CNAME
                if aliases and qtype != 5:
                    reply.add_answer(aliases[0])
                    name = _name(aliases[0].rdata.label)
                    continue
                break
            if name not in self.names:
                reply.header.rcode = 3  # NXDOMAIN
            reply.add_auth(self._soa(name))

        def _soa(self, name: str) -> Any:
            labels = name.split(".") if name else []
            for i in range(len(labels) + 1):
                apex = ".".join(labels[i:])
                if apex in self.soas:
                    return self.soas[apex]
            return super()._soa(name)

    records: list[Any] = []
    for zone in SERVICE_ZONES:
        records += RR.fromZone((ZONES / f"{zone}.zone").read_text())
    records += RR.fromZone(parent_zone())
    for index in range(count):
        records += RR.fromZone(domain_zone(index))
    server = IndexedDns(DNS_ADDRESS, 53, delay_ms)
    server.set_records(records)
    server.start()
    return server


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """redis-server without persistence, stopped by PID."""
    import redis

    proc = subprocess.Popen(
        ["redis-server", "--bind", REDIS_ADDRESS, "--port", str(REDIS_PORT), "--save", "",
         "--appendonly", "no", "--dir", str(workdir), "--logfile", str(workdir / "redis.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://{REDIS_ADDRESS}:{REDIS_PORT}/0"
    client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if client.ping():
                    break
            except redis.RedisError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise BenchError("redis-server did not start") from None
                time.sleep(0.02)
        yield url
    finally:
        client.close()
        stop(proc)


def stop(proc: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    """SIGTERM by PID (a worker's warm shutdown), then SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def udp_receive_errors() -> int:
    """Datagrams this network namespace dropped for a full socket buffer (RcvbufErrors)."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    names, values = [row for row in lines if row[0] == "Udp:"][:2]
    return int(values[names.index("RcvbufErrors")])


def has_dns_timeout(report: dict[str, Any]) -> bool:
    """Whether a stored report says a lookup had no answer in time (the resolver's words)."""
    return any("no answer within" in (f.get("detail") or "") for f in report["findings"])


def child_env(
    redis_url: str, database_url: str, instance: Path, chunk: int, concurrency: int
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENDREADY_")}
    env.update(
        SENDREADY_DNS_SERVERS=f"{DNS_ADDRESS}:53",
        SENDREADY_REDIS_URL=redis_url,
        SENDREADY_DATABASE_URL=database_url,
        SENDREADY_INSTANCE_PATH=str(instance),
        SENDREADY_CHECK_BUDGET=str(CHECK_BUDGET_S),
        SENDREADY_PROVIDER_ALIASES=",".join(f"{k}={v}" for k, v in ALIASES.items()),
        # The fixtures' MX addresses are documentation ranges standing for public ones;
        # nothing connects to them (SMTP probes are off; the namespace has only lo).
        SENDREADY_ALLOW_PRIVATE_TARGETS=",".join(DOCUMENTATION_RANGES),
        SENDREADY_LOG_LEVEL="WARNING",
        SENDREADY_SCAN_CHUNK=str(chunk),
        SENDREADY_SCAN_CONCURRENCY=str(concurrency),
    )
    return env


# -- one run -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    """One scan of every fixture domain by the workers."""

    seconds: float
    reports: int
    errors: int
    state: str
    queries: int
    worst: dict[str, int]
    #: CPU seconds of the worker processes, and of this process (the DNS server, mostly).
    worker_cpu: float
    server_cpu: float
    #: UDP datagrams dropped for a full receive buffer during the run (0 is a valid run).
    udp_drops: int
    #: Domains whose report has a DNS lookup that timed out (0 is a valid run: the server
    #: always answers, so a timeout means it was overrun, not that a record is missing).
    timed_out: int


def run_scan_once(
    args: argparse.Namespace, dns: Any, workdir: Path, redis_url: str, number: int
) -> Run:
    """Fresh store, fresh Redis data, fresh worker processes; the clock runs from the
    enqueue to the scan's finish (workers are up and idle before it starts)."""
    import redis
    from rq import Worker

    from sendready.config import Settings
    from sendready.jobs import enqueue_scan, scan_queue
    from sendready.store import open_store

    instance = workdir / f"run{number}"
    instance.mkdir()
    database_url = args.database_url or f"sqlite:///{instance / 'sendready.db'}"
    env = child_env(redis_url, database_url, instance, args.chunk, args.concurrency)
    connection = redis.Redis.from_url(redis_url)
    connection.flushdb()
    settings = Settings.from_env(env, env_file=None)
    store = open_store(settings)  # migrates the fresh database before the workers start
    if args.database_url:
        store.prune(history_days=0)
    command = [str(SENDREADY), "worker", "--processes", str(args.processes)]
    logs = [open(instance / f"worker{i}.log", "w") for i in range(args.workers)]  # noqa: SIM115
    workers = [
        subprocess.Popen(command, env=env, cwd=instance, stdout=log, stderr=subprocess.STDOUT)
        for log in logs
    ]
    try:
        expected = args.workers * args.processes
        deadline = time.monotonic() + 60
        while Worker.count(connection=connection) < expected:
            if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
                raise BenchError(f"the workers did not start; see {instance}/worker*.log")
            time.sleep(0.05)
        queries_before = dns.queries
        drops_before = udp_receive_errors()
        domains = [domain_name(i) for i in range(args.domains)]
        own_cpu = time.process_time()
        started = time.monotonic()
        scan_id = enqueue_scan(
            store, scan_queue(connection), domains, kind="bench", settings=settings,
            probe_smtp=False,
        )  # fmt: skip
        deadline = started + SCAN_TIMEOUT_S
        view = store.scan(scan_id)
        while view is not None and view.state not in ("done", "partial"):
            if time.monotonic() > deadline:
                raise BenchError(f"the scan did not finish in {SCAN_TIMEOUT_S:.0f} s")
            if all(w.poll() is not None for w in workers):
                raise BenchError(f"every worker exited; see {instance}/worker*.log")
            time.sleep(0.05)
            view = store.scan(scan_id)
        seconds = time.monotonic() - started
        server_cpu = time.process_time() - own_cpu
        assert view is not None
        reports = store.scan_reports(scan_id)
        worst: dict[str, int] = {}
        for stored in reports:
            worst[stored.worst or "none"] = worst.get(stored.worst or "none", 0) + 1
        timed_out = sum(1 for stored in reports if has_dns_timeout(stored.report))
        queries = dns.queries - queries_before
        udp_drops = udp_receive_errors() - drops_before
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        for proc in workers:
            stop(proc)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        worker_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
        return Run(
            seconds=seconds,
            reports=len(reports),
            errors=len(view.errors),
            state=view.state,
            queries=queries,
            worst=worst,
            worker_cpu=worker_cpu,
            server_cpu=server_cpu,
            udp_drops=udp_drops,
            timed_out=timed_out,
        )
    finally:
        for proc in workers:
            stop(proc)
        for log in logs:
            log.close()
        store.close()
        connection.close()


def baseline_seconds(args: argparse.Namespace, redis_url: str, workdir: Path) -> float:
    """Seconds per domain of one sequential checker (scan_domain in a loop, one engine,
    no queue and no store) over the first ``--baseline`` domains, measured in this run."""
    from sendready.config import Settings
    from sendready.engine import Engine
    from sendready.scan import scan_domain

    env = child_env("", "", workdir, args.chunk, args.concurrency)
    env.pop("SENDREADY_REDIS_URL")
    env.pop("SENDREADY_DATABASE_URL")
    settings = Settings.from_env(env, env_file=None)
    with Engine(settings) as engine:
        scan_domain(engine, domain_name(args.domains + 1), settings, probe_smtp=False)  # warm
        started = time.monotonic()
        for index in range(args.baseline):
            scan_domain(engine, domain_name(index), settings, probe_smtp=False)
        return (time.monotonic() - started) / args.baseline


# -- the report --------------------------------------------------------------------


def summarize(args: argparse.Namespace, runs: Sequence[Run], per_domain: float) -> str:
    seconds = statistics.median(r.seconds for r in runs)
    rate = args.domains / seconds
    sequential = per_domain * args.domains
    ok = "✓" if seconds < TARGET_S else "✗"
    lines = [
        "| domains | workers × processes | chunk / at once | store | total s (median) | "
        f"domains/s | target < {TARGET_S:.0f} s | one sequential checker | speed-up |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {args.domains} | {args.workers} × {args.processes} | "
        f"{args.chunk} / {args.concurrency} | "
        f"{'PostgreSQL' if args.database_url else 'SQLite (WAL)'} | {seconds:.1f} | {rate:.1f} | "
        f"{ok} | {per_domain * 1000:.0f} ms a domain → {sequential:.0f} s | "
        f"{sequential / seconds:.1f}× |",
    ]
    return "\n".join(lines)


def details(
    args: argparse.Namespace, runs: Sequence[Run], per_domain: float, load_before: float
) -> str:
    lines = [
        f"{len(runs)} runs at {args.delay:g} ms per DNS answer, SMTP probes off, "
        f"{args.workers} `sendready worker --processes {args.processes}`, jobs of "
        f"{args.chunk} domains checked {args.concurrency} at once; 1-minute load "
        f"average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after (2 cores; the "
        "after figure includes the benchmark's own workers and DNS server):",
    ]
    for number, run in enumerate(runs, 1):
        lines.append(
            f"  run {number}: {run.seconds:.1f} s, {run.reports} reports, {run.errors} errors, "
            f"state {run.state}, {run.queries} DNS queries served, {run.udp_drops} UDP datagrams "
            f"dropped, {run.timed_out} domains with a DNS timeout, worst per domain {run.worst}; "
            f"CPU: workers {run.worker_cpu:.1f} s ({run.worker_cpu / args.domains * 1000:.0f} ms "
            f"a domain, start-up included), DNS server and this process {run.server_cpu:.1f} s"
        )
    lines.append(
        f"  baseline: one engine checking {args.baseline} domains one after another, "
        f"{per_domain * 1000:.0f} ms a domain"
    )
    return "\n".join(lines)


def update_readme(table: str, stamp: str, notes: str) -> None:
    try:
        replace_figures("scan-figures", table, stamp, notes)
    except ValueError as exc:
        raise BenchError(str(exc)) from None


def run_benchmark(args: argparse.Namespace) -> int:
    if shutil.which("redis-server") is None:
        raise BenchError("redis-server is not installed (scripts/install-deps.sh)")
    sys.path.insert(0, str(ROOT / "backend"))
    load_before = os.getloadavg()[0]
    dns = start_dns(args.delay, args.domains + 2)
    workdir = Path(tempfile.mkdtemp(prefix="sendready-bench-scan-"))
    runs: list[Run] = []
    overall = time.monotonic() + OVERALL_TIMEOUT_S
    try:
        with redis_server(workdir) as redis_url:
            per_domain = baseline_seconds(args, redis_url, workdir)
            for number in range(1, args.runs + 1):
                if time.monotonic() > overall:
                    break
                run = run_scan_once(args, dns, workdir, redis_url, number)
                print(f"run {number}: {run.seconds:.1f} s, {run.reports} reports", flush=True)
                runs.append(run)
    finally:
        dns.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if not runs:
        raise BenchError("no run finished")
    table, notes = summarize(args, runs, per_domain), details(args, runs, per_domain, load_before)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(table + "\n\n" + notes)
    RESULTS.mkdir(exist_ok=True)
    result_file = RESULTS / f"scan-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    result_file.write_text(
        json.dumps({"args": vars(args), "per_domain_s": per_domain,
                    "runs": [asdict(r) for r in runs]}, indent=2)
    )  # fmt: skip
    if args.update_readme:
        update_readme(table, stamp, notes)
    complete = all(r.reports + r.errors == args.domains and not r.timed_out for r in runs)
    return 0 if complete and statistics.median(r.seconds for r in runs) < TARGET_S else 1


def reexec_in_netns(argv: Sequence[str]) -> int:
    """Run this script again in a new network namespace with only `lo`, up."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        raise BenchError("unshare and ip are needed for the network namespace (or --no-netns)")
    cmd = ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
    cmd += [sys.executable, str(Path(__file__).resolve()), *argv]
    try:
        env = {**os.environ, NETNS_MARK: "1"}
        return subprocess.run(cmd, env=env, timeout=OVERALL_TIMEOUT_S + 60).returncode
    except subprocess.TimeoutExpired:
        raise BenchError("the benchmark did not finish in time") from None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=1000, help="fixture domains to scan")
    parser.add_argument("--delay", type=float, default=20.0, help="ms per DNS answer")
    parser.add_argument("--workers", type=int, default=2, help="`sendready worker` processes")
    parser.add_argument("--processes", type=int, default=1, help="--processes of each worker")
    parser.add_argument("--chunk", type=int, default=20, help="SENDREADY_SCAN_CHUNK")
    parser.add_argument("--concurrency", type=int, default=16, help="SENDREADY_SCAN_CONCURRENCY")
    parser.add_argument("--runs", type=int, default=3, help="scans (median)")
    parser.add_argument("--baseline", type=int, default=30, help="domains of the baseline")
    parser.add_argument("--database-url", default="", help="PostgreSQL URL; default SQLite")
    parser.add_argument("--no-netns", action="store_true", help="no network namespace")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    parser.add_argument("--update-readme", action="store_true", help="rewrite the figures")
    args = parser.parse_args(argv)
    if not 1 <= args.domains <= 10_000 or not 1 <= args.runs <= 20:
        parser.error("--domains must be 1..10000 and --runs 1..20")
    if not 1 <= args.chunk <= 500 or not 1 <= args.concurrency <= 256:
        parser.error("--chunk must be 1..500 and --concurrency 1..256")
    try:
        if not args.no_netns and not os.environ.get(NETNS_MARK):
            return reexec_in_netns(argv)
        return run_benchmark(args)
    except BenchError as exc:
        print(f"benchmark: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
