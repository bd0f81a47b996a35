"""PTR/FCrDNS findings without DNS (checks/ptr.py)."""

from __future__ import annotations

from sendready.checks import ptr
from sendready.model import Status


def test_reverse_names() -> None:
    assert ptr.reverse_name("192.0.2.25") == "25.2.0.192.in-addr.arpa"
    assert ptr.reverse_name("2001:db8::1").endswith(".8.b.d.0.1.0.0.2.ip6.arpa")


def test_findings() -> None:
    base = dict(host="mx.d.test", address="192.0.2.25", reverse="25.2.0.192.in-addr.arpa")
    (ok,) = ptr.findings(
        ptr.AddressFacts(
            **base, ptr_names=("mx.d.test",), confirmed=("mx.d.test",), outcome="answer"
        )
    )
    assert ok.status is Status.PASS
    (no,) = ptr.findings(ptr.AddressFacts(**base, outcome="nxdomain"))
    assert (no.id, no.status) == ("ptr.missing", Status.FAIL)
    (bad,) = ptr.findings(ptr.AddressFacts(**base, ptr_names=("x.isp.test",), outcome="answer"))
    assert (bad.id, bad.status) == ("ptr.fcrdns", Status.FAIL)
    (unk,) = ptr.findings(ptr.AddressFacts(**base, outcome="timeout", reason="no answer in 2 s"))
    assert unk.status is Status.UNKNOWN and "no answer" in unk.detail
