"""Reply codes and bounce texts turned into a cause and a fix (DOMAIN.md §3; RFC 3463 classes).

This is the only place reply-code explanations live: the probe's ``smtp.auth_failed``
finding, ``sendready explain`` and the API all call :func:`explain`. Matching goes from
the most specific entry to the least: enhanced code plus a text fragment (Microsoft reuses
``5.7.139`` for several causes), then the enhanced code alone, then a provider's wording,
then the basic reply code. A reply that matches nothing is said to be not recognised, with
what its RFC 3463 class and subject mean, never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
# "4/5.7.321": Microsoft writes the DANE codes once for both classes.
_BOTH_CLASSES = re.compile(r"(?<![\d.])4/5\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_BASIC = re.compile(r"(?<![\d.])([2345][0-5]\d)(?=[ \-]|$)", re.MULTILINE)

CLASS_MEANING = {
    "2": "success: the server accepted the request",
    "4": "persistent transient failure: the request may succeed if retried later",
    "5": "permanent failure: retrying the same message will fail the same way",
}

SUBJECT_MEANING = {
    "0": "other or undefined status",
    "1": "addressing status (the address of a sender or recipient)",
    "2": "mailbox status (the recipient's mailbox)",
    "3": "mail system status (the receiving system)",
    "4": "network and routing status",
    "5": "mail delivery protocol status (the SMTP exchange itself)",
    "6": "message content or media status",
    "7": "security or policy status (authentication, authorisation, reputation)",
}


@dataclass(frozen=True, slots=True)
class Explanation:
    """What a pasted reply or bounce means, and what to do about it."""

    recognised: bool
    code: int | None  # the basic reply code (RFC 5321 §4.2), if one was found
    enhanced: str | None  # the enhanced status code (RFC 3463), if one was found
    cause: str
    fix: str
    source: str  # where the explanation comes from (RFC section or provider document)
    class_meaning: str = ""
    subject_meaning: str = ""
    entry: str = ""  # which table entry matched, for tests and the API

    @property
    def permanent(self) -> bool | None:
        first = (self.enhanced or str(self.code or ""))[:1]
        return {"4": False, "5": True}.get(first)


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    cause: str
    fix: str
    source: str
    enhanced: tuple[str, ...] = ()  # "5.7.139"; "x.7.321" matches both 4.7.321 and 5.7.321
    basic: tuple[int, ...] = ()
    fragments: tuple[str, ...] = ()  # regexes, case-insensitive, any of them
    #: Only when the reply carries no enhanced code (a specific code has its own entry).
    bare: bool = False

    def specificity(self) -> int:
        # A provider's own wording beats a generic code it happens to reuse (Yahoo's
        # "[TSS04]" comes with the generic 4.7.0).
        return (4 if self.fragments else 0) + (2 if self.enhanced else 0) + (1 if self.basic else 0)


_M365_SWITCHES = (
    "Set-CASMailbox -Identity <address> -SmtpClientAuthenticationDisabled $false (per mailbox, "
    "preferred) or Set-TransportConfig -SmtpClientAuthenticationDisabled $false (organisation)"
)

ENTRIES: tuple[_Entry, ...] = (
    # -- Microsoft 365 / Exchange Online ------------------------------------------------
    _Entry(
        "m365.smtp_auth_disabled",
        "SMTP AUTH is turned off for the organisation or for this mailbox.",
        f"Enable it: {_M365_SWITCHES}; or move the client to OAuth or a relay connector.",
        "Microsoft docs: Enable or disable SMTP AUTH in Exchange Online",
        enhanced=("5.7.139",),
        fragments=(r"SmtpClientAuthentication is disabled",),
    ),
    _Entry(
        "m365.legacy_auth_blocked",
        "Security Defaults or a Conditional Access policy blocks legacy authentication, MFA is "
        "required, or the account is locked.",
        "Use OAuth (XOAUTH2, scope https://outlook.office.com/SMTP.Send); exclude the account "
        "from the Conditional Access policy only with care; unlock the account if it is locked.",
        "Microsoft docs: Exchange Online SMTP AUTH troubleshooting",
        enhanced=("5.7.139",),
        fragments=(
            r"basic authentication is disabled",
            r"did not meet the criteria to be authenticated",
            r"account (is )?locked",
            r"security defaults",
            r"conditional access",
        ),
    ),
    _Entry(
        "m365.federation_failed",
        "On-premises federation (AD FS) could not be reached or does not speak TLS 1.2.",
        "Fix the federation service: make it reachable from Microsoft 365 and enable TLS 1.2 "
        "on the STS.",
        "Microsoft docs: Exchange Online SMTP AUTH troubleshooting",
        enhanced=("5.7.139",),
        fragments=(r"federated STS service", r"does not support HTTPS"),
    ),
    _Entry(
        "m365.auth_unsuccessful_5_7_139",
        "Microsoft 365 refused the sign-in: SMTP AUTH is disabled for the tenant or mailbox, or "
        "Security Defaults / Conditional Access block it.",
        f"Check Get-CASMailbox <address> | fl SmtpClientAuthenticationDisabled; {_M365_SWITCHES}; "
        "or use OAuth.",
        "Microsoft docs: Enable or disable SMTP AUTH in Exchange Online",
        enhanced=("5.7.139",),
    ),
    _Entry(
        "m365.auth_unsuccessful",
        "Wrong credentials, SMTP AUTH disabled for the mailbox, or MFA / Security Defaults "
        "blocking a password sign-in.",
        "Check Get-CASMailbox <address> | fl SmtpClientAuthenticationDisabled, then the "
        "credentials; prefer OAuth (XOAUTH2).",
        "Microsoft docs: Fix issues with printers, scanners, and LOB apps",
        enhanced=("5.7.3",),
    ),
    _Entry(
        "m365.client_not_authenticated",
        "The client sent MAIL FROM without authenticating, or direct-send settings point at "
        "smtp.office365.com; with OAuth, the token is missing or invalid.",
        "Enter credentials (or a valid token with scope https://outlook.office.com/SMTP.Send); "
        "for direct send without AUTH use <domain-dashes>.mail.protection.outlook.com on 25.",
        "Microsoft docs: Fix issues with printers, scanners, and LOB apps",
        enhanced=("5.7.57",),
    ),
    _Entry(
        "m365.send_as_denied",
        "The From address is not the authenticated mailbox, and Send As is not granted.",
        "Grant Send As (Add-RecipientPermission <from> -Trustee <mailbox> -AccessRights SendAs) "
        "or Send on Behalf, send from the mailbox's own address, or use a relay connector.",
        "Microsoft docs: Exchange Online NDR 5.7.60",
        enhanced=("5.7.60",),
    ),
    _Entry(
        "m365.restricted_sender",
        "The mailbox was put in Restricted entities for sending spam.",
        "Secure the account (reset the password, check inbox rules and MFA), then release it in "
        "the Microsoft Defender portal (Restricted entities).",
        "Microsoft docs: Exchange Online NDR 5.1.8",
        enhanced=("5.1.8",),
    ),
    _Entry(
        "m365.basic_auth_retired",
        "Basic authentication is retired for client submission in this tenant.",
        "Move the client to OAuth (XOAUTH2, scope https://outlook.office.com/SMTP.Send).",
        "Microsoft Exchange Team blog: SMTP AUTH basic authentication retirement",
        enhanced=("5.7.30",),
    ),
    _Entry(
        "m365.dane_starttls_not_supported",
        "Exchange Online's outbound DANE check failed: the recipient's MX publishes TLSA but "
        "does not offer STARTTLS.",
        "Nothing to fix on the sender side: tell the recipient's admin their MX has TLSA records "
        "but no STARTTLS. A 4.x reply is retried, a 5.x one bounced.",
        "Microsoft docs: how SMTP DANE works",
        enhanced=("x.7.321",),
    ),
    _Entry(
        "m365.dane_certificate_expired",
        "Exchange Online's outbound DANE check failed: the recipient's MX certificate expired.",
        "Nothing to fix on the sender side: tell the recipient's admin to renew the MX "
        "certificate (and update TLSA if it pins the key).",
        "Microsoft docs: how SMTP DANE works",
        enhanced=("x.7.322",),
    ),
    _Entry(
        "m365.dane_tlsa_invalid",
        "Exchange Online's outbound DANE check failed: the recipient's MX certificate does not "
        "match its TLSA records.",
        "Nothing to fix on the sender side: tell the recipient's admin their TLSA records do not "
        "match the certificate the MX presents.",
        "Microsoft docs: how SMTP DANE works",
        enhanced=("x.7.323",),
    ),
    _Entry(
        "m365.dane_dnssec_invalid",
        "Exchange Online's outbound DANE check failed: the recipient's DNSSEC is bogus.",
        "Nothing to fix on the sender side: tell the recipient's admin their DNSSEC chain does "
        "not validate.",
        "Microsoft docs: how SMTP DANE works",
        enhanced=("x.7.324",),
    ),
    # -- Outlook.com -------------------------------------------------------------------
    _Entry(
        "outlookcom.authentication_level",
        "Outlook.com's high-volume sender rule: the sending domain does not meet the required "
        "authentication level.",
        "Make SPF pass, DKIM pass, and publish DMARC (at least p=none) aligned with the From "
        "domain.",
        "Outlook.com high-volume sender requirements (May 2025)",
        enhanced=("5.7.515",),
    ),
    _Entry(
        "outlookcom.ip_reputation",
        "Outlook.com rate-limits or blocks the sending IP because of its reputation.",
        "Slow down, clean the list, and request delisting through the Outlook.com sender "
        "support form; check SNDS for the IP.",
        "Outlook.com reply text as commonly reported (secondary sources)",
        fragments=(r"4\.7\.650", r"\bS3150\b", r"weren't sent\. Please contact your Internet"),
    ),
    # -- Gmail -------------------------------------------------------------------------
    _Entry(
        "gmail.no_dmarc_alignment",
        "Gmail rate-limits bulk mail whose From domain is aligned with neither SPF nor DKIM.",
        "Align the From domain with the SPF (MAIL FROM) or DKIM (d=) domain of the sending "
        "service, and publish DMARC.",
        "Gmail sender guidelines (quoted by Mailgun)",
        enhanced=("4.7.32",),
    ),
    _Entry(
        "gmail.unauthenticated",
        "SPF and DKIM both failed, or the From domain's DMARC policy rejects the message.",
        "Set up SPF and DKIM for the sending service and align them with the From domain.",
        "Gmail sender guidelines (wording uncertain)",
        enhanced=("5.7.26",),
        fragments=(r"unauthenticated", r"DMARC policy"),
    ),
    _Entry(
        "gmail.bad_credentials",
        "Bad credentials, or password sign-in is no longer allowed for this account.",
        "Use an app password (with 2-Step Verification) or OAuth (XOAUTH2, scope "
        "https://mail.google.com/).",
        "Google Workspace: less secure apps retirement (secondary sources)",
        enhanced=("5.7.8",),
        fragments=(r"Username and Password not accepted",),
    ),
    _Entry(
        "gmail.rate_unsolicited",
        "Gmail sees an unusual rate of unsolicited mail from this IP or domain.",
        "Slow down, send only to people who asked for mail, add one-click unsubscribe, and "
        "watch Postmaster Tools.",
        "Gmail reply text as commonly reported (secondary sources)",
        enhanced=("4.7.28",),
    ),
    # -- Yahoo -------------------------------------------------------------------------
    _Entry(
        "yahoo.tss04_deferred",
        "Yahoo temporarily defers mail from this IP because of volume or user complaints.",
        "Slow down and reduce complaints (authenticate, one-click unsubscribe, remove inactive "
        "addresses); Yahoo retries are normal for a while.",
        "Yahoo Sender Hub: SMTP error codes (TSS04)",
        fragments=(r"\[TSS04\]",),
    ),
    _Entry(
        "yahoo.tss09_blocked",
        "Yahoo permanently defers all mail from this IP.",
        "Fix the cause (complaints, compromised sender), then ask for a review through the "
        "Yahoo Sender Hub.",
        "Yahoo Sender Hub: SMTP error codes (TSS09)",
        fragments=(r"\[TSS09\]",),
    ),
    _Entry(
        "yahoo.policy",
        "Yahoo refused the message for policy reasons (authentication, content or reputation).",
        "Authenticate with SPF, DKIM and DMARC aligned to the From domain; check the content "
        "and the sending IP's reputation.",
        "Yahoo Sender Hub: SMTP error codes",
        enhanced=("5.7.9",),
        fragments=(r"not accepted for policy reasons",),
    ),
    # -- RFC 3207, RFC 4954, RFC 7505, RFC 7372 ------------------------------------------
    _Entry(
        "rfc3207.starttls_first",
        "The client skipped STARTTLS; the server requires TLS before this command.",
        "Enable STARTTLS in the client (port 587), or use implicit TLS on 465 where offered.",
        "RFC 3207 §4",
        enhanced=("5.7.0",),
        fragments=(r"STARTTLS", r"must issue a STARTTLS"),
    ),
    _Entry(
        "rfc4954.auth_required",
        "Authentication is required before this command.",
        "Configure the client to authenticate (AUTH) after STARTTLS.",
        "RFC 4954 §6",
        enhanced=("5.7.0",),
        basic=(530,),
    ),
    _Entry(
        "rfc4954.credentials_invalid",
        "The credentials were not accepted.",
        "Check the user name and password (or token); for Microsoft 365 and Google prefer OAuth.",
        "RFC 4954 §6",
        enhanced=("5.7.8",),
    ),
    _Entry(
        "rfc4954.mechanism_too_weak",
        "The authentication mechanism is too weak for this server's policy.",
        "Pick a stronger mechanism from the EHLO AUTH list, or authenticate after STARTTLS.",
        "RFC 4954 §6",
        enhanced=("5.7.9",),
        basic=(534,),
    ),
    _Entry(
        "rfc4954.encryption_required",
        "This mechanism needs an encrypted connection.",
        "Issue STARTTLS before AUTH, or use implicit TLS on 465.",
        "RFC 4954 §6",
        enhanced=("5.7.11",),
    ),
    _Entry(
        "rfc4954.temporary_failure",
        "Authentication failed for a temporary reason on the server.",
        "Retry later; if it persists, ask the provider.",
        "RFC 4954 §6",
        enhanced=("4.7.0",),
        basic=(454,),
    ),
    _Entry(
        "rfc4954.password_transition",
        "The server needs a password transition before this mechanism can be used.",
        "Sign in once with a plain mechanism over TLS (or change the password), then retry.",
        "RFC 4954 §6",
        enhanced=("4.7.12",),
    ),
    _Entry(
        "rfc4954.line_too_long",
        "The authentication exchange line was too long.",
        "Send the initial response in a continuation line instead of on the AUTH line.",
        "RFC 4954 §4",
        enhanced=("5.5.6",),
    ),
    _Entry(
        "rfc4954.unknown_mechanism",
        "The server does not support this authentication mechanism.",
        "Use one of the mechanisms the server lists after EHLO (AUTH ...).",
        "RFC 4954 §4",
        enhanced=("5.5.4",),
        basic=(504,),
    ),
    _Entry(
        "rfc7505.null_mx_recipient",
        "The recipient's domain publishes a null MX: it accepts no mail.",
        "Fix the recipient's address; the domain cannot receive mail.",
        "RFC 7505 §4.2",
        enhanced=("5.1.10",),
    ),
    _Entry(
        "rfc7505.null_mx_sender",
        "The sender's domain publishes a null MX, so receivers refuse mail from it.",
        "Do not send from a domain with a null MX, or replace the null MX with real MX records.",
        "RFC 7505 §4.2",
        enhanced=("5.7.27",),
    ),
    _Entry(
        "rfc7372.no_dkim",
        "No passing DKIM signature was found.",
        "Enable DKIM signing at the sending service and publish its key.",
        "RFC 7372 §3.1",
        enhanced=("5.7.20",),
    ),
    _Entry(
        "rfc7372.no_acceptable_dkim",
        "No acceptable DKIM signature was found (e.g. a weak key or a bad algorithm).",
        "Sign with a 2048-bit RSA or an Ed25519 key and rsa-sha256 or ed25519-sha256.",
        "RFC 7372 §3.1",
        enhanced=("5.7.21",),
    ),
    _Entry(
        "rfc7372.no_aligned_dkim",
        "No valid DKIM signature aligned with the author (From) domain.",
        "Sign with d= equal to the From domain (or its organizational domain).",
        "RFC 7372 §3.1",
        enhanced=("5.7.22",),
    ),
    _Entry(
        "rfc7372.spf_fail",
        "SPF validation failed for the sending IP.",
        "Add the sending service to the domain's SPF record (include: or ip4:/ip6:).",
        "RFC 7372 §3.2",
        enhanced=("5.7.23",),
    ),
    _Entry(
        "rfc7372.spf_error",
        "SPF evaluation gave an error (syntax error or too many lookups).",
        "Fix the SPF record: one v=spf1 record, at most 10 DNS-querying terms.",
        "RFC 7372 §3.2",
        enhanced=("5.7.24",),
    ),
    _Entry(
        "rfc7372.reverse_dns",
        "The sending IP has no valid reverse DNS (PTR with a matching forward address).",
        "Publish a PTR for the sending IP whose name resolves back to the same IP.",
        "RFC 7372 §3.3",
        enhanced=("5.7.25",),
    ),
    _Entry(
        "rfc7372.multiple_failed",
        "Several authentication checks failed at once.",
        "Fix SPF, DKIM and DMARC alignment for the sending service.",
        "RFC 7372 §3.4",
        enhanced=("5.7.26",),
    ),
    # -- basic codes alone ---------------------------------------------------------------
    _Entry(
        "auth.unsuccessful_xoauth2",
        "The token was refused: wrong scope or audience, SMTP AUTH or OAuth2ClientProfileEnabled "
        "off, or an app-only token without SMTP.SendAsApp or consent.",
        "Request scope https://outlook.office.com/SMTP.Send (delegated) or .default with "
        "SMTP.SendAsApp (app-only); check Set-OrganizationConfig -OAuth2ClientProfileEnabled.",
        "Microsoft docs: Authenticate an SMTP connection using OAuth",
        basic=(535,),
        fragments=(r"XOAUTH2", r"OAuth"),
        bare=True,
    ),
    _Entry(
        "rfc4954.auth_failed",
        "Authentication failed.",
        "Check the credentials or token and that the account may use SMTP AUTH.",
        "RFC 4954 §6",
        basic=(535,),
    ),
    _Entry(
        "rfc5321.service_unavailable",
        "The server is not available and is closing the connection (often overload or a "
        "block of the client's IP).",
        "Retry later; if it persists, the server may be refusing your IP.",
        "RFC 5321 §4.2.3",
        basic=(421,),
    ),
    _Entry(
        "rfc5321.no_service",
        "The server refuses to talk SMTP with this client (a policy block or no service).",
        "Check whether the client's IP is on a blocklist, or use the provider's submission "
        "endpoint.",
        "RFC 5321 §3.1",
        basic=(554,),
    ),
)


def _canon(enhanced: str) -> str:
    """Leading zeros are not significant in the numbers of an enhanced code (RFC 3463 §2)."""
    return ".".join(str(int(part)) for part in enhanced.split("."))


def parse_reply(text: str) -> tuple[int | None, str | None]:
    """The first basic reply code and the first enhanced status code found in ``text``."""
    enhanced: str | None = None
    both = _BOTH_CLASSES.search(text)
    found = _ENHANCED.search(text)
    if both and (not found or both.start() < found.start()):
        enhanced = _canon(f"5.{both.group(1)}.{both.group(2)}")
    elif found:
        enhanced = _canon(".".join(found.groups()))
    basic_match = _BASIC.search(text)
    basic = int(basic_match.group(1)) if basic_match else None
    return basic, enhanced


def _entry_matches(entry: _Entry, text: str, basic: int | None, enhanced: str | None) -> bool:
    if entry.bare and enhanced is not None:
        return False
    if entry.enhanced:
        if enhanced is None:
            return False
        codes = {e if not e.startswith("x.") else enhanced[0] + e[1:] for e in entry.enhanced}
        if enhanced not in codes:
            return False
    if entry.basic and not entry.enhanced and basic not in entry.basic:
        return False
    return not entry.fragments or any(re.search(f, text, re.IGNORECASE) for f in entry.fragments)


_ORDERED = sorted(ENTRIES, key=lambda e: -e.specificity())


def explain(text: str) -> Explanation:
    """Explain a pasted SMTP reply or bounce. Never raises; unknown codes are said to be so."""
    text = text.strip()[:20_000]  # bounces can be long; the codes are near the top
    basic, enhanced = parse_reply(text)
    klass = (enhanced or (str(basic) if basic else ""))[:1]
    subject = enhanced.split(".")[1] if enhanced else ""
    class_meaning = CLASS_MEANING.get(klass, "")
    subject_meaning = SUBJECT_MEANING.get(subject, "") if subject else ""
    for entry in _ORDERED:
        if _entry_matches(entry, text, basic, enhanced):
            return Explanation(
                True,
                basic,
                enhanced,
                entry.cause,
                entry.fix,
                entry.source,
                class_meaning,
                subject_meaning,
                entry.name,
            )
    if basic is None and enhanced is None:
        cause = "Not recognised: no SMTP reply code or enhanced status code found in the text."
    else:
        shown = " ".join(str(c) for c in (basic, enhanced) if c)
        meaning = "; ".join(m for m in (class_meaning, subject_meaning) if m)
        cause = f"Not recognised: {shown} is not in SendReady's table." + (
            f" Its class means {meaning}." if meaning else ""
        )
    fix = (
        "Read the text after the code: receivers usually name the rule they applied. "
        + ("Retrying later may help (4xx)." if klass == "4" else "")
    ).strip()
    return Explanation(
        False, basic, enhanced, cause, fix, "RFC 3463 §3", class_meaning, subject_meaning
    )
