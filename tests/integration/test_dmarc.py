"""DMARC through ``check()`` with a real DnsSession against Knot (tests/zones/dmarc-*.zone).

Knot serves the ``dmarc-*.test`` zones but not ``test.`` itself, and refuses questions for
it; the walk down to the TLD then goes on to the second nameserver, the project's tiny DNS
server, loaded with an empty ``test.`` zone: the authoritative NXDOMAIN a real TLD gives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from sendready.checks import dmarc
from sendready.checks.dmarc_orgdomain import SuffixList, walk_names
from sendready.config import Settings
from sendready.dns import Deadline, Nameserver, Resolver
from sendready.engine import CheckContext, Engine, Section
from sendready.model import CheckRequest, Finding, Severity, Status
from tests.fixtures.knot import KnotServer
from tests.servers.tiny_dns import TinyDns

TLD_ZONE = "test. 300 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300\n"


@pytest.fixture
def tld(fault_dns: TinyDns) -> Iterator[TinyDns]:
    fault_dns.load_zone(TLD_ZONE)
    fault_dns.faults.clear()
    fault_dns.delay_ms = 0
    yield fault_dns
    fault_dns.faults.clear()


@pytest.fixture
def servers(dns_server: KnotServer, tld: TinyDns) -> tuple[Nameserver, ...]:
    return (Nameserver(dns_server.host, dns_server.port), Nameserver(tld.address, tld.port))


def run(
    servers: tuple[Nameserver, ...], domain: str, suffixes: SuffixList | None = None
) -> tuple[Section, list[tuple[str, str]]]:
    """The check on a fresh resolver (no cache from other tests), and the questions it asked."""
    resolver = Resolver(servers, timeout=2.0)

    async def go() -> tuple[Section, list[tuple[str, str]]]:
        deadline = Deadline.after(5)
        services = {"public_suffix_list": suffixes} if suffixes is not None else {}
        ctx = CheckContext(
            CheckRequest(domain=domain, probe_smtp=False),
            resolver.session(deadline),
            Settings(dns_servers=servers),
            deadline,
            services,
        )
        return await dmarc.check(ctx), ctx.dns.stats.questions

    return asyncio.run(go())


def check(servers: tuple[Nameserver, ...], domain: str, **kw: SuffixList) -> Section:
    return run(servers, domain, **kw)[0]


def ids(section: Section, status: Status = Status.FAIL) -> set[str]:
    return {f.id for f in section.findings if f.status is status}


def one(section: Section, id: str) -> Finding:
    (finding,) = [f for f in section.findings if f.id == id]
    return finding


# -- policies ------------------------------------------------------------------------


def test_a_clean_enforced_policy_passes_with_its_facts(servers: tuple[Nameserver, ...]) -> None:
    section = check(servers, "dmarc-good.test")
    assert ids(section) == set() and ids(section, Status.UNKNOWN) == set()
    assert ids(section, Status.PASS) == {"dmarc.present", "dmarc.missing"}
    facts = section.facts
    assert facts.record == "v=DMARC1; p=reject; rua=mailto:dmarc@dmarc-good.test"
    assert (facts.policy_domain, facts.policy, facts.policy_tag) == (
        "dmarc-good.test",
        "reject",
        "p",
    )
    assert facts.organizational_domain == "dmarc-good.test"
    assert facts.legacy_organizational_domain == "dmarc-good.test"
    assert facts.tags["rua"] == "mailto:dmarc@dmarc-good.test"
    assert [s.query for s in facts.walk] == ["_dmarc.dmarc-good.test", "_dmarc.test"]
    assert [s.outcome for s in facts.walk] == ["answer", "nxdomain"]
    (destination,) = facts.destinations
    assert (destination.domain, destination.external, destination.receives_mail) == (
        "dmarc-good.test",
        False,
        True,
    )


def test_no_record_anywhere_is_missing_after_the_whole_walk(
    servers: tuple[Nameserver, ...],
) -> None:
    section = check(servers, "missing.dmarc-bad.test")
    assert ids(section) == {"dmarc.missing"}
    missing = one(section, "dmarc.missing")
    assert missing.data["asked"] == [
        "_dmarc.missing.dmarc-bad.test",
        "_dmarc.dmarc-bad.test",
        "_dmarc.test",
    ]
    assert '"v=DMARC1; p=none; rua=mailto:dmarc-reports@missing.dmarc-bad.test"' in missing.fix


def test_policy_none_and_no_reports(servers: tuple[Nameserver, ...]) -> None:
    section = check(servers, "none.dmarc-tags.test")
    assert ids(section) == {"dmarc.policy_none", "dmarc.no_aggregate_reports"}
    none = one(section, "dmarc.policy_none")
    assert (none.status, none.severity) == (Status.FAIL, Severity.WARNING)
    assert "p=quarantine" in none.fix and "p=reject" in none.fix


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("testing.dmarc-tags.test", {"dmarc.testing"}),
        ("spnone.dmarc-tags.test", {"dmarc.subdomain_policy_none"}),
        ("removed.dmarc-tags.test", {"dmarc.removed_tag"}),
        ("unknown.dmarc-tags.test", {"dmarc.unknown_tag"}),
        ("syntax.dmarc-tags.test", {"dmarc.syntax_error"}),
        ("invalid.dmarc-tags.test", {"dmarc.invalid_value", "dmarc.policy_none"}),
        ("nopolicy.dmarc-tags.test", {"dmarc.not_applied"}),
        ("size.dmarc-tags.test", {"dmarc.uri_size_limit"}),
        ("nomx.dmarc-tags.test", {"dmarc.report_domain_no_mail"}),
    ],
)
def test_each_tag_rule_is_reported_from_the_served_record(
    servers: tuple[Nameserver, ...], domain: str, expected: set[str]
) -> None:
    section = check(servers, domain)
    assert ids(section) == expected
    assert ids(section, Status.UNKNOWN) == set()


def test_removed_pct_zero_is_replaced_by_t_y(servers: tuple[Nameserver, ...]) -> None:
    finding = one(check(servers, "removed.dmarc-tags.test"), "dmarc.removed_tag")
    assert finding.data["tags"] == ["pct", "rf", "ri"]
    assert '"v=DMARC1; p=quarantine; rua=mailto:dmarc@dmarc-tags.test; t=y"' in finding.fix


def test_invalid_values_fall_back_and_say_which(servers: tuple[Nameserver, ...]) -> None:
    section = check(servers, "invalid.dmarc-tags.test")
    assert {f.data["tag"] for f in section.findings if f.id == "dmarc.invalid_value"} == {
        "p",
        "adkim",
    }
    assert section.facts.policy == "none" and section.facts.policy_tag == "rua"


def test_a_record_split_into_strings_is_one_record(servers: tuple[Nameserver, ...]) -> None:
    section = check(servers, "split.dmarc-tags.test")
    assert section.facts.record == "v=DMARC1; p=reject; rua=mailto:dmarc@dmarc-tags.test"
    assert ids(section) == set() and "dmarc.present" in ids(section, Status.PASS)


# -- records in the wrong place or shape ----------------------------------------------


def test_a_record_at_the_apex_is_reported_and_dmarc_is_missing(
    servers: tuple[Nameserver, ...],
) -> None:
    section = check(servers, "apex.dmarc-bad.test")
    assert ids(section) == {"dmarc.record_at_apex", "dmarc.missing"}
    assert "_dmarc.apex.dmarc-bad.test. IN TXT" in one(section, "dmarc.record_at_apex").fix


def test_leading_whitespace_voids_the_record(servers: tuple[Nameserver, ...]) -> None:
    section = check(servers, "whitespace.dmarc-bad.test")
    assert ids(section) == {"dmarc.not_version_first", "dmarc.missing"}
    assert one(section, "dmarc.not_version_first").severity is Severity.CRITICAL


def test_an_spf_record_answered_at_dmarc_is_reported(servers: tuple[Nameserver, ...]) -> None:
    section = check(servers, "spf.dmarc-bad.test")
    assert ids(section) == {"dmarc.spf_at_dmarc", "dmarc.missing"}


def test_two_records_at_one_name_are_both_discarded(servers: tuple[Nameserver, ...]) -> None:
    section = check(servers, "multiple.dmarc-bad.test")
    assert ids(section) == {"dmarc.multiple_records", "dmarc.missing"}
    assert one(section, "dmarc.multiple_records").data["count"] == 2
    assert section.facts.walk[0].valid_records == 2


# -- the tree walk ---------------------------------------------------------------------


def test_a_deep_subdomain_finds_the_policy_at_an_ancestor_within_eight_queries(
    servers: tuple[Nameserver, ...],
) -> None:
    domain = "x.y.z.a.b.c.d.e.f.dmarc-walk.test"
    section = check(servers, domain)
    facts = section.facts
    assert facts.policy_domain == "dmarc-walk.test"
    assert (facts.policy, facts.policy_tag) == ("quarantine", "sp")
    assert facts.organizational_domain == "dmarc-walk.test"
    assert [s.name for s in facts.walk] == list(walk_names(domain))
    assert len(facts.walk) == 8 and facts.walk[1].name == "b.c.d.e.f.dmarc-walk.test"
    inherited = one(section, "dmarc.inherited")
    assert inherited.status is Status.PASS and inherited.data["policy_domain"] == "dmarc-walk.test"
    asked = [q for q, t in run(servers, domain)[1] if q.startswith("_dmarc.") and t == "TXT"]
    assert sorted(asked) == sorted(f"_dmarc.{n}" for n in walk_names(domain))


def test_a_name_that_does_not_exist_gets_np(servers: tuple[Nameserver, ...]) -> None:
    facts = check(servers, "nothere.dmarc-walk.test").facts
    assert (facts.policy_domain, facts.policy, facts.policy_tag) == (
        "dmarc-walk.test",
        "reject",
        "np",
    )


def test_an_existing_subdomain_gets_sp(servers: tuple[Nameserver, ...]) -> None:
    facts = check(servers, "mail.dmarc-walk.test").facts
    assert (facts.policy, facts.policy_tag) == ("quarantine", "sp")


def test_psd_n_makes_a_department_its_own_organization_and_the_views_differ(
    servers: tuple[Nameserver, ...],
) -> None:
    section = check(servers, "host.dept.dmarc-walk.test")
    facts = section.facts
    assert facts.organizational_domain == "dept.dmarc-walk.test"
    assert (facts.policy_domain, facts.policy) == ("dept.dmarc-walk.test", "none")
    # RFC 7489: author domain, then the PSL registrable domain only.
    assert facts.legacy_organizational_domain == "dmarc-walk.test"
    assert (facts.legacy_policy_domain, facts.legacy_policy) == ("dmarc-walk.test", "quarantine")
    differs = one(section, "dmarc.discovery_differs")
    assert (
        differs.data["rfc9989_policy"] == "none" and differs.data["rfc7489_policy"] == "quarantine"
    )
    assert "dmarc.policy_none" in ids(section)
    # psd=n draws an organizational boundary: the parent's mailbox is now external.
    unauthorized = one(section, "dmarc.report_destination_unauthorized")
    assert unauthorized.data["query"] == "dept.dmarc-walk.test._report._dmarc.dmarc-walk.test"


def test_psd_y_at_a_suffix_operator_sets_the_organizational_domain_one_below(
    servers: tuple[Nameserver, ...],
) -> None:
    section = check(servers, "mail.shop.dmarc-pso.test")
    facts = section.facts
    assert (facts.policy_domain, facts.policy) == ("dmarc-pso.test", "reject")
    assert facts.organizational_domain == "shop.dmarc-pso.test"


def test_a_suffix_list_naming_the_operator_makes_the_legacy_view_find_nothing(
    servers: tuple[Nameserver, ...],
) -> None:
    suffixes = SuffixList(["test", "dmarc-pso.test"])
    section = check(servers, "mail.shop.dmarc-pso.test", suffixes=suffixes)
    facts = section.facts
    assert facts.legacy_organizational_domain == "shop.dmarc-pso.test"
    assert facts.legacy_policy_domain is None and facts.legacy_policy is None
    differs = one(section, "dmarc.discovery_differs")
    assert differs.data["rfc9989_policy_domain"] == "dmarc-pso.test"
    assert differs.data["rfc7489_policy_domain"] is None
    # The bundled list treats `test` as the suffix, so there the views agree on the policy.
    bundled = check(servers, "mail.shop.dmarc-pso.test").facts
    assert bundled.legacy_policy_domain == "dmarc-pso.test"


# -- report destinations ---------------------------------------------------------------


def test_an_external_destination_that_authorised_the_domain_passes(
    servers: tuple[Nameserver, ...],
) -> None:
    section = check(servers, "authorized.dmarc-reports.test")
    assert ids(section) == set()
    passed = one(section, "dmarc.report_destination_authorized")
    assert (
        passed.data["query"] == "authorized.dmarc-reports.test._report._dmarc.auth.dmarc-rcv.test"
    )
    (destination,) = section.facts.destinations
    assert destination.external and destination.authorized is True


def test_a_wildcard_authorisation_counts_for_rua_and_ruf(servers: tuple[Nameserver, ...]) -> None:
    section = check(servers, "wildcard.dmarc-reports.test")
    assert ids(section) == set()
    assert {(d.tag, d.authorized) for d in section.facts.destinations} == {
        ("rua", True),
        ("ruf", True),
    }


def test_an_unauthorised_destination_is_reported_with_the_record_to_publish(
    servers: tuple[Nameserver, ...],
) -> None:
    section = check(servers, "unauthorized.dmarc-reports.test")
    assert ids(section) == {"dmarc.report_destination_unauthorized"}
    finding = one(section, "dmarc.report_destination_unauthorized")
    assert (
        '`unauthorized.dmarc-reports.test._report._dmarc.none.dmarc-rcv.test. IN TXT "v=DMARC1"`'
        in finding.fix
    )
    assert finding.subject == "none.dmarc-rcv.test"


def test_a_record_that_does_not_start_with_v_dmarc1_does_not_authorise(
    servers: tuple[Nameserver, ...],
) -> None:
    section = check(servers, "wrongauth.dmarc-reports.test")
    assert ids(section) == {"dmarc.report_destination_unauthorized"}


# -- through the engine ------------------------------------------------------------------


def test_the_engine_runs_the_check_and_serialises_its_facts(
    servers: tuple[Nameserver, ...],
) -> None:
    with Engine(Settings(dns_servers=servers), checks={"dmarc": dmarc.check}) as engine:
        report = engine.check(CheckRequest(domain="spnone.dmarc-tags.test", probe_smtp=False))
    assert {f.id for f in report.findings if f.status is Status.FAIL} == {
        "dmarc.subdomain_policy_none"
    }
    data = report.to_json()
    assert data["facts"]["dmarc"]["policy_domain"] == "spnone.dmarc-tags.test"
    assert data["facts"]["dmarc"]["walk"][0]["query"] == "_dmarc.spnone.dmarc-tags.test"


def test_an_authorisation_may_redirect_reports_only_within_its_own_host(
    servers: tuple[Nameserver, ...],
) -> None:
    section = check(servers, "overridden.dmarc-reports.test")
    assert ids(section) == set()
    passed = one(section, "dmarc.report_destination_authorized")
    assert passed.data["override"] == ["mailto:other@over.dmarc-rcv.test"]
    assert passed.data["override_ignored"] == ["mailto:x@dmarc-good.test"]
    (destination,) = section.facts.destinations
    assert destination.override == ("mailto:other@over.dmarc-rcv.test",)
