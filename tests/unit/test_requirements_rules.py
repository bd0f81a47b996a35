"""Provider-requirement rules on hand-built sections (no DNS)."""

from __future__ import annotations

from sendready.checks import dkim, dmarc, ptr, smtp, spf
from sendready.checks import requirements as req
from sendready.checks.dkim import DkimFacts, DkimKey, SelectorFacts
from sendready.checks.dmarc import DmarcFacts
from sendready.checks.requirements import ItemStatus, Verdict
from sendready.checks.services import DetectedService, ServicesFacts
from sendready.engine import Section
from sendready.model import Severity, Status

PASS = Verdict(ItemStatus.PASS, "ok")
FAIL = Verdict(ItemStatus.FAIL, "no")
UNKNOWN = Verdict(ItemStatus.UNKNOWN, "?")
HTTPS = ("List-Unsubscribe", "<https://example.test/u/1>")
POST = ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")


def dmarc_section(policy: str | None, *, unknown: str = "", domain: str = "a.test") -> Section:
    facts = DmarcFacts(
        domain=domain,
        record=f"v=DMARC1; p={policy}" if policy else None,
        policy_domain="a.test" if policy else None,
        organizational_domain="a.test",
        legacy_organizational_domain="a.test",
        policy=policy,
        unknown=unknown,
    )
    return Section((), facts)


def dkim_section(*keys: DkimKey) -> Section:
    sel = SelectorFacts("s1", "s1._domainkey.a.test", "answer" if keys else "nxdomain", (), keys)
    return Section((), DkimFacts("a.test", (sel,)))


def test_one_click_needs_an_https_uri_and_the_exact_post_value() -> None:
    assert req.unsubscribe_verdict((HTTPS, POST)).status is ItemStatus.PASS
    mailto_only = req.unsubscribe_verdict((("List-Unsubscribe", "<mailto:u@a.test>"), POST))
    assert mailto_only.status is ItemStatus.FAIL
    assert "https" in mailto_only.why
    wrong_post = req.unsubscribe_verdict((HTTPS, ("List-Unsubscribe-Post", "One-Click")))
    assert (wrong_post.status, wrong_post.severity) == (ItemStatus.FAIL, Severity.WARNING)
    assert "List-Unsubscribe=One-Click" in wrong_post.why


def test_one_click_header_names_are_case_insensitive() -> None:
    lower = (("list-unsubscribe", HTTPS[1]), ("LIST-UNSUBSCRIBE-POST", POST[1]))
    assert req.unsubscribe_verdict(lower).status is ItemStatus.PASS


def test_headers_not_available_is_unknown_and_absent_headers_an_info_fail() -> None:
    assert req.unsubscribe_verdict(None).status is ItemStatus.UNKNOWN
    absent = req.unsubscribe_verdict(())
    assert (absent.status, absent.severity) == (ItemStatus.FAIL, Severity.INFO)


def test_either_and_both_combine_spf_and_dkim() -> None:
    assert req.combine(PASS, FAIL, both=False).status is ItemStatus.PASS
    assert req.combine(FAIL, FAIL, both=False).status is ItemStatus.FAIL
    assert req.combine(FAIL, UNKNOWN, both=False).status is ItemStatus.UNKNOWN
    assert req.combine(PASS, PASS, both=True).status is ItemStatus.PASS
    assert req.combine(PASS, UNKNOWN, both=True).status is ItemStatus.UNKNOWN
    assert req.combine(PASS, FAIL, both=True).status is ItemStatus.FAIL


def test_spf_with_a_permerror_fails_and_a_valid_record_passes() -> None:
    broken = spf.TOO_MANY_LOOKUPS.failed("a.test", "The policy needs 12 lookups")
    assert req.spf_verdict(Section((broken,))).status is ItemStatus.FAIL
    valid = spf.VALID.passed("a.test", "One valid SPF record")
    assert req.spf_verdict(Section((valid,))).status is ItemStatus.PASS
    assert req.spf_verdict(None).status is ItemStatus.UNKNOWN


def test_dkim_passes_on_a_usable_key_not_on_a_revoked_one() -> None:
    assert req.dkim_verdict(dkim_section(DkimKey("v=DKIM1; p=AAA", bits=2048))).status is (
        ItemStatus.PASS
    )
    revoked = dkim_section(DkimKey("v=DKIM1; p=", revoked=True))
    revoked = Section((dkim.REVOKED.failed("s1._domainkey.a.test", "revoked"),), revoked.facts)
    assert req.dkim_verdict(revoked).status is ItemStatus.FAIL
    # Selectors cannot be listed: no key found at the ones tried is not a failure.
    assert req.dkim_verdict(dkim_section()).status is ItemStatus.UNKNOWN


