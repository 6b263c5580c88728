"""`benchmarks.ingest` without running its load: it reads wrk's report right, and says how to
install wrk when it is missing, as `benchmarks.nodes` does (CI has no wrk; the benchmarks are run
by hand and by `make bench`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.paths import ROOT
from benchmarks.ingest import parse_wrk

WRK_REPORT = """Running 5s test @ http://127.0.0.1:41235
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    13.88ms    9.12ms 120.41ms   91.55%
    Req/Sec     2.43k   301.12     2.81k    80.00%
  Latency Distribution
     50%   11.71ms
     75%   14.02ms
     90%   19.33ms
     99%    1.02s
  12101 requests in 5.01s, 2.12MB read
  Socket errors: connect 0, read 0, write 0, timeout 2
  Non-2xx or 3xx responses: 3
Requests/sec:   2415.37
Transfer/sec:    433.95KB
"""


def test_wrk_report_is_read_with_its_units_and_errors() -> None:
    result = parse_wrk("route", WRK_REPORT)
    assert result.rps == 2415.37
    assert result.requests == 12101
    assert result.p50_ms == 11.71
    assert result.p99_ms == 1020.0
    assert result.bad == 5


@pytest.mark.parametrize(
    "argv",
    [["benchmarks.ingest", "--dir", "{tmp}"], ["benchmarks.nodes", "--throughput-only"]],
    ids=["ingest", "nodes"],
)
def test_without_wrk_it_says_how_to_install_it(tmp_path: Path, argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", *(a.format(tmp=tmp_path) for a in argv)],
        cwd=ROOT,
        env={**os.environ, "PATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "wrk is not installed" in done.stderr and "apt-get install -y wrk" in done.stderr
