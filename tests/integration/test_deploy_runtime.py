"""The container's way of running the web service, for real: gunicorn with
deploy/gunicorn.conf.py on plain HTTP (TLS ends in front), a stale Prometheus folder emptied
at start, and the image's HEALTHCHECK command (python -m sendready.healthcheck)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests

from tests.conftest import ROOT, addr, stop_process, wait_until

PORT = 8000


def _env(tmp_path: Path, listen: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENDREADY_")}
    env.update(
        SENDREADY_LISTEN=listen,
        SENDREADY_INSTANCE_PATH=str(tmp_path / "instance"),
        SENDREADY_WORKERS="2",
        SENDREADY_DNS_SERVERS=f"{addr(54)}:53",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    return env


def healthcheck(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sendready.healthcheck"],
        env=env, capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip


def test_gunicorn_with_the_deploy_config_serves_plain_http_and_passes_the_healthcheck(
    tmp_path: Path,
) -> None:
    host = addr(81)
    env = _env(tmp_path, f"{host}:{PORT}")
    # A previous container run's values would be summed into this one's.
    stale = tmp_path / "metrics"
    stale.mkdir()
    (stale / "counter_12345.db").write_bytes(b"left over")
    out = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "deploy" / "gunicorn.conf.py")],
        cwd=tmp_path, env=env, stdout=out, stderr=out,
    )  # fmt: skip
    try:
        session = requests.Session()
        session.trust_env = False

        def answers() -> bool:
            if proc.poll() is not None:
                raise ProcessLookupError((tmp_path / "gunicorn.log").read_text())
            try:
                return session.get(f"http://{host}:{PORT}/healthz", timeout=1).ok
            except requests.ConnectionError:
                return False

        wait_until(answers, 30, "gunicorn with deploy/gunicorn.conf.py")
        assert not (stale / "counter_12345.db").exists()
        ready = session.get(f"http://{host}:{PORT}/readyz", timeout=5)
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        page = session.get(f"http://{host}:{PORT}/taskpane.html", timeout=5)
        assert page.status_code == 200 and "SendReady" in page.text
        result = healthcheck(env)
        assert result.returncode == 0, result.stderr
    finally:
        stop_process(proc, 15)
        out.close()
    # Nothing listens any more: the same command reports the container unhealthy.
    down = healthcheck(env)
    assert down.returncode == 1 and "unhealthy" in down.stderr
