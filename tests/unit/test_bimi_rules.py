"""BIMI record and DMARC prerequisite parsing without the network (checks/bimi.py)."""

from __future__ import annotations

from sendready.checks import bimi


def test_record() -> None:
    good = bimi.parse_record("v=BIMI1; l=https://x.test/l.svg; a=https://x.test/c.pem")
    assert (good.error, good.logo, good.authority) == (
        "",
        "https://x.test/l.svg",
        "https://x.test/c.pem",
    )
    assert bimi.parse_record("v=BIMI1; l=; a=").declined
    assert "https" in bimi.parse_record("v=BIMI1; l=http://x.test/l.svg").error
    assert "twice" in bimi.parse_record("v=BIMI1; l=; l=").error
    assert "first" in bimi.parse_record("l=https://x.test/l.svg").error


def test_dmarc_policy() -> None:
    assert bimi.dmarc_policy(("v=DMARC1; p=Reject; sp=none",)) == ("reject", "none")
    assert bimi.dmarc_policy(("v=DMARC1; p=reject", "v=DMARC1; p=none")) == ("", "")
    assert bimi.dmarc_policy(("v=spf1 -all",)) == ("", "")
