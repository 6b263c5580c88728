"""`benchmarks.touches` in its quick mode, writer level: figures come out and nothing is lost.

No timing is asserted: only that every run produced sane figures and that every write the
writer acknowledged is in its file afterwards.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.touches import (
    GROUP,
    PER_WRITE,
    QUICK,
    RAW,
    SERVER_BATCH_MAX,
    WARMUP,
    report,
    stored_ids,
    writer_level,
)
from tests.aio import run_async


def test_quick_writer_level(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cells = run_async(writer_level(tmp_path, QUICK))
    text = report(cells)
    with capsys.disabled():
        print("\n" + text)

    expected = [(mode, n) for n in QUICK.concurrency for mode in (GROUP, PER_WRITE)]
    assert [(c.mode, c.concurrency) for c in cells] == [*expected, (RAW, 1)]
    for cell in cells:
        assert cell.level == "writer"
        assert 0 < cell.count <= QUICK.writes
        assert cell.seconds > 0 and cell.rate > 0
        assert 0 < cell.median <= cell.p99
        assert cell.errors == 0
        assert cell.lost == 0, cell.line()
        assert cell.writes == cell.count, cell.line()
        if cell.mode == GROUP:
            assert 1 <= cell.mean_batch <= min(SERVER_BATCH_MAX, cell.concurrency)
        else:
            assert cell.mean_batch == 1
        # Read afresh: the file holds exactly the warm-up and the acknowledged writes.
        assert cell.db is not None
        assert len(stored_ids(cell.db)) == WARMUP + cell.count

    # The ratios come last: one per concurrency, each with a positive factor.
    ratio_lines = text.splitlines()[-len(QUICK.concurrency) :]
    assert all("touches/s x" in line for line in ratio_lines)
    assert all(float(line.split("touches/s x")[1].split(",")[0]) > 0 for line in ratio_lines)
