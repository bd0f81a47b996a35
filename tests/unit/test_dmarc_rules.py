"""DMARC rules on records: policy selection, discovery order, and every finding with its fix."""

from __future__ import annotations

import dns.rdata

from sendready.checks import dmarc
from sendready.checks.dmarc import Policy, discover, record_findings, select_policy, will_fail
from sendready.checks.dmarc_orgdomain import OrganizationalDomain, WalkAnswer, read_answer
from sendready.checks.dmarc_record import DmarcRecord, parse
from sendready.dns import Lookup, Outcome
from sendready.model import Finding, Severity, Status


def rec(text: str) -> DmarcRecord:
    record = parse(text)
    assert record is not None
    return record


def txt_lookup(name: str, *texts: str) -> Lookup:
    records = tuple(dns.rdata.from_text("IN", "TXT", f'"{t}"') for t in texts)
    return Lookup(name, "TXT", Outcome.ANSWER, records=records)


def answer(name: str, *texts: str, outcome: Outcome | None = None) -> WalkAnswer:
    if outcome is not None:
        return read_answer(name, Lookup(f"_dmarc.{name}", "TXT", outcome, reason="test said so"))
    return read_answer(name, txt_lookup(f"_dmarc.{name}", *texts))


def policy_of(text: str, domain: str = "example.com", author: str | None = None) -> Policy:
    record = rec(text)
    author = author or domain
    requested, tag = select_policy(record, at_author=author == domain, author_exists=True)
    return Policy(
        "rfc9989",
        author,
        domain,
        policy_domain=domain,
        record=record,
        tag=tag,
        requested=requested,
        applied=dmarc.applied_policy(requested, record),
        author_exists=True,
    )


def by_id(findings: list[Finding]) -> dict[str, Finding]:
    return {f.id: f for f in findings}


# -- policy selection ----------------------------------------------------------------


def test_at_the_author_domain_p_applies() -> None:
    assert select_policy(
        rec("v=DMARC1; p=reject; sp=none"), at_author=True, author_exists=True
    ) == (
        "reject",
        "p",
    )


def test_from_an_ancestor_sp_applies_to_an_existing_subdomain() -> None:
    record = rec("v=DMARC1; p=reject; sp=quarantine; np=none")
    assert select_policy(record, at_author=False, author_exists=True) == ("quarantine", "sp")


def test_from_an_ancestor_np_applies_to_a_non_existent_subdomain() -> None:
    record = rec("v=DMARC1; p=reject; sp=quarantine; np=none")
    assert select_policy(record, at_author=False, author_exists=False) == ("none", "np")


def test_np_absent_falls_back_to_sp_then_p() -> None:
    assert select_policy(
        rec("v=DMARC1; p=reject; sp=quarantine"), at_author=False, author_exists=False
    ) == ("quarantine", "sp")
    assert select_policy(rec("v=DMARC1; p=reject"), at_author=False, author_exists=False) == (
        "reject",
        "p",
    )


def test_the_legacy_view_has_no_np() -> None:
    record = rec("v=DMARC1; p=reject; np=none")
    assert select_policy(record, at_author=False, author_exists=False, method="rfc7489") == (
        "reject",
        "p",
    )


def test_missing_or_invalid_p_with_a_valid_rua_acts_as_none() -> None:
    for text in (
        "v=DMARC1; rua=mailto:a@example.com",
        "v=DMARC1; p=bogus; rua=mailto:a@example.com",
    ):
        assert select_policy(rec(text), at_author=True, author_exists=True) == ("none", "rua")


def test_missing_p_without_rua_means_no_dmarc_processing() -> None:
    assert select_policy(rec("v=DMARC1; adkim=s"), at_author=True, author_exists=True) == (None, "")
    assert select_policy(
        rec("v=DMARC1; p=bogus; rua=mailto:bad"), at_author=True, author_exists=True
    ) == (None, "")


def test_an_invalid_sp_does_not_fall_back_to_p() -> None:
    record = rec("v=DMARC1; p=reject; sp=bogus; rua=mailto:a@example.com")
    assert select_policy(record, at_author=False, author_exists=True) == ("none", "rua")


