"""A 60-day TikTok Ads cost pull of 10,000 ads against the fake Marketing API.

    python -m benchmarks.cost_pull [--ads N] [--days N] [--quick] [--dir tmp]

The fake (`tests/fakes/tiktok_marketing.py`, a real HTTP server on 127.0.0.1) holds `--ads` ads
(default 10,000) with spend on every day; the pull reads `--days` days (default 60) as windows of
30 days, pages of 1,000 rows: 600,000 rows and 600 report requests by default. Timed, in one
run:

- baseline: the same report pages fetched with httpx and thrown away (no parsing, no store),
  with no rate limit: what the network and the fake cost alone;
- the pull without the rate limit: Gangway's own cost per row (parse, map, replace in SQLite);
- the pull again (nothing changed: the idempotent re-pull the schedule does);
- the pull at TikTok's limit of 10 requests a second, what a real backfill takes; its floor is
  requests / 10 s, and the target is to stay within 1.5 times that floor.

Peak resident memory of the process is printed at the end (the pull keeps one window's cost
rows at a time).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path

import httpx

from app.configs import validate_app
from app.jobs.cost_pull import CostPuller
from app.paths import ROOT
from app.settings import Secret, Settings
from app.store.sqlite import SqliteStore
from app.tiktok_ads import cost as plan
from app.tiktok_ads.client import RATE_PER_SECOND, RateLimiter
from app.tiktok_ads.connection import PARTNER, PullRecord, validate_connection
from tests.fakes.tiktok_marketing import FakeTikTokMarketing

ADV = "7002238017842757633"
# Noon in Los Angeles on 30 November: the advertiser's today.
NOW = dt.datetime(2026, 11, 30, 20, 0, tzinfo=dt.UTC).timestamp()
TODAY = dt.date(2026, 11, 30)
TARGET_OVER_FLOOR = 1.5


def _clock() -> float:
    return NOW


async def baseline(base_url: str, days: int) -> tuple[float, int, int]:
    """Seconds to fetch every page of every window, the pages and the rows."""
    pages = rows = 0
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=60) as http:
        for window in plan.plan_windows(TODAY, days):
            page = 1
            while True:
                params = plan.report_params(ADV, window, page, by_country=False)
                answer = await http.get(
                    base_url + "/open_api/v1.3/report/integrated/get/",
                    params=params,
                    headers={"Access-Token": "token-1"},
                )
                data = answer.json()["data"]
                pages += 1
                rows += len(data["list"])
                if page >= data["page_info"]["total_page"]:
                    break
                page += 1
    return time.perf_counter() - started, pages, rows


async def pull(store: SqliteStore, settings: Settings, days: int, rate: int) -> PullRecord:
    async with httpx.AsyncClient(timeout=60) as http:
        puller = CostPuller(
            store, http, _clock, settings, scheduled=False, limiters=lambda _a: RateLimiter(rate)
        )
        return await puller.pull("demo", days=days, trigger="cli")


def serve_fake(ads: int, days: int, conn: Connection) -> None:
    """The fake in a process of its own, so its work does not share the pull's interpreter
    lock: sends its base URL and the spend a pull must store, then serves until told to stop."""
    fake = FakeTikTokMarketing().start()
    fake.add_advertiser(ADV, display_timezone="America/Los_Angeles")
    start = TODAY - dt.timedelta(days=days - 1)
    fake.seed(ADV, ads=ads, start=start, days=days, campaigns=50, deleted_every=25)
    expected = sum(fake.spend_by_campaign_day(ADV).values(), Decimal(0))
    conn.send((fake.base_url, str(expected)))
    conn.recv()
    fake.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cost_pull")
    parser.add_argument("--ads", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--quick", action="store_true", help="1,000 ads: a few seconds")
    parser.add_argument("--dir", default=str(ROOT / "tmp"), help="where the database goes")
    args = parser.parse_args(argv)
    ads = 1_000 if args.quick else args.ads
    base = Path(args.dir)
    base.mkdir(parents=True, exist_ok=True)

    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve_fake, args=(ads, args.days, theirs), daemon=True)
    server.start()
    try:
        base_url, expected_text = ours.recv()
        expected = Decimal(expected_text)
        with tempfile.TemporaryDirectory(prefix="bench-cost-", dir=base) as directory:
            settings = Settings(
                db=str(Path(directory) / "gangway.db"),
                secret_key=Secret("bench"),
                tiktok_api_url=base_url,
            )
            store = SqliteStore.open_sync(settings.db)
            config, token = validate_connection(
                {"advertiser_ids": [ADV], "access_token": "token-1",
                 "cost": {"by_country": False}}
            )  # fmt: skip

            async def setup() -> None:
                await store.configs.put_app("demo", validate_app({"name": "Demo"}), NOW)
                await store.configs.put_integration("demo", PARTNER, config, token, NOW)

            asyncio.run(setup())
            print(
                f"cost pull: {ads:,} ads x {args.days} days against the fake Marketing API "
                f"({len(plan.plan_windows(TODAY, args.days))} windows; the fake in its own "
                "process)",
                flush=True,
            )
            fetch_s, pages, rows = asyncio.run(baseline(base_url, args.days))
            print(f"  baseline (fetch the pages only)  {fetch_s:7.2f} s  {pages} pages", flush=True)
            t0 = time.perf_counter()
            first = asyncio.run(pull(store, settings, args.days, 1_000_000))
            free_s = time.perf_counter() - t0
            print(f"  pull, no rate limit              {free_s:7.2f} s", flush=True)
            t0 = time.perf_counter()
            again = asyncio.run(pull(store, settings, args.days, 1_000_000))
            again_s = time.perf_counter() - t0
            print(f"  re-pull, nothing changed         {again_s:7.2f} s", flush=True)
            t0 = time.perf_counter()
            limited = asyncio.run(pull(store, settings, args.days, RATE_PER_SECOND))
            limited_s = time.perf_counter() - t0
            store.close_sync()
    finally:
        ours.send("stop")
        server.join(timeout=10)

    floor = limited.requests / RATE_PER_SECOND
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ok = (
        first.error is None
        and Decimal(first.spend) == expected
        and again.changed == 0
        and limited.error is None
        and limited_s <= floor * TARGET_OVER_FLOOR
    )
    print(
        f"  pull at {RATE_PER_SECOND} requests/s             {limited_s:7.2f} s  "
        f"(floor {floor:.1f} s)\n"
        f"rows {first.rows:,} (TikTok {rows:,}), requests {first.requests}, spend {first.spend} "
        f"(fake {expected}), re-pull changed {again.changed}\n"
        f"pull / baseline {free_s / fetch_s:.2f}x, {first.rows / free_s:,.0f} rows/s; "
        f"re-pull / baseline {again_s / fetch_s:.2f}x; "
        f"rate-limited pull / floor {limited_s / floor:.2f}x (target <= {TARGET_OVER_FLOOR}); "
        f"peak RSS of the pulling process {peak_mb:.0f} MB\n"
        f"{'OK' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
