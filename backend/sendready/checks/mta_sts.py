"""MTA-STS (RFC 8461): the _mta-sts TXT record, the policy fetched over guarded HTTPS, and whether
the policy's mx patterns cover every MX host (one-label wildcard, whole-name match)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..dns import Lookup
from ..engine import CheckContext, Section
from ..fetch import MTA_STS_LIMIT, FetchError, FetchResult, fetch
from ..model import Finding, Severity, rule
from .services import mx_names

POLICY_PATH = "/.well-known/mta-sts.txt"
MAX_AGE_LIMIT = 31_557_600
MODES = ("enforce", "testing", "none")
#: The max_age a suggested policy starts with: a week (RFC 8461 §3.2 recommends weeks).
SUGGESTED_MAX_AGE = 604_800
_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")

NOT_PUBLISHED = rule(
    "mta_sts.not_published",
    "No MTA-STS record: senders cannot require TLS to the MX hosts.",
    "RFC 8461 §3.1",
    Severity.INFO,
)
TXT_INVALID = rule(
    "mta_sts.record_invalid",
    "The _mta-sts TXT record is malformed or there is more than one.",
    "RFC 8461 §3.1",
    Severity.WARNING,
)
UNREACHABLE = rule(
    "mta_sts.policy_unreachable",
    "The MTA-STS policy cannot be fetched from https://mta-sts.<domain>/.well-known/mta-sts.txt.",
    "RFC 8461 §3.3",
    Severity.WARNING,
)
MEDIA_TYPE = rule(
    "mta_sts.policy_media_type",
    "The MTA-STS policy is not served as text/plain.",
    "RFC 8461 §3.2",
    Severity.INFO,
)
MX_MISMATCH = rule(
    "mta_sts.mx_mismatch",
    "An MX host is not covered by any mx: pattern of the MTA-STS policy.",
    "RFC 8461 §4.1",
    Severity.CRITICAL,
)
MODE = rule(
    "mta_sts.mode",
    "The MTA-STS policy mode: enforce protects; testing only reports; none withdraws.",
    "RFC 8461 §5",
    Severity.INFO,
)
MAX_AGE = rule(
    "mta_sts.max_age_short",
    "The MTA-STS max_age is under a day: senders forget the policy quickly.",
    "RFC 8461 §3.2",
    Severity.INFO,
)


@dataclass(frozen=True, slots=True)
class Policy:
    """A parsed policy file, or why it cannot be used (``error``)."""

    version: str = ""
    mode: str = ""
    max_age: int | None = None
    mx: tuple[str, ...] = ()
    error: str = ""


@dataclass(frozen=True, slots=True)
class MtaStsFacts:
    domain: str
    published: bool  # a v=STSv1 TXT record exists (even if broken)
    record: str = ""
    policy_id: str = ""
    policy: Policy | None = None
    fetch_error: str = ""
    mx_hosts: tuple[str, ...] = ()
    uncovered: tuple[str, ...] = ()


# -- pure --------------------------------------------------------------------------


def sts_records(texts: tuple[str, ...]) -> tuple[str, ...]:
    """The TXT records that start with v=STSv1 (§3.1: others are discarded)."""
    return tuple(t for t in texts if re.match(r"^v=STSv1\s*(;|$)", t))


def parse_txt(text: str) -> tuple[str, str]:
    """(id, error) of one v=STSv1 record."""
    fields: dict[str, str] = {}
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep:
            return "", f"{part!r} is not a field=value pair"
        if name.strip() in fields:
            return "", f"the field {name.strip()}= appears twice"
        fields[name.strip()] = value.strip()
    policy_id = fields.get("id", "")
    if not policy_id:
        return "", "the required id= field is missing"
    if not _ID.match(policy_id):
        return policy_id, f"id={policy_id!r} must be 1 to 32 letters and digits"
    return policy_id, ""


def parse_policy(body: str) -> Policy:
    """Parse a policy file (§3.2): key: value lines, LF or CRLF, unknown keys ignored."""
    values: dict[str, str] = {}
    mx: list[str] = []
    for number, raw in enumerate(body.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            return Policy(error=f"line {number} ({line[:40]!r}) is not a 'key: value' line")
        key, value = key.strip(), value.strip()
        if key == "mx":
            mx.append(value.lower().rstrip("."))
        elif key not in values:
            values[key] = value
    version, mode = values.get("version", ""), values.get("mode", "")
    if version != "STSv1":
        return Policy(version, mode, error="the first field must be 'version: STSv1'")
    if mode not in MODES:
        return Policy(version, mode, error=f"mode: {mode!r} is not enforce, testing or none")
    age_text = values.get("max_age", "")
    if not age_text.isdigit() or len(age_text) > 10 or int(age_text) > MAX_AGE_LIMIT:
        return Policy(
            version, mode, error=f"max_age {age_text!r} must be whole seconds 0–{MAX_AGE_LIMIT}"
        )
    if not mx and mode != "none":
        return Policy(version, mode, int(age_text), error="at least one mx: line is required")
    return Policy(version, mode, int(age_text), tuple(mx))


def mx_matches(host: str, pattern: str) -> bool:
    """RFC 8461 §4.1: whole-name match; a leading '*.' stands for exactly one label."""
    host = host.lower().rstrip(".")
    pattern = pattern.lower().rstrip(".")
    if pattern.startswith("*."):
        label, dot, rest = host.partition(".")
        return bool(label) and bool(dot) and rest == pattern[2:]
    return host == pattern


def uncovered(hosts: tuple[str, ...], patterns: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(h for h in hosts if not any(mx_matches(h, p) for p in patterns))


def fetch_findings(domain: str, result: FetchResult) -> list[Finding]:
    """Why a fetched policy is unusable; [] when it came back 200."""
    url = result.url
    if result.error is not None and result.error.network:
        return [
            UNREACHABLE.unknown(
                domain,
                f"{url}: {result.reason}. Nothing was learned about the policy.",
                title="Could not fetch the MTA-STS policy",
                error=result.error.value,
            )
        ]
    if result.error is not None:
        fixes = {
            FetchError.NO_HOST: f"Publish an A/AAAA record for mta-sts.{domain} pointing at the "
            "web server that serves the policy.",
            FetchError.TLS: f"Serve mta-sts.{domain} with a certificate from a public CA that "
            f"covers the name mta-sts.{domain}.",
            FetchError.TOO_LARGE: "Keep the policy file under 64 KB (it needs only a few lines).",
            FetchError.HTTP: "Serve the policy with a plain HTTP/1.1 200 reply.",
            FetchError.BAD_URL: "Check the domain name.",
        }
        return [
            UNREACHABLE.failed(
                domain,
                f"The MTA-STS policy cannot be used: {result.reason}",
                f"GET {url}: {result.reason}",
                fixes.get(result.error, "Serve the policy file over HTTPS."),
                error=result.error.value,
            )
        ]
    if result.status != 200:
        where = result.header("location")
        detail = f"GET {url} answered HTTP {result.status}" + (
            f" (Location: {where}); senders never follow redirects (RFC 8461 §3.3)" if where else ""
        )
        return [
            UNREACHABLE.failed(
                domain,
                f"The MTA-STS policy URL answers HTTP {result.status}, not 200",
                detail,
                f"Serve the policy itself at {url} with status 200 (no redirect).",
                status=result.status,
            )
        ]
    return []


def policy_text(mode: str, mx: Iterable[str], max_age: int = SUGGESTED_MAX_AGE) -> str:
    """A policy file body (RFC 8461 §3.2, LF line ends): the one the fix text shows and the
    fixes' FILE record serves."""
    lines = ["version: STSv1", f"mode: {mode}", *(f"mx: {m}" for m in mx), f"max_age: {max_age}"]
    return "\n".join(lines) + "\n"


