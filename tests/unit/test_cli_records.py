"""How `sendready check` prints ready-to-paste records: exactly, unwrapped, and once."""

from __future__ import annotations

from sendready.cli import render
from sendready.model import Finding, Record, Report, Severity, Status

STAGES = tuple(
    Record("TXT", "_dmarc.a.test", f"v=DMARC1; p={p}; rua=mailto:dmarc-reports@a.test", 3600)
    for p in ("none", "quarantine", "reject")
)


def failing(finding_id: str, records: tuple[Record, ...]) -> Finding:
    return Finding(
        finding_id, Status.FAIL, Severity.WARNING, "a.test", f"{finding_id} fails",
        records=records,
    )  # fmt: skip


def report(*findings: Finding) -> Report:
    return Report("a.test", None, "2026-12-03T00:00:00+00:00", 1.0, findings, {})


def test_a_record_under_several_findings_is_printed_once_then_named() -> None:
    text = render(
        report(failing("dmarc.missing", STAGES), failing("requirements.dmarc_record", STAGES)),
        width=60,
    )
    for stage in STAGES:
        assert text.count(stage.value) == 1
    assert text.count("(the same record as under dmarc.missing)") == 3


def test_a_long_value_is_never_wrapped_so_it_can_be_copied() -> None:
    long = Record("TXT", "a.test", "v=spf1 " + " ".join(f"ip4:192.0.2.{i}" for i in range(30)))
    text = render(report(failing("spf.missing", (long,))), width=60)
    assert any(line.strip() == long.value for line in text.splitlines())
