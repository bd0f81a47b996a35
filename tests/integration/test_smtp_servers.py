"""The probe against the real MTA (postfix on 25/587/465) and the M365-like submission server
(aiosmtpd: STARTTLS on 587, implicit TLS on 465, XOAUTH2)."""

from __future__ import annotations

import asyncio
import ipaddress
import json

from sendready.model import jsonable
from sendready.smtp.probe import Mode, Outcome, ProbeConfig, ProbeResult, Target, XOAuth2, probe
from tests.conftest import NET, Pki, addr
from tests.fixtures.postfix import Postfix
from tests.fixtures.submission import Submission

ALLOWED = (ipaddress.ip_network(f"{NET}.0/24"),)


def go(target: Target, pki: Pki, credentials: XOAuth2 | None = None) -> ProbeResult:
    cfg = ProbeConfig(timeout=5.0, source_address=addr(1), ca_file=pki.ca, allowed=ALLOWED)
    return asyncio.run(probe(target, cfg, credentials=credentials))


def test_postfix_mx_offers_starttls_with_a_verified_three_certificate_chain(
    postfix: Postfix, pki: Pki
) -> None:
    result = go(Target("mx.smtp-mx.test", postfix.host, 25), pki)
    assert result.outcome is Outcome.OK, result.reason
    assert result.banner_name == "mx.m365-good.test"
    assert result.starttls_offered and result.auth_before_tls == ()
    assert result.tls is not None and result.tls.version == "TLSv1.3"
    cert = result.tls.cert
    assert cert is not None and cert.trusted and cert.name_matches and not cert.expired
    assert cert.chain_length in (None, 2)
    assert set(result.auth_after_tls) == {"PLAIN", "LOGIN"}


def test_postfix_under_a_name_its_certificate_lacks_is_a_name_mismatch(
    postfix: Postfix, pki: Pki
) -> None:
    result = go(Target("other.smtp-mx.test", postfix.host, 25), pki)
    assert result.tls is not None and result.tls.cert is not None
    assert result.tls.cert.trusted and not result.tls.cert.name_matches


def test_postfix_587_and_465(postfix: Postfix, pki: Pki) -> None:
    sub = go(Target("mx.smtp-mx.test", postfix.host, 587, Mode.STARTTLS, "submission"), pki)
    assert sub.outcome is Outcome.OK and sub.starttls_offered
    assert set(sub.auth_after_tls) == {"PLAIN", "LOGIN"} and sub.auth_before_tls == ()
    implicit = go(Target("mx.smtp-mx.test", postfix.host, 465, Mode.IMPLICIT, "submission"), pki)
    assert implicit.outcome is Outcome.OK, implicit.reason
    assert implicit.tls is not None and implicit.tls.cert is not None
    assert implicit.tls.cert.trusted and set(implicit.auth_after_tls) == {"PLAIN", "LOGIN"}
    assert implicit.ehlo == ()  # nothing was said before TLS


def test_submission_587_offers_xoauth2_only_after_starttls(
    submission: Submission, pki: Pki
) -> None:
    result = go(Target(submission.name, submission.host, 587, Mode.STARTTLS, "submission"), pki)
    assert result.outcome is Outcome.OK, result.reason
    assert result.auth_before_tls == ()
    assert set(result.auth_after_tls) >= {"LOGIN", "PLAIN", "XOAUTH2"}
    assert result.tls is not None and result.tls.cert is not None and result.tls.cert.trusted


def test_submission_465_is_implicit_tls_with_auth(submission: Submission, pki: Pki) -> None:
    result = go(Target(submission.name, submission.host, 465, Mode.IMPLICIT, "submission"), pki)
    assert result.outcome is Outcome.OK, result.reason
    assert "XOAUTH2" in result.auth_after_tls
    assert result.tls is not None and result.tls.version in ("TLSv1.2", "TLSv1.3")


def test_xoauth2_with_the_known_token_authenticates_and_nothing_leaks(
    submission: Submission, pki: Pki
) -> None:
    creds = XOAuth2(submission.user, submission.token)
    result = go(
        Target(submission.name, submission.host, 587, Mode.STARTTLS, "submission"), pki, creds
    )
    assert result.auth is not None and result.auth.success and result.auth.code == 235
    dumped = json.dumps(jsonable(result)) + repr(result) + repr(creds)
    assert submission.token not in dumped and creds.initial_response() not in dumped
    assert any("[redacted" in line for line in result.transcript)
    assert result.transcript[-1].startswith("S: 221")  # it said QUIT, and sent no mail
    assert not any(line.startswith(("C: MAIL", "C: DATA")) for line in result.transcript)


def test_xoauth2_with_another_token_gets_535_5_7_139(submission: Submission, pki: Pki) -> None:
    creds = XOAuth2(submission.user, "not-the-token-" + "x" * 40)
    result = go(
        Target(submission.name, submission.host, 587, Mode.STARTTLS, "submission"), pki, creds
    )
    assert result.auth is not None and not result.auth.success
    assert result.auth.code == 535 and "5.7.139" in result.auth.reply
    assert "not-the-token" not in json.dumps(jsonable(result))
