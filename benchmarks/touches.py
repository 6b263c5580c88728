"""Touches recorded durably per second: the group-commit writer against one commit per write.

    python -m benchmarks.touches [--quick] [--no-http] [--dir tmp]

A touch is acknowledged only once its row is committed with `synchronous=FULL` (README, "How it
is built"), so the collector's ceiling is how many commits the disk takes per second, unless
commits are shared. This measures what sharing them (`app/store/sqlite/writer.py`) buys.

Writer level: N asyncio tasks (1, 8, 64, 256) each awaiting `store.touches.record_touch` for
impressions shaped like the collector's (user agent, campaign fields, ttclid, landing URL, a fresh
pvid), on a fresh file per run. Timed per write: the await, queueing included. Each concurrency runs
twice, on the server's writer (`batch_max` 256) and on the same writer with `batch_max=1` (one
transaction, one fsync per write): the baseline of the ratio. One more line is a plain sqlite3
connection with the same pragmas doing SELECT + INSERT + COMMIT per row in a loop: what one durable
commit costs on this disk, with no writer around it.

HTTP level: a real server (`python -m app serve`, a subprocess on 127.0.0.1, default settings but
`GANGWAY_WRITER_BATCH_MAX`) seeded with the demo app; an httpx.AsyncClient in this process posts
`POST /i/demo` beacons (text/plain JSON, fresh pvid) and follows none of the `GET /c/demo` clicks'
302s, with 1 and 32 requests in flight. The mean batch comes from the server's `/metrics`. The
client shares the machine with the server: at high concurrency the figures are a floor. A mean
batch near 1 there means requests reach the writer one at a time: handling them, not committing
them, is the limit, and group commit has nothing to share.

`cpu ms` is CPU time per acknowledged touch: this process's at the writer level (event loop and
writer thread), the server process's at the HTTP level.

Every run is bounded by a write count and a time cap (`--quick`: a few seconds in all). After
each run the file is reopened and every acknowledged touch is looked up: a lost one is reported
and makes the exit status 1. Files go to a temporary folder under `--dir` (default `tmp/`, the
checkout's disk, like the data directory; a tmpfs `/tmp` would fsync for free). The figures come
last: the table, then the ratios to one commit per write measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from app.ids import new_id
from app.paths import ROOT
from app.store.sqlite import SqliteStore as Store

# The sqlite3 loop writes the store's very rows, on a connection configured as the writer's.
from app.store.sqlite.touches import touch_row
from app.store.sqlite.writer import connect
from app.touches import Touch, TouchRecord
from benchmarks.proc import process_cpu

GROUP = "group commit"
PER_WRITE = "commit per write"
RAW = "sqlite3 loop"
SERVER_BATCH_MAX = 256
WARMUP = 20
UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Mobile/15E148 musical_ly_36.5.0 JsSdk/2.0 BytedanceWebview/d8a21c6"
)


@dataclass(frozen=True)
class Plan:
    concurrency: tuple[int, ...]
    writes: int  # most writes per writer-level run
    seconds: float  # time cap per writer-level run
    http_concurrency: tuple[int, ...]
    requests: int  # most requests per HTTP run
    http_seconds: float  # time cap per HTTP run


FULL = Plan((1, 8, 64, 256), 20_000, 5.0, (1, 32), 3_000, 4.0)
QUICK = Plan((1, 8, 64, 256), 600, 0.4, (1, 32), 150, 0.5)


@dataclass
class Cell:
    """One measured run: a write path at one concurrency."""

    level: str  # "writer" | "http"
    mode: str  # GROUP | PER_WRITE | RAW
    kind: str
    concurrency: int
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    batches: int = 0
    writes: int = 0
    errors: int = 0
    lost: int = 0
    cpu_seconds: float | None = None  # this process (writer level) or the server's (HTTP)
    db: Path | None = None

    @property
    def count(self) -> int:
        return len(self.latencies_ms)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0

    @property
    def median(self) -> float:
        return self.quantile(0.5)

    @property
    def p99(self) -> float:
        return self.quantile(0.99)

    @property
    def mean_batch(self) -> float:
        return self.writes / self.batches if self.batches else 0.0

    @property
    def cpu_ms(self) -> float | None:
        return self.cpu_seconds * 1000 / self.count if self.cpu_seconds and self.count else None

    def line(self) -> str:
        batch = f"{self.mean_batch:10.1f}" if self.batches else f"{'-':>10}"
        cpu = f"{self.cpu_ms:7.3f}" if self.cpu_ms is not None else f"{'-':>7}"
        return (
            f"{self.level:<6} {self.mode:<16} {self.kind:<10} {self.concurrency:>4}"
            f" {self.count:>7,} {self.seconds:>6.2f} {self.rate:>9,.0f} {self.median:>9.3f}"
            f" {self.p99:>8.3f} {batch} {cpu} {self.errors:>6} {self.lost:>4}"
        )


HEADER = (
    f"{'level':<6} {'write path':<16} {'kind':<10} {'conc':>4} {'touches':>7} {'secs':>6}"
    f" {'touches/s':>9} {'median ms':>9} {'p99 ms':>8} {'mean batch':>10} {'cpu ms':>7}"
    f" {'errors':>6} {'lost':>4}"
)


# -- what is written ---------------------------------------------------------------------------


def impressions(count: int) -> list[TouchRecord]:
    """Impressions as the beacon handler records them, each its own page view."""
    now = time.time()
    records = []
    for n in range(count):
        ttclid = f"E.C.P.{n:012x}Ab9"
        pvid = new_id()
        query = {"pid": "tiktokweb_int", "c": "summer", "af_sub1": ttclid, "ttclid": ttclid}
        url = "https://gangway.example/lp/demo?" + "&".join(f"{k}={v}" for k, v in query.items())
        touch = Touch(
            id=new_id(),
            kind="impression",
            app_key="demo",
            time=now + n / 1000,
            ip=f"11.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
            user_agent=UA,
            os_family="ios",
            os_version="18.0",
            device_model="iPhone",
            browser="TikTok",
            pid="tiktokweb_int",
            params={"c": "summer", "af_sub1": ttclid},
            ttclid=ttclid,
            original_url=url,
            pvid=pvid,
        )
        records.append(
            TouchRecord(
                touch,
                page_slug="demo",
                language="en-US,en;q=0.9",
                in_app="tiktok",
                all_params={**query, "pvid": pvid},
            )
        )
    return records


def stored_ids(path: Path, table: str = "impressions") -> set[str]:
    """Every touch id in a closed database file, read afresh."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {row[0] for row in conn.execute(f"SELECT id FROM {table}")}
    finally:
        conn.close()


