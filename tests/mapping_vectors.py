"""The mapping vectors, the spec's and our own, and how a generated URL is held against one.

`tests/vectors/mapping.json` (the product spec's shared cases, copied into the repository; see
`tests/vectors/README.md`) and `tests/vectors/mapping_extra.json` hold cases in one format;
`test_mapping.py` runs them against the Python twin and `test_snippet_browser.py` against the
snippet in Chromium.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from app.mapping import SNIPPET_VERSION

VECTORS_DIR = Path(__file__).parent / "vectors"
# The product spec's cases, the ones every implementation of the mapping is held to.
SHARED_VECTORS = VECTORS_DIR / "mapping.json"
EXTRA_VECTORS = VECTORS_DIR / "mapping_extra.json"

LANDING_ORIGIN = "https://landing.example"
SNIPPET_ORIGIN = "https://track.example.com"
# Every fixture page carries this page-view id, so each case also checks that pvid rides along.
PVID = "pv-test-0001"

# Written by the snippet itself; the vectors leave them out of `expect.params`.
IGNORED_KEYS = {"af_js_web", "af_ss_ver", "pvid"}
# What encodeURIComponent leaves alone, plus the escapes it writes.
_ENCODED_ONCE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()]|%[0-9A-F]{2})*")


@dataclass(frozen=True)
class Case:
    name: str
    visits: list[dict[str, str]]
    call: str
    args: dict[str, Any]
    expect: dict[str, Any] | None
    only: str | None

    @property
    def page_url(self) -> str:
        """The URL of the last page visited, the one the call runs on."""
        return LANDING_ORIGIN + self.visits[-1]["url"]

    def referrer(self, index: int = -1) -> str:
        """The referrer of a visit; SAME is the previous page."""
        index %= len(self.visits)
        given = self.visits[index]["referrer"]
        if given == "SAME":
            return LANDING_ORIGIN + self.visits[index - 1]["url"]
        return given


def load_cases(path: Path) -> list[Case]:
    return [
        Case(c["name"], c["visits"], c["call"], c["args"], c["expect"], c.get("only"))
        for c in json.loads(path.read_text(encoding="utf-8"))["cases"]
    ]


def all_cases() -> list[Case]:
    return load_cases(SHARED_VECTORS) + load_cases(EXTRA_VECTORS)


def assert_matches(case: Case, url: str | None) -> None:
    """The comparison of `mapping.json` ("compare"), plus: every key once, every key and value
    percent-encoded exactly once, af_js_web, af_ss_ver and pvid as the snippet writes them."""
    if case.expect is None:
        assert url is None, f"expected null, got {url}"
        return
    assert url is not None, "expected a URL, got null"
    base, _, query = url.partition("?")
    assert base == case.expect["base"].replace("SNIPPET_ORIGIN", SNIPPET_ORIGIN)
    pairs = []
    for part in query.split("&"):
        raw_key, _, raw_value = part.partition("=")
        assert _ENCODED_ONCE.fullmatch(raw_key) and _ENCODED_ONCE.fullmatch(raw_value), part[:80]
        pairs.append((unquote(raw_key, errors="strict"), unquote(raw_value, errors="strict")))
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"a key appears twice: {keys}"
    written = dict(pairs)
    assert written["af_js_web"] == "true"
    assert written["af_ss_ver"] == SNIPPET_VERSION
    assert written["pvid"] == PVID
    got = sorted(p for p in pairs if p[0] not in IGNORED_KEYS)
    assert got == sorted((k, v) for k, v in case.expect["params"])
