"""The probe against hostile servers on loopback: every failure mode is its own outcome."""

from __future__ import annotations

import asyncio
import ipaddress
import time

import pytest

from sendready.smtp.probe import Mode, Outcome, ProbeConfig, ProbeResult, Target, probe
from tests.conftest import NET, Pki, addr
from tests.fixtures.hostile_smtp import SLOW_DELAY, TARPIT_DELAY, Hostile

ALLOWED = (ipaddress.ip_network(f"{NET}.0/24"),)


def config(pki: Pki, **kw: object) -> ProbeConfig:
    base: dict[str, object] = dict(
        timeout=3.0, source_address=addr(1), ca_file=pki.ca, allowed=ALLOWED, slow_banner=0.3
    )
    base.update(kw)
    return ProbeConfig(**base)  # type: ignore[arg-type]


def run(hostile: Hostile, pki: Pki, role: str, **kw: object) -> ProbeResult:
    target = Target(hostile.host(role), hostile.address(role), 25, Mode.STARTTLS, "mx")
    return asyncio.run(probe(target, config(pki, **kw)))


def test_a_good_server_gives_tls_facts_and_a_trusted_certificate(
    hostile_smtp: Hostile, pki: Pki
) -> None:
    result = run(hostile_smtp, pki, "good")
    assert result.outcome is Outcome.OK, result.reason
    assert result.banner_code == 220 and result.banner_name == "good.smtp-hostile.test"
    assert result.starttls_offered is True
    assert result.tls is not None and result.tls.version in ("TLSv1.2", "TLSv1.3")
    assert result.tls.cipher
    cert = result.tls.cert
    assert cert is not None
    assert cert.trusted and cert.name_matches and not cert.expired
    assert cert.key_type.startswith("EC") and cert.key_bits >= 256
    assert cert.chain_length in (None, 2)  # leaf + intermediate
    assert "AUTH PLAIN LOGIN" in result.ehlo_tls and "STARTTLS" not in result.ehlo_tls
    assert result.auth_after_tls == ("PLAIN", "LOGIN") and result.auth_before_tls == ()


def test_the_system_store_does_not_trust_the_test_ca(hostile_smtp: Hostile, pki: Pki) -> None:
    # Without the configured CA file the same chain is untrusted: proves the CA file is used.
    result = run(hostile_smtp, pki, "good", ca_file="")
    assert result.tls is not None and result.tls.cert is not None
    assert not result.tls.cert.trusted
    assert "local issuer" in result.tls.cert.verify_error


def test_no_starttls_is_reported_as_such(hostile_smtp: Hostile, pki: Pki) -> None:
    result = run(hostile_smtp, pki, "notls")
    assert result.outcome is Outcome.OK
    assert result.starttls_offered is False and result.tls is None


def test_an_expired_certificate_is_trusted_but_expired(hostile_smtp: Hostile, pki: Pki) -> None:
    result = run(hostile_smtp, pki, "expired")
    assert result.outcome is Outcome.OK, result.reason
    assert result.tls is not None and result.tls.cert is not None
    cert = result.tls.cert
    assert cert.expired and cert.trusted and cert.name_matches
    assert "expired" in cert.verify_error
    # TLS itself worked: a bad certificate is not "no STARTTLS" (DOMAIN.md §1.11)
    assert result.starttls_offered is True and result.tls.version


def test_a_certificate_for_another_host_does_not_match(hostile_smtp: Hostile, pki: Pki) -> None:
    result = run(hostile_smtp, pki, "wronghost")
    assert result.tls is not None and result.tls.cert is not None
    cert = result.tls.cert
    assert cert.trusted and not cert.name_matches and not cert.expired
    assert cert.names == ("some-other-host.example.test",)


def test_a_self_signed_certificate_is_untrusted(hostile_smtp: Hostile, pki: Pki) -> None:
    result = run(hostile_smtp, pki, "selfsigned")
    assert result.tls is not None and result.tls.cert is not None
    cert = result.tls.cert
    assert not cert.trusted and cert.name_matches and not cert.expired
    assert cert.verify_error


def test_a_15_second_banner_is_cut_by_the_deadline(hostile_smtp: Hostile, pki: Pki) -> None:
    started = time.monotonic()
    result = run(hostile_smtp, pki, "slow15", timeout=1.0)
    elapsed = time.monotonic() - started
    assert result.outcome is Outcome.DEADLINE and result.stage == "banner"
    assert "banner" in result.reason
    assert elapsed < SLOW_DELAY  # the probe did not wait for the server


def test_a_slow_banner_within_the_deadline_is_measured(hostile_smtp: Hostile, pki: Pki) -> None:
    result = run(hostile_smtp, pki, "tarpit")
    assert result.outcome is Outcome.OK
    assert result.banner_ms is not None and result.banner_ms >= TARPIT_DELAY * 1000 * 0.9


