"""PTR name vs banner name on a real MX (postfix), with reverse DNS from the fault server."""

from __future__ import annotations

from collections.abc import Iterator

import dns.reversename
import pytest

from sendready.checks import mx, smtp
from sendready.dns import parse_nameservers
from sendready.engine import Engine
from sendready.model import CheckRequest, Status
from tests.conftest import NET, Pki, addr
from tests.fixtures.postfix import Postfix
from tests.integration.test_smtp_check import make_settings

ZONE = """
$TTL 60
ptr.smtp-ptr.test.        IN MX 10 mx.smtp-mx.test.
mx.smtp-mx.test.          IN A  {net}.25
{reverse} IN PTR {ptr}
"""


class _Ns:
    def __init__(self, nameserver: str) -> None:
        self.nameserver = nameserver


@pytest.fixture
def engine(fault_dns, pki: Pki, postfix: Postfix) -> Iterator[tuple[Engine, object]]:  # type: ignore[no-untyped-def]
    saved = list(fault_dns.records)
    settings = make_settings(_Ns(f"{addr(54)}:53"), pki)
    assert settings.dns_servers == parse_nameservers(f"{addr(54)}:53")
    with Engine(settings, checks={"mx": mx.check, "smtp": smtp.check}) as e:
        yield e, fault_dns
    fault_dns.records = saved


@pytest.mark.parametrize(
    ("ptr", "mismatch"), [("mx.m365-good.test.", False), ("other.smtp-ptr.test.", True)]
)
def test_ptr_differing_from_the_banner_is_info_only(
    engine: tuple[Engine, object], ptr: str, mismatch: bool
) -> None:
    e, dns_server = engine
    reverse = dns.reversename.from_address(f"{NET}.25").to_text()
    dns_server.load_zone(ZONE.format(net=NET, ptr=ptr, reverse=reverse))  # type: ignore[attr-defined]
    report = e.check(CheckRequest(domain="ptr.smtp-ptr.test"))
    found = [f for f in report.findings if f.id == "smtp.ptr_mismatch"]
    assert report.facts["smtp"].ptr == {f"{NET}.25": (ptr.rstrip("."),)}
    if mismatch:
        (f,) = found
        assert (f.status, f.severity.value) == (Status.FAIL, "info")
        assert "mx.m365-good.test" in f.title and "other.smtp-ptr.test" in f.title
    else:
        assert found == []
