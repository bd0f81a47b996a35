"""The guarded HTTPS fetcher (sendready.fetch) against the policy host (127.0.10.43:443) and a
server that accepts and never speaks, with names served by the in-process dnslib server."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterator

import pytest
import trustme

from sendready.config import Settings
from sendready.dns import Deadline, Resolver, parse_nameservers
from sendready.fetch import MTA_STS_LIMIT, FetchError, FetchResult, fetch
from tests.conftest import NET, Pki, addr
from tests.fixtures.policy_host import STS_PATH

SILENT = 4443  # a port on addr(42) where a socket listens and never answers

ZONE = f"""
fetch.test. 60 IN SOA ns.fetch.test. hostmaster.fetch.test. 1 3600 600 86400 60
mta-sts.good.sts-cases.test. 60 IN A {addr(43)}
mta-sts.big.sts-cases.test. 60 IN A {addr(43)}
mta-sts.redirect.sts-cases.test. 60 IN A {addr(43)}
mta-sts.html.sts-cases.test. 60 IN A {addr(43)}
mta-sts.badcert.sts-cases.test. 60 IN A {addr(43)}
silent.fetch.test. 60 IN A {addr(42)}
public.fetch.test. 60 IN A 10.1.2.3
"""


@pytest.fixture(scope="module")
def names(fault_dns, policy_host) -> Iterator[str]:  # type: ignore[no-untyped-def]
    fault_dns.load_zone(ZONE)
    fault_dns.faults.clear()
    yield fault_dns.nameserver


@pytest.fixture(scope="module")
def silent() -> Iterator[None]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((addr(42), SILENT))
    sock.listen(8)  # the kernel completes handshakes; nobody ever reads or writes
    yield
    sock.close()


def get(
    nameserver: str,
    url: str,
    ca: str,
    *,
    private: bool = True,
    budget: float = 5.0,
    max_bytes: int = MTA_STS_LIMIT,
) -> FetchResult:
    settings = Settings(
        ca_file=ca,
        allow_private_targets=(ipaddress.ip_network(f"{NET}.0/24"),) if private else (),
    )
    resolver = Resolver(parse_nameservers(nameserver), timeout=1.0)

    async def go() -> FetchResult:
        session = resolver.session(Deadline.after(budget))
        return await fetch(url, session, settings, max_bytes=max_bytes)

    return asyncio.run(go())


def test_a_policy_is_fetched_with_status_and_media_type(names: str, pki: Pki) -> None:
    result = get(names, f"https://mta-sts.good.sts-cases.test{STS_PATH}", pki.ca)
    assert result.ok and result.media_type == "text/plain"
    assert result.address == addr(43)
    assert b"version: STSv1" in result.body


def test_loopback_is_refused_without_the_test_allowance(
    names: str,
    pki: Pki,
    policy_host,  # type: ignore[no-untyped-def]
) -> None:
    key = ("mta-sts.good.sts-cases.test", STS_PATH)
    before = policy_host.hits.get(key, 0)
    result = get(names, f"https://{key[0]}{STS_PATH}", pki.ca, private=False)
    assert result.error is FetchError.REFUSED and "loopback" in result.reason
    assert policy_host.hits.get(key, 0) == before  # no connection was made


def test_private_addresses_are_refused(names: str, pki: Pki) -> None:
    result = get(names, "https://public.fetch.test/x", pki.ca)
    assert result.error is FetchError.REFUSED and "10.1.2.3 is a private address" in result.reason


def test_redirects_are_returned_not_followed(names: str, pki: Pki) -> None:
    result = get(names, f"https://mta-sts.redirect.sts-cases.test{STS_PATH}", pki.ca)
    assert result.error is None and result.status == 301
    assert (
        result.header(
            "Location",
        )
        == f"https://mta-sts.good.sts-cases.test{STS_PATH}"
    )
    assert not result.ok


def test_the_body_limit_holds(names: str, pki: Pki) -> None:
    result = get(names, f"https://mta-sts.big.sts-cases.test{STS_PATH}", pki.ca)
    assert result.error is FetchError.TOO_LARGE and result.body == b""


def test_a_name_the_certificate_does_not_cover_fails_tls(names: str, pki: Pki) -> None:
    result = get(names, f"https://mta-sts.badcert.sts-cases.test{STS_PATH}", pki.ca)
    assert result.error is FetchError.TLS and "certificate" in result.reason


def test_only_the_configured_ca_is_trusted(names: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    other = trustme.CA()
    path = tmp_path / "other-ca.pem"
    other.cert_pem.write_to_path(str(path))
    result = get(names, f"https://mta-sts.good.sts-cases.test{STS_PATH}", str(path))
    assert result.error is FetchError.TLS


def test_a_silent_server_ends_at_the_deadline(names: str, pki: Pki, silent: None) -> None:
    result = get(names, f"https://silent.fetch.test:{SILENT}/x", pki.ca, budget=0.5)
    assert result.error is FetchError.TIMEOUT and result.error.network


def test_no_host_and_bad_urls(names: str, pki: Pki) -> None:
    assert get(names, "https://nothing.fetch.test/x", pki.ca).error is FetchError.NO_HOST
    assert get(names, "http://mta-sts.good.sts-cases.test/", pki.ca).error is FetchError.BAD_URL
