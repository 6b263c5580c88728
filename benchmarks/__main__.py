"""`python -m benchmarks` (`make bench`): every benchmark in turn; exit 1 if any missed its target.

python -m benchmarks.snippet_size    snippet bytes against their gzip budgets
python -m benchmarks.attribution     install matching over 10 million touches (builds its
                                     database under tmp/ the first time: minutes, ~7 GB)
python -m benchmarks.touches         touches recorded durably per second, group commit against
                                     one commit per write (under two minutes; fails on a lost write)
python -m benchmarks.ingest          Gangway's public routes (impression, click, landing page,
                                     install) against a bare Starlette route, with wrk (a minute)
python -m benchmarks.reports         the overview over 1M touches (flags for 10M) against a
                                     COUNT(*) of the raw tables; a raw export's memory
python -m benchmarks.cost_pull       a 60-day TikTok Ads cost pull of 10,000 ads against the
                                     fake Marketing API: against fetching the pages alone, and
                                     at TikTok's 10 requests a second (about two minutes)
python -m benchmarks.audiences       an audience sync over 200,000 installs against a plain read
                                     of their IDs; its peak memory (fails above 64 MB)
"""

from __future__ import annotations

import sys

from benchmarks import (
    attribution,
    audiences,
    cost_pull,
    ingest,
    nodes,
    reports,
    snippet_size,
    touches,
)


def main() -> int:
    failed = 0
    print("== benchmarks.snippet_size", flush=True)
    failed |= snippet_size.main()
    print("== benchmarks.attribution", flush=True)
    # An empty argv: the defaults, not this command's own arguments.
    failed |= attribution.main([])
    print("== benchmarks.touches", flush=True)
    failed |= touches.main([])
    print("== benchmarks.ingest", flush=True)
    failed |= ingest.main([])
    print("== benchmarks.nodes", flush=True)
    failed |= nodes.main([])
    print("== benchmarks.reports", flush=True)
    failed |= reports.main([])
    print("== benchmarks.cost_pull", flush=True)
    failed |= cost_pull.main([])
    print("== benchmarks.audiences", flush=True)
    failed |= audiences.main([])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
