"""The target guard and the connection caps."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from sendready.smtp.guard import (
    ConnectionLimiter,
    TargetRefused,
    check_target,
    process_limiter,
    why_not_public,
)


@pytest.mark.parametrize(
    ("address", "word"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.1.1", "private"),
        ("172.16.0.1", "private"),
        ("100.64.0.1", "private"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("192.0.2.1", "private"),  # TEST-NET-1 counts as private (RFC 6890)
        ("::ffff:127.0.0.1", "loopback"),
        ("not-an-ip", "not an IP"),
    ],
)
def test_non_public_targets_are_refused_with_a_reason(address: str, word: str) -> None:
    reason = why_not_public(address)
    assert reason is not None and word in reason
    with pytest.raises(TargetRefused):
        check_target(address)


def test_public_addresses_pass_and_an_allowed_range_is_treated_as_public() -> None:
    assert why_not_public("8.8.8.8") is None and why_not_public("2606:4700::1111") is None
    allowed = (ipaddress.ip_network("127.0.10.0/24"),)
    assert why_not_public("127.0.10.25", allowed) is None
    assert why_not_public("127.0.11.25", allowed) is not None


async def _peak(limiter_for: list[ConnectionLimiter], tasks: int) -> int:
    active = peak = 0

    async def one(limiter: ConnectionLimiter) -> None:
        nonlocal active, peak
        async with limiter:
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.01)
            active -= 1

    await asyncio.gather(*(one(limiter_for[i % len(limiter_for)]) for i in range(tasks)))
    return peak


def test_per_request_cap() -> None:
    async def go() -> int:
        return await _peak([ConnectionLimiter(100).child(2)], 10)

    assert asyncio.run(go()) == 2


def test_per_process_cap_holds_across_requests() -> None:
    async def go() -> int:
        process = process_limiter(3)
        assert process_limiter(3) is process  # shared within the loop
        return await _peak([process.child(2), process.child(2), process.child(2)], 12)

    assert asyncio.run(go()) == 3
