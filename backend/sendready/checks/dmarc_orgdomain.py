"""Organizational domains for DMARC: the RFC 9989 §4.10 DNS tree walk and the RFC 7489 PSL view.

The pure parts (which names the walk asks, how its answers pick an organizational domain,
identifier alignment) are separate from the one coroutine that asks the DNS, so alignment
checks can reuse them on records they already hold.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from publicsuffixlist import PublicSuffixList

from ..dns import DnsSession, Lookup
from .dmarc_record import DmarcRecord, parse

#: RFC 9989 §4.10: at most this many queries per walk, the first one included.
MAX_WALK_QUERIES = 8


def walk_names(domain: str) -> tuple[str, ...]:
    """The names whose ``_dmarc`` the tree walk asks, in order (RFC 9989 §4.10).

    The domain itself; then, for up to 8 labels, its parent, or for more, its last 7
    labels; then one label less per query down to and including the top-level domain.
    """
    labels = domain.lower().rstrip(".").split(".")
    names = [".".join(labels)]
    rest = labels[1:] if len(labels) <= MAX_WALK_QUERIES else labels[-(MAX_WALK_QUERIES - 1) :]
    while rest:
        names.append(".".join(rest))
        rest = rest[1:]
    return tuple(names)


def one_label_below(start: str, ancestor: str) -> str:
    """The name one label longer than ``ancestor`` on the way to ``start``."""
    start_labels = start.split(".")
    count = len(ancestor.split(".")) + 1
    return ".".join(start_labels[-count:])


def organizational_domain(start: str, records: Mapping[str, DmarcRecord | None]) -> str:
    """RFC 9989 §4.10.2, given the one valid record (or None) found at each walked name.

    Longest name first: ``psd=n`` makes that name the organizational domain; ``psd=y`` (not
    at the starting name) makes it the name one label below; otherwise the record with the
    fewest labels wins; with no record at all, the starting domain is its own.
    """
    start = start.lower().rstrip(".")
    found = [name for name in walk_names(start) if records.get(name) is not None]
    for name in found:
        record = records[name]
        assert record is not None
        if record.psd == "n":
            return name
        if record.psd == "y" and name != start:
            return one_label_below(start, name)
    return found[-1] if found else start


def aligned(a: str, b: str, mode: str, organizational: Callable[[str], str]) -> bool:
    """Identifier alignment (RFC 9989 §4.4): strict = same name, relaxed = same org domain.

    ``organizational`` maps a name to its organizational domain (e.g. a dict's ``__getitem__``
    filled by :func:`discover_organizational_domain`), so this stays free of I/O.
    """
    left, right = a.lower().rstrip("."), b.lower().rstrip(".")
    if mode == "s":
        return left == right
    if left == right:
        return True
    return organizational(left).lower() == organizational(right).lower()


class SuffixList:
    """The public suffix list, for the RFC 7489 view only (RFC 7489 §3.2).

    The bundled copy of the ``publicsuffixlist`` package is used; it is never downloaded at
    run time. Tests pass their own ``suffixes`` (one rule per line, PSL syntax).
    """

    def __init__(self, suffixes: Iterable[str] | None = None) -> None:
        # Unknown TLDs (such as the reserved ``test``) count as public suffixes, as browsers do.
        self._psl = PublicSuffixList(list(suffixes) if suffixes is not None else None)

    def organizational_domain(self, name: str) -> str:
        name = name.lower().rstrip(".")
        registrable = self._psl.privatesuffix(name)
        return registrable if isinstance(registrable, str) else name

    def is_public_suffix(self, name: str) -> bool:
        return bool(self._psl.is_public(name.lower().rstrip(".")))


@functools.cache
def bundled_suffix_list() -> SuffixList:
    """The bundled list, parsed once per process (it is read-only data)."""
    return SuffixList()


@dataclass(frozen=True, slots=True)
class WalkAnswer:
    """What ``_dmarc.<name>`` held: the lookup and the one valid record, if exactly one."""

    name: str
    lookup: Lookup
    records: tuple[DmarcRecord, ...]

    @property
    def record(self) -> DmarcRecord | None:
        return self.records[0] if len(self.records) == 1 else None


def read_answer(name: str, lookup: Lookup) -> WalkAnswer:
    parsed = (parse(text) for text in lookup.texts()) if lookup.ok else iter(())
    return WalkAnswer(name, lookup, tuple(r for r in parsed if r is not None))


async def walk(
    session: DnsSession, names: Sequence[str], *, after: Lookup | None = None
) -> dict[str, WalkAnswer]:
    """Ask every ``_dmarc.<name>`` at once: the names do not depend on one another's answers,
    and the RFC's order is applied afterwards by whoever reads the result."""
    lookups = await asyncio.gather(
        *(session.query(f"_dmarc.{name}", "TXT", after=after) for name in names)
    )
    return {name: read_answer(name, lookup) for name, lookup in zip(names, lookups, strict=True)}


@dataclass(frozen=True, slots=True)
class OrganizationalDomain:
    """The RFC 9989 organizational domain of a name, and why it may be uncertain."""

    name: str
    domain: str
    uncertain: str = ""
    lookups: tuple[Lookup, ...] = ()


def from_answers(name: str, answers: Mapping[str, WalkAnswer]) -> OrganizationalDomain:
    names = walk_names(name)
    records = {n: answers[n].record for n in names if n in answers}
    failed = [
        answers[n].lookup.describe() for n in names if n in answers and answers[n].lookup.failed
    ]
    return OrganizationalDomain(
        name,
        organizational_domain(name, records),
        "; ".join(failed),
        tuple(answers[n].lookup for n in names if n in answers),
    )


async def discover_organizational_domain(
    session: DnsSession, name: str, *, after: Lookup | None = None
) -> OrganizationalDomain:
    """The tree walk for one name (all its queries at once), and its organizational domain."""
    name = name.lower().rstrip(".")
    return from_answers(name, await walk(session, walk_names(name), after=after))
