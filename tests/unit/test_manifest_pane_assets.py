"""Budgets and rules of the task pane's own files (not timings: those are in bench/)."""

from __future__ import annotations

import re

from tests.conftest import ROOT

PANE = ROOT / "taskpane"
BUDGET = 60 * 1024  # the pane's own assets; office.js and vendored bundles excluded


def own_files() -> list:  # type: ignore[type-arg]
    return sorted(p for pattern in ("*.js", "*.css", "*.html") for p in PANE.glob(pattern))


def test_the_pane_s_own_assets_stay_within_60_kb() -> None:
    total = sum(p.stat().st_size for p in own_files())
    assert 0 < total <= BUDGET, f"{total} bytes"


def test_no_inline_scripts_or_styles_in_the_pages() -> None:
    for page in PANE.glob("*.html"):
        html = page.read_text()
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag, f"{page.name}: inline script {tag}"
        assert "<style" not in html, page.name
        assert not re.search(r"\sstyle=", html), page.name
        assert not re.search(r"\son[a-z]+=", html), f"{page.name}: inline event handler"


def test_only_office_context_touches_office_and_only_api_fetches() -> None:
    for path in PANE.glob("*.js"):
        text = path.read_text()
        if path.name not in ("office-context.js", "launchevent.js"):
            assert not re.search(r"\bOffice\.(?!js)", text), f"{path.name} touches Office.js"
        if path.name not in ("api.js", "launchevent.js"):
            assert "fetch(" not in text, f"{path.name} does HTTP"


def test_user_facing_strings_live_in_strings_js() -> None:
    # render.js builds every visible text through t(); a literal sentence there is a slip.
    render = (PANE / "render.js").read_text()
    literals = re.findall(r'text: "([A-Za-z][^"]{12,})"', render)
    assert literals == []
