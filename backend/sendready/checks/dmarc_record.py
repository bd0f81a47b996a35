"""The DMARC record grammar (RFC 9989 §4.7, §4.8): parse a TXT string into frozen tags.

Only a missing or bad first ``v=DMARC1`` voids a record. Every other syntax error makes
that one tag fall back to its default and is kept as an issue, so the check can say
exactly what a receiver will ignore.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from ..dns.names import InvalidInput, normalize_domain

VERSION = "DMARC1"
POLICIES = ("none", "quarantine", "reject")

#: The defaults of RFC 9989 §4.7 for the tags that have one.
DEFAULTS: Mapping[str, str] = {"adkim": "r", "aspf": "r", "psd": "u", "t": "n", "fo": "0"}
KNOWN = ("v", "p", "sp", "np", "adkim", "aspf", "psd", "t", "rua", "ruf", "fo")
#: Tags of RFC 7489 that RFC 9989 removed; receivers ignore them now.
REMOVED = ("pct", "rf", "ri")

_TAG_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_WSP = " \t"
# RFC 7489 §6.2 size suffix: digits and an optional unit, after an unescaped "!".
_SIZE = re.compile(r"^[0-9]+[kmgtKMGT]?$")


class IssueKind:
    """Why a tag was not taken as written (plain strings so issues serialise as they are)."""

    SYNTAX = "syntax"
    INVALID_VALUE = "invalid_value"
    REMOVED = "removed"
    UNKNOWN = "unknown"
    SIZE_LIMIT = "size_limit"
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class TagIssue:
    kind: str
    tag: str
    value: str
    message: str


@dataclass(frozen=True, slots=True)
class ReportUri:
    """One ``rua``/``ruf`` destination: the URI as written and the mailbox it names."""

    raw: str
    scheme: str
    address: str = ""
    domain: str = ""
    size_limit: str = ""


@dataclass(frozen=True, slots=True)
class DmarcRecord:
    """A record whose first tag is ``v=DMARC1``, with every tag resolved to its value in force.

    ``p``/``sp``/``np`` are ``None`` when absent or invalid; ``tags`` keeps what was written
    (tag names lower-cased, first occurrence only).
    """

    text: str
    tags: tuple[tuple[str, str], ...]
    p: str | None
    sp: str | None
    np: str | None
    adkim: str
    aspf: str
    psd: str
    t: str
    rua: tuple[ReportUri, ...]
    ruf: tuple[ReportUri, ...]
    fo: tuple[str, ...]
    issues: tuple[TagIssue, ...]

    def has(self, tag: str) -> bool:
        return any(name == tag for name, _ in self.tags)

    def written(self, tag: str) -> str | None:
        return next((value for name, value in self.tags if name == tag), None)

    @property
    def testing(self) -> bool:
        return self.t == "y"


def starts_with_version(text: str) -> bool:
    """True when the first tag is exactly ``v=DMARC1`` (RFC 9989 §4.7; value case-sensitive).

    Leading whitespace breaks this on purpose: the grammar starts with the ``v`` tag.
    """
    if not text[:1] or text[0] not in "vV":
        return False
    first = text.split(";", 1)[0]
    name, sep, value = first.partition("=")
    return bool(sep) and name.rstrip(_WSP) in ("v", "V") and value.strip(_WSP) == VERSION


# What a record meant as DMARC starts with, however mangled: spaces before or around `v`,
# a lower-case version, or a missing ";" after it.
_MEANT = re.compile(r"^\s*v\s*=\s*dmarc1(?=$|[\s;a-z])\s*;?\s*", re.IGNORECASE)


def looks_like_dmarc(text: str) -> bool:
    """A record meant as DMARC that a receiver will discard (it does not start ``v=DMARC1``)."""
    return bool(_MEANT.match(text)) and not starts_with_version(text)


def repair_version(text: str) -> str:
    """The record as it was probably meant, starting with exactly ``v=DMARC1; ``."""
    match = _MEANT.match(text)
    rest = text[match.end() :].strip() if match else text.strip()
    return f"v=DMARC1; {rest}" if rest else "v=DMARC1"


def parse(text: str) -> DmarcRecord | None:
    """Parse a DMARC record, or return None when its first tag is not ``v=DMARC1``."""
    if not starts_with_version(text):
        return None
    issues: list[TagIssue] = []
    tags: list[tuple[str, str]] = []
    parts = text.split(";")
    for position, part in enumerate(parts[1:], start=1):
        item = part.strip(_WSP)
        if not item:
            continue  # an empty tag list element: "p=none;;" and a trailing ";" are allowed
        name, sep, value = item.partition("=")
        name = name.rstrip(_WSP)
        value = value.strip(_WSP)
        if not sep or not _TAG_NAME.match(name):
            issues.append(
                TagIssue(
                    IssueKind.SYNTAX,
                    name if sep else "",
                    item,
                    f"`{item}` (element {position + 1}) is not a tag=value pair",
                )
            )
            continue
        name = name.lower()
        if name == "v":
            issues.append(TagIssue(IssueKind.SYNTAX, name, value, "`v` may only be the first tag"))
            continue
        if any(existing == name for existing, _ in tags):
            issues.append(
                TagIssue(
                    IssueKind.SYNTAX,
                    name,
                    value,
                    f"`{name}` appears more than once; only the first one counts",
                )
            )
            continue
        tags.append((name, value))
    written = dict(tags)

    def keyword(tag: str, allowed: tuple[str, ...]) -> str | None:
        raw = written.get(tag)
        if raw is None:
            return None
        if raw.lower() in allowed:
            return raw.lower()
        choices = ", ".join(allowed)
        fallback = DEFAULTS.get(tag)
        then = f"receivers use the default `{tag}={fallback}`" if fallback else "it is ignored"
        issues.append(
            TagIssue(
                IssueKind.INVALID_VALUE,
                tag,
                raw,
                f"`{tag}={raw}` is not one of {choices}; {then}",
            )
        )
        return None

    p = keyword("p", POLICIES)
    sp = keyword("sp", POLICIES)
    np = keyword("np", POLICIES)
    adkim = keyword("adkim", ("r", "s")) or DEFAULTS["adkim"]
    aspf = keyword("aspf", ("r", "s")) or DEFAULTS["aspf"]
    psd = keyword("psd", ("y", "n", "u")) or DEFAULTS["psd"]
    t = keyword("t", ("y", "n")) or DEFAULTS["t"]
    rua = _uris("rua", written.get("rua"), issues)
    ruf = _uris("ruf", written.get("ruf"), issues)
    fo = _fo(written.get("fo"), issues)
    if "fo" in written and not written.get("ruf"):
        issues.append(
            TagIssue(
                IssueKind.IGNORED,
                "fo",
                written["fo"],
                "`fo` only affects failure reports, and there is no `ruf`",
            )
        )
    for name, value in tags:
        if name in REMOVED:
            issues.append(
                TagIssue(
                    IssueKind.REMOVED,
                    name,
                    value,
                    f"`{name}` was removed from DMARC by RFC 9989; receivers ignore it",
                )
            )
        elif name not in KNOWN:
            issues.append(
                TagIssue(
                    IssueKind.UNKNOWN, name, value, f"`{name}` is not a DMARC tag; it is ignored"
                )
            )
    return DmarcRecord(
        text=text,
        tags=tuple(tags),
        p=p,
        sp=sp,
        np=np,
        adkim=adkim,
        aspf=aspf,
        psd=psd,
        t=t,
        rua=rua,
        ruf=ruf,
        fo=fo,
        issues=tuple(issues),
    )


def _uris(tag: str, raw: str | None, issues: list[TagIssue]) -> tuple[ReportUri, ...]:
    if raw is None:
        return ()
    out: list[ReportUri] = []
    for item in raw.split(","):
        text = item.strip(_WSP)
        if not text:
            issues.append(TagIssue(IssueKind.SYNTAX, tag, raw, f"`{tag}` has an empty URI"))
            continue
        uri, problem = parse_uri(text)
        if uri is None:
            issues.append(
                TagIssue(IssueKind.INVALID_VALUE, tag, text, f"`{tag}`: `{text}` {problem}")
            )
            continue
        if uri.size_limit:
            issues.append(
                TagIssue(
                    IssueKind.SIZE_LIMIT,
                    tag,
                    text,
                    f"`{tag}`: the size limit `!{uri.size_limit}` is obsolete (RFC 9990); "
                    "receivers ignore it",
                )
            )
        out.append(uri)
    return tuple(out)


def parse_uri(text: str) -> tuple[ReportUri | None, str]:
    """Parse one report URI; (None, why) when it cannot be used."""
    size = ""
    body = text
    if "!" in text:
        body, _, size = text.rpartition("!")
        if not _SIZE.match(size):
            return None, "has a `!` that is not a size limit (a literal `!` must be `%21`)"
    scheme, sep, rest = body.partition(":")
    if not sep or not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*$", scheme):
        return None, "is not a URI (expected e.g. `mailto:dmarc@example.com`)"
    scheme = scheme.lower()
    if scheme != "mailto":
        # Receivers must support mailto; other schemes are allowed but may never be used.
        host = urllib.parse.urlsplit(body).hostname or ""
        return ReportUri(text, scheme, "", host.lower(), size), ""
    address = urllib.parse.unquote(rest.split("?", 1)[0])
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return None, "is not a mailto: URI with a mailbox (expected `mailto:local@domain`)"
    try:
        domain = normalize_domain(domain)
    except InvalidInput as exc:
        return None, f"names a bad mail domain: {exc}"
    if "." not in domain:
        return None, f"names the single-label domain `{domain}`"
    return ReportUri(text, scheme, f"{local}@{domain}", domain, size), ""


def _fo(raw: str | None, issues: list[TagIssue]) -> tuple[str, ...]:
    if raw is None:
        return (DEFAULTS["fo"],)
    options = tuple(o.strip(_WSP).lower() for o in raw.split(":"))
    bad = [o for o in options if o not in ("0", "1", "d", "s")]
    problem = ""
    if bad:
        problem = f"`{', '.join(bad)}` is not one of 0, 1, d, s"
    elif "0" in options and "1" in options:
        problem = "`0` and `1` exclude each other"
    if problem:
        issues.append(
            TagIssue(
                IssueKind.INVALID_VALUE,
                "fo",
                raw,
                f"`fo={raw}`: {problem}; receivers use the default `fo=0`",
            )
        )
        return (DEFAULTS["fo"],)
    return options


def render(record: DmarcRecord, changes: Mapping[str, str | None]) -> str:
    """The record rewritten with ``changes`` (None removes a tag, new tags go at the end)."""
    out = ["v=DMARC1"]
    seen: set[str] = set()
    for name, value in record.tags:
        seen.add(name)
        if name in changes:
            replacement = changes[name]
            if replacement is None:
                continue
            value = replacement
        out.append(f"{name}={value}")
    for name, added in changes.items():
        if name not in seen and added is not None:
            # p belongs right after v (it is what a reader looks for first).
            if name == "p":
                out.insert(1, f"p={added}")
            else:
                out.append(f"{name}={added}")
    return "; ".join(out)
