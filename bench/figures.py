"""Writes a benchmark's latest figures into bench/README.md, between its own markers, so the
README always shows what the last run measured (``--update-readme`` of each benchmark)."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"


def replace_figures(name: str, table: str, stamp: str, notes: str, readme: Path = README) -> None:
    """Put ``table`` and ``notes`` between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = readme.read_text()
    if start not in text or end not in text:
        raise ValueError(f"{readme} lacks the {start} … {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    block = f"{start}\nMeasured {stamp}.\n\n{table}\n\n```\n{notes}\n```\n{end}"
    readme.write_text(head + block + tail)
