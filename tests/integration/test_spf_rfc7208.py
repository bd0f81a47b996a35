"""The RFC 7208 test suite (tests/data/rfc7208-tests.yml): every scenario, one pytest case.

Each scenario's zone data is served by the project's own dnslib server (``fault_dns``), and
``check_host()`` reaches it through a fresh ``sendready.dns.Resolver`` (its own cache, short
timeout), so the evaluator is tested through the real resolver code path.

Driver conventions (tests/data README, the suite's reference driver):
- ``SPF`` entries are also served as ``TXT`` unless the name has ``TXT`` entries of its own;
  ``TXT: NONE`` means no TXT record and stops that copy.
- ``TIMEOUT`` makes every query for that name of a type with no listed record go unanswered.
- ``explanation: DEFAULT`` means the receiver's default explanation: ``check_host()`` returns
  no ``exp=`` text (``explanation is None``).

Documented choice: explanations are compared without regard to letter case. The suite spells
the IPv6 nibbles of ``%{i}`` in upper case while RFC 7208 §7.3's own example uses lower
case; DNS names are case-insensitive, and SendReady follows the RFC's example.

Where the suite accepts several results, SendReady gives:
- ``multispf1``: fail (TXT only is consulted, RFC 7208 §3.1, §4.4; the type 99 copy is ignored);
- ``invalid-domain-empty-label``, ``invalid-domain-long``, ``invalid-domain-long-via-macro``:
  permerror (a target that expands to an impossible DNS name is an error in the record, said
  plainly, rather than a silent non-match);
- ``ptr-limit``: neutral (only the first 10 PTR names are validated, §4.6.4);
- ``p-macro-multiple``: pass (%{p} prefers a validated name equal to, then under, <domain>).

``null-text`` serves a TXT RR with no character-strings (illegal per RFC 1035): the DNS
layer drops that one malformed record and keeps the rest of the answer, so the other TXT
record is evaluated (pass), as the suite expects.
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

import pytest
import yaml
from dnslib import AAAA, CNAME, MX, PTR, QTYPE, RR, TXT, A

from sendready.checks.spf_eval import SpfResult, check_mail_from
from sendready.dns import DnsCache, Nameserver, Resolver
from tests.servers.tiny_dns import TinyDns

SUITE = Path(__file__).resolve().parent.parent / "data" / "rfc7208-tests.yml"
TIMEOUT_TYPES = ("A", "AAAA", "MX", "PTR", "TXT", "SPF", "CNAME")


@functools.cache
def _documents() -> list[dict[str, Any]]:
    with SUITE.open("rb") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def _scenarios() -> list[Any]:
    cases = []
    for index, doc in enumerate(_documents()):
        for name, scenario in doc["tests"].items():
            cases.append(pytest.param(index, name, scenario, id=name))
    return cases


def _bytes(text: str) -> bytes:
    # The suite writes raw octets as \xNN escapes, which YAML turns into code points < 256.
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def _txt(value: Any) -> TXT:
    strings = value if isinstance(value, list) else [value]
    return TXT([_bytes(str(s)) for s in strings])


def zone_records(zonedata: dict[str, list[Any]]) -> tuple[list[RR], list[tuple[str, str]]]:
    """dnslib RRs for a scenario's zone data, and the (name, type) pairs that time out."""
    records: list[RR] = []
    timeouts: list[tuple[str, str]] = []
    for name, entries in zonedata.items():
        listed: set[str] = set()
        has_txt = any(isinstance(e, dict) and "TXT" in e for e in entries)
        timeout = False
        for entry in entries:
            if entry == "TIMEOUT":
                timeout = True
                continue
            ((rtype, value),) = entry.items()
            if value == "NONE":
                continue
            listed.add(rtype)
            if rtype in ("TXT", "SPF"):
                records.append(RR(name, QTYPE.reverse[rtype], rdata=_txt(value), ttl=60))
                if rtype == "SPF" and not has_txt:
                    records.append(RR(name, QTYPE.TXT, rdata=_txt(value), ttl=60))
                    listed.add("TXT")
            elif rtype == "A":
                records.append(RR(name, QTYPE.A, rdata=A(value), ttl=60))
            elif rtype == "AAAA":
                records.append(RR(name, QTYPE.AAAA, rdata=AAAA(value), ttl=60))
            elif rtype == "MX":
                preference, host = value
                records.append(RR(name, QTYPE.MX, rdata=MX(host, preference), ttl=60))
            elif rtype == "PTR":
                records.append(RR(name, QTYPE.PTR, rdata=PTR(value), ttl=60))
            elif rtype == "CNAME":
                records.append(RR(name, QTYPE.CNAME, rdata=CNAME(value), ttl=60))
            else:
                raise AssertionError(f"zone data type {rtype!r} not handled by the driver")
        if timeout:
            timeouts += [(name, t) for t in TIMEOUT_TYPES if t not in listed]
    return records, timeouts


async def _evaluate(server: TinyDns, scenario: dict[str, Any]) -> SpfResult:
    resolver = Resolver([Nameserver(server.address, server.port)], timeout=0.3, cache=DnsCache())
    session = resolver.session()
    return await check_mail_from(
        str(scenario["host"]), scenario.get("mailfrom") or "", scenario.get("helo") or "", session
    )


@pytest.mark.integration
@pytest.mark.parametrize(("doc", "name", "scenario"), _scenarios())
def test_rfc7208_scenario(
    fault_dns: TinyDns, doc: int, name: str, scenario: dict[str, Any]
) -> None:
    zonedata = _documents()[doc].get("zonedata") or {}
    records, timeouts = zone_records(zonedata)
    fault_dns.faults.clear()
    fault_dns.set_records(records)
    for host, qtype in timeouts:
        fault_dns.fault(host, qtype, "timeout")
    try:
        result = asyncio.run(_evaluate(fault_dns, scenario))
    finally:
        fault_dns.faults.clear()
        fault_dns.set_records([])
    expected = scenario["result"]
    acceptable = expected if isinstance(expected, list) else [expected]
    assert result.result.value in acceptable, (
        f"{name}: got {result.result.value} ({result.reason}), expected {expected}"
    )
    if "explanation" in scenario and result.result.value == "fail":
        wanted = scenario["explanation"]
        if wanted == "DEFAULT":
            assert result.explanation is None, f"{name}: unexpected explanation"
        else:
            assert (result.explanation or "").lower() == str(wanted).lower()
