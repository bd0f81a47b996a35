"""`sendready serve`: gunicorn with deploy/gunicorn.conf.py over HTTPS, on one machine.

HTTPS always (Office loads the pane only over https): the configured certificate, or a
self-signed development certificate generated into the instance folder. Sign-in may be off
only on loopback, and then the command says so loudly; elsewhere it refuses to start
without SENDREADY_CLIENT_ID.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .config import ConfigError, Settings
from .web import listens_on_loopback

ROOT = Path(__file__).resolve().parents[2]
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
CERT_DAYS = 30


@dataclass(frozen=True)
class Plan:
    argv: list[str]
    env: dict[str, str]
    urls: dict[str, str]
    cert: str
    key: str
    generated_cert: bool
    signin: bool


def split_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"SENDREADY_LISTEN={listen!r}: expected host:port")
    return host.strip("[]"), int(port)


def development_certificate(folder: Path, host: str) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and ``host``, reused while it is valid."""
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "dev-cert.pem", folder / "dev-key.pem"
    now = dt.datetime.now(dt.UTC)
    if cert_path.is_file() and key_path.is_file():
        existing = x509.load_pem_x509_certificate(cert_path.read_bytes())
        names = existing.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        ips = {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
        dns = set(names.get_values_for_type(x509.DNSName))
        if existing.not_valid_after_utc > now + dt.timedelta(days=1) and (host in ips | dns):
            return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = [x509.DNSName("localhost")]
    for text in dict.fromkeys(("127.0.0.1", "::1", host)):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(text)))
        except ValueError:
            alt.append(x509.DNSName(text))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SendReady development")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def plan(settings: Settings, environ: Mapping[str, str] | None = None) -> Plan:
    """What `serve` will run, without running it (so it can be tested)."""
    host, port = split_listen(settings.listen)
    loopback = listens_on_loopback(settings.listen)
    if not settings.client_id and not loopback:
        raise ConfigError(
            f"refusing to listen on {settings.listen} without SENDREADY_CLIENT_ID: sign-in "
            "may only be off on loopback"
        )
    generated = False
    if settings.tls_cert and settings.tls_key:
        cert, key = settings.tls_cert, settings.tls_key
    elif settings.tls_cert or settings.tls_key:
        raise ConfigError("set both SENDREADY_TLS_CERT and SENDREADY_TLS_KEY, or neither")
    else:
        folder = Path(settings.instance_path or "instance")
        cert_path, key_path = development_certificate(folder, host)
        cert, key, generated = str(cert_path), str(key_path), True
    env = dict(os.environ if environ is None else environ)
    # Several workers: Prometheus values go to files that /metrics sums over all of them.
    metrics_dir = Path(settings.instance_path or "instance") / "prometheus"
    env.update(
        SENDREADY_LISTEN=settings.listen,
        SENDREADY_TLS_CERT=cert,
        SENDREADY_TLS_KEY=key,
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir.resolve()),
    )
    if settings.workers:
        env["SENDREADY_WORKERS"] = str(settings.workers)
    env["SENDREADY_THREADS"] = str(settings.threads)
    shown = f"[{host}]" if ":" in host else host
    base = settings.public_base_url or f"https://{shown}:{port}"
    urls = {
        "pane": f"{base}/taskpane.html",
        "manifest": f"{base}/manifest.xml",
        "api": f"{base}/api/v1/openapi.json",
    }
    argv = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF)]
    return Plan(argv, env, urls, cert, key, generated, bool(settings.client_id))


def banner(p: Plan) -> str:
    lines = [
        "SendReady is starting.",
        f"  task pane: {p.urls['pane']}",
        f"  manifest:  {p.urls['manifest']}",
        f"  API:       {p.urls['api']}",
    ]
    if p.generated_cert:
        lines.append(f"  HTTPS with a self-signed development certificate: {p.cert}")
        lines.append("  (trust it in your browser or OS before sideloading the add-in)")
    if not p.signin:
        bar = "!" * 72
        lines += [
            bar,
            "!! SIGN-IN IS OFF: no SENDREADY_CLIENT_ID. Development mode on loopback only:",
            "!! anyone on this machine can use the API. Set SENDREADY_CLIENT_ID for real use.",
            bar,
        ]
    return "\n".join(lines)


def serve(settings: Settings, out: IO[str] | None = None) -> int:
    """Print the URLs, then replace this process with gunicorn."""
    p = plan(settings)
    print(banner(p), file=out or sys.stderr, flush=True)
    # Values of a previous run's workers must not be summed into this run's.
    metrics_dir = Path(p.env["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.execvpe(p.argv[0], p.argv, p.env)
    return 0  # not reached
