"""Keeps the generated parts of docs/operations.md true: the configuration reference (from
the Settings fields in config.py) and the metrics list (from the service's registry).

``python -m sendready.ops_doc`` rewrites them in place; ``--check`` exits 1 when the file is
stale (a test runs it). The prose around the markers is written by hand.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from .config import PREFIX, Settings
from .web.metrics import Metrics, _HitRatio

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
BLOCK = re.compile(
    r"(<!-- BEGIN GENERATED: (?P<name>[a-z]+) -->\n).*?(<!-- END GENERATED: (?P=name) -->)",
    re.DOTALL,
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default(value: Any) -> str:
    if isinstance(value, dict):
        value = ",".join(f"{k}={v}" for k, v in value.items())
    elif isinstance(value, tuple):
        value = ",".join(str(v) for v in value)
    text = str(value)
    return f"`{_cell(text)}`" if text else "(empty)"


def settings_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for spec in fields(Settings):
        if spec.default is not MISSING:
            default = spec.default
        elif spec.default_factory is not MISSING:
            default = spec.default_factory()
        else:
            default = ""
        meaning = _cell(spec.metadata.get("doc", ""))
        if spec.metadata.get("secret"):
            meaning += " **Secret**: from a secret store, never logged."
        rows.append(f"| `{PREFIX}{spec.name.upper()}` | {_default(default)} | {meaning} |")
    return "\n".join(rows) + "\n"


def metrics_table() -> str:
    metrics = Metrics(lambda: 0)
    rows = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    # The scrape-time gauges computed from the counters.
    for family in _HitRatio(metrics.registry).collect():
        rows.append(f"| `{family.name}` | {family.type} | - | {_cell(family.documentation)} |")
    for attribute in vars(metrics).values():
        name = getattr(attribute, "_name", None)
        if not isinstance(name, str):
            continue
        kind = str(getattr(attribute, "_type", ""))
        suffix = "_total" if kind == "counter" else ""
        labels = ", ".join(f"`{label}`" for label in getattr(attribute, "_labelnames", ()))
        doc = _cell(str(getattr(attribute, "_documentation", "")))
        rows.append(f"| `{name}{suffix}` | {kind} | {labels or '-'} | {doc} |")
    return "\n".join(rows) + "\n"


GENERATORS = {"settings": settings_table, "metrics": metrics_table}


def render(text: str) -> str:
    """``text`` with every generated block replaced by its current content."""

    def fill(match: re.Match[str]) -> str:
        return match.group(1) + GENERATORS[match.group("name")]() + match.group(3)

    return BLOCK.sub(fill, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sendready.ops_doc", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    parser.add_argument("path", nargs="?", type=Path, default=DOC)
    args = parser.parse_args(argv)
    text = args.path.read_text(encoding="utf-8")
    current = render(text)
    if args.check:
        if current != text:
            print(f"{args.path} is stale: run python -m sendready.ops_doc", file=sys.stderr)
            return 1
        return 0
    args.path.write_text(current, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
