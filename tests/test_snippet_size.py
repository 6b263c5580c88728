"""The snippet files stay within their gzip budgets as served (`spec/smartscript.md` 5)."""

from __future__ import annotations

import gzip

import pytest

from app.paths import SMARTSCRIPT_DIR
from benchmarks.snippet_size import BUDGETS, SnippetSize, report, snippet_sizes


def test_every_snippet_file_is_within_budget(capsys: pytest.CaptureFixture[str]) -> None:
    sizes = snippet_sizes()
    with capsys.disabled():
        print("\n" + report(sizes))
    assert [s.name for s in sizes] == list(BUDGETS)
    over = [s.line() for s in sizes if s.over_budget]
    assert over == [], "over budget:\n" + "\n".join(over)


def test_sizes_measure_what_is_served() -> None:
    core = snippet_sizes()[0]
    source = (SMARTSCRIPT_DIR / "smartscript.js").read_bytes()
    assert core.raw == len(source)
    # Minification must earn its keep, and the figures must be in the right order.
    assert core.brotli < core.gzip < core.minified < core.raw * 0.8
    assert core.gzip < len(gzip.compress(source, 9))


def test_over_budget_is_reported() -> None:
    size = SnippetSize("x.js", raw=9000, minified=8000, gzip=3073, brotli=2900, budget=3072)
    assert size.over_budget
    assert "OVER BUDGET" in size.line()
