"""`sendready serve` planning: sign-in off only on loopback, the generated development
certificate, the URLs it prints, and the gunicorn command it runs."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sendready.config import ConfigError, Settings
from sendready.serve import GUNICORN_CONF, banner, development_certificate, plan


def test_refuses_to_listen_off_loopback_without_client_id(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SENDREADY_CLIENT_ID"):
        plan(Settings(listen="0.0.0.0:8443", instance_path=str(tmp_path)), {})


def test_loopback_without_client_id_warns_loudly(tmp_path: Path) -> None:
    p = plan(Settings(listen="127.0.0.1:8443", instance_path=str(tmp_path)), {})
    assert not p.signin
    text = banner(p)
    assert "SIGN-IN IS OFF" in text
    assert "https://127.0.0.1:8443/taskpane.html" in text
    assert "https://127.0.0.1:8443/manifest.xml" in text
    assert "https://127.0.0.1:8443/api/v1/openapi.json" in text


def test_with_client_id_it_may_listen_anywhere_and_does_not_warn(tmp_path: Path) -> None:
    settings = Settings(
        listen="0.0.0.0:443",
        client_id="6f1c9a2e-3b4d-4e5f-8a6b-7c8d9e0f1a2b",
        instance_path=str(tmp_path),
        public_base_url="https://sendready.example.com",
        workers=3,
    )
    p = plan(settings, {"PATH": "/usr/bin"})
    assert p.signin and "SIGN-IN IS OFF" not in banner(p)
    assert p.urls["pane"] == "https://sendready.example.com/taskpane.html"
    assert p.argv[-2:] == ["-c", str(GUNICORN_CONF)] and "gunicorn" in p.argv
    assert p.env["SENDREADY_LISTEN"] == "0.0.0.0:443"
    assert p.env["SENDREADY_WORKERS"] == "3"
    assert p.env["SENDREADY_TLS_CERT"] == p.cert and Path(p.cert).is_file()


def test_generated_certificate_names_the_host_and_is_reused(tmp_path: Path) -> None:
    cert_path, key_path = development_certificate(tmp_path, "127.0.10.80")
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.10.80") in names.get_values_for_type(x509.IPAddress)
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert oct(key_path.stat().st_mode & 0o777) == "0o600"
    again, _ = development_certificate(tmp_path, "127.0.10.80")
    assert again.read_bytes() == cert_path.read_bytes()
    # A certificate that does not name the new host is replaced.
    development_certificate(tmp_path, "127.0.10.81")
    assert cert_path.read_bytes() != cert.public_bytes(serialization.Encoding.PEM)


def test_configured_certificate_is_used_as_is(tmp_path: Path) -> None:
    cert, key = development_certificate(tmp_path / "own", "localhost")
    settings = Settings(instance_path=str(tmp_path / "inst"), tls_cert=str(cert), tls_key=str(key))
    p = plan(settings, {})
    assert (p.cert, p.key, p.generated_cert) == (str(cert), str(key), False)
    assert not (tmp_path / "inst").exists()
    with pytest.raises(ConfigError, match="both"):
        plan(Settings(instance_path=str(tmp_path), tls_cert=str(cert)), {})