async def _drive(
    concurrency: int, count: int, seconds: float, one: Callable[[int], Awaitable[bool]]
) -> tuple[float, list[float], int]:
    """`concurrency` tasks calling `one(n)` for n in 0..count-1 until the time cap; answers
    (elapsed seconds, latency of each acknowledged call in ms, calls that failed)."""
    numbers: Iterator[int] = iter(range(count))
    latencies: list[float] = []
    errors = 0
    started = time.perf_counter()
    deadline = started + seconds

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            n = next(numbers, None)
            if n is None:
                return
            t0 = time.perf_counter_ns()
            ok = await one(n)
            elapsed = (time.perf_counter_ns() - t0) / 1e6
            if ok:
                latencies.append(elapsed)
            else:
                errors += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, errors


# -- writer level ------------------------------------------------------------------------------


async def writer_run(
    path: Path, records: Sequence[TouchRecord], concurrency: int, batch_max: int, seconds: float
) -> Cell:
    """`concurrency` tasks recording `records` through a fresh store's writer."""
    store = await Store.open(str(path), batch_max=batch_max)
    acked: list[str] = []
    try:
        for rec in records[:WARMUP]:
            acked.append(await store.touches.record_touch(rec))
        batches, writes = (
            store.connections.writer.stats.batches,
            store.connections.writer.stats.writes,
        )
        timed = records[WARMUP:]

        async def one(n: int) -> bool:
            acked.append(await store.touches.record_touch(timed[n]))
            return True

        cpu = time.process_time()
        elapsed, latencies, errors = await _drive(concurrency, len(timed), seconds, one)
        cpu = time.process_time() - cpu
        stats = store.connections.writer.stats
        cell = Cell(
            "writer",
            GROUP if batch_max > 1 else PER_WRITE,
            "impression",
            concurrency,
            elapsed,
            latencies,
            batches=stats.batches - batches,
            writes=stats.writes - writes,
            errors=errors,
            cpu_seconds=cpu,
            db=path,
        )
    finally:
        await store.close()
    cell.lost = len(set(acked) - stored_ids(path))
    return cell


