"""Benchmark: five MX hosts probed concurrently vs the slowest single probe (and their sum).

Five hostile-but-working SMTP servers on 127.0.10.140-144 port 25, each with a known banner
delay, STARTTLS and a trustme certificate. Each host is first probed alone (N rounds), then
all five at once (N rounds). With a concurrent plan the wall time of the five approaches the
slowest single probe, not the sum. Run as root from the repository root:

    .venv/bin/python bench/bench_smtp.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "backend"))

import trustme  # noqa: E402
from tests.servers.hostile_smtp import Behaviour, HostileSmtp, server_context  # noqa: E402

from sendready.smtp.guard import ConnectionLimiter  # noqa: E402
from sendready.smtp.probe import Mode, Outcome, ProbeConfig, Target, probe  # noqa: E402

NET = os.environ.get("SENDREADY_TEST_NET", "127.0.10")
DELAYS = (0.10, 0.20, 0.30, 0.40, 0.50)  # banner delays of the five hosts, seconds
MAX_ROUNDS = 50


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    rounds = min(max(parser.parse_args().rounds, 1), MAX_ROUNDS)
    d = Path(tempfile.mkdtemp(prefix="bench-smtp-"))
    ca = trustme.CA()
    leaf = ca.issue_cert("*.bench.test")
    (d / "chain.pem").write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(d / "key.pem"))
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    tls = server_context(str(d / "chain.pem"), str(d / "key.pem"))
    server = HostileSmtp(25)
    server.start()
    targets = []
    for i, delay in enumerate(DELAYS):
        address, name = f"{NET}.{140 + i}", f"mx{i}.bench.test"
        server.serve(address, Behaviour(name=name, banner_delay=delay, tls=tls))
        targets.append(Target(name, address, 25, Mode.STARTTLS, "mx"))
    config = ProbeConfig(
        timeout=10,
        source_address=f"{NET}.1",
        ca_file=str(d / "ca.pem"),
        allowed=(ipaddress.ip_network(f"{NET}.0/24"),),
    )

    async def single(t: Target) -> float:
        started = time.perf_counter()
        result = await probe(t, config)
        assert result.outcome is Outcome.OK and result.tls is not None, result.reason
        return time.perf_counter() - started

    async def together() -> float:
        limiter = ConnectionLimiter(32).child(8)
        started = time.perf_counter()
        results = await asyncio.gather(*(probe(t, config, limiter=limiter) for t in targets))
        assert all(r.outcome is Outcome.OK for r in results)
        return time.perf_counter() - started

    try:
        singles: dict[str, list[float]] = {t.host: [] for t in targets}
        walls: list[float] = []
        deadline = time.monotonic() + 120
        for _ in range(rounds):
            if time.monotonic() > deadline:
                break
            for t in targets:
                singles[t.host].append(asyncio.run(single(t)))
            walls.append(asyncio.run(together()))
    finally:
        server.stop()
    medians = {h: statistics.median(v) for h, v in singles.items()}
    slowest, total, wall = max(medians.values()), sum(medians.values()), statistics.median(walls)
    print(f"rounds: {len(walls)}; banner delays: {', '.join(f'{x:.2f}' for x in DELAYS)} s")
    for host, value in medians.items():
        print(f"  {host:18} alone   {value * 1000:7.1f} ms (median)")
    print(f"slowest single probe      {slowest * 1000:7.1f} ms")
    print(f"sum of the five probes    {total * 1000:7.1f} ms")
    print(
        f"five probes concurrently  {wall * 1000:7.1f} ms (median; ratio to slowest "
        f"{wall / slowest:.2f}, to sum {wall / total:.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
