"""Ready-to-paste fixes built from hand-made facts (no network); every value is fed back
through the project's own parsers (spf_syntax, dmarc_record, the MTA-STS and TLS-RPT ones)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from sendready import fixes
from sendready.checks import mta_sts, tlsrpt
from sendready.checks.dkim import DkimFacts, SelectorFacts
from sendready.checks.dmarc import DmarcFacts
from sendready.checks.dmarc_record import parse as parse_dmarc
from sendready.checks.mta_sts import MtaStsFacts, Policy
from sendready.checks.mx import MxFacts, MxHost
from sendready.checks.services import DetectedService, ServicesFacts
from sendready.checks.spf import NodeStatus, SpfFacts, SpfNode, TermFact
from sendready.checks.spf_syntax import SpfRecord, parse_record
from sendready.config import Settings
from sendready.model import CheckRequest, Finding, Record, Rule, Severity
from sendready.providers import catalog

D = "example.com"
M365 = DetectedService("microsoft365", "Microsoft 365", ("MX x.mail.protection.outlook.com",))
SES = DetectedService("amazonses", "Amazon SES", ("DKIM t._domainkey CNAME t.dkim.amazonses.com",))
NOW = datetime(2026, 12, 3, 6, 0, 0, 123456, tzinfo=UTC)


def spf_ok(record: str, *children: SpfNode) -> SpfFacts:
    node = SpfNode(
        D, "apex", "", NodeStatus.OK, record=record, records=(record,), children=children
    )
    return SpfFacts(D, record=record, records=(record,), tree=node)


def include(domain: str, subtree: int, status: NodeStatus = NodeStatus.OK) -> SpfNode:
    return SpfNode(domain, "include", f"include:{domain}", status, subtree_lookups=subtree)


def failed(id: str, subject: str = D, **data: object) -> Finding:
    return Rule(id, "s", "spec", Severity.WARNING).failed(subject, "t", "d", "f", **data)


def attach(finding: Finding, request: CheckRequest | None = None, **facts: object) -> Finding:
    (out,) = fixes.attach([finding], facts, request or CheckRequest(D), Settings(), now=NOW)
    return out


def valid_spf(value: str) -> SpfRecord:
    parsed = parse_record(value)
    assert isinstance(parsed, SpfRecord), parsed
    return parsed


# -- SPF ---------------------------------------------------------------------------------


def test_a_missing_record_authorises_the_detected_service_and_ends_in_minus_all() -> None:
    facts = SpfFacts(D, tree=SpfNode(D, "apex", "", NodeStatus.NO_RECORD, reason="NXDOMAIN"))
    fix = fixes.corrected_spf(facts, [catalog().get("microsoft365")])  # type: ignore[list-item]
    assert fix is not None
    assert fix.value == "v=spf1 include:spf.protection.outlook.com -all"
    valid_spf(fix.value)


def test_without_a_record_or_a_known_service_nothing_is_guessed() -> None:
    facts = SpfFacts(D, tree=SpfNode(D, "apex", "", NodeStatus.NO_RECORD))
    assert fixes.corrected_spf(facts, []) is None


def test_services_with_their_own_return_path_get_no_include() -> None:
    finding = attach(
        failed("spf.permissive_all"),
        spf=spf_ok("v=spf1 ip4:192.0.2.1 ?all"),
        services=ServicesFacts(D, (SES,)),
    )
    (record,) = finding.records
    assert record.value == "v=spf1 ip4:192.0.2.1 ~all"
    assert "amazonses" not in record.value


def test_merging_keeps_every_mechanism_and_names_what_it_removed() -> None:
    records = (
        "v=spf1 ip4:192.0.2.1 include:a.example.net ptr ?all",
        "v=spf1 +include:A.example.net mx -all exp=why.example.com",
    )
    tree = SpfNode(D, "apex", "", NodeStatus.MULTIPLE, records=records)
    fix = fixes.corrected_spf(SpfFacts(D, records=records, tree=tree), [])
    assert fix is not None
    assert fix.value == "v=spf1 ip4:192.0.2.1 include:a.example.net mx -all exp=why.example.com"
    valid_spf(fix.value)
    note = fixes.spf_record(fix, D).note
    for said in ("merges the 2", "`ptr`", "`+include:A.example.net`, a repeat", "`?all`"):
        assert said in note


def test_a_redirect_is_kept_and_no_all_is_added_beside_it() -> None:
    facts = spf_ok("v=spf1 ip4:192.0.2.1 redirect=_spf.example.net")
    services = [catalog().get("microsoft365")]
    fix = fixes.corrected_spf(facts, services)  # type: ignore[arg-type]
    assert fix is not None
    assert fix.value == (
        "v=spf1 ip4:192.0.2.1 include:spf.protection.outlook.com redirect=_spf.example.net"
    )
    assert valid_spf(fix.value).all is None


def test_an_include_reached_through_another_is_not_added_again() -> None:
    nested = SpfNode(
        "_spf.example.net",
        "include",
        "include:_spf.example.net",
        NodeStatus.OK,
        subtree_lookups=1,
        children=(include("spf.protection.outlook.com", 0),),
    )
    facts = spf_ok("v=spf1 include:_spf.example.net -all", nested)
    finding = attach(
        failed("spf.sender_not_authorized"), spf=facts, services=ServicesFacts(D, (M365,))
    )
    assert finding.records == ()  # nothing to add: the corrected record would be the same


def test_a_service_reached_through_the_redirect_is_not_added() -> None:
    target = SpfNode(
        "spf.protection.outlook.com",
        "redirect",
        "redirect=spf.protection.outlook.com",
        NodeStatus.OK,
    )
    facts = spf_ok("v=spf1 redirect=spf.protection.outlook.com", target)
    fix = fixes.corrected_spf(facts, [catalog().get("microsoft365")])  # type: ignore[list-item]
    assert fix is not None and fix.added == ()


def test_an_include_without_a_record_goes_with_the_reason() -> None:
    facts = spf_ok(
        "v=spf1 include:gone.example.net mx -all",
        include("gone.example.net", 0, NodeStatus.NO_RECORD),
    )
    gone = failed("spf.include_target_missing", "gone.example.net")
    (record,) = attach(gone, spf=facts).records
    assert record.value == "v=spf1 mx -all"
    assert "gone.example.net has no SPF record" in record.note
    deeper = failed("spf.include_target_missing", "elsewhere.example.net")
    assert attach(deeper, spf=facts).records == ()  # not in the domain's own record


def test_terms_that_can_never_match_go_only_when_that_clears_the_void_limit() -> None:
    gone = [TermFact(f"a:old{i}.example.net", "a", 1, f"old{i}.example.net", void_ipv4=True,
                     void_ipv6=True) for i in (1, 2, 3)]  # fmt: skip
    v6_only = TermFact("a:v4.example.net", "a", 1, "v4.example.net", void_ipv6=True)
    record = "v=spf1 a:old1.example.net a:old2.example.net a:old3.example.net a:v4.example.net -all"
    facts = spf_ok(record)
    facts = replace(
        facts,
        tree=replace(facts.tree, terms=(*gone, v6_only), void_ipv4=3, void_ipv6=4),  # type: ignore[arg-type]
    )
    (fixed,) = attach(failed("spf.too_many_void_lookups"), spf=facts).records
    assert fixed.value == "v=spf1 a:v4.example.net -all"  # it still matches over IPv4
    assert "old1.example.net has no records" in fixed.note
    many = replace(facts, tree=replace(facts.tree, void_ipv6=7))  # type: ignore[arg-type]
    assert attach(failed("spf.too_many_void_lookups"), spf=many).records == ()


def test_the_lookup_count_comes_from_the_published_tree() -> None:
    facts = spf_ok(
        "v=spf1 include:a.example.net include:b.example.net mx -all",
        include("a.example.net", 3),
        include("b.example.net", 1),
    )
    fix = fixes.corrected_spf(facts, [])
    assert fix is not None
    assert (fix.lookups, fix.over_limit) == (4 + 2 + 1, False)
    assert "It needs 7 of 10 DNS lookups." in fixes.spf_record(fix, D).note


def test_over_ten_lookups_the_note_asks_to_flatten_the_costliest_includes() -> None:
    facts = spf_ok(
        "v=spf1 include:big.example.net include:small.example.net ~all",
        include("big.example.net", 9),
        include("small.example.net", 2),
    )
    fix = fixes.corrected_spf(facts, [])
    assert fix is not None and fix.lookups == 13 and fix.over_limit
    note = fixes.spf_record(fix, D).note
    assert "Flattening is needed" in note
    assert "`include:big.example.net` (10), `include:small.example.net` (3)" in note
    assert "ip4:" not in fix.value  # no invented addresses
    # The record alone does not clear the lookup limit, so that finding gets none.
    assert attach(failed("spf.too_many_lookups"), spf=facts).records == ()


def test_a_record_that_does_not_parse_is_left_out_of_a_merge_and_said() -> None:
    records = ("v=spf1 ip4:192.0.2.1 -all", "v=spf1 ip4:300.0.0.1 ~all")
    tree = SpfNode(D, "apex", "", NodeStatus.MULTIPLE, records=records)
    fix = fixes.corrected_spf(SpfFacts(D, records=records, tree=tree), [])
    assert fix is not None and fix.value == "v=spf1 ip4:192.0.2.1 -all"
    assert any(c.startswith("leaves out `v=spf1 ip4:300.0.0.1 ~all`") for c in fix.changes)


def test_a_followed_redirect_counts_its_subtree_and_an_ignored_one_nothing() -> None:
    target = SpfNode("_spf.example.net", "redirect", "redirect=_spf.example.net", NodeStatus.OK)
    followed = fixes.corrected_spf(
        spf_ok("v=spf1 mx redirect=_spf.example.net", replace(target, subtree_lookups=2)), []
    )
    assert followed is not None and followed.lookups == 1 + 3
    ignored = fixes.corrected_spf(spf_ok("v=spf1 mx -all redirect=_spf.example.net"), [])
    assert ignored is not None and ignored.lookups == 1
    assert ignored.value == "v=spf1 mx -all redirect=_spf.example.net"


def test_a_syntax_error_gets_no_record() -> None:
    tree = SpfNode(D, "apex", "", NodeStatus.SYNTAX_ERROR, record="v=spf1 ip4:300.1.1.1 -all")
    assert fixes.corrected_spf(SpfFacts(D, tree=tree), []) is None


def test_a_long_record_says_it_needs_several_strings() -> None:
    ranges = " ".join(f"ip4:198.51.100.{i}" for i in range(1, 20))
    fix = fixes.corrected_spf(spf_ok(f"v=spf1 {ranges} ip6:2001:db8::/32 -all"), [])
    assert fix is not None and len(fix.value) > 255
    assert "several quoted strings" in fixes.spf_record(fix, D).note


def test_an_all_inherited_through_redirect_is_not_patched_here() -> None:
    redirect = SpfNode("_spf.example.net", "redirect", "redirect=_spf.example.net", NodeStatus.OK)
    facts = spf_ok("v=spf1 redirect=_spf.example.net", redirect)
    assert attach(failed("spf.permissive_all"), spf=facts).records == ()


# -- DMARC -------------------------------------------------------------------------------


RUA = "rua=mailto:d@example.com"
P_STAGES = ("p=none", "p=quarantine", "p=reject")


@pytest.mark.parametrize(
    ("published", "tag", "stages"),
    [
        (None, "p", P_STAGES),
        (f"v=DMARC1; p=none; t=y; {RUA}", "p", P_STAGES),
        (f"v=DMARC1; p=reject; sp=none; {RUA}", "sp", ("sp=none", "sp=quarantine", "sp=reject")),
    ],
)
def test_the_three_stages_parse_and_escalate(
    published: str | None, tag: str, stages: tuple[str, ...]
) -> None:
    record = parse_dmarc(published) if published else None
    out = fixes.dmarc_stages(record, D, tag)
    assert [r.name for r in out] == [f"_dmarc.{D}"] * 3
    for stage, expected in zip(out, stages, strict=True):
        parsed = parse_dmarc(stage.value)
        assert parsed is not None and parsed.issues == ()
        assert expected in stage.value.split("; ")
        assert not parsed.testing and parsed.rua
    heads = ("Stage 1 of 3 (monitoring):", "Stage 2 of 3:", "Stage 3 of 3:")
    for stage, head in zip(out, heads, strict=True):
        assert head in stage.note
    if published and out[0].value == published:
        assert out[0].note.startswith("You publish this record now.")


def test_an_existing_rua_and_ruf_are_kept_and_no_mailbox_is_invented() -> None:
    record = parse_dmarc(
        "v=DMARC1; p=none; rua=mailto:a@example.com; ruf=mailto:f@example.com; fo=1"
    )
    (first, _, last) = fixes.dmarc_stages(record, D)
    assert last.value == (
        "v=DMARC1; p=reject; rua=mailto:a@example.com; ruf=mailto:f@example.com; fo=1"
    )
    assert "Create the mailbox" not in first.note


def test_a_stricter_policy_is_never_lowered() -> None:
    facts = DmarcFacts(D, "v=DMARC1; p=quarantine", D, D, D, policy="quarantine", policy_tag="p")
    assert attach(failed("dmarc.policy_none"), dmarc=facts).records == ()


def test_an_inherited_policy_is_staged_at_its_own_domain() -> None:
    facts = DmarcFacts(
        f"mail.{D}", "v=DMARC1; p=none; rua=mailto:d@example.com", D, D, D, policy="none",
        policy_tag="sp",
    )  # fmt: skip
    finding = attach(
        failed("dmarc.policy_none", f"mail.{D}"), CheckRequest(f"mail.{D}"), dmarc=facts
    )
    assert {r.name for r in finding.records} == {f"_dmarc.{D}"}
    assert "its other subdomains too" in finding.records[0].note


def test_single_changes_keep_the_rest_of_the_record() -> None:
    facts = DmarcFacts(D, "v=DMARC1; p=reject; sp=none; t=y", D, D, D, policy="reject")
    no_rua = attach(failed("dmarc.no_aggregate_reports"), dmarc=facts).records[0]
    assert no_rua.value == f"v=DMARC1; p=reject; sp=none; t=y; rua=mailto:dmarc-reports@{D}"
    testing = attach(failed("dmarc.testing"), dmarc=facts).records[0]
    assert testing.value == "v=DMARC1; p=reject; sp=none"
    subdomains = attach(failed("dmarc.subdomain_policy_none"), dmarc=facts).records[0]
    assert subdomains.value == "v=DMARC1; p=reject; t=y"


# -- DKIM (Microsoft 365) ---------------------------------------------------------------


def test_the_tenant_domain_is_the_one_the_caller_says_owns_the_domain() -> None:
    given = CheckRequest(D, tenant_domain="Contoso.onmicrosoft.com.")
    assert fixes.initial_domain(given) == "contoso.onmicrosoft.com"
    # A user's own onmicrosoft address names the user's tenant, not the checked domain's:
    # a user may check, or send as, a domain of another tenant.
    hybrid = CheckRequest(
        D, own_addresses=("a@contoso.mail.onmicrosoft.com", "a@contoso.onmicrosoft.com")
    )
    assert fixes.initial_domain(hybrid) is None
    assert fixes.initial_domain(CheckRequest(D, mailbox="a@contoso.onmicrosoft.com")) is None


def test_the_cnames_use_the_domain_with_dashes_under_the_initial_domain() -> None:
    request = CheckRequest(D, tenant_domain="contoso.onmicrosoft.com")
    facts = DkimFacts(D, (SelectorFacts("selector1", f"selector1._domainkey.{D}", "nxdomain"),))
    finding = attach(failed("dkim.missing", service="microsoft365"), request, dkim=facts)
    tenant = "_domainkey.contoso.onmicrosoft.com"
    assert [(r.type, r.name, r.value) for r in finding.records] == [
        ("CNAME", f"selector1._domainkey.{D}", f"selector1-example-com.{tenant}"),
        ("CNAME", f"selector2._domainkey.{D}", f"selector2-example-com.{tenant}"),
    ]
    assert "Get-DkimSigningConfig" in finding.records[0].note


def test_no_dkim_record_for_other_services_or_an_unknown_tenant() -> None:
    facts = DkimFacts(D)
    assert attach(failed("dkim.missing", service="google"), dkim=facts).records == ()
    assert attach(failed("dkim.missing", service="microsoft365"), dkim=facts).records == ()


# -- MTA-STS and TLS-RPT -----------------------------------------------------------------


def mx_facts(*hosts: str) -> MxFacts:
    return MxFacts(D, tuple(MxHost(h, 10 * i) for i, h in enumerate(hosts)))


def test_a_new_policy_is_testing_with_one_mx_line_per_host_and_parses() -> None:
    finding = attach(
        failed("mta_sts.not_published"),
        mta_sts=MtaStsFacts(D, False),
        mx=mx_facts("mx1.example.com", "mx2.example.com", "mx1.example.com"),
    )
    policy, announce = finding.records
    assert (policy.type, policy.name) == ("FILE", f"https://mta-sts.{D}/.well-known/mta-sts.txt")
    parsed = mta_sts.parse_policy(policy.value)
    assert (parsed.error, parsed.mode, parsed.max_age) == ("", "testing", 604800)
    assert parsed.mx == ("mx1.example.com", "mx2.example.com")
    assert mta_sts.sts_records((announce.value,)) == (announce.value,)
    assert mta_sts.parse_txt(announce.value) == ("20261203T060000123456", "")
    assert "cannot know your web host" in policy.note


def test_no_policy_without_mx_hosts() -> None:
    null = MxFacts(D, null_mx=True)
    assert (
        attach(failed("mta_sts.not_published"), mta_sts=MtaStsFacts(D, False), mx=null).records
        == ()
    )


def test_enforcing_and_a_longer_max_age_keep_the_policy_otherwise() -> None:
    policy = Policy("STSv1", "testing", 3600, ("*.example.com",))
    facts = MtaStsFacts(D, True, "v=STSv1; id=1", "1", policy, mx_hosts=("mx.example.com",))
    mode = attach(failed("mta_sts.mode"), mta_sts=facts).records[0]
    assert mta_sts.parse_policy(mode.value) == Policy("STSv1", "enforce", 3600, ("*.example.com",))
    age = attach(failed("mta_sts.max_age_short"), mta_sts=facts).records[0]
    assert mta_sts.parse_policy(age.value).max_age == 604800


@pytest.mark.parametrize(("meant", "mode"), [("strict", "testing"), ("enforce", "enforce")])
def test_an_invalid_policy_is_replaced_as_the_check_says(meant: str, mode: str) -> None:
    broken = Policy("STSv1", meant, None, (), error="at least one mx: line is required")
    facts = MtaStsFacts(D, True, "v=STSv1; id=1", "1", broken, mx_hosts=("mx.example.com",))
    (finding,) = mta_sts.policy_findings(facts)
    policy, _ = attach(finding, mta_sts=facts, mx=mx_facts("mx.example.com")).records
    assert mta_sts.parse_policy(policy.value).mode == mode
    assert policy.value.strip() in finding.fix  # the check's text shows the same file


def test_an_invalid_txt_record_gets_only_a_new_one() -> None:
    facts = MtaStsFacts(D, True, "v=STSv1; id=not-valid!", "not-valid!")
    (record,) = attach(failed("mta_sts.record_invalid"), mta_sts=facts).records
    assert record.name == f"_mta-sts.{D}" and mta_sts.parse_txt(record.value)[1] == ""


def test_the_tlsrpt_record_parses() -> None:
    (record,) = attach(failed("tlsrpt.missing")).records
    assert record.name == f"_smtp._tls.{D}"
    assert tlsrpt.rpt_records((record.value,)) == (record.value,)
    assert tlsrpt.parse_record(record.value) == ((f"mailto:tls-reports@{D}",), "")


# -- attach ------------------------------------------------------------------------------


def test_passes_unknowns_and_findings_with_records_are_left_as_they_are() -> None:
    rule = Rule("tlsrpt.missing", "s", "spec", Severity.WARNING)
    own = (Record("TXT", "x", "y"),)
    findings = [
        rule.passed(D, "ok"),
        rule.unknown(D, "timed out"),
        replace(rule.failed(D, "t"), records=own),
        failed("mx.missing"),
    ]
    out = fixes.attach(findings, {}, CheckRequest(D), Settings(), now=NOW)
    assert out == tuple(findings)


def test_every_fixable_id_is_a_declared_rule() -> None:
    from sendready.engine import default_checks
    from sendready.model import RULES

    default_checks()
    assert set(fixes.FIXABLE) <= set(RULES)


def test_a_builder_that_fails_costs_only_its_records(caplog: pytest.LogCaptureFixture) -> None:
    sane = DmarcFacts(D, "v=DMARC1; p=none", D, D, D, policy="none")
    odd = object.__new__(DmarcFacts)  # facts without their fields: the builder raises
    finding = failed("dmarc.policy_none")
    assert attach(finding, dmarc=sane).records
    assert attach(finding, dmarc=odd) == finding
    assert "dmarc.policy_none" in caplog.text


def test_only_an_external_destination_gets_an_authorisation_record() -> None:
    from sendready.checks.dmarc import ReportDestination

    query = f"{D}._report._dmarc.reports.example.net"
    facts = DmarcFacts(
        D, "v=DMARC1; p=reject", D, D, D, policy="reject",
        destinations=(
            ReportDestination("rua", "mailto:a@reports.example.net", "reports.example.net", True,
                              "example.net", query, False),
            ReportDestination("rua", f"mailto:b@{D}", D, False),
        ),
    )  # fmt: skip
    (record,) = attach(
        failed("dmarc.report_destination_unauthorized", "reports.example.net"), dmarc=facts
    ).records
    assert (record.name, record.value) == (query, "v=DMARC1")
    assert parse_dmarc(record.value) is not None
    own = failed("dmarc.report_destination_unauthorized", D)
    assert attach(own, dmarc=facts).records == ()


def test_the_requirement_line_gets_stages_only_when_no_record_applies() -> None:
    line = failed("requirements.dmarc_record")
    none = DmarcFacts(D, None, None, D, D)
    assert [r.value.split("; ")[1] for r in attach(line, dmarc=none).records] == [
        "p=none",
        "p=quarantine",
        "p=reject",
    ]
    unknown = DmarcFacts(D, None, None, D, D, unknown="timed out")
    assert attach(line, dmarc=unknown).records == ()
