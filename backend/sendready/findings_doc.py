"""Generates docs/findings.md, the reference of every finding id, from the rules in the code.

Run ``python -m sendready.findings_doc > docs/findings.md``; a test fails when it is stale.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

from . import checks
from .model import RULES, Rule

AREA_ORDER = (
    "mx",
    "spf",
    "dkim",
    "dmarc",
    "mta_sts",
    "tlsrpt",
    "bimi",
    "dnssec",
    "dane",
    "ptr",
    "services",
    "smtp",
    "recipient",
    "alignment",
    "sendas",
    "requirements",
    "engine",
)


def load_all_rules() -> dict[str, Rule]:
    """Import every module that declares rules, so RULES is complete."""
    importlib.import_module("sendready.engine")
    for module in pkgutil.iter_modules(checks.__path__, checks.__name__ + "."):
        importlib.import_module(module.name)
    for extra in ("sendready.smtp.probe", "sendready.smtp.explain"):
        try:
            importlib.import_module(extra)
        except ModuleNotFoundError as exc:
            if exc.name != extra:
                raise
    return dict(RULES)


def render() -> str:
    rules = load_all_rules()
    areas: dict[str, list[Rule]] = {}
    for rule in rules.values():
        areas.setdefault(rule.id.split(".", 1)[0], []).append(rule)
    ordered = sorted(
        areas, key=lambda a: (AREA_ORDER.index(a) if a in AREA_ORDER else len(AREA_ORDER), a)
    )
    out = [
        "# Findings reference",
        "",
        "Generated from the code by `python -m sendready.findings_doc`; do not edit by hand.",
        "",
        "Every finding has an `id` that never changes meaning, a `status` (`pass`, `fail`,",
        "`unknown`) and a `severity`. The severity below is the usual one when the finding",
        "reports a problem; some checks raise or lower it with the evidence (see the detail).",
        "",
    ]
    for area in ordered:
        out += [
            f"## {area}",
            "",
            "| id | usual severity | what it means | spec |",
            "|---|---|---|---|",
        ]
        for rule in sorted(areas[area], key=lambda r: r.id):
            out.append(f"| `{rule.id}` | {rule.severity.value} | {rule.summary} | {rule.spec} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render())