def meant_mode(policy: Policy | None) -> str:
    """The mode to suggest for a policy that cannot be used: the one it meant when that is
    a valid mode, otherwise testing (where a new policy starts)."""
    return policy.mode if policy is not None and policy.mode in MODES else "testing"


def policy_findings(facts: MtaStsFacts, media_type: str = "text/plain") -> list[Finding]:
    domain = facts.domain
    policy = facts.policy
    if policy is None:
        return []
    if policy.error:
        example = policy_text(meant_mode(policy), facts.mx_hosts or (f"mx.{domain}",))
        return [
            UNREACHABLE.failed(
                domain,
                f"The MTA-STS policy is invalid: {policy.error}",
                f"https://mta-sts.{domain}{POLICY_PATH}",
                "Serve a policy like:\n" + example.rstrip("\n"),
            )
        ]
    out: list[Finding] = []
    if media_type and media_type != "text/plain":
        out.append(
            MEDIA_TYPE.failed(
                domain,
                f"The MTA-STS policy is served as {media_type}",
                "RFC 8461 §3.2: the media type SHOULD be text/plain.",
                "Serve /.well-known/mta-sts.txt with Content-Type: text/plain.",
                media_type=media_type,
            )
        )
    if policy.mode != "none":
        severity = Severity.CRITICAL if policy.mode == "enforce" else Severity.WARNING
        for host in facts.uncovered:
            out.append(
                MX_MISMATCH.failed(
                    host,
                    f"The MX host {host} is not covered by the MTA-STS policy of {domain}",
                    f"Policy mx: {', '.join(policy.mx)}; MX hosts: {', '.join(facts.mx_hosts)}. "
                    "'*.' matches exactly one label (RFC 8461 §4.1).",
                    f"Add the line 'mx: {host}' to the policy and change the id= of the "
                    f"_mta-sts.{domain} TXT record.",
                    severity=severity,
                    host=host,
                )
            )
        if facts.mx_hosts and not facts.uncovered:
            out.append(
                MX_MISMATCH.passed(
                    domain,
                    "Every MX host is covered by the MTA-STS policy",
                    f"Policy mx: {', '.join(policy.mx)}; MX hosts: {', '.join(facts.mx_hosts)}",
                )
            )
    if policy.mode == "enforce":
        out.append(MODE.passed(domain, "MTA-STS is in enforce mode", f"max_age {policy.max_age}"))
    else:
        out.append(
            MODE.failed(
                domain,
                f"MTA-STS is in {policy.mode} mode: senders do not require TLS",
                f"mode: {policy.mode}",
                "When TLS-RPT reports show no failures, set mode: enforce and change the id=.",
                mode=policy.mode,
            )
        )
    if policy.max_age is not None and policy.max_age < 86400 and policy.mode != "none":
        out.append(
            MAX_AGE.failed(
                domain,
                f"MTA-STS max_age is {policy.max_age} s",
                "RFC 8461 §3.2 recommends weeks or more.",
                f"Set max_age: {SUGGESTED_MAX_AGE} (a week) or more.",
                max_age=policy.max_age,
            )
        )
    return out


