"""DKIM: the public keys at the selectors the domain's services use (RFC 6376 §3.6, RFC 8301,
RFC 8463). Keys are read where the selector's CNAME leads; the target is shown, never rebuilt."""

from __future__ import annotations

import asyncio
import base64
import binascii
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from ..dns import Lookup
from ..engine import CheckContext, Section
from ..model import Finding, Severity, rule
from ..providers import COMMON_SELECTORS
from .services import ServicesFacts, dkim_name, known, services_of

MISSING = rule(
    "dkim.missing",
    "A sending service the domain uses has no DKIM key published at any of its selectors.",
    "RFC 6376 §3.6.2.1; DOMAIN.md §2",
    Severity.WARNING,
)
WEAK_KEY = rule(
    "dkim.weak_key",
    "The DKIM key size: below 1024 bits verifiers reject it; below 2048 or above 4096 warn.",
    "RFC 8301 §3.2",
    Severity.WARNING,
)
REVOKED = rule(
    "dkim.revoked",
    "The DKIM record has an empty p=: the key is revoked and signatures with it fail.",
    "RFC 6376 §3.6.1",
    Severity.WARNING,
)
TESTING = rule(
    "dkim.testing_mode",
    "The DKIM key is in testing mode (t=y): receivers may treat signed mail as unsigned.",
    "RFC 6376 §3.6.1",
    Severity.WARNING,
)
SYNTAX = rule(
    "dkim.syntax_error",
    "The DKIM key record cannot be used: bad tag syntax, a duplicated tag, a bad key.",
    "RFC 6376 §3.2, §3.6.1",
    Severity.CRITICAL,
)
MULTIPLE = rule(
    "dkim.multiple_records",
    "More than one TXT record at a selector: verifiers may pick any of them.",
    "RFC 6376 §6.1.2",
    Severity.WARNING,
)
SHA1 = rule(
    "dkim.sha1_only",
    "The key allows only SHA-1 signatures (h=sha1), which verifiers must not accept.",
    "RFC 8301 §3.1",
    Severity.CRITICAL,
)
NOT_EMAIL = rule(
    "dkim.not_for_email",
    "The key's service types (s=) exclude email.",
    "RFC 6376 §3.6.1",
    Severity.CRITICAL,
)
ED25519_ONLY = rule(
    "dkim.ed25519_only",
    "An Ed25519 key: not every receiver verifies Ed25519, so sign with RSA alongside.",
    "RFC 8463 §4",
    Severity.INFO,
)
LOOKUP_FAILED = rule(
    "dkim.lookup_failed",
    "A DKIM key lookup failed (timeout, SERVFAIL): receivers treat that as a temporary failure.",
    "RFC 6376 §6.1.2",
    Severity.WARNING,
)
SELECTOR_UNKNOWN = rule(
    "dkim.selector_unknown",
    "No DKIM key at the selectors tried; DKIM selectors cannot be listed from DNS.",
    "RFC 6376 §3.6.2.1",
    Severity.INFO,
)


@dataclass(frozen=True, slots=True)
class DkimKey:
    """A parsed key record, or why it cannot be used (``error``)."""

    record: str
    tags: tuple[tuple[str, str], ...] = ()
    key_type: str = "rsa"
    bits: int | None = None
    revoked: bool = False
    testing: bool = False
    strict: bool = False
    hashes: tuple[str, ...] = ()
    service_types: tuple[str, ...] = ("*",)
    error: str = ""


@dataclass(frozen=True, slots=True)
class SelectorFacts:
    selector: str
    name: str
    outcome: str
    cname_chain: tuple[str, ...] = ()
    keys: tuple[DkimKey, ...] = ()
    reason: str = ""

    @property
    def target(self) -> str:
        return self.cname_chain[-1] if self.cname_chain else self.name


@dataclass(frozen=True, slots=True)
class DkimFacts:
    domain: str
    selectors: tuple[SelectorFacts, ...] = ()
    expected: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (service id, its selectors)


# -- the record (pure) -------------------------------------------------------------


def parse_tags(text: str) -> tuple[tuple[tuple[str, str], ...], str]:
    """tag=value list of RFC 6376 §3.2; returns (tags, error)."""
    tags: list[tuple[str, str]] = []
    seen: set[str] = set()
    parts = text.split(";")
    for index, raw in enumerate(parts):
        part = raw.strip()
        if not part:
            if index == len(parts) - 1 or not raw:
                continue  # a trailing ';' is allowed
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not name or not all(c.isalnum() or c == "_" for c in name):
            return tuple(tags), f"{part[:40]!r} is not a tag=value pair"
        if name in seen:
            return tuple(tags), f"the tag {name}= appears twice (RFC 6376 §3.2)"
        seen.add(name)
        tags.append((name, "".join(value.split())))  # folding whitespace is not part of a value
    return tuple(tags), ""


