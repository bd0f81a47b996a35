"""SPF rules on records: grammar, record selection, macros, and every finding of checks/spf.py
built from hand-made facts (no network)."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest

from sendready.checks import spf
from sendready.checks.spf import NodeStatus, SpfFacts, SpfNode, TermFact
from sendready.checks.spf_eval import (
    SpfResult,
    SpfResultCode,
    client_ip,
    query_name,
    split_sender,
    transform,
    valid_domain,
)
from sendready.checks.spf_syntax import (
    Macro,
    Mechanism,
    Modifier,
    Qualifier,
    SpfRecord,
    SpfSyntaxError,
    is_spf_record,
    parse_explanation,
    parse_record,
    select_records,
)
from sendready.model import RULES, Severity, Status

# -- record selection (§4.5) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "is_spf"),
    [
        ("v=spf1", True),
        ("v=spf1 -all", True),
        ("V=SPF1 -all", True),
        ("v=spf10 -all", False),
        ("v=spf1-all", False),
        ("v=spf1\t-all", False),
        (" v=spf1 -all", False),
        ("spf2.0/pra -all", False),
    ],
)
def test_record_selection_is_exact_and_case_insensitive(text: str, is_spf: bool) -> None:
    assert is_spf_record(text) is is_spf


def test_only_spf_records_are_selected_among_txt_records() -> None:
    texts = ("google-site-verification=x", "v=spf1 -all", "v=spf1 a -all")
    assert select_records(texts) == ("v=spf1 -all", "v=spf1 a -all")


# -- the grammar (§12) -----------------------------------------------------------------


def parsed(text: str) -> SpfRecord:
    record = parse_record(text)
    assert isinstance(record, SpfRecord), record
    return record


def error(text: str) -> SpfSyntaxError:
    record = parse_record(text)
    assert isinstance(record, SpfSyntaxError), record
    return record


def test_a_full_record_parses_into_qualified_mechanisms_and_modifiers() -> None:
    record = parsed(
        "v=spf1 +a -mx:mail.example.com/24//64 ~ip4:192.0.2.0/24 ?ip6:2001:db8::/32 "
        "include:_spf.example.com exists:%{ir}.%{l1r+-}._spf.%{d} ptr:example.com "
        "redirect=_spf.example.net exp=explain._spf.%{d} custom.mod=%{h}"
    )
    a, mx, ip4, ip6, include, exists, ptr = record.mechanisms
    assert (a.qualifier, a.name, a.domain) == (Qualifier.PASS, "a", None)
    assert (mx.qualifier, mx.cidr4, mx.cidr6) == (Qualifier.FAIL, 24, 64)
    assert mx.domain is not None and mx.domain.literal == "mail.example.com"
    assert ip4.network == ipaddress.ip_network("192.0.2.0/24")
    assert ip6.network == ipaddress.ip_network("2001:db8::/32")
    assert ip6.qualifier.result == "neutral"
    assert include.queries_dns and not ip4.queries_dns
    assert exists.domain is not None and exists.domain.has_macros
    assert exists.domain.tokens[2] == Macro("l", digits=1, reverse=True, delimiters="+-")
    assert ptr.domain is not None and ptr.domain.literal == "example.com"
    assert record.redirect is not None and record.redirect.value.literal == "_spf.example.net"
    assert record.exp is not None
    assert record.modifier("custom.mod") is not None
    assert record.all is None and record.redirect_used


def test_names_are_case_insensitive_and_spaces_may_repeat() -> None:
    record = parsed("v=spf1  IP4:192.0.2.1   INCLUDE:Example.COM   -ALL ")
    assert [m.name for m in record.mechanisms] == ["ip4", "include", "all"]


def test_terms_after_all_and_redirect_next_to_all() -> None:
    record = parsed("v=spf1 -all ip4:192.0.2.1 redirect=example.com")
    assert [m.text for m in record.after_all] == ["ip4:192.0.2.1"]
    assert not record.redirect_used


def test_a_macro_string_with_escapes() -> None:
    record = parsed("v=spf1 a:macro%%percent%_space%-url.example.com -all")
    domain = record.mechanisms[0].domain
    assert domain is not None and domain.literal == "macro%percent space%20url.example.com"


@pytest.mark.parametrize(
    ("text", "term", "reason"),
    [
        ("v=spf1 foo -all", "foo", "unknown mechanism"),
        ("v=spf1 192.0.2.1 -all", "192.0.2.1", "neither a mechanism nor a modifier"),
        ("v=spf1 ip4:192.0.2.300", "ip4:192.0.2.300", "not an IPv4 address"),
        ("v=spf1 ip4:192.0.2", "ip4:192.0.2", "not an IPv4 address"),
        ("v=spf1 ip4:192.0.2.01", "ip4:192.0.2.01", "not an IPv4 address"),
        ("v=spf1 ip4:192.0.2.0/33", "ip4:192.0.2.0/33", "more than 32"),
        ("v=spf1 ip4:192.0.2.0/024", "ip4:192.0.2.0/024", "leading zero"),
        ("v=spf1 ip4:192.0.2.0//24", "ip4:192.0.2.0//24", "not an IPv4 CIDR length"),
        ("v=spf1 ip6:2001:db8::/129", "ip6:2001:db8::/129", "more than 128"),
        ("v=spf1 ip6:2001:db8:::1", "ip6:2001:db8:::1", "not an IPv6 address"),
        ("v=spf1 ip6:fe80::1%eth0", "ip6:fe80::1%eth0", "not an IPv6 address"),
        ("v=spf1 ip6", "ip6", "needs `:address`"),
        ("v=spf1 all:example.com", "all:example.com", "takes no argument"),
        ("v=spf1 -all.", "-all.", "takes no argument"),
        ("v=spf1 include", "include", "needs `:domain`"),
        ("v=spf1 include:", "include:", "the domain is empty"),
        ("v=spf1 exists:example.com/24", "exists:example.com/24", "top-level label"),
        ("v=spf1 ptr/24", "ptr/24", "no CIDR length"),
        ("v=spf1 a:example.123", "a:example.123", "not a valid top-level label"),
        ("v=spf1 a:example", "a:example", "needs a dot"),
        ("v=spf1 a:foo.-bar", "a:foo.-bar", "not a valid top-level label"),
        ("v=spf1 a/33", "a/33", "more than 32"),
        ("v=spf1 mx//129", "mx//129", "more than 128"),
        ("v=spf1 =foo", "=foo", "needs a name"),
        ("v=spf1 redirect=", "redirect=", "the domain is empty"),
        ("v=spf1 a:%{x}.example.com", "a:%{x}.example.com", "not a macro letter"),
        ("v=spf1 exp=%{r}.example.com", "exp=%{r}.example.com", "only in explanation text"),
        ("v=spf1 a:%{c}.example.com", "a:%{c}.example.com", "only in explanation text"),
        ("v=spf1 a:%{t}.example.com", "a:%{t}.example.com", "only in explanation text"),
        ("v=spf1 exists:%(ir).example.com", "exists:%(ir).example.com", "not a macro"),
        ("v=spf1 exists:foo%.example.com", "exists:foo%.example.com", "not a macro"),
        ("v=spf1 exists:%{i.example.com", "exists:%{i.example.com", "not closed"),
        ("v=spf1 exists:%{i0}.example.com", "exists:%{i0}.example.com", "must not be zero"),
        ("v=spf1 exists:%{ir:}.example.com", "exists:%{ir:}.example.com", "not a macro delim"),
        ("v=spf1 a:ex\x0dptr.example.com", "a:ex\x0dptr.example.com", "visible ASCII"),
        ("v=spf1 a:\u00e9x.example.com", "a:\u00e9x.example.com", "visible ASCII"),
    ],
)
def test_syntax_errors_name_the_term_and_say_why(text: str, term: str, reason: str) -> None:
    problem = error(text)
    assert problem.term == term
    assert reason in problem.reason
    assert term in str(problem)


def test_redirect_or_exp_twice_is_a_syntax_error() -> None:
    assert "more than once" in error("v=spf1 redirect=a.example redirect=b.example").reason
    assert "more than once" in error("v=spf1 -all exp=a.example exp=b.example").reason


def test_unknown_modifiers_are_kept_and_obsolete_default_is_just_unknown() -> None:
    record = parsed("v=spf1 default=deny moo.cow-far_out=man:dog/cat ?all")
    assert [m.name for m in record.modifiers] == ["default", "moo.cow-far_out"]


def test_a_domain_spec_may_end_in_a_macro_and_contain_any_visible_character() -> None:
    parsed("v=spf1 exists:%{i}.%{d} a:foo:bar/baz.example.com include:o.spf.example.com.")


def test_explanation_text_allows_spaces_and_explanation_only_macros() -> None:
    text = parse_explanation("Mail from %{c} at %{t} via %{r} is not allowed")
    assert text is not None
    assert [t.letter for t in text.tokens if isinstance(t, Macro)] == ["c", "t", "r"]
    assert parse_explanation("50% off") is None


def test_mechanism_and_modifier_types() -> None:
    record = parsed("v=spf1 a exp=x.example.com")
    assert isinstance(record.terms[0], Mechanism)
    assert isinstance(record.terms[1], Modifier)


# -- macros (§7.3, §7.4 examples) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "macro", "expanded"),
    [
        ("strong-bad@email.example.com", Macro("s"), "strong-bad@email.example.com"),
        ("email.example.com", Macro("o", digits=4), "email.example.com"),
        ("email.example.com", Macro("o", digits=3), "email.example.com"),
        ("email.example.com", Macro("o", digits=2), "example.com"),
        ("email.example.com", Macro("o", digits=1), "com"),
        ("email.example.com", Macro("o", reverse=True), "com.example.email"),
        ("email.example.com", Macro("o", digits=2, reverse=True), "example.email"),
        ("strong-bad", Macro("l", delimiters="-"), "strong.bad"),
        ("strong-bad", Macro("l", reverse=True, delimiters="-"), "bad.strong"),
        ("strong-bad", Macro("l", digits=1, reverse=True, delimiters="-"), "strong"),
        ("192.0.2.3", Macro("i", reverse=True), "3.2.0.192"),
        ("foo-bar+zip+quux", Macro("l", digits=2, reverse=True, delimiters="+-"), "bar.foo"),
        ("~jack&jill=up", Macro("l", escape=True), "~jack%26jill%3Dup"),
    ],
)
def test_macro_transformers(value: str, macro: Macro, expanded: str) -> None:
    assert transform(value, macro) == expanded


def test_sender_identity_rules() -> None:
    assert split_sender("strong-bad@email.example.com", "h") == (
        "strong-bad@email.example.com",
        "strong-bad",
        "email.example.com",
    )
    assert split_sender("@example.net", "h") == (
        "postmaster@example.net",
        "postmaster",
        "example.net",
    )
    assert split_sender("", "mail.example.org") == (
        "postmaster@mail.example.org",
        "postmaster",
        "mail.example.org",
    )


def test_domains_for_check_host_must_be_multi_label_and_well_formed() -> None:
    assert valid_domain("example.com")
    assert valid_domain("example.com.")
    assert not valid_domain("localhost")
    assert not valid_domain("a..example.com")
    assert not valid_domain("x" * 64 + ".example.com")
    assert valid_domain("x" * 63 + ".example.com")
    assert not valid_domain("[192.0.2.1]")
    assert not valid_domain("192.0.2.1")


def test_an_ipv4_mapped_client_is_ipv4() -> None:
    assert client_ip("::ffff:192.0.2.1") == ipaddress.ip_address("192.0.2.1")
    assert client_ip("2001:db8::1").version == 6


def test_query_names_escape_bytes_that_are_not_visible_ascii() -> None:
    assert (
        query_name("macro%percent  space.example.com") == "macro%percent\\032\\032space.example.com"
    )
    assert query_name("a\\b.example.com") == "a\\092b.example.com"


# -- findings from facts ------------------------------------------------------------------


def node(
    domain: str,
    record: str,
    *children: SpfNode,
    via: str = "apex",
    term: str = "",
    **overrides: object,
) -> SpfNode:
    """A tree node as the walk would build it, without the network."""
    rec = parsed(record)
    after = {id(m) for m in rec.after_all}
    terms = []
    for t in rec.terms:
        if isinstance(t, Modifier) and t.name != "redirect":
            continue
        counts = (isinstance(t, Modifier) and rec.redirect_used) or (
            isinstance(t, Mechanism) and t.queries_dns and id(t) not in after
        )
        terms.append(TermFact(t.text, t.name, int(counts), after_all=id(t) in after))
    own = sum(t.lookups for t in terms)
    built = SpfNode(
        domain,
        via,
        term,
        NodeStatus.OK,
        record=record,
        records=(record,),
        terms=tuple(terms),
        children=children,
        lookups=own,
        subtree_lookups=own + sum(c.subtree_lookups for c in children),
        void_ipv4=sum(c.void_ipv4 for c in children),
        void_ipv6=sum(c.void_ipv6 for c in children),
        all=rec.all.text if rec.all else None,
    )
    return replace(built, **overrides)  # type: ignore[arg-type]


def facts_for(tree: SpfNode, **overrides: object) -> SpfFacts:
    built = SpfFacts(
        domain=tree.domain,
        record=tree.record,
        records=tree.records,
        strings=(len(tree.record or ""),),
        answer_octets=len(tree.domain) + len(tree.record or ""),
        lookups=tree.subtree_lookups,
        void_lookups=tree.void_lookups,
        used=f"{tree.subtree_lookups} of 10 used",
        tree=tree,
    )
    return replace(built, **overrides)  # type: ignore[arg-type]


def by_id(facts: SpfFacts) -> dict[str, spf.Finding]:
    return {f.id: f for f in spf.findings(facts)}


def test_every_spf_finding_id_of_the_contract_is_declared() -> None:
    for id in (
        "spf.missing",
        "spf.multiple_records",
        "spf.syntax_error",
        "spf.too_many_lookups",
        "spf.too_many_void_lookups",
        "spf.include_loop",
        "spf.permissive_all",
        "spf.sender_not_authorized",
    ):
        assert RULES[id].spec.startswith("RFC 7208")


def test_a_good_record_gives_only_the_pass_summary() -> None:
    found = by_id(facts_for(node("example.com", "v=spf1 ip4:192.0.2.0/24 -all")))
    assert set(found) == {"spf.valid", "spf.missing"}
    assert found["spf.missing"].status is Status.PASS
    assert found["spf.valid"].status is Status.PASS
    assert "0 of 10" in found["spf.valid"].title


def test_no_record_is_missing_with_a_record_to_publish() -> None:
    tree = SpfNode("example.com", "apex", "", NodeStatus.NO_RECORD, reason="TXT example.com: no")
    (finding,) = spf.findings(facts_for(tree))
    assert finding.id == "spf.missing" and finding.status is Status.FAIL
    assert '"v=spf1 -all"' in finding.fix


def test_a_dns_failure_at_the_apex_is_unknown_and_nothing_else() -> None:
    tree = SpfNode("example.com", "apex", "", NodeStatus.DNS_ERROR, reason="TXT: timed out")
    (finding,) = spf.findings(facts_for(tree))
    assert (finding.id, finding.status) == ("spf.lookup_failed", Status.UNKNOWN)
    assert "timed out" in finding.detail


def test_multiple_records_get_one_merged_record_as_the_fix() -> None:
    records = ("v=spf1 ip4:192.0.2.1 ~all", "v=spf1 include:_spf.example.net -all")
    tree = SpfNode(
        "example.com", "apex", "", NodeStatus.MULTIPLE, records=records, reason="2 records"
    )
    present, finding = spf.findings(facts_for(tree))
    assert (present.id, present.status) == ("spf.missing", Status.PASS)
    assert finding.id == "spf.multiple_records"
    assert "`v=spf1 ip4:192.0.2.1 include:_spf.example.net -all`" in finding.fix


def test_a_syntax_error_fix_is_the_record_without_the_bad_term() -> None:
    record = "v=spf1 ip4:192.0.2.1 a:bad..-com -all"
    problem = error(record)
    tree = SpfNode(
        "example.com", "apex", "", NodeStatus.SYNTAX_ERROR, reason=str(problem), record=record
    )
    present, finding = spf.findings(facts_for(tree))
    assert (present.id, present.status) == ("spf.missing", Status.PASS)
    assert finding.id == "spf.syntax_error"
    assert "`v=spf1 ip4:192.0.2.1 -all`" in finding.fix
    assert record in finding.detail


def test_eleven_lookups_name_the_costliest_include() -> None:
    big = node(
        "big.example.net",
        "v=spf1 " + " ".join(["a"] * 9) + " -all",
        via="include",
        term="include:big.example.net",
    )
    tree = node("example.com", "v=spf1 include:big.example.net mx -all", big)
    facts = facts_for(tree)
    assert facts.lookups == 11
    finding = by_id(facts)["spf.too_many_lookups"]
    assert finding.data["lookups"] == 11
    assert "`include:big.example.net` (10)" in finding.fix
    assert "spf.valid" not in by_id(facts)


def test_ten_lookups_are_within_the_limit() -> None:
    tree = node("example.com", "v=spf1 " + " ".join(["a"] * 10) + " -all")
    assert set(by_id(facts_for(tree))) == {"spf.valid", "spf.missing"}


def test_three_void_lookups_are_too_many() -> None:
    record = "v=spf1 a:gone1.example.com a:gone2.example.com a:gone3.example.com -all"
    tree = node("example.com", record)
    voids = tuple(replace(t, void_ipv4=t.kind == "a", void_ipv6=t.kind == "a") for t in tree.terms)
    tree = replace(tree, terms=voids, void_ipv4=3, void_ipv6=3)
    finding = by_id(facts_for(tree))["spf.too_many_void_lookups"]
    assert finding.data["void_lookups"] == 3
    assert finding.severity is Severity.CRITICAL
    assert "a:gone3.example.com" in finding.fix


def test_void_lookups_for_ipv6_only_are_a_warning() -> None:
    record = "v=spf1 a:v4a.example.com a:v4b.example.com a:v4c.example.com -all"
    tree = node("example.com", record)
    voids = tuple(replace(t, void_ipv6=t.kind == "a") for t in tree.terms)
    tree = replace(tree, terms=voids, void_ipv6=3)
    finding = by_id(facts_for(tree))["spf.too_many_void_lookups"]
    assert (finding.severity, finding.data["family"]) == (Severity.WARNING, "ipv6")
    assert "AAAA" in finding.fix


def test_two_void_lookups_are_allowed() -> None:
    tree = replace(node("example.com", "v=spf1 a:x.example.com a:y.example.com -all"), void_ipv4=2)
    assert "spf.too_many_void_lookups" not in by_id(facts_for(tree))


def test_a_loop_is_reported_with_its_chain() -> None:
    loop = SpfNode(
        "example.com",
        "include",
        "include:example.com",
        NodeStatus.LOOP,
        reason="example.com -> example.com",
    )
    tree = node("example.com", "v=spf1 include:example.com -all", loop)
    finding = by_id(facts_for(tree))["spf.include_loop"]
    assert finding.data["chain"] == ["example.com", "example.com"]


@pytest.mark.parametrize(
    ("via", "id"),
    [("include", "spf.include_target_missing"), ("redirect", "spf.redirect_target_missing")],
)
def test_a_target_without_spf_is_reported(via: str, id: str) -> None:
    gone = SpfNode(
        "old.example.net",
        via,
        f"{via}:old.example.net",
        NodeStatus.NO_RECORD,
        reason="TXT old.example.net: NXDOMAIN",
    )
    record = (
        "v=spf1 include:old.example.net -all"
        if via == "include"
        else ("v=spf1 redirect=old.example.net")
    )
    tree = node("example.com", record, gone)
    finding = by_id(facts_for(tree))[id]
    assert finding.subject == "old.example.net"
    assert finding.severity is Severity.CRITICAL


def test_problems_inside_includes_are_reported_on_their_own_domain() -> None:
    broken = SpfNode(
        "v.example.net",
        "include",
        "include:v.example.net",
        NodeStatus.SYNTAX_ERROR,
        reason="term `foo`: unknown mechanism `foo`",
        record="v=spf1 foo -all",
    )
    failed_dns = SpfNode(
        "w.example.net",
        "include",
        "include:w.example.net",
        NodeStatus.DNS_ERROR,
        reason="TXT w.example.net: SERVFAIL",
    )
    tree = node(
        "example.com", "v=spf1 include:v.example.net include:w.example.net -all", broken, failed_dns
    )
    found = by_id(facts_for(tree))
    assert found["spf.syntax_error"].subject == "v.example.net"
    assert found["spf.lookup_failed"].status is Status.UNKNOWN
    assert "spf.valid" not in found


@pytest.mark.parametrize(
    ("record", "severity", "fix"),
    [
        ("v=spf1 ip4:192.0.2.1 +all", Severity.CRITICAL, "`v=spf1 ip4:192.0.2.1 ~all`"),
        ("v=spf1 ip4:192.0.2.1 all", Severity.CRITICAL, "`v=spf1 ip4:192.0.2.1 ~all`"),
        ("v=spf1 ip4:192.0.2.1 ?all", Severity.WARNING, "`v=spf1 ip4:192.0.2.1 ~all`"),
        ("v=spf1 ip4:192.0.2.1", Severity.WARNING, "`v=spf1 ip4:192.0.2.1 -all`"),
    ],
)
def test_permissive_all(record: str, severity: Severity, fix: str) -> None:
    finding = by_id(facts_for(node("example.com", record)))["spf.permissive_all"]
    assert finding.severity is severity
    assert fix in finding.fix


@pytest.mark.parametrize("record", ["v=spf1 a ~all", "v=spf1 a -all"])
def test_softfail_and_fail_all_are_not_permissive(record: str) -> None:
    assert "spf.permissive_all" not in by_id(facts_for(node("example.com", record)))


def test_the_all_of_a_redirect_target_counts() -> None:
    target = node(
        "_spf.example.net",
        "v=spf1 ip4:192.0.2.1 ?all",
        via="redirect",
        term="redirect=_spf.example.net",
    )
    tree = node("example.com", "v=spf1 redirect=_spf.example.net", target)
    finding = by_id(facts_for(tree))["spf.permissive_all"]
    assert "_spf.example.net" in finding.fix
    strict = node(
        "_spf.example.net",
        "v=spf1 ip4:192.0.2.1 -all",
        via="redirect",
        term="redirect=_spf.example.net",
    )
    assert "spf.permissive_all" not in by_id(
        facts_for(node("example.com", "v=spf1 redirect=_spf.example.net", strict))
    )


def test_ptr_is_reported_with_a_record_without_it() -> None:
    finding = by_id(facts_for(node("example.com", "v=spf1 ptr ip4:192.0.2.1 -all")))["spf.ptr_used"]
    assert "`v=spf1 ip4:192.0.2.1 -all`" in finding.fix


def test_terms_after_all_are_moved_before_it_in_the_fix() -> None:
    finding = by_id(facts_for(node("example.com", "v=spf1 a -all ip4:192.0.2.1")))[
        "spf.terms_after_all"
    ]
    assert "`v=spf1 a ip4:192.0.2.1 -all`" in finding.fix


def test_an_answer_over_450_octets_is_too_long() -> None:
    record = "v=spf1 " + " ".join(f"ip4:198.51.100.{i}" for i in range(30)) + " -all"
    facts = facts_for(node("example.com", record), strings=(255, 255, 40), answer_octets=561)
    finding = by_id(facts)["spf.record_too_long"]
    assert finding.data["octets"] == 561
    assert "255, 255, 40" in finding.detail
    assert "spf.record_too_long" not in by_id(facts_for(node("example.com", "v=spf1 -all")))


def test_other_txt_records_in_a_long_answer_are_named_in_the_fix() -> None:
    tree = node("example.com", "v=spf1 ip4:192.0.2.1 -all")
    alone = facts_for(tree, strings=(400,), answer_octets=len("example.com") + 400 + 100)
    assert "verification tokens" in by_id(alone)["spf.record_too_long"].fix
    only = facts_for(tree, strings=(460,), answer_octets=len("example.com") + 460)
    assert "verification tokens" not in by_id(only)["spf.record_too_long"].fix


def test_a_type99_record_is_info() -> None:
    facts = facts_for(node("example.com", "v=spf1 -all"), type99=("v=spf1 -all",))
    finding = by_id(facts)["spf.type99_record"]
    assert finding.severity is Severity.INFO and finding.status is Status.FAIL
    assert "spf.valid" in by_id(facts)


def test_an_mx_term_with_more_than_ten_hosts() -> None:
    tree = node("example.com", "v=spf1 mx -all")
    tree = replace(
        tree, terms=(replace(tree.terms[0], mx_hosts=11, error="11 MX hosts"), tree.terms[1])
    )
    finding = by_id(facts_for(tree))["spf.mx_too_many_hosts"]
    assert finding.data["mx_hosts"] == 11


def test_per_message_terms_are_named_in_the_pass_summary() -> None:
    facts = facts_for(
        node("example.com", "v=spf1 exists:%{i}._spf.example.com -all"),
        per_message_terms=("example.com: exists:%{i}._spf.example.com",),
    )
    assert "exists:%{i}._spf.example.com" in by_id(facts)["spf.valid"].detail


# -- sender authorisation ------------------------------------------------------------------


def _result(code: SpfResultCode) -> SpfResult:
    return SpfResult(code, "example.com", "because", record="v=spf1 ip4:192.0.2.0/24 -all")


def test_sender_authorised_on_pass() -> None:
    finding = spf.sender_authorization("192.0.2.1", "b@example.com", _result(SpfResultCode.PASS))
    assert (finding.id, finding.status) == ("spf.sender_not_authorized", Status.PASS)


@pytest.mark.parametrize(
    ("code", "severity"),
    [
        (SpfResultCode.FAIL, Severity.CRITICAL),
        (SpfResultCode.PERMERROR, Severity.CRITICAL),
        (SpfResultCode.NONE, Severity.CRITICAL),
        (SpfResultCode.SOFTFAIL, Severity.WARNING),
        (SpfResultCode.NEUTRAL, Severity.WARNING),
    ],
)
def test_sender_not_authorised(code: SpfResultCode, severity: Severity) -> None:
    finding = spf.sender_authorization("203.0.113.9", "b@example.com", _result(code))
    assert finding.status is Status.FAIL and finding.severity is severity
    assert finding.data["result"] == code.value
    if code in (SpfResultCode.FAIL, SpfResultCode.SOFTFAIL, SpfResultCode.NEUTRAL):
        assert "`v=spf1 ip4:192.0.2.0/24 ip4:203.0.113.9 -all`" in finding.fix


def test_sender_temperror_is_unknown() -> None:
    finding = spf.sender_authorization(
        "203.0.113.9", "b@example.com", _result(SpfResultCode.TEMPERROR)
    )
    assert finding.status is Status.UNKNOWN and "because" in finding.detail
