"""Scale-out end to end: two gunicorn web instances and two `sendready worker` processes on
one Redis and one PostgreSQL. A scan of 30 domains (DNS answers 40 ms late, six chunk jobs
of five, two checks at once) is started through instance 1; one worker is SIGKILLed in the
middle of a chunk, some of its domains stored and some not; the scan is read back through
instance 2: done, and every domain has exactly one report row in PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq import Worker
from rq.job import Job

from sendready.jobs import DONE_KEY, RETRIES
from tests.conftest import NET, addr, clean_environment, wait_until
from tests.fixtures.postgres import PostgresServer
from tests.servers.tiny_dns import TinyDns

DOMAIN_COUNT = 30
CHUNK = 5
WEB = ((addr(81), 8081), (addr(82), 8082))
API = "/api/v1/admin/scans"
SENDREADY = str(Path(sys.executable).with_name("sendready"))
DEADLINE_S = 120.0


def fleet_zone(count: int) -> str:
    lines = ["$TTL 300"]
    for index in range(count):
        name = f"d{index:02d}.scale.test."
        lines += [
            f"{name} IN SOA ns1.scale.test. hostmaster.scale.test. 1 3600 600 86400 60",
            f"{name} IN MX 10 mx.scale.test.",
            f'{name} IN TXT "v=spf1 ip4:192.0.2.0/24 -all"',
            f'_dmarc.{name} IN TXT "v=DMARC1; p=reject"',
        ]
    lines += [
        "scale.test. IN SOA ns1.scale.test. hostmaster.scale.test. 1 3600 600 86400 60",
        f"mx.scale.test. IN A {NET}.25",
    ]
    return "\n".join(lines) + "\n"


def domains() -> list[str]:
    return [f"d{index:02d}.scale.test" for index in range(DOMAIN_COUNT)]


@pytest.fixture
def slow_fleet(fault_dns: TinyDns) -> Iterator[TinyDns]:
    fault_dns.load_zone(fleet_zone(DOMAIN_COUNT))
    fault_dns.faults.clear()
    fault_dns.delay_ms = 40  # a check takes a few hundred ms: long enough to be caught
    yield fault_dns
    fault_dns.delay_ms = 0


@dataclass
class Fleet:
    env: dict[str, str]
    workdir: Path
    procs: dict[str, subprocess.Popen[bytes]]

    def start(self, name: str, args: list[str]) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            args, env=self.env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a kill takes all of it
        )  # fmt: skip
        log.close()

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")[-3000:]


@pytest.fixture
def fleet(
    slow_fleet: TinyDns, redis_url: str, postgres_url: str, tmp_path: Path
) -> Iterator[Fleet]:
    env = clean_environment(
        dns_servers=slow_fleet.nameserver,
        dns_timeout="2",
        check_budget="2",
        allow_private_targets=f"{NET}.0/24",
        redis_url=redis_url,
        database_url=postgres_url,
        instance_path=str(tmp_path),
        log_level="INFO",
        # The web instances queue the scan: six chunks, each checked two domains at a time.
        scan_chunk=str(CHUNK),
        scan_concurrency="2",
    )
    fleet = Fleet(env, tmp_path, {})
    try:
        for index, (host, port) in enumerate(WEB):
            # development mode (no client id): allowed on loopback, as is the admin API
            fleet.env = {**env, "SENDREADY_LISTEN": f"{host}:{port}"}
            fleet.start(
                f"web{index + 1}",
                [sys.executable, "-m", "gunicorn", "-b", f"{host}:{port}", "-w", "1",
                 "--threads", "4", "sendready.wsgi:app"],
            )  # fmt: skip
        fleet.env = env
        for name in ("worker-a", "worker-b"):
            fleet.start(name, [SENDREADY, "worker", "--name", name])
        for host, port in WEB:
            wait_until(lambda h=host, p=port: socket.create_connection((h, p), 0.5), 60, "web")
        connection = Redis.from_url(redis_url)
        wait_until(lambda: Worker.count(connection=connection) == 2, 60, "two workers")
        connection.close()
        yield fleet
    finally:
        fleet.stop_all()


def call(instance: int, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    host, port = WEB[instance - 1]
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://{host}:{port}{path}",
        data=data,
        method="POST" if body is not None else "GET",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def busy_job(connection: Redis, name: str) -> str | None:
    worker = Worker.find_by_key(f"rq:worker:{name}", connection=connection)
    return worker.get_current_job_id() if worker is not None else None


def stored_of_chunk(connection: Redis, scan_id: str, job: str) -> int:
    """How many of the chunk's domains are counted done (stored) so far."""
    domains = Job.fetch(job, connection=connection).args[1]
    return sum(connection.smismember(DONE_KEY + scan_id, domains))


def test_no_scan_is_lost_or_duplicated_when_a_worker_is_killed_mid_job(
    fleet: Fleet, redis_url: str, postgres_server: PostgresServer, postgres_url: str
) -> None:
    import psycopg

    connection = Redis.from_url(redis_url)
    started = call(1, API, {"domains": domains(), "probe_smtp": False})
    scan_id = started["id"]
    assert started["domains"] == DOMAIN_COUNT

    killed: list[str] = []

    def worker_a_mid_chunk() -> bool:
        job = busy_job(connection, "worker-a")
        if job is None or not 0 < stored_of_chunk(connection, scan_id, job) < CHUNK:
            return False
        killed.append(job)
        return True

    wait_until(worker_a_mid_chunk, 60, "worker-a to be in the middle of a chunk")
    fleet.kill("worker-a")
    assert stored_of_chunk(connection, scan_id, killed[-1]) < CHUNK  # its chunk unfinished

    deadline = time.monotonic() + DEADLINE_S
    view = call(2, f"{API}/{scan_id}")
    while view["state"] not in ("done", "partial") and time.monotonic() < deadline:
        time.sleep(0.5)
        view = call(2, f"{API}/{scan_id}")
    assert view["state"] == "done", (view, fleet.log("worker-b"))
    assert view["done"] == DOMAIN_COUNT and view["errors"] == {}
    assert sorted(r["domain"] for r in view["reports"]) == domains()

    database = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_server.dsn(database)) as pg:
        rows = pg.execute(
            "SELECT domain, count(*) FROM reports WHERE scan_id = %s GROUP BY domain", (scan_id,)
        ).fetchall()
    assert dict(rows) == dict.fromkeys(domains(), 1)  # none missing, none twice
    # The job worker-a died holding was found abandoned and run again by worker-b.
    recovered = Job.fetch(killed[-1], connection=connection)
    assert recovered.get_status() == "finished" and recovered.retries_left == RETRIES - 1
    connection.close()