def parse_key(text: str) -> DkimKey:
    """Parse one DKIM key record (RFC 6376 §3.6.1; RFC 8463 for ed25519)."""
    tags, error = parse_tags(text)
    if error:
        return DkimKey(text, tags, error=error)
    values = dict(tags)
    if "v" in values and (tags[0][0] != "v" or values["v"] != "DKIM1"):
        return DkimKey(text, tags, error="v= must be DKIM1 and come first")
    key_type = values.get("k", "rsa").lower()
    hashes = tuple(h for h in values.get("h", "").lower().split(":") if h)
    service_types = tuple(s for s in values.get("s", "*").lower().split(":") if s)
    flags = tuple(f for f in values.get("t", "").lower().split(":") if f)
    base = DkimKey(
        text,
        tags,
        key_type=key_type,
        testing="y" in flags,
        strict="s" in flags,
        hashes=hashes,
        service_types=service_types,
    )
    if "p" not in values:
        return _err(base, "the required p= tag (the public key) is missing")
    if values["p"] == "":
        return DkimKey(
            text, tags, key_type, None, True, base.testing, base.strict, hashes, service_types
        )
    try:
        raw = base64.b64decode(values["p"], validate=True)
    except (binascii.Error, ValueError):
        return _err(base, "p= is not valid base64")
    if key_type == "ed25519":
        if len(raw) != 32:
            return _err(base, f"an Ed25519 p= must be exactly 32 bytes, this one is {len(raw)}")
        try:
            ed25519.Ed25519PublicKey.from_public_bytes(raw)
        except ValueError:
            return _err(base, "p= is not an Ed25519 public key")
        return _with_bits(base, 256)
    if key_type != "rsa":
        return _err(base, f"k={key_type} is not a key type verifiers know (rsa, ed25519)")
    bits = _rsa_bits(raw)
    if bits is None:
        return _err(base, "p= is neither an RSA SubjectPublicKeyInfo nor a PKCS#1 RSA key")
    return _with_bits(base, bits)


def _rsa_bits(raw: bytes) -> int | None:
    try:
        key = load_der_public_key(raw)
    except (ValueError, TypeError):
        key = None
    if key is None:
        # Bare PKCS#1 RSAPublicKey is seen in the wild; cryptography reads it as PEM only.
        pem = (
            b"-----BEGIN RSA PUBLIC KEY-----\n"
            + base64.encodebytes(raw)
            + b"-----END RSA PUBLIC KEY-----\n"
        )
        try:
            key = load_pem_public_key(pem)
        except (ValueError, TypeError):
            return None
    if isinstance(key, rsa.RSAPublicKey):
        return key.key_size
    return None


def _err(base: DkimKey, error: str) -> DkimKey:
    return DkimKey(
        base.record,
        base.tags,
        base.key_type,
        None,
        False,
        base.testing,
        base.strict,
        base.hashes,
        base.service_types,
        error,
    )


def _with_bits(base: DkimKey, bits: int) -> DkimKey:
    return DkimKey(
        base.record,
        base.tags,
        base.key_type,
        bits,
        False,
        base.testing,
        base.strict,
        base.hashes,
        base.service_types,
    )


# -- findings (pure) -------------------------------------------------------------------


def key_findings(sel: SelectorFacts) -> list[Finding]:
    """What one selector's answer says."""
    where = sel.name
    shown = f"TXT {sel.name}"
    if sel.cname_chain:
        shown = f"{sel.name} CNAME → {' → '.join(sel.cname_chain)}; TXT {sel.target}"
    out: list[Finding] = []
    if len(sel.keys) > 1:
        out.append(
            MULTIPLE.failed(
                where,
                f"{len(sel.keys)} TXT records at the selector {sel.selector}",
                f"{shown}: " + " | ".join(k.record[:80] for k in sel.keys),
                f"Keep exactly one DKIM key record at {sel.target}.",
                records=len(sel.keys),
            )
        )
    for key in sel.keys:
        out.extend(_one_key(sel, key, shown))
    return out