def test_test_mode_weakens_the_policy_one_step() -> None:
    assert dmarc.applied_policy("reject", rec("v=DMARC1; p=reject; t=y")) == "quarantine"
    assert dmarc.applied_policy("quarantine", rec("v=DMARC1; p=quarantine; t=y")) == "none"
    assert dmarc.applied_policy("reject", rec("v=DMARC1; p=reject; t=n")) == "reject"


# -- discovery order -------------------------------------------------------------------


def test_discovery_takes_the_nearest_single_valid_record() -> None:
    names = ("a.example.com", "example.com", "com")
    answers = {
        "a.example.com": answer("a.example.com", outcome=Outcome.NXDOMAIN),
        "example.com": answer("example.com", "v=DMARC1; p=reject; sp=quarantine"),
        "com": answer("com", outcome=Outcome.NXDOMAIN),
    }
    found = discover(
        "a.example.com",
        answers,
        names,
        method="rfc9989",
        organizational="example.com",
        author_exists=True,
    )
    assert (found.policy_domain, found.tag, found.requested) == ("example.com", "sp", "quarantine")
    assert found.inherited


def test_several_records_at_one_name_are_discarded_and_the_walk_goes_on() -> None:
    names = ("a.example.com", "example.com", "com")
    answers = {
        "a.example.com": answer("a.example.com", "v=DMARC1; p=none", "v=DMARC1; p=reject"),
        "example.com": answer("example.com", "v=DMARC1; p=quarantine"),
        "com": answer("com", outcome=Outcome.NXDOMAIN),
    }
    found = discover(
        "a.example.com", answers, names, method="rfc9989", organizational="x", author_exists=True
    )
    assert found.policy_domain == "example.com" and found.requested == "quarantine"


def test_a_failure_before_any_record_makes_discovery_unknown_not_missing() -> None:
    names = ("a.example.com", "example.com", "com")
    answers = {
        "a.example.com": answer("a.example.com", outcome=Outcome.NXDOMAIN),
        "example.com": answer("example.com", outcome=Outcome.SERVFAIL),
        "com": answer("com", outcome=Outcome.NXDOMAIN),
    }
    found = discover(
        "a.example.com", answers, names, method="rfc9989", organizational="x", author_exists=True
    )
    assert found.record is None and "test said so" in found.unknown


def test_a_failure_after_the_record_does_not_matter() -> None:
    names = ("example.com", "com")
    answers = {
        "example.com": answer("example.com", "v=DMARC1; p=reject"),
        "com": answer("com", outcome=Outcome.TIMEOUT),
    }
    found = discover(
        "example.com", answers, names, method="rfc9989", organizational="x", author_exists=True
    )
    assert found.requested == "reject" and not found.unknown


def test_author_existence_comes_from_nxdomain_of_the_domain_itself() -> None:
    nx = Lookup("gone.example.com", "MX", Outcome.NXDOMAIN)
    ok = Lookup("gone.example.com", "MX", Outcome.NODATA)
    failed = Lookup("gone.example.com", "MX", Outcome.TIMEOUT)
    absent = answer("gone.example.com", outcome=Outcome.NXDOMAIN)
    assert dmarc.author_exists(nx, absent) is False
    assert dmarc.author_exists(ok, absent) is True
    assert dmarc.author_exists(failed, absent) is None
    # NODATA at _dmarc.<name> proves <name> exists (it has a child).
    assert dmarc.author_exists(nx, answer("x", outcome=Outcome.NODATA)) is True


# -- findings on a record --------------------------------------------------------------


def test_an_enforced_clean_record_passes() -> None:
    found = by_id(
        record_findings("example.com", policy_of("v=DMARC1; p=reject; rua=mailto:a@example.com"))
    )
    assert set(found) == {"dmarc.present"}
    assert found["dmarc.present"].status is Status.PASS
    assert found["dmarc.present"].data["policy"] == "reject"


def test_policy_none_is_a_warning_with_a_staged_fix() -> None:
    found = by_id(
        record_findings("example.com", policy_of("v=DMARC1; p=none; rua=mailto:a@example.com"))
    )
    none = found["dmarc.policy_none"]
    assert (none.status, none.severity) == (Status.FAIL, Severity.WARNING)
    assert '"v=DMARC1; p=quarantine; rua=mailto:a@example.com"' in none.fix
    assert '"v=DMARC1; p=reject; rua=mailto:a@example.com"' in none.fix
    assert none.fix.index("p=quarantine") < none.fix.index("p=reject")
    assert "dmarc.present" not in found