def test_a_reset_right_after_starttls_is_a_tls_reset(hostile_smtp: Hostile, pki: Pki) -> None:
    result = run(hostile_smtp, pki, "reset")
    assert result.outcome is Outcome.TLS_RESET, result.reason
    assert result.stage == "tls" and result.starttls_offered


@pytest.mark.parametrize(("role", "code"), [("greet421", 421), ("greet554", 554)])
def test_a_refusing_greeting_is_reported_with_its_code(
    hostile_smtp: Hostile, pki: Pki, role: str, code: int
) -> None:
    result = run(hostile_smtp, pki, role)
    assert result.outcome is Outcome.GREETING_REJECTED
    assert result.banner_code == code and str(code) in result.reason


def test_garbage_lines_are_a_protocol_error(hostile_smtp: Hostile, pki: Pki) -> None:
    result = run(hostile_smtp, pki, "garbage")
    assert result.outcome is Outcome.PROTOCOL_ERROR and result.stage == "ehlo"
    assert "not an SMTP reply" in result.reason


def test_an_endless_line_is_a_protocol_error_not_a_memory_leak(
    hostile_smtp: Hostile, pki: Pki
) -> None:
    result = run(hostile_smtp, pki, "endless")
    assert result.outcome is Outcome.PROTOCOL_ERROR and result.stage == "banner"
    assert "endless" in result.reason


def test_a_server_with_only_old_tls_is_outdated(hostile_smtp: Hostile, pki: Pki) -> None:
    result = run(hostile_smtp, pki, "oldtls")
    assert result.outcome is Outcome.TLS_OUTDATED, result.reason
    assert "TLS 1.2" in result.reason


def test_a_closed_port_is_refused(hostile_smtp: Hostile, pki: Pki) -> None:
    result = run(hostile_smtp, pki, "refused")
    assert result.outcome is Outcome.REFUSED and result.stage == "connect"


def test_a_port_that_drops_connections_times_out_in_connect(
    hostile_smtp: Hostile, pki: Pki
) -> None:
    result = run(hostile_smtp, pki, "blackhole", timeout=0.5)
    assert result.outcome is Outcome.CONNECT_TIMEOUT and result.stage == "connect"


def test_auth_offered_before_tls_is_recorded(hostile_smtp: Hostile, pki: Pki) -> None:
    result = run(hostile_smtp, pki, "authplain")
    assert result.auth_before_tls == ("PLAIN", "LOGIN")


def test_the_guard_refuses_loopback_unless_the_range_is_allowed(
    hostile_smtp: Hostile, pki: Pki
) -> None:
    before = hostile_smtp.server.connections.get(hostile_smtp.address("good"), 0)
    result = run(hostile_smtp, pki, "good", allowed=())
    assert result.outcome is Outcome.TARGET_REFUSED
    assert "loopback" in result.reason
    assert hostile_smtp.server.connections.get(hostile_smtp.address("good"), 0) == before


def test_the_probe_connects_from_the_configured_source_address(
    hostile_smtp: Hostile, pki: Pki
) -> None:
    result = run(hostile_smtp, pki, "good", source_address="127.0.0.1")
    assert result.outcome is Outcome.OK


def test_no_token_is_sent_to_a_server_whose_certificate_did_not_verify(
    hostile_smtp: Hostile, pki: Pki
) -> None:
    from sendready.smtp.probe import XOAuth2

    # The hostile server offers no XOAUTH2: an attempt would show as auth "not offered".
    host, address = hostile_smtp.host("selfsigned"), hostile_smtp.address("selfsigned")
    target = Target(host, address, 25, Mode.STARTTLS, "submission")
    creds = XOAuth2("alice@example.test", "a-token-that-must-stay-home")
    result = asyncio.run(probe(target, config(pki), credentials=creds))
    assert result.tls is not None and result.tls.cert is not None
    assert not result.tls.cert.trusted
    assert result.auth is None
    assert not any("AUTH" in line and line.startswith("C:") for line in result.transcript)


def test_no_token_is_sent_to_a_trusted_certificate_for_another_name(
    hostile_smtp: Hostile, pki: Pki
) -> None:
    from sendready.smtp.probe import XOAuth2

    host, address = hostile_smtp.host("wronghost"), hostile_smtp.address("wronghost")
    creds = XOAuth2("alice@example.test", "a-token-that-must-stay-home")
    target = Target(host, address, 25, Mode.STARTTLS, "submission")
    result = asyncio.run(probe(target, config(pki), credentials=creds))
    assert result.tls is not None and result.tls.cert is not None
    assert result.tls.cert.trusted and not result.tls.cert.name_matches
    assert result.auth is None