def _one_key(sel: SelectorFacts, key: DkimKey, shown: str) -> list[Finding]:
    where = sel.name
    quoted = f'{shown}: "{key.record[:120]}{"…" if len(key.record) > 120 else ""}"'
    if key.error:
        return [
            SYNTAX.failed(
                where,
                f"The DKIM record at {sel.selector} cannot be used: {key.error}",
                quoted,
                f"Publish the key record exactly as the sending service gives it at {sel.target} "
                "(one tag=value list, each tag once, p= in base64).",
                selector=sel.selector,
            )
        ]
    out: list[Finding] = []
    if key.revoked:
        return [
            REVOKED.failed(
                where,
                f"The DKIM key at {sel.selector} is revoked (empty p=)",
                quoted,
                f"If mail is still signed with selector {sel.selector}, publish its public key "
                "there; otherwise sign with another selector and leave this one revoked.",
                selector=sel.selector,
            )
        ]
    bits = key.bits or 0
    if key.key_type == "ed25519":
        out.append(
            ED25519_ONLY.passed(
                where,
                f"Ed25519 key at {sel.selector}; sign with an RSA key alongside it",
                f"{quoted}. RFC 8463 §4: receivers that do not know Ed25519 ignore the signature.",
                selector=sel.selector,
                key_type="ed25519",
            )
        )
    elif bits < 1024:
        out.append(
            WEAK_KEY.failed(
                where,
                f"The DKIM key at {sel.selector} has only {bits} bits: verifiers reject it",
                quoted,
                f"Generate a 2048-bit RSA key and publish it at {sel.target}; rotate the "
                "signer to it.",
                severity=Severity.CRITICAL,
                bits=bits,
                selector=sel.selector,
            )
        )
    elif bits < 2048:
        out.append(
            WEAK_KEY.failed(
                where,
                f"The DKIM key at {sel.selector} has {bits} bits; 2048 is recommended",
                quoted,
                "Rotate to a 2048-bit RSA key (for Microsoft 365: Rotate-DkimSigningConfig "
                "-KeySize 2048, or the Defender portal).",
                severity=Severity.WARNING,
                bits=bits,
                selector=sel.selector,
            )
        )
    elif bits > 4096:
        out.append(
            WEAK_KEY.failed(
                where,
                f"The DKIM key at {sel.selector} has {bits} bits; verifiers need only "
                "support up to 4096",
                quoted,
                "Use a 2048-bit (or at most 4096-bit) RSA key so every verifier can check it.",
                severity=Severity.WARNING,
                bits=bits,
                selector=sel.selector,
            )
        )
    else:
        out.append(
            WEAK_KEY.passed(
                where,
                f"DKIM key at {sel.selector}: RSA, {bits} bits",
                quoted,
                bits=bits,
                selector=sel.selector,
                key_type="rsa",
            )
        )
    if key.testing:
        out.append(
            TESTING.failed(
                where,
                f"The DKIM key at {sel.selector} is in testing mode (t=y)",
                quoted,
                "When signing works, remove t=y from the record so receivers trust the signatures.",
                selector=sel.selector,
            )
        )
    if key.hashes and "sha256" not in key.hashes:
        out.append(
            SHA1.failed(
                where,
                f"The DKIM key at {sel.selector} allows only h={':'.join(key.hashes)}",
                quoted,
                "Remove h= (or set h=sha256) and sign with rsa-sha256.",
                selector=sel.selector,
            )
        )
    if not ({"*", "email"} & set(key.service_types)):
        out.append(
            NOT_EMAIL.failed(
                where,
                f"The DKIM key at {sel.selector} is not for email "
                f"(s={':'.join(key.service_types)})",
                quoted,
                "Remove s= or set s=email.",
                selector=sel.selector,
            )
        )
    return out


def missing_findings(facts: DkimFacts, names: dict[str, str]) -> list[Finding]:
    """dkim.missing only when every expected selector of a service is authoritatively absent."""
    by_selector = {s.selector: s for s in facts.selectors}
    out: list[Finding] = []
    for service_id, selectors in facts.expected:
        if not selectors:
            continue
        seen = [by_selector[s] for s in selectors if s in by_selector]
        name = names.get(service_id, service_id)
        found = [s.selector for s in seen if s.keys]
        if found:
            # The pass of the rule that fails when the keys go: their removal is a regression.
            out.append(
                MISSING.passed(
                    facts.domain,
                    f"{name} has a DKIM key published for {facts.domain}",
                    "Key at " + ", ".join(f"{s}._domainkey.{facts.domain}" for s in found) + ".",
                    service=service_id,
                    selectors=found,
                )
            )
            continue
        failed = [s for s in seen if s.outcome not in ("nxdomain", "nodata")]
        if failed:
            out.append(
                MISSING.unknown(
                    facts.domain,
                    f"{name}'s selectors could not all be read: "
                    + "; ".join(f"{s.name}: {s.reason or s.outcome}" for s in failed),
                    service=service_id,
                )
            )
            continue
        out.append(
            MISSING.failed(
                facts.domain,
                f"{name} sends for {facts.domain}, but no DKIM key is published for it",
                "No key at " + ", ".join(s.name for s in seen) + " (NXDOMAIN or no TXT).",
                _missing_fix(service_id, facts.domain, selectors),
                service=service_id,
                selectors=list(selectors),
            )
        )
    return out


