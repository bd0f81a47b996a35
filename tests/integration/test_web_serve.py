"""`sendready serve` for real: gunicorn over HTTPS with a generated certificate on loopback,
in the development mode, printing its URLs and the sign-in warning."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import requests

from tests.conftest import ROOT, addr, stop_process, wait_until

PORT = 8443


def test_serve_runs_gunicorn_over_https_with_a_development_certificate(tmp_path: Path) -> None:
    host = addr(80)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENDREADY_")}
    env.update(
        SENDREADY_LISTEN=f"{host}:{PORT}",
        SENDREADY_INSTANCE_PATH=str(tmp_path / "instance"),
        SENDREADY_WORKERS="2",
        SENDREADY_DNS_SERVERS=f"{addr(54)}:53",
    )
    out = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "sendready.cli", "serve"],
        cwd=ROOT, env=env, stdout=out, stderr=out,
    )  # fmt: skip
    try:
        cert = tmp_path / "instance" / "dev-cert.pem"

        def answers() -> bool:
            if proc.poll() is not None:
                raise ProcessLookupError((tmp_path / "serve.log").read_text())
            ctx = ssl.create_default_context(cafile=str(cert))
            with (
                socket.create_connection((host, PORT), timeout=0.5) as raw,
                ctx.wrap_socket(raw, server_hostname=host),
            ):
                return True

        wait_until(answers, 30, "sendready serve")
        session = requests.Session()
        session.trust_env = False
        session.verify = str(cert)  # the generated certificate verifies for the host
        health = session.get(f"https://{host}:{PORT}/healthz", timeout=5)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        assert "max-age" in health.headers["Strict-Transport-Security"]
        # Two workers: /metrics sums both, whichever answers the scrape.
        for _ in range(9):
            fresh = requests.Session()
            fresh.trust_env, fresh.verify = False, str(cert)
            assert fresh.get(f"https://{host}:{PORT}/healthz", timeout=5).status_code == 200
            fresh.close()
        line = 'sendready_http_request_duration_seconds_count{endpoint="/healthz"'
        for _ in range(4):
            fresh = requests.Session()
            fresh.trust_env, fresh.verify = False, str(cert)
            text = fresh.get(f"https://{host}:{PORT}/metrics", timeout=5).text
            fresh.close()
            counts = [row for row in text.splitlines() if row.startswith(line)]
            assert len(counts) == 1 and counts[0].endswith(" 10.0"), counts
        log = (tmp_path / "serve.log").read_text()
        assert f"https://{host}:{PORT}/taskpane.html" in log
        assert f"https://{host}:{PORT}/manifest.xml" in log
        assert "SIGN-IN IS OFF" in log
    finally:
        stop_process(proc)
        out.close()


def test_serve_refuses_a_public_address_without_client_id(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENDREADY_")}
    env.update(SENDREADY_LISTEN="0.0.0.0:8443", SENDREADY_INSTANCE_PATH=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "sendready.cli", "serve"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert "SENDREADY_CLIENT_ID" in result.stderr
