"""Style gates that are part of the test command: ruff check, ruff format, mypy --strict."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

PATHS = ["backend", "tests", "bench"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_ruff_check_is_clean() -> None:
    result = run("ruff", "check", *PATHS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean() -> None:
    result = run("ruff", "format", "--check", *PATHS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean_on_the_backend() -> None:
    result = run("mypy", "--strict", "backend/")
    assert result.returncode == 0, result.stdout + result.stderr
