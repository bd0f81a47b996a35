"""The guarded HTTPS fetcher for MTA-STS policies and BIMI logos: resolve through the request's
DNS session, refuse non-public addresses, connect by IP with SNI and name verification, never
follow redirects, bound the time by the request deadline and the body by a size limit."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .config import Settings
from .dns import Deadline, DnsSession, Lookup
from .dns.names import InvalidInput, normalize_domain
from .smtp.guard import why_not_public

MTA_STS_LIMIT = 64 * 1024
SVG_LIMIT = 32 * 1024
#: Longest single fetch, whatever the request budget (RFC 8461 §3.3 suggests a minute).
MAX_SECONDS = 10.0
MAX_HEADER_BYTES = 16 * 1024


class FetchError(enum.StrEnum):
    """Why a fetch gave no usable body. ``network`` kinds mean nothing was learned."""

    BAD_URL = "bad_url"
    NO_HOST = "no_host"  # the host name does not exist or has no address (authoritative)
    DNS = "dns"  # the address lookup failed (timeout, SERVFAIL): nothing learned
    REFUSED = "refused"  # only non-public addresses: the guard refuses to connect
    CONNECT = "connect"  # connection refused, reset or unreachable
    TIMEOUT = "timeout"
    TLS = "tls"  # the certificate did not verify, or the handshake failed
    HTTP = "http"  # the server spoke, but not a usable HTTP reply
    TOO_LARGE = "too_large"

    @property
    def network(self) -> bool:
        """True when the failure says nothing about what the domain publishes."""
        return self in (FetchError.DNS, FetchError.REFUSED, FetchError.CONNECT, FetchError.TIMEOUT)


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one GET returned (status, media type, body) or why it returned nothing usable."""

    url: str
    host: str
    address: str = ""
    status: int | None = None
    media_type: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    error: FetchError | None = None
    reason: str = ""
    lookups: tuple[Lookup, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None and self.status == 200

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


def tls_context(settings: Settings) -> ssl.SSLContext:
    """Verify against the configured CA file only, or else the system store (TESTING.md §7)."""
    if settings.ca_file:
        # With cafile, create_default_context loads no default paths: the machine-wide
        # SSL_CERT_FILE / SSL_CERT_DIR variables cannot widen what is trusted.
        ctx = ssl.create_default_context(cafile=settings.ca_file)
    else:
        ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


async def fetch(
    url: str,
    dns: DnsSession,
    settings: Settings,
    *,
    max_bytes: int,
    deadline: Deadline | None = None,
    after: Lookup | Iterable[Lookup] | None = None,
) -> FetchResult:
    """GET an https URL under every rule of the module docstring. Never raises for the network."""
    parts = urlsplit(url)
    try:
        if parts.scheme != "https" or not parts.hostname:
            raise InvalidInput("not an https URL with a host")
        host = normalize_domain(parts.hostname)
        port = parts.port or 443
    except (InvalidInput, ValueError) as exc:
        return FetchResult(url, parts.hostname or "", error=FetchError.BAD_URL, reason=str(exc))
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    deadline = deadline or dns.deadline
    parents = list(after) if isinstance(after, Iterable) else ([after] if after else None)
    a, aaaa = await asyncio.gather(
        dns.query(host, "A", after=parents), dns.query(host, "AAAA", after=parents)
    )
    base = FetchResult(url, host, lookups=(a, aaaa))
    addresses = [str(r) for r in (*a.records, *aaaa.records)]
    if not addresses:
        if a.failed or aaaa.failed:
            failed = a if a.failed else aaaa
            return _with(base, FetchError.DNS, f"the address lookup failed: {failed.describe()}")
        return _with(base, FetchError.NO_HOST, f"{host} has no A or AAAA record")
    refusals = []
    usable = []
    for address in addresses:
        why = why_not_public(address, settings.allow_private_targets)
        if why is None:
            usable.append(address)
        else:
            refusals.append(why)
    if not usable:
        return _with(
            base,
            FetchError.REFUSED,
            f"{host} resolves only to non-public addresses: " + "; ".join(refusals),
        )
    ctx = tls_context(settings)
    last = base
    for address in usable:
        remaining = MAX_SECONDS if deadline is None else min(MAX_SECONDS, deadline.remaining())
        if remaining <= 0:
            return _with(last, FetchError.TIMEOUT, "the request deadline passed before the fetch")
        try:
            async with asyncio.timeout(remaining):
                result = await _get(base, address, port, host, path, ctx, max_bytes)
        except TimeoutError:
            result = _with(
                base,
                FetchError.TIMEOUT,
                f"no complete answer from {address} within {remaining:.1f} s",
                address=address,
            )
        if result.error not in (FetchError.CONNECT, FetchError.TIMEOUT):
            return result
        last = result
    return last


def _with(base: FetchResult, error: FetchError, reason: str, address: str = "") -> FetchResult:
    return FetchResult(
        base.url,
        base.host,
        address or base.address,
        error=error,
        reason=reason,
        lookups=base.lookups,
    )


async def _get(
    base: FetchResult,
    address: str,
    port: int,
    host: str,
    path: str,
    ctx: ssl.SSLContext,
    max_bytes: int,
) -> FetchResult:
    try:
        reader, writer = await asyncio.open_connection(
            address, port, ssl=ctx, server_hostname=host, limit=MAX_HEADER_BYTES
        )
    except ssl.SSLCertVerificationError as exc:
        return _with(
            base, FetchError.TLS, f"certificate not accepted: {exc.verify_message}", address
        )
    except ssl.SSLError as exc:
        return _with(base, FetchError.TLS, f"TLS handshake failed: {exc.reason or exc}", address)
    except OSError as exc:
        return _with(
            base,
            FetchError.CONNECT,
            f"cannot connect to {address}:{port}: {(exc.strerror or type(exc).__name__).lower()}",
            address,
        )
    try:
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: SendReady\r\n"
            "Accept: */*\r\nAccept-Encoding: identity\r\nCache-Control: no-cache\r\n"
            "Connection: close\r\n\r\n"
        )
        writer.write(request.encode("ascii"))
        await writer.drain()
        return await _read_response(base, address, reader, max_bytes)
    except (
        ssl.SSLError,
        OSError,
        asyncio.IncompleteReadError,
        asyncio.LimitOverrunError,
        ValueError,
    ) as exc:
        return _with(base, FetchError.HTTP, f"bad HTTP reply: {type(exc).__name__}", address)
    finally:
        writer.close()
        # The peer may drop the connection without a TLS close_notify.
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