def test_policy_none_without_rua_suggests_adding_one_in_the_staged_records() -> None:
    found = by_id(record_findings("example.com", policy_of("v=DMARC1; p=none")))
    assert "rua=mailto:dmarc-reports@example.com" in found["dmarc.policy_none"].fix
    assert "dmarc.no_aggregate_reports" in found


def test_rua_without_p_acts_as_none_and_says_so() -> None:
    found = by_id(record_findings("example.com", policy_of("v=DMARC1; rua=mailto:a@example.com")))
    assert "act as if `p=none`" in found["dmarc.policy_none"].detail
    assert '"v=DMARC1; p=quarantine; rua=mailto:a@example.com"' in found["dmarc.policy_none"].fix


def test_no_p_and_no_rua_is_critical() -> None:
    found = by_id(record_findings("example.com", policy_of("v=DMARC1; adkim=s")))
    assert found["dmarc.not_applied"].severity is Severity.CRITICAL
    assert '"v=DMARC1; p=none; adkim=s"' in found["dmarc.not_applied"].fix


def test_an_invalid_p_is_reported_with_the_corrected_record() -> None:
    found = by_id(
        record_findings("example.com", policy_of("v=DMARC1; p=rejected; rua=mailto:a@example.com"))
    )
    invalid = found["dmarc.invalid_value"]
    assert invalid.data == {"tag": "p", "value": "rejected"}
    assert '"v=DMARC1; p=reject; rua=mailto:a@example.com"' in invalid.fix
    assert "dmarc.policy_none" in found  # valid rua: receivers act as p=none


def test_syntax_errors_are_reported_with_the_record_without_them() -> None:
    found = by_id(
        record_findings(
            "example.com", policy_of("v=DMARC1; p=reject; oops; rua=mailto:a@example.com")
        )
    )
    error = found["dmarc.syntax_error"]
    assert error.data["parts"] == ["oops"]
    assert '"v=DMARC1; p=reject; rua=mailto:a@example.com"' in error.fix


def test_test_mode_is_a_warning_naming_the_weaker_policy() -> None:
    found = by_id(
        record_findings(
            "example.com", policy_of("v=DMARC1; p=reject; t=y; rua=mailto:a@example.com")
        )
    )
    testing = found["dmarc.testing"]
    assert testing.data == {"requested": "reject", "applied": "quarantine"}
    assert '"v=DMARC1; p=reject; rua=mailto:a@example.com"' in testing.fix
    assert found["dmarc.present"].data["policy"] == "quarantine"


def test_sp_none_under_an_enforcing_p_is_a_warning() -> None:
    found = by_id(
        record_findings(
            "example.com", policy_of("v=DMARC1; p=reject; sp=none; rua=mailto:a@example.com")
        )
    )
    assert found["dmarc.subdomain_policy_none"].severity is Severity.WARNING
    assert (
        '"v=DMARC1; p=reject; rua=mailto:a@example.com"' in found["dmarc.subdomain_policy_none"].fix
    )
    assert "dmarc.subdomain_policy_none" not in by_id(
        record_findings(
            "example.com", policy_of("v=DMARC1; p=none; sp=none; rua=mailto:a@example.com")
        )
    )


def test_removed_tags_are_a_warning_and_pct_zero_becomes_t_y() -> None:
    found = by_id(
        record_findings(
            "example.com", policy_of("v=DMARC1; p=reject; pct=0; ri=3600; rua=mailto:a@example.com")
        )
    )
    removed = found["dmarc.removed_tag"]
    assert removed.severity is Severity.WARNING and removed.data["tags"] == ["pct", "ri"]
    assert '"v=DMARC1; p=reject; rua=mailto:a@example.com; t=y"' in removed.fix


def test_removed_pct_other_than_zero_is_just_dropped() -> None:
    found = by_id(
        record_findings(
            "example.com", policy_of("v=DMARC1; p=reject; pct=50; rua=mailto:a@example.com")
        )
    )
    assert '"v=DMARC1; p=reject; rua=mailto:a@example.com"' in found["dmarc.removed_tag"].fix


