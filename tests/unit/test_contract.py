"""The public contract: the finding ids of DESIGN.md exist, and docs/findings.md is current."""

from __future__ import annotations

import re

from sendready.findings_doc import load_all_rules, render
from tests.conftest import ROOT

CONTRACT = {
    "mx.missing", "mx.null_mx_on_sending_domain", "mx.cname", "mx.no_address", "mx.private_address",
    "spf.missing", "spf.multiple_records", "spf.syntax_error", "spf.too_many_lookups",
    "spf.too_many_void_lookups", "spf.include_loop", "spf.permissive_all",
    "spf.sender_not_authorized",
    "dmarc.missing", "dmarc.multiple_records", "dmarc.syntax_error", "dmarc.invalid_value",
    "dmarc.policy_none", "dmarc.report_destination_unauthorized", "dmarc.will_fail",
    "dkim.missing", "dkim.weak_key", "dkim.revoked", "dkim.testing_mode",
    "mta_sts.policy_unreachable", "mta_sts.mx_mismatch", "tlsrpt.missing",
    "smtp.unreachable", "smtp.port_blocked", "smtp.starttls_missing", "smtp.cert_untrusted",
    "smtp.cert_name_mismatch", "smtp.cert_expired", "smtp.tls_outdated", "smtp.auth_not_offered",
    "smtp.auth_failed",
    "recipient.domain_missing", "recipient.no_mail", "recipient.possible_typo",
}  # fmt: skip

ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


def test_every_contract_id_is_declared() -> None:
    missing = CONTRACT - set(load_all_rules())
    assert not missing, f"finding ids promised by DESIGN.md but not declared: {sorted(missing)}"


def test_ids_are_dotted_lower_case_and_every_rule_cites_a_spec() -> None:
    for rule in load_all_rules().values():
        assert ID.match(rule.id), rule.id
        assert rule.spec.strip(), f"{rule.id} cites no spec"
        assert rule.summary.endswith("."), f"{rule.id}: the summary is one sentence"


def test_docs_findings_md_is_generated_from_the_code() -> None:
    current = (ROOT / "docs" / "findings.md").read_text(encoding="utf-8")
    regenerate = ".venv/bin/python -m sendready.findings_doc > docs/findings.md"
    assert current == render(), f"docs/findings.md is stale: run `{regenerate}`"
