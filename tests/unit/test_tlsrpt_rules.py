"""TLS-RPT record rules without DNS (checks/tlsrpt.py)."""

from __future__ import annotations

from sendready.checks import tlsrpt
from sendready.model import Status


def test_rua_uris() -> None:
    assert tlsrpt.parse_record("v=TLSRPTv1; rua=mailto:a@b.test,https://r.test/v1") == (
        ("mailto:a@b.test", "https://r.test/v1"),
        "",
    )
    assert "required" in tlsrpt.parse_record("v=TLSRPTv1; ruf=mailto:a@b.test")[1]
    assert "only mailto" in tlsrpt.parse_record("v=TLSRPTv1; rua=http://r.test")[1]


def test_missing_only_when_mta_sts_or_dane_is_used() -> None:
    (quiet,) = tlsrpt.findings(tlsrpt.TlsRptFacts("d.test"))
    assert quiet.status is Status.PASS
    (sts,) = tlsrpt.findings(tlsrpt.TlsRptFacts("d.test", mta_sts=True))
    assert sts.status is Status.FAIL and "MTA-STS" in sts.title
    (dane,) = tlsrpt.findings(tlsrpt.TlsRptFacts("d.test", dane_hosts=("mx.d.test",)))
    assert dane.status is Status.FAIL and "DANE" in dane.title
    (two,) = tlsrpt.findings(tlsrpt.TlsRptFacts("d.test", ("v=TLSRPTv1; rua=mailto:a@d.test",) * 2))
    assert two.id == "tlsrpt.multiple_records"