def raw_run(path: Path, records: Sequence[TouchRecord], seconds: float) -> Cell:
    """The same rows, one transaction each, from a plain connection with the writer's pragmas."""
    Store.open_sync(str(path)).close_sync()  # the schema, as the server makes it
    rows = [touch_row(rec) for rec in records]
    columns = ", ".join(rows[0])
    insert = f"INSERT INTO impressions ({columns}) VALUES ({', '.join(':' + k for k in rows[0])})"
    conn = connect(str(path))
    latencies: list[float] = []
    try:

        def write(row: dict[str, object]) -> None:
            conn.execute("BEGIN IMMEDIATE")
            seen = conn.execute(
                "SELECT id FROM impressions WHERE app_key = ? AND pvid = ?",
                [row["app_key"], row["pvid"]],
            ).fetchone()
            if seen is None:
                conn.execute(insert, row)
            conn.execute("COMMIT")

        for row in rows[:WARMUP]:
            write(row)
        cpu = time.process_time()
        started = time.perf_counter()
        deadline = started + seconds
        for row in rows[WARMUP:]:
            if time.perf_counter() >= deadline:
                break
            t0 = time.perf_counter_ns()
            write(row)
            latencies.append((time.perf_counter_ns() - t0) / 1e6)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
    finally:
        conn.close()
    acked = {str(row["id"]) for row in rows[: WARMUP + len(latencies)]}
    count = len(latencies)
    cell = Cell(
        "writer", RAW, "impression", 1, elapsed, latencies, count, count, cpu_seconds=cpu, db=path
    )
    cell.lost = len(acked - stored_ids(path))
    return cell


async def writer_level(directory: Path, plan: Plan) -> list[Cell]:
    """Each concurrency with group commit and with one commit per write, then the raw loop."""
    records = impressions(WARMUP + plan.writes)
    cells = []
    for concurrency in plan.concurrency:
        for batch_max in (SERVER_BATCH_MAX, 1):
            path = directory / f"writer-b{batch_max}-c{concurrency}.db"
            cells.append(await writer_run(path, records, concurrency, batch_max, plan.seconds))
    cells.append(raw_run(directory / "writer-raw.db", records, plan.seconds))
    return cells


# -- HTTP level --------------------------------------------------------------------------------


async def _seed(db: Path) -> None:
    from app.__main__ import seed_demo

    store = await Store.open(str(db))
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # its "demo app ready" line
            await seed_demo(store)
    finally:
        await store.close()


async def _writer_stats(client: httpx.AsyncClient) -> tuple[int, int]:
    """(batches, writes) from the server's /metrics."""
    values = {}
    for line in (await client.get("/metrics")).text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("gangway_writer_commit_seconds_count", "gangway_writer_writes_total"):
            values[name] = int(float(value))
    return values["gangway_writer_commit_seconds_count"], values["gangway_writer_writes_total"]


@dataclass
class Acked:
    """What the server acknowledged in one run: impression ids, and clicks by ttclid prefix."""

    ttclid_prefix: str
    impressions: list[str] = field(default_factory=list)
    clicks: int = 0

    def lost(self, db: Path) -> int:
        lost = len(set(self.impressions) - stored_ids(db))
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            (stored,) = conn.execute(
                "SELECT COUNT(*) FROM clicks WHERE ttclid LIKE ?", [self.ttclid_prefix + "%"]
            ).fetchone()
        finally:
            conn.close()
        return lost + max(0, self.clicks - int(stored))


async def http_run(
    client: httpx.AsyncClient,
    server_pid: int,
    kind: str,
    concurrency: int,
    mode: str,
    count: int,
    seconds: float,
) -> tuple[Cell, Acked]:
    """`count` requests of one kind (or fewer, at the time cap), `concurrency` at a time."""
    acked = Acked(f"E.C.P.{kind[0]}{concurrency}{mode[0]}-")

    async def one(n: int) -> bool:
        ttclid = f"{acked.ttclid_prefix}{n:08x}"
        query = f"pid=tiktokweb_int&c=bench&ttclid={ttclid}"
        try:
            if kind == "POST /i":
                beacon = {"url": f"http://127.0.0.1/lp/demo?{query}", "pvid": new_id()}
                response = await client.post(
                    "/i/demo", content=json.dumps(beacon), headers={"content-type": "text/plain"}
                )
                if response.status_code != 202:
                    return False
                acked.impressions.append(response.json()["id"])
            else:
                response = await client.get(f"/c/demo?{query}&af_sub1={ttclid}")
                if response.status_code != 302:
                    return False
                acked.clicks += 1
        except httpx.HTTPError:
            return False
        return True

    batches, writes = await _writer_stats(client)
    cpu = process_cpu(server_pid)
    elapsed, latencies, errors = await _drive(concurrency, count, seconds, one)
    cpu_after = process_cpu(server_pid)
    after_batches, after_writes = await _writer_stats(client)
    cell = Cell(
        "http",
        mode,
        kind,
        concurrency,
        elapsed,
        latencies,
        batches=after_batches - batches,
        writes=after_writes - writes,
        errors=errors,
        cpu_seconds=None if cpu is None or cpu_after is None else cpu_after - cpu,
    )
    return cell, acked


