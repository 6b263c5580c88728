"""Size of the snippet files as served: raw, minified, gzip -9 and brotli bytes, per budget.

    python -m benchmarks.snippet_size

Measures what the server sends (`app.snippet_asset.minify`), prints one line per file with the
ratio against two reference trackers, and exits 1 when a file is over its gzip budget
(`spec/smartscript.md` section 5). The figures come last.
"""

from __future__ import annotations

import gzip
import sys
from dataclasses import dataclass
from pathlib import Path

import brotli

from app.paths import SMARTSCRIPT_DIR
from app.snippet_asset import minify

# gzip -9 bytes each file may weigh.
BUDGETS = {"smartscript.js": 3072, "banner.js": 4096}
# Published gzip sizes of the scripts we are compared with.
APPSFLYER_SMART_SCRIPT_GZIP = 22_000  # Smart Script 2.9.2
PLAUSIBLE_GZIP = 1_900


@dataclass(frozen=True, slots=True)
class SnippetSize:
    name: str
    raw: int
    minified: int
    gzip: int
    brotli: int
    budget: int

    @property
    def over_budget(self) -> bool:
        return self.gzip > self.budget

    def line(self) -> str:
        verdict = "OVER BUDGET" if self.over_budget else "ok"
        return (
            f"{self.name:<15} raw {self.raw:>6}  min {self.minified:>6}  gzip {self.gzip:>5}"
            f"  br {self.brotli:>5}  budget {self.budget:>5} {verdict:<11}"
            f"  x{self.gzip / APPSFLYER_SMART_SCRIPT_GZIP:.2f} of AppsFlyer,"
            f" x{self.gzip / PLAUSIBLE_GZIP:.2f} of Plausible"
        )


def measure(path: Path, budget: int) -> SnippetSize:
    source = path.read_bytes()
    served = minify(source.decode("utf-8")).encode("utf-8")
    return SnippetSize(
        name=path.name,
        raw=len(source),
        minified=len(served),
        # mtime=0: the same bytes as `gzip -9 < file`, whatever the clock says.
        gzip=len(gzip.compress(served, compresslevel=9, mtime=0)),
        brotli=len(brotli.compress(served, quality=11)),
        budget=budget,
    )


def snippet_sizes(directory: Path = SMARTSCRIPT_DIR) -> list[SnippetSize]:
    """Every budgeted snippet file, measured as served."""
    return [measure(directory / name, budget) for name, budget in BUDGETS.items()]


def report(sizes: list[SnippetSize]) -> str:
    return "\n".join(
        [
            f"baselines: AppsFlyer Smart Script ~{APPSFLYER_SMART_SCRIPT_GZIP} B gzip,"
            f" Plausible ~{PLAUSIBLE_GZIP} B gzip",
            *(size.line() for size in sizes),
        ]
    )


def main() -> int:
    sizes = snippet_sizes()
    print(report(sizes))
    return 1 if any(size.over_budget for size in sizes) else 0


if __name__ == "__main__":
    sys.exit(main())
