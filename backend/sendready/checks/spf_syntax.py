"""SPF record grammar (RFC 7208 §12 ABNF, §7 macros): record selection and a strict parser.

Parsing is pure: text in, a frozen :class:`SpfRecord` or a :class:`SpfSyntaxError` value out.
A syntax error names the term and says why, because the person fixing the record has to find
the exact place that a receiver will reject.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass

VERSION = "v=spf1"

#: Terms whose evaluation queries DNS and so count against the limit of 10 (§4.6.4).
DNS_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})
MECHANISMS = frozenset({"all", "ip4", "ip6", *DNS_MECHANISMS})
MACRO_LETTERS = frozenset("slodiphcrtv")
#: §7.2: these letters are allowed only in explanation text, never in a domain-spec.
EXP_ONLY_LETTERS = frozenset("crt")
DELIMITERS = frozenset(".-+,/_=")


class Qualifier(enum.StrEnum):
    """The qualifier of a directive and the result it gives on a match (§4.6.2)."""

    PASS = "+"
    FAIL = "-"
    SOFTFAIL = "~"
    NEUTRAL = "?"

    @property
    def result(self) -> str:
        return _QUALIFIER_RESULT[self]


_QUALIFIER_RESULT = {
    Qualifier.PASS: "pass",
    Qualifier.FAIL: "fail",
    Qualifier.SOFTFAIL: "softfail",
    Qualifier.NEUTRAL: "neutral",
}


@dataclass(frozen=True, slots=True)
class Macro:
    """One ``%{...}`` expansion: letter, URL-escaping, right-hand parts, reversal, delimiters."""

    letter: str
    escape: bool = False
    digits: int | None = None
    reverse: bool = False
    delimiters: str = ""


#: ``%%``, ``%_`` and ``%-`` become plain text when parsed; a token is text or a macro.
Token = str | Macro


@dataclass(frozen=True, slots=True)
class MacroString:
    """A macro-string (§7.1) as written, with its tokens."""

    text: str
    tokens: tuple[Token, ...]

    @property
    def has_macros(self) -> bool:
        return any(isinstance(t, Macro) for t in self.tokens)

    @property
    def literal(self) -> str | None:
        """The string itself when it holds no macros (``%%`` and friends resolved)."""
        if self.has_macros:
            return None
        return "".join(t for t in self.tokens if isinstance(t, str))


@dataclass(frozen=True, slots=True)
class Mechanism:
    """A directive: qualifier, mechanism name and its argument (§4.6.1, §5)."""

    text: str
    qualifier: Qualifier
    name: str
    domain: MacroString | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    cidr4: int | None = None
    cidr6: int | None = None

    @property
    def queries_dns(self) -> bool:
        return self.name in DNS_MECHANISMS


@dataclass(frozen=True, slots=True)
class Modifier:
    """``name=value`` (§6): redirect and exp take a domain-spec, others a macro-string."""

    text: str
    name: str
    value: MacroString


Term = Mechanism | Modifier


@dataclass(frozen=True, slots=True)
class SpfRecord:
    """A parsed SPF record."""

    text: str
    terms: tuple[Term, ...]

    @property
    def mechanisms(self) -> tuple[Mechanism, ...]:
        return tuple(t for t in self.terms if isinstance(t, Mechanism))

    @property
    def modifiers(self) -> tuple[Modifier, ...]:
        return tuple(t for t in self.terms if isinstance(t, Modifier))

    def modifier(self, name: str) -> Modifier | None:
        return next((m for m in self.modifiers if m.name == name), None)

    @property
    def redirect(self) -> Modifier | None:
        return self.modifier("redirect")

    @property
    def exp(self) -> Modifier | None:
        return self.modifier("exp")

    @property
    def all(self) -> Mechanism | None:
        return next((m for m in self.mechanisms if m.name == "all"), None)

    @property
    def after_all(self) -> tuple[Mechanism, ...]:
        """Mechanisms after the first ``all``: never evaluated (§5.1)."""
        mechanisms = self.mechanisms
        first = next((i for i, m in enumerate(mechanisms) if m.name == "all"), None)
        return () if first is None else mechanisms[first + 1 :]

    @property
    def redirect_used(self) -> bool:
        """§6.1: ``redirect`` is ignored when the record has an ``all`` mechanism."""
        return self.redirect is not None and self.all is None


@dataclass(frozen=True, slots=True)
class SpfSyntaxError:
    """Why a record does not parse: the offending term and the reason."""

    record: str
    term: str
    reason: str

    def __str__(self) -> str:
        if self.term:
            return f"term `{self.term}`: {self.reason}"
        return self.reason


class _Bad(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- record selection ---------------------------------------------------------------


def is_spf_record(text: str) -> bool:
    """§4.5: exactly ``v=spf1`` or ``v=spf1`` followed by a space, case-insensitive."""
    head = text[: len(VERSION)].lower()
    return head == VERSION and (len(text) == len(VERSION) or text[len(VERSION)] == " ")


def select_records(texts: tuple[str, ...]) -> tuple[str, ...]:
    """The TXT records of a name that are SPF records (more than one is a permerror)."""
    return tuple(t for t in texts if is_spf_record(t))


# -- parsing ------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9\-_.]*\Z")
_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9\-_.]*)=(.*)\Z", re.S)
_MECHANISM = re.compile(r"([+\-~?]?)([A-Za-z][A-Za-z0-9]*)(.*)\Z", re.S)
_DUAL_CIDR = re.compile(r"(?P<dom>.*?)(?:/(?P<c4>\d+))?(?://(?P<c6>\d+))?\Z", re.S)
_QNUM = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]\d|\d)"
_IP4 = re.compile(rf"{_QNUM}\.{_QNUM}\.{_QNUM}\.{_QNUM}\Z")
_TOPLABEL = re.compile(
    r"(?:[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9\-]*[A-Za-z0-9])\Z"
)


def parse_record(text: str) -> SpfRecord | SpfSyntaxError:
    """Parse one SPF record (selected by :func:`is_spf_record`) into its terms."""
    if not is_spf_record(text):
        return SpfSyntaxError(text, "", "the record does not start with `v=spf1`")
    terms: list[Term] = []
    seen: set[str] = set()
    # §12: terms are separated by one or more SP characters (only SP, nothing else).
    for raw in text[len(VERSION) :].split(" "):
        if not raw:
            continue
        try:
            term = parse_term(raw)
        except _Bad as bad:
            return SpfSyntaxError(text, raw, bad.reason)
        if isinstance(term, Modifier) and term.name in ("redirect", "exp"):
            if term.name in seen:
                return SpfSyntaxError(
                    text, raw, f"`{term.name}` appears more than once (RFC 7208 §6)"
                )
            seen.add(term.name)
        terms.append(term)
    return SpfRecord(text, tuple(terms))


def parse_term(raw: str) -> Term:
    """One directive or modifier; raises ``_Bad`` with the reason."""
    bad_char = next((c for c in raw if not 0x21 <= ord(c) <= 0x7E), None)
    if bad_char is not None:
        raise _Bad(
            f"contains the character {bad_char!r} (U+{ord(bad_char):04X}); only visible "
            "ASCII characters are allowed"
        )
    modifier = _MODIFIER.match(raw)
    if modifier is not None:
        name, value = modifier.group(1).lower(), modifier.group(2)
        if name in ("redirect", "exp"):
            return Modifier(raw, name, parse_domain_spec(value))
        return Modifier(raw, name, parse_macro_string(value))
    if raw.startswith("="):
        raise _Bad("a modifier needs a name before `=`")
    mechanism = _MECHANISM.match(raw)
    if mechanism is None:
        raise _Bad("neither a mechanism nor a modifier")
    qualifier = Qualifier(mechanism.group(1) or "+")
    name, rest = mechanism.group(2).lower(), mechanism.group(3)
    if name not in MECHANISMS:
        raise _Bad(f"unknown mechanism `{mechanism.group(2)}`")
    if name == "all":
        if rest:
            raise _Bad("`all` takes no argument")
        return Mechanism(raw, qualifier, name)
    if name in ("include", "exists"):
        if not rest.startswith(":"):
            raise _Bad(f"`{name}` needs `:domain`")
        return Mechanism(raw, qualifier, name, parse_domain_spec(rest[1:]))
    if name == "ptr":
        if not rest:
            return Mechanism(raw, qualifier, name)
        if not rest.startswith(":"):
            raise _Bad("`ptr` takes only an optional `:domain` (no CIDR length)")
        return Mechanism(raw, qualifier, name, parse_domain_spec(rest[1:]))
    if name in ("a", "mx"):
        return _parse_a_mx(raw, qualifier, name, rest)
    if not rest.startswith(":"):
        raise _Bad(f"`{name}` needs `:address`")
    if name == "ip4":
        return _parse_ip4(raw, qualifier, rest[1:])
    return _parse_ip6(raw, qualifier, rest[1:])


def _parse_a_mx(raw: str, qualifier: Qualifier, name: str, rest: str) -> Mechanism:
    if rest and rest[0] not in ":/":
        raise _Bad(f"unknown mechanism `{raw.lstrip('+-~?').split(':')[0]}`")
    split = _DUAL_CIDR.match(rest)
    assert split is not None  # the pattern matches every string
    domain_text = split.group("dom")
    cidr4 = _cidr(split.group("c4"), 32) if split.group("c4") is not None else None
    cidr6 = _cidr(split.group("c6"), 128) if split.group("c6") is not None else None
    domain: MacroString | None = None
    if domain_text:
        if not domain_text.startswith(":"):
            raise _Bad(f"unexpected `{domain_text}`; CIDR lengths look like `/24` or `//64`")
        domain = parse_domain_spec(domain_text[1:])
    return Mechanism(raw, qualifier, name, domain, cidr4=cidr4, cidr6=cidr6)


def _cidr(text: str, limit: int) -> int:
    if len(text) > 1 and text.startswith("0"):
        raise _Bad(f"CIDR length `/{text}` has a leading zero")
    value = int(text)
    if value > limit:
        raise _Bad(f"CIDR length /{value} is more than {limit}")
    return value


def _parse_ip4(raw: str, qualifier: Qualifier, arg: str) -> Mechanism:
    address, slash, length = arg.partition("/")
    if not _IP4.match(address):
        raise _Bad(f"`{address}` is not an IPv4 address in dotted-quad form")
    prefix = 32
    if slash:
        if not length.isdigit():
            raise _Bad(f"`/{length}` is not an IPv4 CIDR length")
        prefix = _cidr(length, 32)
    network = ipaddress.IPv4Network(f"{address}/{prefix}", strict=False)
    return Mechanism(raw, qualifier, "ip4", network=network, cidr4=prefix)


def _parse_ip6(raw: str, qualifier: Qualifier, arg: str) -> Mechanism:
    address, slash, length = arg.partition("/")
    if not address or "%" in address or not all(c in "0123456789abcdefABCDEF:." for c in address):
        raise _Bad(f"`{address}` is not an IPv6 address")
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        raise _Bad(f"`{address}` is not an IPv6 address") from None
    prefix = 128
    if slash:
        if not length.isdigit():
            raise _Bad(f"`/{length}` is not an IPv6 CIDR length")
        prefix = _cidr(length, 128)
    network = ipaddress.IPv6Network(f"{address}/{prefix}", strict=False)
    return Mechanism(raw, qualifier, "ip6", network=network, cidr6=prefix)


def parse_macro_string(text: str, *, exp: bool = False) -> MacroString:
    """§7.1 macro-string; ``exp`` allows the explanation-only letters and spaces."""
    tokens: list[Token] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "%":
            if not (0x21 <= ord(ch) <= 0x7E or (exp and ch == " ")):
                raise _Bad(f"character {ch!r} is not allowed in a macro-string")
            literal.append(ch)
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt in ("%", "_", "-"):
            literal.append({"%": "%", "_": " ", "-": "%20"}[nxt])
            i += 2
            continue
        if nxt != "{":
            shown = f"%{nxt}" if nxt else "%"
            raise _Bad(f"`{shown}` is not a macro; write `%%` for a literal percent sign")
        end = text.find("}", i + 2)
        if end < 0:
            raise _Bad("a macro `%{` is not closed with `}`")
        if literal:
            tokens.append("".join(literal))
            literal = []
        tokens.append(_parse_macro(text[i + 2 : end], exp))
        i = end + 1
    if literal:
        tokens.append("".join(literal))
    return MacroString(text, tuple(tokens))


def _parse_macro(body: str, exp: bool) -> Macro:
    m = re.fullmatch(r"([A-Za-z])(\d*)(r?)(.*)", body, re.S | re.I)
    if m is None:
        raise _Bad(f"`%{{{body}}}` has no macro letter")
    letter = m.group(1)
    if letter.lower() not in MACRO_LETTERS:
        raise _Bad(f"`%{{{body}}}`: `{letter}` is not a macro letter (RFC 7208 §7.2)")
    if letter.lower() in EXP_ONLY_LETTERS and not exp:
        raise _Bad(
            f"`%{{{body}}}`: the `{letter}` macro is allowed only in explanation text (§7.2)"
        )
    digits = m.group(2)
    if digits and int(digits) == 0:
        raise _Bad(f"`%{{{body}}}`: the number of parts must not be zero (§7.3)")
    delimiters = m.group(4)
    bad = [c for c in delimiters if c not in DELIMITERS]
    if bad:
        raise _Bad(f"`%{{{body}}}`: `{bad[0]}` is not a macro delimiter (one of .-+,/_=)")
    return Macro(
        letter.lower(),
        escape=letter.isupper(),
        digits=int(digits) if digits else None,
        reverse=bool(m.group(3)),
        delimiters=delimiters,
    )


def parse_domain_spec(text: str) -> MacroString:
    """§7.1 domain-spec: a macro-string that ends in ``.toplabel[.]`` or a macro."""
    if not text:
        raise _Bad("the domain is empty")
    spec = parse_macro_string(text)
    if text.endswith("}") and spec.tokens and isinstance(spec.tokens[-1], Macro):
        return spec
    if text.endswith(("%%", "%_", "%-")):
        return spec  # an escape is a macro-expand, which may end a domain-spec
    tail = text.rsplit("%", 1)[-1] if "%" in text else text
    tail = tail[:-1] if tail.endswith(".") else tail
    if "." not in tail:
        raise _Bad(f"`{text}` is not a domain name (it needs a dot and a top-level label)")
    top = tail.rsplit(".", 1)[1]
    if not _TOPLABEL.match(top):
        raise _Bad(f"`{text}` ends in `{top}`, which is not a valid top-level label")
    return spec


def parse_explanation(text: str) -> MacroString | None:
    """The explanation string of an ``exp`` target (§6.2), or None if it is malformed."""
    try:
        return parse_macro_string(text, exp=True)
    except _Bad:
        return None