async def _read_response(
    base: FetchResult, address: str, reader: asyncio.StreamReader, max_bytes: int
) -> FetchResult:
    """Read one HTTP/1.1 reply; a malformed one is an HTTP error, never an exception."""
    try:
        return await _parse_response(base, address, reader, max_bytes)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        return _with(base, FetchError.HTTP, f"bad HTTP reply: {type(exc).__name__}", address)


async def _parse_response(
    base: FetchResult, address: str, reader: asyncio.StreamReader, max_bytes: int
) -> FetchResult:
    status_line = (await reader.readuntil(b"\n")).decode("latin-1").strip()
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        return _with(
            base, FetchError.HTTP, f"not an HTTP status line: {status_line[:60]!r}", address
        )
    status = int(parts[1])
    headers: list[tuple[str, str]] = []
    total = len(status_line)
    while True:
        line = (await reader.readuntil(b"\n")).decode("latin-1").rstrip("\r\n")
        total += len(line)
        if total > MAX_HEADER_BYTES:
            return _with(base, FetchError.HTTP, "the reply headers are too large", address)
        if not line:
            break
        name, sep, value = line.partition(":")
        if not sep:
            return _with(base, FetchError.HTTP, f"malformed header line {line[:60]!r}", address)
        headers.append((name.strip(), value.strip()))
    lookup = {k.lower(): v for k, v in headers}
    media_type = lookup.get("content-type", "").split(";", 1)[0].strip().lower()
    encoding = lookup.get("transfer-encoding", "").lower()
    too_large = _with(
        base, FetchError.TOO_LARGE, f"the body is larger than {max_bytes} bytes", address
    )
    if "chunked" in encoding:
        body = bytearray()
        while True:
            size_line = (await reader.readuntil(b"\n")).split(b";", 1)[0].strip()
            size = int(size_line, 16)
            if size == 0:
                break
            if len(body) + size > max_bytes:
                return _replace_status(too_large, status, media_type, headers)
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        data = bytes(body)
    elif "content-length" in lookup:
        length = int(lookup["content-length"])
        if length > max_bytes:
            return _replace_status(too_large, status, media_type, headers)
        data = await reader.readexactly(length)
    else:
        data = await reader.read(max_bytes + 1)
        if len(data) > max_bytes:
            return _replace_status(too_large, status, media_type, headers)
    return FetchResult(
        base.url,
        base.host,
        address,
        status,
        media_type,
        tuple(headers),
        data,
        lookups=base.lookups,
    )


def _replace_status(
    result: FetchResult, status: int, media_type: str, headers: list[tuple[str, str]]
) -> FetchResult:
    return FetchResult(
        result.url,
        result.host,
        result.address,
        status,
        media_type,
        tuple(headers),
        b"",
        result.error,
        result.reason,
        result.lookups,
    )
