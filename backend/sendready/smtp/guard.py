"""Which addresses the service may connect to, and how many connections it may hold open.

The service connects only to hosts the checked domain's own DNS names and to known
submission endpoints, and never to loopback, private, link-local, multicast, reserved or
cloud-metadata addresses, unless a test setting lists a range as allowed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import weakref
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA = (
    ipaddress.ip_network("169.254.169.254/32"),
    ipaddress.ip_network("fd00:ec2::254/128"),
    ipaddress.ip_network("100.100.100.200/32"),
)


class TargetRefused(Exception):
    """The guard will not let the service contact this address; the message says why."""


def why_not_public(address: str | IPAddress, allowed: Iterable[IPNetwork] = ()) -> str | None:
    """Return why ``address`` may not be contacted, or None when it may."""
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in net for net in allowed):
        return None
    if any(ip in net for net in METADATA):
        return f"{ip} is a cloud metadata address"
    if ip.is_loopback:
        return f"{ip} is a loopback address"
    if ip.is_link_local:
        return f"{ip} is a link-local address"
    if ip.is_multicast:
        return f"{ip} is a multicast address"
    if ip.is_unspecified:
        return f"{ip} is the unspecified address"
    if ip.is_private or (isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED):
        return f"{ip} is a private address"
    if ip.is_reserved or not ip.is_global:
        return f"{ip} is a reserved address"
    return None


_SHARED = ipaddress.ip_network("100.64.0.0/10")


def check_target(address: str, allowed: Iterable[IPNetwork] = ()) -> None:
    """Raise TargetRefused unless ``address`` may be contacted."""
    reason = why_not_public(address, allowed)
    if reason is not None:
        raise TargetRefused(reason)


class ConnectionLimiter:
    """Caps the connections open at once: per process (shared) and per request (a child)."""

    def __init__(self, limit: int, parent: ConnectionLimiter | None = None) -> None:
        self.limit = limit
        self._parent = parent
        self._semaphore: asyncio.Semaphore | None = None

    def child(self, limit: int) -> ConnectionLimiter:
        return ConnectionLimiter(limit, parent=self)

    def _sem(self) -> asyncio.Semaphore:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.limit)
        return self._semaphore

    async def __aenter__(self) -> ConnectionLimiter:
        await self._sem().acquire()
        if self._parent is not None:
            try:
                await self._parent.__aenter__()
            except BaseException:
                self._sem().release()
                raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._parent is not None:
            await self._parent.__aexit__(*exc)
        self._sem().release()


_PROCESS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ConnectionLimiter] = (
    weakref.WeakKeyDictionary()
)


def process_limiter(limit: int) -> ConnectionLimiter:
    """The per-process cap for the running event loop (the engine runs one loop per process).

    A cap per process is by nature shared state; keying it by loop keeps a test's or a
    second engine's loop from sharing a semaphore bound to another loop. An engine that
    owns its limiter passes it in ``CheckContext.services["smtp_limiter"]`` instead.
    """
    loop = asyncio.get_running_loop()
    limiter = _PROCESS.get(loop)
    if limiter is None or limiter.limit != limit:
        limiter = _PROCESS[loop] = ConnectionLimiter(limit)
    return limiter
