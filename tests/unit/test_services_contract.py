"""The issue-3 finding ids that DESIGN.md promises are declared, with the severities it gives."""

from __future__ import annotations

from sendready.findings_doc import load_all_rules
from sendready.model import Severity

PROMISED = {
    "dkim.missing",
    "dkim.weak_key",
    "dkim.revoked",
    "dkim.testing_mode",
    "mta_sts.policy_unreachable",
    "mta_sts.mx_mismatch",
    "tlsrpt.missing",
}


def test_design_ids_are_declared() -> None:
    rules = load_all_rules()
    assert set(rules) >= PROMISED, sorted(PROMISED - set(rules))


def test_every_issue_3_area_declares_rules_with_specs() -> None:
    rules = load_all_rules()
    for area in ("dkim", "mta_sts", "tlsrpt", "bimi", "dnssec", "dane", "ptr", "services"):
        mine = [r for r in rules.values() if r.id.startswith(area + ".")]
        assert mine, area
        assert all(r.spec for r in mine)
    # BIMI changes display, not delivery: info only (DOMAIN.md §1.7).
    assert {r.severity for r in rules.values() if r.id.startswith("bimi.")} == {Severity.INFO}
    assert rules["dnssec.bogus"].severity is Severity.CRITICAL
