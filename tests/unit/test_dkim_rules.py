"""DKIM key records parsed and judged without DNS (checks/dkim.py pure functions)."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from sendready.checks import dkim
from sendready.model import Severity, Status


def rsa_p(bits: int, pkcs1: bool = False) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    fmt = (
        serialization.PublicFormat.PKCS1
        if pkcs1
        else serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(key.public_bytes(serialization.Encoding.DER, fmt)).decode()


TINY = (
    "MHwwDQYJKoZIhvcNAQEBBQADawAwaAJhAK1Qvgi2M7zSe0cABLmTwjxHZEhWYPlxwdd0e7HB1fYVIpbLqzTWexSYA0"
    "/C1b2X7ykS+g7LNvhsEEmgK2WM9m3uZ8pdg5OHoDkrXfwbYkau1N3Ub4BSw4ztlPPfY8Jl4QIDAQAB"
)


def sel(record: str) -> dkim.SelectorFacts:
    return dkim.SelectorFacts(
        "s1", "s1._domainkey.example.test", "answer", (), (dkim.parse_key(record),)
    )


def test_spki_and_pkcs1_rsa_keys_give_their_size() -> None:
    assert dkim.parse_key(f"v=DKIM1; k=rsa; p={rsa_p(2048)}").bits == 2048
    assert dkim.parse_key(f"v=DKIM1; p={rsa_p(1024, pkcs1=True)}").bits == 1024


def test_ed25519_must_be_32_bytes() -> None:
    raw = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    good = dkim.parse_key(f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}")
    assert (good.error, good.bits) == ("", 256)
    bad = dkim.parse_key(f"v=DKIM1; k=ed25519; p={base64.b64encode(raw[:31]).decode()}")
    assert "32 bytes" in bad.error


def test_tags() -> None:
    assert "twice" in dkim.parse_key("v=DKIM1; p=; p=").error
    assert "first" in dkim.parse_key("k=rsa; v=DKIM1; p=").error
    assert "missing" in dkim.parse_key("v=DKIM1; k=rsa").error
    assert "base64" in dkim.parse_key("v=DKIM1; p=***").error
    assert "k=dsa" in dkim.parse_key("v=DKIM1; k=dsa; p=AAAA").error
    key = dkim.parse_key(f"v=DKIM1; t=y:s; h=sha1; s=email; p={rsa_p(2048)}")
    assert key.testing and key.strict and key.hashes == ("sha1",)
    assert dkim.parse_key("v=DKIM1; p=").revoked
    # Folding whitespace inside p= is not part of the value (RFC 6376 §3.2).
    p = rsa_p(2048)
    assert dkim.parse_key(f"v=DKIM1; p={p[:40]} {p[40:]}").bits == 2048


def test_weak_key_severities() -> None:
    def weak(bits: int) -> tuple[Status, Severity, int]:
        # cryptography will not generate keys under 1024 bits: 768 comes from a fixed key.
        p = TINY if bits == 768 else rsa_p(bits)
        (f,) = [f for f in dkim.key_findings(sel(f"v=DKIM1; p={p}")) if f.id == "dkim.weak_key"]
        return f.status, f.severity, f.data["bits"]

    assert weak(768) == (Status.FAIL, Severity.CRITICAL, 768)
    assert weak(1024) == (Status.FAIL, Severity.WARNING, 1024)
    assert weak(2048) == (Status.PASS, Severity.INFO, 2048)


def test_flags_and_service_types() -> None:
    found = {
        f.id for f in dkim.key_findings(sel(f"v=DKIM1; t=y; h=sha1; s=other; p={rsa_p(2048)}"))
    }
    assert {"dkim.testing_mode", "dkim.sha1_only", "dkim.not_for_email"} <= found


def test_missing_only_when_every_expected_selector_is_absent() -> None:
    absent = dkim.SelectorFacts("selector1", "selector1._domainkey.d.test", "nxdomain")
    present = sel(f"v=DKIM1; p={rsa_p(2048)}")
    present = dkim.SelectorFacts(
        "selector2", "selector2._domainkey.d.test", "answer", (), present.keys
    )
    timeout = dkim.SelectorFacts(
        "selector2", "selector2._domainkey.d.test", "timeout", reason="t/o"
    )
    expected = (("microsoft365", ("selector1", "selector2")),)
    names = {"microsoft365": "Microsoft 365"}
    (found,) = dkim.missing_findings(dkim.DkimFacts("d.test", (absent, present), expected), names)
    assert (found.status, found.data["selectors"]) == (Status.PASS, ["selector2"])
    (unknown,) = dkim.missing_findings(dkim.DkimFacts("d.test", (absent, timeout), expected), names)
    assert unknown.status is Status.UNKNOWN
    gone = dkim.SelectorFacts("selector2", "selector2._domainkey.d.test", "nodata")
    (missing,) = dkim.missing_findings(dkim.DkimFacts("d.test", (absent, gone), expected), names)
    assert missing.status is Status.FAIL and "Get-DkimSigningConfig" in missing.fix