async def http_level(directory: Path, plan: Plan) -> list[Cell]:
    """A server with group commit and one with `GANGWAY_WRITER_BATCH_MAX=1`, same requests."""
    from tests.live import LiveServer

    cells: list[Cell] = []
    for batch_max in (SERVER_BATCH_MAX, 1):
        mode = GROUP if batch_max > 1 else PER_WRITE
        db = directory / f"http-b{batch_max}.db"
        await _seed(db)
        server = LiveServer(str(db), {"GANGWAY_WRITER_BATCH_MAX": str(batch_max)})
        await asyncio.to_thread(server.start)
        assert server.process is not None
        pid = server.process.pid
        runs: list[tuple[Cell, Acked]] = []
        try:
            limits = httpx.Limits(max_connections=max(plan.http_concurrency))
            async with httpx.AsyncClient(
                base_url=server.url, timeout=30.0, limits=limits, headers={"user-agent": UA}
            ) as client:
                # Opens the pool's connections before anything is timed.
                most = max(plan.http_concurrency)
                for kind in ("POST /i", "GET /c"):
                    await http_run(client, pid, kind, most, "warm-up", 2 * most, 60.0)
                for kind in ("POST /i", "GET /c"):
                    for concurrency in plan.http_concurrency:
                        runs.append(
                            await http_run(
                                client,
                                pid,
                                kind,
                                concurrency,
                                mode,
                                plan.requests,
                                plan.http_seconds,
                            )
                        )
        finally:
            await asyncio.to_thread(server.stop)
        for cell, acked in runs:
            cell.lost = acked.lost(db)
            cells.append(cell)
    return cells


# -- the report --------------------------------------------------------------------------------


def ratios(cells: Sequence[Cell]) -> list[str]:
    """Group commit over one commit per write, same level, kind and concurrency."""
    base = {(c.level, c.kind, c.concurrency): c for c in cells if c.mode == PER_WRITE}
    raw = next((c for c in cells if c.mode == RAW), None)
    lines = []
    for cell in cells:
        other = base.get((cell.level, cell.kind, cell.concurrency))
        if cell.mode != GROUP or other is None or not other.rate:
            continue
        line = (
            f"{cell.level:<6} {cell.kind:<10} conc {cell.concurrency:>3}: touches/s"
            f" x{cell.rate / other.rate:.2f}, median latency x{cell.median / other.median:.2f},"
            f" p99 x{cell.p99 / other.p99:.2f}"
        )
        if cell.level == "writer" and raw is not None and raw.rate:
            line += f"; touches/s x{cell.rate / raw.rate:.2f} of the sqlite3 loop"
        lines.append(line)
    return lines


def report(cells: Sequence[Cell]) -> str:
    lines = [HEADER, *(cell.line() for cell in cells)]
    lines.append("ratio group commit / one commit per write (measured in this run):")
    lines += ["  " + line for line in ratios(cells)]
    return "\n".join(lines)


def filesystem(path: Path) -> str:
    """The type of the filesystem holding `path` (ext4, tmpfs, ...), from /proc/mounts."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return "unknown"
    best, kind = "", "unknown"
    resolved = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) < 3 or len(parts[1]) <= len(best):
            continue
        if resolved == parts[1] or resolved.startswith(parts[1].rstrip("/") + "/"):
            best, kind = parts[1], parts[2]
    return kind


async def run(directory: Path, plan: Plan, http: bool) -> list[Cell]:
    cells = await writer_level(directory, plan)
    if http:
        cells += await http_level(directory, plan)
    return cells


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.touches")
    parser.add_argument("--quick", action="store_true", help="a few seconds, small counts")
    parser.add_argument("--no-http", action="store_true", help="the writer level only")
    parser.add_argument("--dir", default=str(ROOT / "tmp"), help="where the temporary files go")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL

    base = Path(args.dir)
    base.mkdir(parents=True, exist_ok=True)
    print(
        f"touches under {base} ({filesystem(base)}), {os.cpu_count()} CPUs,"
        f" Python {platform.python_version()}, SQLite {sqlite3.sqlite_version},"
        f" {'quick' if args.quick else 'full'} run (at most {plan.writes:,} writes or"
        f" {plan.seconds:g} s per writer run)",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-touches-", dir=base) as directory:
        cells = asyncio.run(run(Path(directory), plan, not args.no_http))
    print(report(cells))
    lost = sum(cell.lost for cell in cells)
    if lost:
        print(f"LOST: {lost} acknowledged touches not in the file")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
