"""A raw export streams: 100,000 install rows through the real handler, the body drained as it
arrives and kept nowhere, while the process's resident set is sampled every 2 ms. Holding the
rows (or the CSV) would grow it by well over 100 MB; streaming keeps the growth to the batches
in flight."""

from __future__ import annotations

from starlette.testclient import TestClient

from app.server import create_app
from app.settings import Settings
from benchmarks.reports import RssSampler, drain, insert_installs

ROWS = 100_000
# Measured growth here is a few MB (batches of 1,000 rows in flight); the rows alone would be
# about 30 MB of CSV and several times that as objects.
GROWTH_BOUND = 24 * 1024 * 1024


def test_exporting_100k_installs_streams_in_flat_memory(
    settings: Settings, seeded: tuple[str, str]
) -> None:
    token = seeded[0]
    insert_installs(settings.db, ROWS)
    query = "app_key=demo&from=2026-08-01&to=2026-12-01"
    with TestClient(create_app(settings, run_jobs=False), base_url="http://gangway.test") as c:
        drain(c, "/api/v1/raw/installs.csv", "app_key=demo&from=2026-08-01&to=2026-08-02", token)
        sampler = RssSampler()
        before = sampler.rss()
        with sampler:
            size, lines, first_byte = drain(c, "/api/v1/raw/installs.csv", query, token)
    growth = sampler.peak - before
    print(f"\n{lines - 1} rows, {size / 1e6:.1f} MB streamed; RSS growth {growth / 1e6:.1f} MB")
    assert lines == ROWS + 1
    assert size > 20_000_000
    assert growth < GROWTH_BOUND, growth