def _missing_fix(service_id: str, domain: str, selectors: tuple[str, ...]) -> str:
    if service_id == "microsoft365":
        return (
            f"Enable DKIM for {domain} in Microsoft 365: publish CNAME records at "
            f"selector1._domainkey.{domain} and selector2._domainkey.{domain}. The exact "
            f"targets come from `Get-DkimSigningConfig -Identity {domain} | Format-List "
            "Selector1CNAME, Selector2CNAME` (Exchange Online PowerShell) or the Defender "
            "portal (Email authentication settings → DKIM); then enable signing there."
        )
    if service_id == "google":
        return (
            f"In the Google Admin console (Apps → Google Workspace → Gmail → Authenticate "
            f"email) generate a 2048-bit key and publish it as TXT at google._domainkey.{domain}, "
            "then start authentication."
        )
    if service_id == "sendgrid":
        return (
            "Authenticate the domain in SendGrid (Settings → Sender Authentication) and publish "
            f"the CNAME records it shows at s1._domainkey.{domain} and s2._domainkey.{domain}."
        )
    return (
        "Publish the DKIM records the service gives you at "
        + ", ".join(f"{s}._domainkey.{domain}" for s in selectors)
        + "."
    )


def findings(facts: DkimFacts, names: dict[str, str]) -> list[Finding]:
    out: list[Finding] = []
    for sel in facts.selectors:
        if sel.keys:
            out.extend(key_findings(sel))
    out.extend(missing_findings(facts, names))
    expected = {s for _, sels in facts.expected for s in sels}
    failed = [s for s in facts.selectors if s.outcome not in ("answer", "nxdomain", "nodata")]
    for sel in failed:
        if sel.selector in expected:
            continue  # reported with the service above
        out.append(
            LOOKUP_FAILED.unknown(
                sel.name, f"TXT {sel.name}: {sel.reason or sel.outcome}", selector=sel.selector
            )
        )
    if not any(s.keys for s in facts.selectors) and not any(f.id == MISSING.id for f in out):
        tried = ", ".join(s.selector for s in facts.selectors)
        out.append(
            SELECTOR_UNKNOWN.unknown(
                facts.domain,
                f"No DKIM key at the selectors tried ({tried}). Selectors cannot be listed "
                "from DNS; give the selector (the s= of a DKIM-Signature header of mail you "
                "sent) to check its key.",
                title="No DKIM key found at the selectors tried",
            )
        )
    return out


# -- the check -----------------------------------------------------------------------


def selector_facts(selector: str, lookup: Lookup) -> SelectorFacts:
    keys = tuple(parse_key(t) for t in lookup.texts()) if lookup.ok else ()
    return SelectorFacts(
        selector,
        lookup.name,
        lookup.outcome.value,
        lookup.cname_chain,
        keys,
        lookup.reason,
    )


async def check(ctx: CheckContext) -> Section:
    """The DKIM section: every candidate selector is queried at once."""
    domain = ctx.request.domain
    first = tuple(dict.fromkeys((*ctx.request.selectors, *COMMON_SELECTORS)))
    # Start the selectors we know now; the detected services' own ones follow.
    started = {s: asyncio.ensure_future(ctx.dns.query(dkim_name(s, domain), "TXT")) for s in first}
    detected: ServicesFacts = await services_of(ctx)
    services = known(ctx)
    expected: list[tuple[str, tuple[str, ...]]] = []
    for service_id in detected.ids:
        service = services.get(service_id)
        if service is not None:
            expected.append((service_id, service.dkim_selectors))
            for s in service.dkim_selectors:
                if s not in started:
                    started[s] = asyncio.ensure_future(ctx.dns.query(dkim_name(s, domain), "TXT"))
    lookups = await asyncio.gather(*started.values())
    facts = DkimFacts(
        domain,
        tuple(selector_facts(s, lk) for s, lk in zip(started, lookups, strict=True)),
        tuple(expected),
    )
    names = {s.id: s.name for s in services.services}
    return Section(tuple(findings(facts, names)), facts)
