"""An audience sync over a large app: time and memory against a plain read of the same IDs.

    python -m benchmarks.audiences [--installs N] [--churn PCT] [--dir tmp] [--keep]

Builds a database of one app with `--installs` iOS installs (default 200,000) in the last 30
days, with their events, and an audience of every one of them. TikTok is replaced by a stand-in
that accepts every file and answers code 0 (the benchmark measures Gangway's side: reading,
hashing, staging, diffing, confirming).

Figures, each against the baseline measured in the same run (`SELECT idfa` of the same
installs with an MD5 of each, the least any sync must do):
- the first sync (every member staged, created, confirmed);
- a sync with nothing changed (everything staged again, nothing sent);
- a sync after `--churn` percent of the installs left and as many joined (only those sent);
- the peak of Python's traced memory during the first sync, which must not grow with the app
  (pages of 5,000 IDs and files of 100,000 hashes): the run fails above 64 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import shutil
import sqlite3
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Sequence
from pathlib import Path

from app.audiences import validate_rule
from app.jobs.audiences import SyncOutcome, sync_audiences
from app.paths import ROOT
from app.settings import Secret, Settings
from app.store.sqlite import SqliteStore

APP = "demo"
ADV = "7002238017842757633"
NOW = 1_790_000_000.0
DAY = 86_400.0
MEMORY_LIMIT_MB = 64.0


class AcceptingTikTok:
    """Takes every file and answers code 0, counting what it was sent."""

    def __init__(self) -> None:
        self.lines = 0
        self.calls = 0

    async def upload_file(self, advertiser_id: str, calculate_type: str, content: bytes) -> str:
        self.calls += 1
        self.lines += content.count(b"\n")
        return f"file-{self.calls}"

    async def create_audience(
        self, advertiser_id: str, name: str, calculate_type: str, file_paths: Sequence[str]
    ) -> str:
        self.calls += 1
        return "100000001"

    async def update_audience(
        self, advertiser_id: str, custom_audience_id: str, file_paths: Sequence[str], action: str
    ) -> None:
        self.calls += 1


def build(db: str, installs: int) -> None:
    store = SqliteStore.open_sync(db)
    store.close_sync()
    conn = sqlite3.connect(db)
    conn.execute(
        "INSERT INTO apps (app_key, name, sdk_key, config, created_at, updated_at) "
        "VALUES (?, 'Demo', 'sdk', '{}', 0, 0)",
        [APP],
    )
    rows = (
        (
            f"i{n}",
            APP,
            f"inst-{n}",
            "ios",
            NOW - (n % (29 * 24)) * 3600.0,
            0.0,
            str(uuid.uuid4()),
            "attributed",
            "tiktokglobal_int",
            "{}",
            "{}",
        )
        for n in range(installs)
    )
    conn.executemany(
        "INSERT INTO installs (id, app_key, app_instance_id, platform, time, received_at, idfa, "
        "status, media_source, receipt, answer) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.commit()
    conn.close()


def baseline(db: str) -> float:
    started = time.perf_counter()
    conn = sqlite3.connect(db)
    for (idfa,) in conn.execute(
        "SELECT idfa FROM installs WHERE app_key = ? AND time >= ?", [APP, NOW - 30 * DAY]
    ):
        hashlib.md5(idfa.strip().lower().encode()).hexdigest()
    conn.close()
    return time.perf_counter() - started


def churn(db: str, installs: int, pct: float) -> int:
    """`pct` percent of the installs leave (out of the window), as many new ones join."""
    moved = int(installs * pct / 100)
    conn = sqlite3.connect(db)
    conn.execute(
        "UPDATE installs SET time = ? WHERE id IN (SELECT id FROM installs ORDER BY id LIMIT ?)",
        [NOW - 60 * DAY, moved],
    )
    conn.executemany(
        "INSERT INTO installs (id, app_key, app_instance_id, platform, time, received_at, idfa, "
        "status, media_source, receipt, answer) VALUES (?, ?, ?, 'ios', ?, 0, ?, 'attributed', "
        "'tiktokglobal_int', '{}', '{}')",
        ((f"new{n}", APP, f"new-{n}", NOW, str(uuid.uuid4())) for n in range(moved)),
    )
    conn.commit()
    conn.close()
    return moved


async def sync(db: str, settings: Settings, tiktok: AcceptingTikTok) -> tuple[float, SyncOutcome]:
    store = await SqliteStore.open(db)
    try:
        started = time.perf_counter()
        [outcome] = await sync_audiences(store, settings, lambda app, token: tiktok, now=NOW)
        return time.perf_counter() - started, outcome
    finally:
        await store.close()


async def setup(db: str) -> None:
    store = await SqliteStore.open(db)
    try:
        await store.configs.put_integration(
            APP, "tiktok_ads", {"advertiser_ids": [ADV], "audiences_enabled": True}, "t", NOW
        )
        rule = {"advertiser_id": ADV, "platform": "ios", "media_source": "any"}
        await store.audiences.put_audience(APP, "all", validate_rule(rule), NOW, reset=False)
    finally:
        await store.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.audiences")
    parser.add_argument("--installs", type=int, default=200_000)
    parser.add_argument("--churn", type=float, default=1.0, help="percent leaving and joining")
    parser.add_argument("--dir", default=str(ROOT / "tmp"))
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args(argv)
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    folder = tempfile.mkdtemp(prefix="audiences-", dir=args.dir)
    db = str(Path(folder) / "bench.db")
    settings = Settings(db=db, secret_key=Secret("bench"))
    try:
        print(f"building {args.installs:,} installs ...", flush=True)
        build(db, args.installs)
        asyncio.run(setup(db))
        base = baseline(db)
        tiktok = AcceptingTikTok()
        tracemalloc.start()
        first, created = asyncio.run(sync(db, settings, tiktok))
        peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        same, unchanged = asyncio.run(sync(db, settings, AcceptingTikTok()))
        moved = churn(db, args.installs, args.churn)
        after = AcceptingTikTok()
        diff, changed = asyncio.run(sync(db, settings, after))
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"baseline (read + MD5 of {args.installs:,} IDs): {base:.2f} s")
    print(
        f"first sync: {first:.2f} s ({first / base:.1f}x baseline), {created.wanted:,} members, "
        f"{tiktok.lines:,} hashes sent"
    )
    print(f"unchanged sync: {same:.2f} s ({same / base:.1f}x), sent {unchanged.appended}")
    print(
        f"sync after {moved:,} left and {moved:,} joined: {diff:.2f} s ({diff / base:.1f}x), "
        f"appended {changed.appended:,}, removed {changed.removed:,}, {after.lines:,} hashes sent"
    )
    print(f"peak traced memory of the first sync: {peak_mb:.1f} MB (limit {MEMORY_LIMIT_MB:.0f})")
    ok = (
        created.wanted == args.installs
        and tiktok.lines == args.installs
        and (changed.appended, changed.removed) == (moved, moved)
        and peak_mb <= MEMORY_LIMIT_MB
    )
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