# -- the check -----------------------------------------------------------------------


async def check(ctx: CheckContext) -> Section:
    """The "mta_sts" section."""
    domain = ctx.request.domain
    txt: Lookup = await ctx.dns.query(f"_mta-sts.{domain}", "TXT")
    if txt.failed:
        return Section(
            (UNREACHABLE.unknown(domain, f"TXT _mta-sts.{domain}: {txt.describe()}"),),
            MtaStsFacts(domain, False),
        )
    records = sts_records(txt.texts()) if txt.ok else ()
    if not records:
        return Section(
            (
                NOT_PUBLISHED.failed(
                    domain,
                    "No MTA-STS policy",
                    f"No v=STSv1 TXT record at _mta-sts.{domain}.",
                    f"To require TLS from senders, serve a policy at https://mta-sts.{domain}"
                    f'{POLICY_PATH} and publish TXT _mta-sts.{domain} "v=STSv1; id=<date>".',
                ),
            ),
            MtaStsFacts(domain, False),
        )
    out: list[Finding] = []
    if len(records) > 1:
        out.append(
            TXT_INVALID.failed(
                domain,
                f"{len(records)} v=STSv1 records at _mta-sts.{domain}: senders see no policy",
                " | ".join(records),
                "Keep exactly one v=STSv1 record.",
            )
        )
        return Section(tuple(out), MtaStsFacts(domain, True, records[0]))
    policy_id, error = parse_txt(records[0])
    if error:
        out.append(
            TXT_INVALID.failed(
                domain,
                f"The _mta-sts TXT record is invalid: {error}",
                records[0],
                f'Publish TXT _mta-sts.{domain} "v=STSv1; id=20260101T000000" '
                "(1 to 32 letters and digits).",
            )
        )
    url = f"https://mta-sts.{domain}{POLICY_PATH}"
    result, mx = await asyncio.gather(
        fetch(url, ctx.dns, ctx.settings, max_bytes=MTA_STS_LIMIT, after=txt), mx_names(ctx)
    )
    problems = fetch_findings(domain, result)
    if problems:
        out.extend(problems)
        return Section(
            tuple(out), MtaStsFacts(domain, True, records[0], policy_id, None, result.reason)
        )
    policy = parse_policy(result.body.decode("utf-8", "replace"))
    hosts = mx.hosts
    facts = MtaStsFacts(
        domain,
        True,
        records[0],
        policy_id,
        policy,
        "",
        hosts,
        uncovered(hosts, policy.mx) if not policy.error else (),
    )
    out.extend(policy_findings(facts, result.media_type))
    if mx.reason and not policy.error:
        out.append(
            MX_MISMATCH.unknown(domain, f"The MX hosts are not known: {mx.reason}", hosts=[])
        )
    if not policy.error:
        out.insert(
            0,
            UNREACHABLE.passed(
                domain, f"The MTA-STS policy is published ({policy.mode})", f"GET {url}: 200"
            ),
        )
    return Section(tuple(out), facts)
