"""The overview over millions of touches, and a raw export streamed in flat memory.

    python -m benchmarks.reports [--touches N] [--installs N] [--days N] [--export-rows N]
                                 [--dir tmp] [--keep]

Builds a database of the demo app (default 1,000,000 touches and 100,000 installs over 90 days;
`--touches 10000000 --installs 1000000` is the spec's size, about ten minutes here), its rollups
with `rollups rebuild` (the same pure functions as the incremental path), then times through the
real handler (`GET /api/v1/reports/overview`, in process):

- the headline: group_by=date, the last 30 days, in UTC and in America/Los_Angeles;
- by media source (group_by=date,media_source), 30 days;
- a drill-down by campaign / ad set / ad, the last 7 days and the last 30;
- the console's dashboard (`GET /admin`, logged in) of the last 7 days and the last 30;

each the median of 7 runs, against the baseline measured in the same run: `SELECT COUNT(*)`
over the raw tables (impressions, clicks, installs, events), which is what a report without
rollups would at least have to read. The target is under 200 ms (reporting.md section 2).

Then `GET /api/v1/raw/installs.csv` over `--export-rows` installs (default every install) in a
fresh process, the body drained as it streams and thrown away, with the process's resident set
sampled every 2 ms: the peak RSS and its growth over the export are printed, and the time to the
first byte. Files go under `--dir` (default `tmp/`); the figures come last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from app.configs import validate_app
from app.paths import ROOT
from app.reports.rollups import RollupFold
from app.server import create_app
from app.settings import Secret, Settings
from app.store.sqlite import SqliteStore
from app.vocabulary import DEFAULT_UNIFIED_PIDS

APP = "demo"
END = datetime(2026, 11, 30, tzinfo=UTC)
TARGET_MS = 200.0
RUNS = 7
CAMPAIGNS = [
    (
        f"campaign-{c}",
        f"17{c:02d}",
        f"adset-{c}-{s}",
        f"17{c:02d}{s}",
        f"ad-{c}-{s}-{a}",
        f"17{c:02d}{s}{a}",
    )  # fmt: skip
    for c in range(5)
    for s in range(3)
    for a in range(3)
]
COUNTRIES = ["US", "GB", "DE", "FR", "BR", "JP", "IN", "CA", "MX", "ES"]
COUNTRY_WEIGHTS = [30, 12, 10, 9, 8, 7, 7, 6, 6, 5]
UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
BATCH = 50_000


@dataclass(frozen=True)
class Sizes:
    touches: int
    installs: int
    days: int

    @property
    def events(self) -> int:
        return self.installs // 2


def _touch_rows(n: int, start: float, span: float, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    for i in range(n):
        ad = CAMPAIGNS[rng.randrange(len(CAMPAIGNS))]
        roll = rng.random()
        pid = "tiktokweb_int" if roll < 0.85 else ("other_int" if roll < 0.93 else None)
        yield (
            f"t{i}",
            APP,
            start + rng.random() * span,
            f"203.0.{i % 250}.{i % 199}",
            UA,
            "ios" if i % 3 else "android",
            pid,
            *(ad if pid else (None,) * 6),
            f"E.C.P.{i}",
            "https://example.com/lp?pid=tiktokweb_int",
            rng.choices(COUNTRIES, COUNTRY_WEIGHTS)[0],
            "human" if rng.random() < 0.95 else "bot",
        )


TOUCH_SQL = (
    "INSERT INTO {table} (id, app_key, time, ip, user_agent, os_family, pid, c, af_c_id, af_adset, "
    "af_adset_id, af_ad, af_ad_id, ttclid, original_url, country, verdict) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSTALL_SQL = (
    "INSERT INTO installs (id, app_key, app_instance_id, platform, time, received_at, ip, "
    "user_agent, gaid, status, match_type, touch_type, touch_id, media_source, "
    "original_media_source, campaign, campaign_id, adset, adset_id, ad, ad_id, ttclid, "
    "original_url, country, receipt, answer) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{}', '{}')"
)
EVENT_SQL = (
    "INSERT INTO events (id, app_key, event_id, install_id, app_instance_id, event_name, "
    "event_time, received_at, revenue, currency, media_source, postback, answer) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', '{}')"
)


def _install_rows(
    n: int, start: float, span: float, rng: random.Random
) -> Iterator[tuple[Any, ...]]:
    for i in range(n):
        t = start + rng.random() * span
        roll = rng.random()
        status = (
            "attributed" if roll < 0.5 else "organic" if roll < 0.9 else
            "reinstall" if roll < 0.95 else "rejected"
        )  # fmt: skip
        paid = status == "attributed"
        ad = CAMPAIGNS[rng.randrange(len(CAMPAIGNS))] if paid else (None,) * 6
        yield (
            f"i{i}",
            APP,
            f"instance-{i}",
            "ios" if i % 3 else "android",
            t,
            t,
            f"198.51.{i % 250}.{i % 199}",
            "DemoGame/1.0 CFNetwork/1496.0.7 Darwin/23.5.0",
            f"{i:08x}-0000-4000-8000-000000000000",
            status,
            ("referrer" if i % 2 else "probabilistic_click") if paid else None,
            "click" if paid else None,
            f"t{i}" if paid else None,
            "tiktokglobal_int" if paid else "organic",
            "tiktokweb_int" if paid else None,
            *ad,
            f"E.C.P.{i}" if paid else None,
            "https://example.com/lp?pid=tiktokweb_int&ttclid=E.C.P.x" if paid else None,
            rng.choices(COUNTRIES, COUNTRY_WEIGHTS)[0],
        )


def insert_installs(db: str, n: int, *, days: int = 90, seed: int = 2) -> None:
    """`n` installs of the demo app written straight into the file (no rollups)."""
    rng = random.Random(seed)
    span = days * 86_400.0
    start = END.timestamp() - span
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        rows = _install_rows(n, start, span, rng)
        while chunk := [r for _, r in zip(range(BATCH), rows, strict=False)]:
            conn.execute("BEGIN")
            conn.executemany(INSTALL_SQL, chunk)
            conn.execute("COMMIT")
    finally:
        conn.close()


def build(db: str, sizes: Sizes) -> tuple[str, float]:
    """The database of `sizes`; answers (admin token, seconds the rollups rebuild took)."""

    async def prepare() -> str:
        store = await SqliteStore.open(db)
        try:
            config = validate_app({"name": "Demo", "destinations": {}})
            await store.configs.put_app(APP, config, time.time())
            return await store.tokens.create_token("bench", time.time())
        finally:
            await store.close()

    token = asyncio.run(prepare())
    rng = random.Random(1)
    span = sizes.days * 86_400.0
    start = END.timestamp() - span
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        clicks = sizes.touches * 3 // 10
        for table, n in (("impressions", sizes.touches - clicks), ("clicks", clicks)):
            rows = _touch_rows(n, start, span, rng)
            while chunk := [r for _, r in zip(range(BATCH), rows, strict=False)]:
                conn.execute("BEGIN")
                conn.executemany(TOUCH_SQL.format(table=table), chunk)
                conn.execute("COMMIT")
    finally:
        conn.close()
    insert_installs(db, sizes.installs, days=sizes.days)
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        conn.executemany(
            EVENT_SQL,
            (
                (
                    f"e{i}",
                    APP,
                    f"ev{i}",
                    f"i{i * 2}",
                    f"instance-{i * 2}",
                    "af_purchase",
                    t + 3600,
                    t + 3600,
                    f"{rng.randint(1, 5000) / 100:.2f}",
                    "USD" if i % 4 else "EUR",
                    ms,
                )  # fmt: skip
                for i, (t, ms) in enumerate(
                    conn.execute(
                        "SELECT time, media_source FROM installs WHERE rowid % 2 = 1 ORDER BY rowid"
                    ).fetchall()
                )
            ),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()

    async def rebuild() -> float:
        store = await SqliteStore.open(db)
        try:
            began = time.perf_counter()
            await store.reports.rebuild_rollups(APP, RollupFold(DEFAULT_UNIFIED_PIDS))
            return time.perf_counter() - began
        finally:
            await store.close()

    return token, asyncio.run(rebuild())


def _settings(db: str) -> Settings:
    return Settings(db=db, secret_key=Secret("bench"), tiktok_api_url="http://127.0.0.1:9")


def _median_ms(fn: Any, runs: int = RUNS) -> float:
    fn()  # warm the page cache and the connection
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def count_baseline_ms(db: str) -> tuple[float, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    total = 0

    def count() -> None:
        nonlocal total
        total = sum(
            conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("impressions", "clicks", "installs", "events")
        )

    try:
        return _median_ms(count, 3), total
    finally:
        conn.close()


def overview_timings(db: str, token: str) -> list[tuple[str, float, int]]:
    """(what, median ms, rollup rows read) of each overview query."""
    last = (END - timedelta(days=1)).date()
    cases = [
        ("headline, 30 days by date, UTC", 30, "date", None),
        ("headline, 30 days by date, Los Angeles", 30, "date", "America/Los_Angeles"),
        ("30 days by date and media source", 30, "date,media_source", None),
        ("7 days by campaign, ad set, ad", 7, "campaign,adset,ad", None),
        ("30 days by campaign, ad set, ad", 30, "campaign,adset,ad", None),
    ]
    out = []
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(
        create_app(_settings(db), run_jobs=False), base_url="http://localhost"
    ) as client:
        for what, days, group_by, zone in cases:
            params = {
                "app_key": APP,
                "from": (last - timedelta(days=days - 1)).isoformat(),
                "to": last.isoformat(),
                "group_by": group_by,
            }
            if zone:
                params["timezone"] = zone

            def call(p: dict[str, str] = params) -> None:
                r = client.get("/api/v1/reports/overview", params=p, headers=headers)
                assert r.status_code == 200, r.text

            ms = _median_ms(call)
            out.append((what, ms, _rows_read(db, days, group_by)))
    return out


DASHBOARD_USER = "bench@example.com"
DASHBOARD_PASSWORD = "benchmark password"


def dashboard_ms(db: str) -> list[tuple[int, float]]:
    """(days, median ms) of the console's dashboard (`GET /admin`, logged in) of the last 7
    days (its default) and 30: the headline with its chart and the campaign table (two
    overview queries, the second over the wide rollups), and the activity feed."""
    from app.accounts import hash_password

    async def add_user() -> None:
        store = await SqliteStore.open(db)
        try:
            await store.users.create_user(
                DASHBOARD_USER, hash_password(DASHBOARD_PASSWORD), "admin", None, time.time()
            )
        finally:
            await store.close()

    asyncio.run(add_user())
    last = (END - timedelta(days=1)).date()
    out = []
    with TestClient(
        create_app(_settings(db), run_jobs=False), base_url="http://localhost"
    ) as client:
        login = {"email": DASHBOARD_USER, "password": DASHBOARD_PASSWORD}
        assert client.post("/admin/login", data=login, follow_redirects=False).status_code == 303

        for days in (7, 30):
            start = (last - timedelta(days=days - 1)).isoformat()
            params = {"app": APP, "from": start, "to": last.isoformat()}

            def call(p: dict[str, str] = params) -> None:
                r = client.get("/admin", params=p)
                assert r.status_code == 200 and 'data-metric="installs"' in r.text, r.text[:300]

            out.append((days, _median_ms(call)))
    return out


def _rows_read(db: str, days: int, group_by: str) -> int:
    narrow = set(group_by.split(",")) <= {"date", "media_source"}
    table = "rollups_by_source" if narrow else "rollups"
    first = int((END.timestamp() - days * 86_400) // 3600) - 24
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(
            conn.execute(
                f"SELECT COUNT(*) FROM {table} WHERE app_key = ? AND hour >= ?", [APP, first]
            ).fetchone()[0]
        )
    finally:
        conn.close()


# -- the export, in a process of its own ---------------------------------------------------------


class RssSampler:
    """The resident set of this process, sampled every 2 ms in a thread."""

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * self.page

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            self._stop.wait(0.002)

    def __enter__(self) -> RssSampler:
        self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


@dataclass
class Export:
    rows: int
    bytes: int
    seconds: float
    first_byte_seconds: float
    rss_before: int
    rss_peak: int

    @property
    def growth(self) -> int:
        return self.rss_peak - self.rss_before


def drain(client: TestClient, path: str, query: str, token: str) -> tuple[int, int, float]:
    """Call the app as a server would and count the streamed body, keeping none of it (the
    TestClient itself would hold the whole body). Answers (bytes, lines, first byte seconds)."""
    counted = {"bytes": 0, "lines": 0, "first": 0.0}
    began = time.perf_counter()

    async def run() -> None:
        import anyio

        asked = anyio.Event()
        sent_request = False

        async def receive() -> dict[str, Any]:
            nonlocal sent_request
            if not sent_request:
                sent_request = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asked.wait()  # the client never goes away
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                assert message["status"] == 200, message
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                if body and not counted["first"]:
                    counted["first"] = time.perf_counter() - began
                counted["bytes"] += len(body)
                counted["lines"] += body.count(b"\n")

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "server": (client.base_url.host, 80),
            "client": ("127.0.0.1", 50000),
            "root_path": "",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "headers": [
                (b"host", client.base_url.host.encode()),
                (b"authorization", f"Bearer {token}".encode()),
            ],
            "state": dict(client.app_state),
        }
        await client.app(scope, receive, send)  # type: ignore[arg-type]

    assert client.portal is not None
    client.portal.call(run)
    return counted["bytes"], counted["lines"], counted["first"]


def export(db: str, token: str, start: date, end: date) -> Export:
    with TestClient(
        create_app(_settings(db), run_jobs=False), base_url="http://localhost"
    ) as client:
        query = f"app_key={APP}&from={start.isoformat()}&to={end.isoformat()}"
        # Warm up: imports, the first connection, a small export.
        drain(client, "/api/v1/raw/installs.csv", f"{query}&to={start.isoformat()}", token)
        sampler = RssSampler()
        before = sampler.rss()
        began = time.perf_counter()
        with sampler:
            size, lines, first = drain(client, "/api/v1/raw/installs.csv", query, token)
        seconds = time.perf_counter() - began
    return Export(lines - 1, size, seconds, first, before, sampler.peak)


def export_in_child(db: str, token: str, days: int) -> Export:
    start = (END - timedelta(days=days + 1)).date()
    end = END.date()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.reports",
            "--export-only",
            db,
            token,
            start.isoformat(),
            end.isoformat(),
        ],  # fmt: skip
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return Export(**json.loads(out.stdout.strip().splitlines()[-1]))


def mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reports")
    parser.add_argument("--touches", type=int, default=1_000_000)
    parser.add_argument("--installs", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--dir", default=str(ROOT / "tmp"))
    parser.add_argument("--keep", action="store_true", help="keep the database file")
    parser.add_argument("--export-only", nargs=4, metavar=("DB", "TOKEN", "FROM", "TO"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args(argv)
    if args.export_only:
        db, token, start, end = args.export_only
        result = export(db, token, date.fromisoformat(start), date.fromisoformat(end))
        print(json.dumps(result.__dict__))
        return 0

    sizes = Sizes(args.touches, args.installs, args.days)
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    folder = tempfile.mkdtemp(prefix="bench-reports-", dir=args.dir)
    db = str(Path(folder) / "reports.db")
    print(f"building {sizes.touches:,} touches, {sizes.installs:,} installs, "
          f"{sizes.events:,} events over {sizes.days} days in {db} ...", flush=True)  # fmt: skip
    began = time.perf_counter()
    token, rebuild_seconds = build(db, sizes)
    print(f"built in {time.perf_counter() - began:.0f} s (rollups rebuild {rebuild_seconds:.1f} s)",
          flush=True)  # fmt: skip
    count_ms, counted = count_baseline_ms(db)
    timings = overview_timings(db, token)
    dashboard = dashboard_ms(db)
    exported = export_in_child(db, token, sizes.days)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rollup_rows = conn.execute("SELECT COUNT(*) FROM rollups").fetchone()[0]
    source_rows = conn.execute("SELECT COUNT(*) FROM rollups_by_source").fetchone()[0]
    conn.close()
    if not args.keep:
        for suffix in ("", "-wal", "-shm"):
            Path(db + suffix).unlink(missing_ok=True)
        Path(folder).rmdir()

    headline = timings[0][1]
    print()
    print(f"rollups: {rollup_rows:,} rows by every dimension, {source_rows:,} by media source")
    print(f"COUNT(*) over impressions, clicks, installs, events ({counted:,} rows): "
          f"{count_ms:.1f} ms")  # fmt: skip
    for what, ms, rows in timings:
        print(f"overview {what}: {ms:.1f} ms ({rows:,} rollup rows in range), "
              f"x{ms / count_ms:.3f} of COUNT(*)")  # fmt: skip
    for days, ms in dashboard:
        print(f"console dashboard, {days} days (headline, chart, campaign table, feed): "
              f"{ms:.1f} ms, x{ms / headline:.2f} of the headline overview")  # fmt: skip
    first_ms = exported.first_byte_seconds * 1000
    print(f"export of {exported.rows:,} install rows ({mb(exported.bytes)}): "
          f"{exported.seconds:.1f} s, first byte after {first_ms:.0f} ms, "
          f"peak RSS {mb(exported.rss_peak)}, growth {mb(exported.growth)}")  # fmt: skip
    ok = headline < TARGET_MS
    verdict = "met" if ok else "MISSED"
    print(f"headline overview {headline:.1f} ms against the {TARGET_MS:.0f} ms target: "
          f"{verdict}; x{headline / count_ms:.3f} of the COUNT(*) baseline")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
