"""Domain names and mail addresses as the checks need them: validated, IDNA A-labels, lower case."""

from __future__ import annotations

import ipaddress
import re

import idna

MAX_NAME = 253
MAX_LABEL = 63
MAX_LOCAL_PART = 64
MAX_ADDRESS = 254

_LDH = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
# RFC 5322 dot-atom local part (the quoted form is accepted separately below).
_ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u0080-\U0010ffff-]+$")


class InvalidInput(ValueError):
    """A domain name or address that cannot be checked, with the reason in plain words."""


class BadName(InvalidInput):
    pass


class BadAddress(InvalidInput):
    pass


def normalize_domain(name: str) -> str:
    """Return ``name`` as lower-case A-labels without the trailing dot, or raise BadName.

    Accepts Unicode (IDNA 2008 with UTS #46 mapping), rejects IP literals, empty labels,
    labels over 63 octets and names over 253 octets.
    """
    if not isinstance(name, str):
        raise BadName("the domain must be a string")
    text = name.strip()
    if not text:
        raise BadName("the domain is empty")
    if len(text) > 4 * MAX_NAME:
        raise BadName(f"the domain is {len(text)} characters long; the limit is {MAX_NAME}")
    if text.endswith("."):
        text = text[:-1]
    if text.startswith("[") or is_ip(text):
        raise BadName(f"{text!r} is an IP address, not a domain name")
    labels = text.split(".")
    out: list[str] = []
    for label in labels:
        if not label:
            raise BadName(f"{name.strip()!r} has an empty label")
        out.append(_a_label(label, name))
    result = ".".join(out)
    if len(result) > MAX_NAME:
        raise BadName(f"the domain is {len(result)} octets long; the limit is {MAX_NAME}")
    if len(out) < 2:
        raise BadName(f"{result!r} is a single label; a mail domain has at least two")
    if out[-1].isdigit():
        raise BadName(f"{result!r} ends in a numeric label, which no top-level domain is")
    return result


def _a_label(label: str, whole: str) -> str:
    if label.isascii():
        lowered = label.lower()
        if len(lowered) > MAX_LABEL:
            raise BadName(f"the label {label[:20]!r}... is {len(label)} octets; the limit is 63")
        if lowered.startswith("xn--"):
            try:
                idna.decode(lowered)
            except idna.IDNAError as exc:
                raise BadName(f"{label!r} is not a valid IDNA A-label: {exc}") from None
        elif not _LDH.match(lowered):
            raise BadName(
                f"the label {label!r} may hold only letters, digits and hyphens, "
                "and may not start or end with a hyphen"
            )
        return lowered
    try:
        encoded: str = idna.encode(label, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise BadName(f"{label!r} in {whole.strip()!r} is not a valid IDN label: {exc}") from None
    if len(encoded) > MAX_LABEL:
        raise BadName(
            f"the label {label!r} is {len(encoded)} octets as an A-label; the limit is 63"
        )
    return encoded


def is_ip(text: str) -> bool:
    """Whether ``text`` is an IPv4 or IPv6 address literal."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def to_unicode(name: str) -> str:
    """The U-label form of a normalised name, for display; the input itself if it cannot be."""
    try:
        return ".".join(
            idna.decode(label) if label.startswith("xn--") else label for label in name.split(".")
        )
    except idna.IDNAError:
        return name


def parse_address(address: str) -> tuple[str, str]:
    """Split a mail address into (local part, normalised domain), or raise BadAddress."""
    if not isinstance(address, str):
        raise BadAddress("the address must be a string")
    text = address.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    if not text:
        raise BadAddress("the address is empty")
    if len(text) > 4 * MAX_ADDRESS:
        raise BadAddress(f"the address is {len(text)} characters long; the limit is {MAX_ADDRESS}")
    if "@" not in text:
        raise BadAddress(f"{text!r} has no @")
    local, _, domain = text.rpartition("@")
    if not local:
        raise BadAddress(f"{text!r} has nothing before the @")
    if len(local.encode()) > MAX_LOCAL_PART:
        raise BadAddress(f"the local part is {len(local.encode())} octets; the limit is 64")
    if local.startswith('"') and local.endswith('"') and len(local) >= 2:
        inner = local[1:-1]
        if any(c in inner for c in "\r\n") or re.search(r'(?<!\\)"', inner):
            raise BadAddress(f"the quoted local part of {text!r} is malformed")
    elif (
        local.startswith(".")
        or local.endswith(".")
        or ".." in local
        or not all(_ATOM.match(part) for part in local.split("."))
    ):
        raise BadAddress(f"the local part {local!r} is not valid (RFC 5322 dot-atom)")
    try:
        normalized = normalize_domain(domain)
    except BadName as exc:
        raise BadAddress(f"the domain of {text!r} is not valid: {exc}") from None
    if len(local.encode()) + 1 + len(normalized) > MAX_ADDRESS:
        raise BadAddress(f"{text!r} is longer than {MAX_ADDRESS} octets")
    return local, normalized


def parent_names(name: str) -> list[str]:
    """Every proper ancestor of ``name``, nearest first, down to the top-level domain."""
    labels = name.split(".")
    return [".".join(labels[i:]) for i in range(1, len(labels))]
