"""The reply-code explainer on the replies of DOMAIN.md §3 and on codes it does not know."""

from __future__ import annotations

import pytest

from sendready.smtp.explain import ENTRIES, explain, parse_reply


@pytest.mark.parametrize(
    ("reply", "entry"),
    [
        (
            "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for "
            "the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.",
            "m365.smtp_auth_disabled",
        ),
        (
            "535 5.7.139 Authentication unsuccessful, the user credentials were incorrect or "
            "the request did not meet the criteria to be authenticated successfully.",
            "m365.legacy_auth_blocked",
        ),
        (
            "535 5.7.139 Authentication unsuccessful, the federated STS service was unreachable",
            "m365.federation_failed",
        ),
        ("535 5.7.139 Authentication unsuccessful", "m365.auth_unsuccessful_5_7_139"),
        ("535 5.7.3 Authentication unsuccessful", "m365.auth_unsuccessful"),
        ("530 5.7.57 Client not authenticated to send mail", "m365.client_not_authenticated"),
        (
            "550 5.7.60 SMTP; Client does not have permissions to send as this sender",
            "m365.send_as_denied",
        ),
        ("550 5.1.8 Access denied, bad outbound sender", "m365.restricted_sender"),
        (
            "550 5.7.30 Basic authentication is not supported for Client Submission",
            "m365.basic_auth_retired",
        ),
        (
            "450 4.7.321 starttls-not-supported: Destination mail server must support TLS",
            "m365.dane_starttls_not_supported",
        ),
        ("4/5.7.322 certificate-expired", "m365.dane_certificate_expired"),
        (
            "550 5.7.515 Access denied, sending domain example.com does not meet the required "
            "authentication level.",
            "outlookcom.authentication_level",
        ),
        (
            "550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact "
            "your Internet service provider since part of their network is on our block list "
            "(S3150).",
            "outlookcom.ip_reputation",
        ),
        (
            "421 4.7.32 Your email has been rate limited because there is no DMARC alignment",
            "gmail.no_dmarc_alignment",
        ),
        (
            "550 5.7.26 This mail has been blocked because the sender is unauthenticated.",
            "gmail.unauthenticated",
        ),
        (
            "535-5.7.8 Username and Password not accepted. For more information, go to\n"
            "535 5.7.8  https://support.google.com/mail/?p=BadCredentials",
            "gmail.bad_credentials",
        ),
        (
            "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected "
            "volume or user complaints",
            "yahoo.tss04_deferred",
        ),
        (
            "553 5.7.2 [TSS09] All messages from 192.0.2.1 will be permanently deferred",
            "yahoo.tss09_blocked",
        ),
        ("554 5.7.9 Message not accepted for policy reasons.", "yahoo.policy"),
        ("530 5.7.0 Must issue a STARTTLS command first", "rfc3207.starttls_first"),
        ("530 5.7.0 Authentication required", "rfc4954.auth_required"),
        (
            "538 5.7.11 Encryption required for requested authentication mechanism",
            "rfc4954.encryption_required",
        ),
        ("534 5.7.9 Authentication mechanism is too weak", "rfc4954.mechanism_too_weak"),
        ("454 4.7.0 Temporary authentication failure", "rfc4954.temporary_failure"),
        ("556 5.1.10 Recipient address has null MX", "rfc7505.null_mx_recipient"),
        ("550 5.7.27 Sender address has null MX", "rfc7505.null_mx_sender"),
        ("550 5.7.25 reverse DNS validation failed", "rfc7372.reverse_dns"),
        ("550 5.7.23 SPF validation failed", "rfc7372.spf_fail"),
        ("535 Authentication unsuccessful (XOAUTH2)", "auth.unsuccessful_xoauth2"),
        ("421 Service not available, closing transmission channel", "rfc5321.service_unavailable"),
    ],
)
def test_known_replies_are_recognised_with_cause_and_fix(reply: str, entry: str) -> None:
    result = explain(reply)
    assert result.recognised, reply
    assert result.entry == entry
    assert result.cause and result.fix and result.source


def test_the_enhanced_code_wins_over_the_basic_code_and_text_refines_it() -> None:
    disabled = explain(
        "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is "
        "disabled for the Tenant."
    )
    generic = explain("535 5.7.139 Authentication unsuccessful")
    assert disabled.entry != generic.entry
    assert "SmtpClientAuthenticationDisabled" in disabled.fix


def test_a_bounce_is_searched_for_its_codes() -> None:
    bounce = (
        "Delivery has failed to these recipients or groups:\n\nbob@example.org\n"
        "Remote Server returned '550 5.7.60 SMTP; Client does not have permissions to send "
        "as this sender'\n"
    )
    result = explain(bounce)
    assert (result.code, result.enhanced, result.entry) == (550, "5.7.60", "m365.send_as_denied")
    assert result.permanent is True


def test_an_unknown_code_is_not_recognised_and_gets_its_rfc3463_class_meaning() -> None:
    result = explain("550 5.7.999 Some rule nobody has heard of")
    assert not result.recognised
    assert result.enhanced == "5.7.999"
    assert "Not recognised" in result.cause
    assert "permanent failure" in result.cause and "security or policy" in result.cause
    assert result.source == "RFC 3463 §3"


def test_an_unknown_transient_code_says_it_is_transient() -> None:
    result = explain("451 4.4.9 whatever")
    assert not result.recognised
    assert result.permanent is False
    assert "transient" in result.class_meaning and "routing" in result.subject_meaning


def test_text_without_any_code_is_honestly_not_recognised() -> None:
    result = explain("the printer says no")
    assert not result.recognised
    assert (result.code, result.enhanced) == (None, None)
    assert "no SMTP reply code" in result.cause


def test_hostile_input_does_not_crash_or_hang() -> None:
    for text in ("", "5." * 50_000, "\x00\xff" * 1000, "5.7.1" * 10_000, "9.9.9 999"):
        explain(text)


def test_parse_reply_reads_leading_zeros_and_ignores_version_numbers() -> None:
    assert parse_reply("550 5.07.060 no") == (550, "5.7.60")
    assert parse_reply("mailer 10.5.7.1 said hello") == (None, None)


def test_every_entry_has_a_source_and_a_unique_name() -> None:
    names = [e.name for e in ENTRIES]
    assert len(names) == len(set(names))
    assert all(e.source and e.cause.endswith(".") for e in ENTRIES)