def test_unknown_tags_are_info() -> None:
    found = by_id(
        record_findings(
            "example.com", policy_of("v=DMARC1; p=reject; foo=1; rua=mailto:a@example.com")
        )
    )
    assert found["dmarc.unknown_tag"].severity is Severity.INFO
    assert found["dmarc.unknown_tag"].data["tags"] == ["foo"]


def test_the_size_suffix_is_info_with_the_record_without_it() -> None:
    found = by_id(
        record_findings(
            "example.com", policy_of("v=DMARC1; p=reject; rua=mailto:a@example.com!10m")
        )
    )
    assert '"v=DMARC1; p=reject; rua=mailto:a@example.com"' in found["dmarc.uri_size_limit"].fix


def test_fo_without_ruf_is_info() -> None:
    found = by_id(
        record_findings(
            "example.com", policy_of("v=DMARC1; p=reject; fo=1; rua=mailto:a@example.com")
        )
    )
    assert found["dmarc.tag_ignored"].severity is Severity.INFO


def test_an_inherited_policy_is_an_info_pass_naming_the_ancestor() -> None:
    found = by_id(
        record_findings(
            "a.b.example.com",
            policy_of(
                "v=DMARC1; p=reject; rua=mailto:a@example.com", "example.com", "a.b.example.com"
            ),
        )
    )
    inherited = found["dmarc.inherited"]
    assert inherited.status is Status.PASS and inherited.data["policy_domain"] == "example.com"


def test_every_fail_cites_a_spec_and_carries_a_fix() -> None:
    texts = [
        "v=DMARC1; p=none; sp=none; pct=0; foo=1; fo=1; oops; adkim=x; rua=mailto:a@example.com!1m",
        "v=DMARC1; p=reject; t=y; sp=none",
        "v=DMARC1; adkim=s",
    ]
    for text in texts:
        for finding in record_findings("example.com", policy_of(text)):
            assert finding.spec
            if finding.status is Status.FAIL:
                assert finding.fix, finding.id


# -- placement, differences, destinations ------------------------------------------------


def test_a_record_at_the_apex_and_spf_at_dmarc_and_broken_version_are_reported() -> None:
    answers = {
        "example.com": answer(
            "example.com", "v=spf1 include:x.example -all", " v=DMARC1; p=reject"
        ),
        "com": answer("com", outcome=Outcome.NXDOMAIN),
    }
    apex = txt_lookup("example.com", "v=DMARC1; p=reject", "v=spf1 -all")
    found = by_id(dmarc._placement_findings("example.com", answers, ("example.com", "com"), apex))
    assert set(found) == {"dmarc.record_at_apex", "dmarc.spf_at_dmarc", "dmarc.not_version_first"}
    assert '`_dmarc.example.com. IN TXT "v=DMARC1; p=reject"`' in found["dmarc.record_at_apex"].fix
    assert '"v=DMARC1; p=reject"' in found["dmarc.not_version_first"].fix
    assert found["dmarc.not_version_first"].severity is Severity.CRITICAL


def test_multiple_records_are_reported_per_name() -> None:
    answers = {
        "example.com": answer("example.com", "v=DMARC1; p=none", "v=DMARC1; p=reject"),
        "com": answer("com", outcome=Outcome.NXDOMAIN),
    }
    apex = Lookup("example.com", "TXT", Outcome.NODATA)
    (multiple,) = dmarc._placement_findings("example.com", answers, ("example.com", "com"), apex)
    assert multiple.id == "dmarc.multiple_records" and multiple.data["count"] == 2


def test_a_difference_between_the_two_discovery_methods_is_reported() -> None:
    current = Policy(
        "rfc9989", "a.org.pso.test", "org.pso.test", "pso.test", None, "sp", "reject", "reject"
    )
    legacy = Policy("rfc7489", "a.org.pso.test", "org.pso.test")
    finding = dmarc._differs("a.org.pso.test", current, legacy)
    assert finding is not None and finding.id == "dmarc.discovery_differs"
    assert finding.data["rfc9989_policy"] == "reject" and finding.data["rfc7489_policy"] is None
    assert dmarc._differs("a.org.pso.test", current, current) is None