def test_dmarc_record_p_none_is_accepted_and_reject_is_recommended() -> None:
    none = req.dmarc_verdict(dmarc_section("none"))
    assert none.status is ItemStatus.PASS
    assert "recommends p=reject" in none.why
    assert "recommends" not in req.dmarc_verdict(dmarc_section("reject")).why
    assert req.dmarc_verdict(dmarc_section(None)).status is ItemStatus.FAIL
    failed_lookup = dmarc_section(None, unknown="timeout")
    assert req.dmarc_verdict(failed_lookup).status is ItemStatus.UNKNOWN


def test_inherited_dmarc_policy_says_where_it_comes_from() -> None:
    sub = req.dmarc_verdict(dmarc_section("quarantine", domain="news.a.test"))
    assert "inherited from a.test" in sub.why


def test_alignment_falls_back_to_the_records_and_says_so() -> None:
    estimate = req.alignment_verdict(None, PASS, FAIL, None)
    assert estimate.status is ItemStatus.PASS
    assert "alignment simulation is not in this check" in estimate.why
    assert req.alignment_verdict(None, UNKNOWN, PASS, None).status is ItemStatus.UNKNOWN
    assert req.alignment_verdict(None, FAIL, FAIL, None).status is ItemStatus.FAIL


def test_a_predicted_dmarc_failure_fails_alignment() -> None:
    will_fail = dmarc.WILL_FAIL.failed("a.test", "DMARC will fail for mail from SendGrid")
    verdict = req.alignment_verdict(None, PASS, PASS, Section((will_fail,)))
    assert verdict.status is ItemStatus.FAIL
    assert "SendGrid" in verdict.why


def test_an_spf_problem_beside_an_aligned_dkim_path_is_not_an_alignment_failure() -> None:
    unauthorized = spf.NOT_AUTHORIZED.failed("a.test", "SPF fails for SendGrid's egress")
    passes = dmarc.WILL_FAIL.passed("a.test", "DMARC passes for SendGrid: DKIM aligns")
    verdict = req.alignment_verdict(Section((unauthorized, passes)), FAIL, PASS, None)
    assert verdict.status is ItemStatus.PASS and "DKIM aligns" in verdict.why
    failing = dmarc.WILL_FAIL.failed("a.test", "DMARC fails for Microsoft 365")
    both = req.alignment_verdict(Section((unauthorized, passes, failing)), FAIL, PASS, None)
    assert both.status is ItemStatus.FAIL and "Microsoft 365" in both.why
    unknown = dmarc.WILL_FAIL.unknown("a.test", "no sending service known")
    assert req.alignment_verdict(Section((unknown,)), PASS, PASS, None).status is (
        ItemStatus.UNKNOWN
    )


def test_reverse_dns_and_tls_of_a_sending_service_are_the_providers_side() -> None:
    services = Section((), ServicesFacts("a.test", (DetectedService("google", "Google", ()),)))
    for verdict in (req.reverse_dns_verdict(None, services), req.tls_verdict(None, services)):
        assert verdict.status is ItemStatus.PASS
        assert "provider's side" in verdict.why


def test_own_servers_are_judged_by_ptr_and_starttls() -> None:
    no_ptr = ptr.MISSING.failed("192.0.2.1 (mx.a.test)", "The MX address has no PTR record")
    assert req.reverse_dns_verdict(Section((no_ptr,)), None).status is ItemStatus.FAIL
    confirmed = ptr.FCRDNS.passed("192.0.2.1 (mx.a.test)", "forward-confirmed")
    assert req.reverse_dns_verdict(Section((confirmed,)), None).status is ItemStatus.PASS
    plain = smtp.STARTTLS_MISSING.failed("mx.a.test:25", "No STARTTLS")
    assert req.tls_verdict(Section((plain,)), None).status is ItemStatus.FAIL
    assert req.tls_verdict(Section(()), None).status is ItemStatus.UNKNOWN


def test_every_checkable_line_becomes_one_finding_with_its_providers() -> None:
    verdicts = [PASS, FAIL, UNKNOWN, PASS, PASS, PASS, req.unsubscribe_verdict(())]
    facts = req.RequirementsFacts("a.test", req.checklist(verdicts))
    out = req.findings(facts, verdicts)
    assert [f.id for f in out] == [r.id for r, _, _ in req.CHECKABLE] + [req.NOT_CHECKABLE.id]
    assert [f.status for f in out[:3]] == [Status.PASS, Status.FAIL, Status.UNKNOWN]
    both = out[1]
    assert both.fix and "Outlook.com: bulk senders" in both.title
    yahoo = next(p for p in both.data["providers"] if p.provider == "Yahoo")
    assert yahoo.uncertain and yahoo.applies_to == "bulk senders"
    assert out[-1].status is Status.UNKNOWN  # what cannot be checked is never a pass