def test_an_unauthorised_external_destination_gets_the_exact_authorisation_record() -> None:
    host = dmarc._Host(
        "reports.example.net",
        OrganizationalDomain("reports.example.net", "example.net"),
        True,
        "example.com._report._dmarc.reports.example.net",
        False,
        auth_lookup="TXT ...: the name does not exist (NXDOMAIN)",
        receives_mail=True,
    )
    own = OrganizationalDomain("example.com", "example.com")
    (finding,) = dmarc._host_findings("example.com", own, host, ["rua"])
    assert finding.id == "dmarc.report_destination_unauthorized"
    assert '`example.com._report._dmarc.reports.example.net. IN TXT "v=DMARC1"`' in finding.fix
    assert "*._report._dmarc.reports.example.net" in finding.fix


def test_an_unreadable_authorisation_is_unknown_and_a_dead_mailbox_domain_is_reported() -> None:
    host = dmarc._Host(
        "reports.example.net",
        OrganizationalDomain("reports.example.net", "example.net"),
        True,
        "example.com._report._dmarc.reports.example.net",
        None,
        receives_mail=False,
        mail_detail="reports.example.net does not exist (NXDOMAIN)",
        reason="no answer within 2.0 s",
    )
    own = OrganizationalDomain("example.com", "example.com")
    found = by_id(dmarc._host_findings("example.com", own, host, ["rua", "ruf"]))
    assert found["dmarc.report_destination_unauthorized"].status is Status.UNKNOWN
    assert "no answer within" in found["dmarc.report_destination_unauthorized"].detail
    assert found["dmarc.report_domain_no_mail"].status is Status.FAIL


def test_will_fail_passes_when_either_identifier_aligns() -> None:
    assert (
        will_fail("example.com", "reject", spf_aligned=True, dkim_aligned=False).status
        is Status.PASS
    )
    assert (
        will_fail("example.com", "reject", spf_aligned=False, dkim_aligned=True).status
        is Status.PASS
    )


def test_will_fail_is_critical_under_enforcement_and_a_warning_under_none() -> None:
    enforced = will_fail("example.com", "reject", spf_aligned=False, dkim_aligned=False)
    assert (enforced.id, enforced.status, enforced.severity) == (
        "dmarc.will_fail",
        Status.FAIL,
        Severity.CRITICAL,
    )
    assert "reject" in enforced.title and enforced.fix
    monitoring = will_fail("example.com", "none", spf_aligned=False, dkim_aligned=False)
    assert monitoring.severity is Severity.WARNING


def test_an_absent_authorisation_with_an_uncertain_organization_is_unknown_not_a_fail() -> None:
    host = dmarc._Host(
        "reports.example.net",
        OrganizationalDomain(
            "reports.example.net", "reports.example.net", "TXT _dmarc.net: no answer within 2.0 s"
        ),
        True,
        "example.com._report._dmarc.reports.example.net",
        False,
        auth_lookup="the name does not exist (NXDOMAIN)",
        receives_mail=True,
    )
    own = OrganizationalDomain("example.com", "example.com")
    (finding,) = dmarc._host_findings("example.com", own, host, ["rua"])
    assert finding.status is Status.UNKNOWN and "uncertain" in finding.detail


def test_in_the_legacy_view_several_records_at_the_domain_end_discovery() -> None:
    answers = {
        "a.example.com": answer("a.example.com", "v=DMARC1; p=none", "v=DMARC1; p=reject"),
        "example.com": answer("example.com", "v=DMARC1; p=quarantine"),
    }
    names = ("a.example.com", "example.com")
    legacy = discover(
        "a.example.com", answers, names, method="rfc7489", organizational="x", author_exists=True
    )
    assert legacy.record is None and not legacy.unknown
    current = discover(
        "a.example.com", answers, names, method="rfc9989", organizational="x", author_exists=True
    )
    assert current.requested == "quarantine"


def test_an_authorisation_rua_counts_only_for_the_same_host() -> None:
    used, ignored = dmarc.authorization_override(
        "reports.example.net",
        ["v=DMARC1; rua=mailto:a@reports.example.net,mailto:b@example.org"],
    )
    assert used == ("mailto:a@reports.example.net",) and ignored == ("mailto:b@example.org",)
    assert dmarc.authorization_override("reports.example.net", ["v=DMARC1"]) == ((), ())
