"""Several nodes: durable impressions per second, and the candidate lookup on PostgreSQL.

    python -m benchmarks.nodes [--seconds 15] [--rounds 3] [--concurrency 32] [--touches 1000000]

Throughput: one load client (this process, an httpx.AsyncClient, `--concurrency` requests in
flight) posts `POST /i/demo` beacons (fresh pvid each) for `--seconds` to each of one SQLite
node, one PostgreSQL node and two PostgreSQL nodes on one database (requests alternating between
them, as a load balancer would). Every server is started first; the setups are then measured in
turn, `--rounds` times each, so a neighbour's burst of load on a shared machine falls on all.
Every node is a real server (`python -m app serve`, a subprocess). A 202 promises a committed
row: SQLite commits with `synchronous=FULL`, and the PostgreSQL server here runs with
`fsync=on` and `synchronous_commit=on`, so both pay for durable commits. After each run the
acknowledged ids are looked up; a lost one makes the exit status 1.
The figures are impressions acknowledged per second, and their ratios to the SQLite node.

The machine matters: on 2 cores, the two nodes, PostgreSQL and the load client share them, so
the two-node figure is a floor (two machines would each have their own CPU), and it may well be
below one node's: a second node on the same cores adds a process to schedule, not capacity.

Lookup: the same generated touches (`benchmarks.attribution`: 30 days, 5 touches per IP, 30 %
clicks) loaded into a SQLite file and into PostgreSQL (day partitions, as the server makes
them), then the same installs matched on each as the server matches them
(`find_candidates` + `decide`), one at a time. `--touches` sets the size: the default (1
million) finishes in a few minutes; `--touches 10000000` is the spec's size (the SQLite file is
reused between runs, as `benchmarks.attribution` does; PostgreSQL is loaded again each run).
The figures are median and p99 per install on each backend and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from psycopg.rows import dict_row

from app.attribution import candidate_ranges, decide, referrer_click_id
from app.ids import new_id
from app.paths import ROOT
from app.store.backends import open_store
from app.store.postgres import PostgresStore
from app.store.postgres.candidates import find_candidates
from app.store.postgres.partitions import DAY, day_of, ensure_days
from app.store.records import CandidateQuery
from benchmarks import attribution
from tests.live import LiveServer
from tests.pg import ThrowawayPostgres

UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)
NOTE = (
    "2 cores shared by the nodes, PostgreSQL and the load client: the two-node figure is a "
    "floor, not what two machines give"
)


@dataclass
class Throughput:
    label: str
    acked: int
    seconds: float
    latencies_ms: list[float]
    lost: int
    errors: int

    @property
    def per_second(self) -> float:
        return self.acked / self.seconds

    def line(self) -> str:
        ordered = sorted(self.latencies_ms) or [0.0]
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        return (
            f"  {self.label:<22} {self.per_second:>8,.0f} impressions/s  "
            f"median {statistics.median(ordered):6.1f} ms  p99 {p99:6.1f} ms  "
            f"({self.acked:,} acknowledged, {self.lost} lost, {self.errors} errors)"
        )


async def _seed(db: str) -> None:
    from app.__main__ import seed_demo

    store = await open_store(db)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            await seed_demo(store)
    finally:
        await store.close()


async def load(
    urls: Sequence[str], concurrency: int, seconds: float
) -> tuple[list[str], Throughput]:
    """Beacons for `seconds`, `concurrency` in flight, alternating over `urls`."""
    clients = [
        httpx.AsyncClient(
            base_url=url,
            timeout=30.0,
            limits=httpx.Limits(max_connections=concurrency),
            headers={"user-agent": UA, "content-type": "text/plain"},
        )
        for url in urls
    ]
    acked: list[str] = []
    latencies: list[float] = []
    errors = 0
    turn = 0

    async def one(client: httpx.AsyncClient, record: bool) -> None:
        nonlocal errors
        beacon = {"url": "http://127.0.0.1/lp/demo?pid=tiktokweb_int&c=bench", "pvid": new_id()}
        started = time.perf_counter()
        try:
            answer = await client.post("/i/demo", content=json.dumps(beacon))
        except httpx.HTTPError:
            errors += 1
            return
        if answer.status_code != 202:
            errors += 1
            return
        if record:
            latencies.append((time.perf_counter() - started) * 1000)
            acked.append(answer.json()["id"])

    async def worker(deadline: float, record: bool) -> None:
        nonlocal turn
        while time.perf_counter() < deadline:
            client = clients[turn % len(clients)]
            turn += 1
            await one(client, record)

    try:
        # A second of warm-up opens the connections and fills the pools before timing.
        warm = time.perf_counter() + 1.0
        await asyncio.gather(*(worker(warm, False) for _ in range(concurrency)))
        errors = 0
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(worker(deadline, True) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    finally:
        for client in clients:
            await client.aclose()
    return acked, Throughput("", len(acked), elapsed, latencies, 0, errors)


def lost(db: str, ids: list[str]) -> int:
    if db.startswith("postgresql://"):
        with psycopg.connect(db) as conn:
            found = conn.execute("SELECT id FROM impressions WHERE id = ANY(%s)", [ids]).fetchall()
    else:
        import sqlite3

        conn2 = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            found = []
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                found += conn2.execute(
                    f"SELECT id FROM impressions WHERE id IN ({marks})", chunk
                ).fetchall()
        finally:
            conn2.close()
    return len(set(ids) - {row[0] for row in found})


@dataclass
class Setup:
    label: str
    db: str
    servers: list[LiveServer]
    acked: list[str]
    result: Throughput


async def throughput(
    setups: list[tuple[str, str, int]], folder: Path, concurrency: int, seconds: float, rounds: int
) -> list[Throughput]:
    """Every setup's servers started at once, then measured in turn, `rounds` times each for
    `seconds / rounds`: a burst of a neighbour's load on a shared machine then falls on every
    setup alike, not on whichever ran at that moment."""
    runs = []
    for label, db, nodes in setups:
        await _seed(db)
        servers = [
            LiveServer(
                db,
                {"GANGWAY_LOG_LEVEL": "warning"},
                log_path=folder / f"{label.replace(' ', '').replace(',', '-')}-{i}.log",
            )
            for i in range(nodes)
        ]
        runs.append(Setup(label, db, servers, [], Throughput(label, 0, 0.0, [], 0, 0)))
    try:
        for run in runs:
            for server in run.servers:
                await asyncio.to_thread(server.start)
        for _ in range(rounds):
            for run in runs:
                ids, part = await load([s.url for s in run.servers], concurrency, seconds / rounds)
                run.acked += ids
                run.result.acked += part.acked
                run.result.seconds += part.seconds
                run.result.latencies_ms += part.latencies_ms
                run.result.errors += part.errors
    finally:
        for run in runs:
            for server in run.servers:
                await asyncio.to_thread(server.stop)
    for run in runs:
        run.result.lost = lost(run.db, run.acked)
    return [run.result for run in runs]


# -- the candidate lookup ----------------------------------------------------------------------


_COLUMNS = [c.strip() for c in attribution._COMMON.split(",")]


async def load_postgres(url: str, touches: int) -> float:
    """The touches of `attribution._rows` into PostgreSQL; answers seconds spent."""
    started = time.perf_counter()
    end = attribution.END_TIME
    first = day_of(end - attribution.SPAN_DAYS * DAY)
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, row_factory=dict_row
    ) as conn:
        await ensure_days(conn, range(first, day_of(end) + DAY, DAY))
        await conn.execute("SET synchronous_commit = off")  # loading, not serving
        cursor = conn.cursor()
        impressions = f"COPY impressions ({', '.join(_COLUMNS)}) FROM STDIN"
        clicks = f"COPY clicks ({', '.join(_COLUMNS)}, platform, destination) FROM STDIN"
        # Two passes of the (seeded, so identical) generator: holding 10 million rows would
        # take gigabytes.
        for kind, statement in (("impression", impressions), ("click", clicks)):
            async with conn.transaction():
                async with cursor.copy(statement) as copy:
                    for row_kind, row in attribution._rows(touches, 7):
                        if row_kind == kind:
                            await copy.write_row(row)
        await conn.execute("ANALYZE impressions")
        await conn.execute("ANALYZE clicks")
    return time.perf_counter() - started


async def measure_postgres(
    url: str, touches: int, batch: list[attribution.Install]
) -> attribution.Result:
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, row_factory=dict_row
    ) as conn:

        async def match(install: attribution.Install) -> bool:
            clicks, impressions = candidate_ranges(attribution.SETTINGS, install.facts.time)
            candidates = await find_candidates(
                conn,
                CandidateQuery(
                    app_key=install.app_key,
                    ip=install.facts.ip,
                    referrer_click_id=referrer_click_id(install.facts.install_referrer),
                    clicks=clicks,
                    impressions=impressions,
                ),
            )
            return decide(install.facts, candidates, attribution.SETTINGS).status == "attributed"

        for install in batch[: max(len(batch) // 100, 10)]:
            await match(install)
        latencies: list[float] = []
        attributed = 0
        for install in batch:
            started = time.perf_counter_ns()
            attributed += await match(install)
            latencies.append((time.perf_counter_ns() - started) / 1e6)
    return attribution.Result("postgres", touches, latencies, attributed)


# -- the run -----------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> int:
    folder = Path(tempfile.mkdtemp(prefix="bench-nodes-", dir=ROOT / "tmp"))
    server = ThrowawayPostgres(fsync=True).start()
    failed = 0
    try:
        print(f"PostgreSQL: throwaway server, fsync on; files under {folder}", flush=True)
        setups = [
            ("sqlite, 1 node", str(folder / "nodes.db"), 1),
            ("postgresql, 1 node", server.create_database("nodes1"), 1),
            ("postgresql, 2 nodes", server.create_database("nodes2"), 2),
        ]
        results = await throughput(setups, folder, args.concurrency, args.seconds, args.rounds)
        for result in results:
            print(result.line(), flush=True)
            failed |= result.lost > 0

        sqlite_path = Path(args.sqlite_db)
        built = await asyncio.to_thread(attribution.build, sqlite_path, args.touches)
        how = f"built in {built:.0f} s" if built else "reused"
        print(f"lookup: SQLite {sqlite_path} ({args.touches:,} touches, {how})", flush=True)
        url = server.create_database("lookup")
        store = await PostgresStore.open(url)
        await store.close()
        loaded = await load_postgres(url, args.touches)
        print(f"lookup: PostgreSQL loaded in {loaded:.0f} s", flush=True)
        batch = attribution.installs(sqlite_path, args.installs)
        sqlite_result = attribution.measure("sqlite", sqlite_path, args.touches, batch)
        pg_result = await measure_postgres(url, args.touches, batch)
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)

    base = results[0].per_second
    print()
    print(
        f"durable impressions per second (POST /i, {args.concurrency} in flight, "
        f"{args.seconds:g} s each, one load client):"
    )
    for result in results:
        print(result.line())
    print(
        f"ratios: postgresql 1 node x{results[1].per_second / base:.2f} of sqlite; "
        f"postgresql 2 nodes x{results[2].per_second / base:.2f} of sqlite, "
        f"x{results[2].per_second / results[1].per_second:.2f} of 1 postgresql node"
    )
    print(f"note: {NOTE}")
    print()
    print(f"candidate lookup, {args.touches:,} touches, {len(batch):,} installs, one at a time:")
    print("  " + sqlite_result.line())
    print("  " + pg_result.line())
    print(
        f"ratio postgresql to sqlite: median x{pg_result.median / sqlite_result.median:.2f}, "
        f"p99 x{pg_result.quantile(0.99) / sqlite_result.quantile(0.99):.2f}"
    )
    if sqlite_result.attributed != pg_result.attributed:
        print("MISMATCH: the backends attributed different numbers of installs")
        failed = 1
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.nodes")
    parser.add_argument("--seconds", type=float, default=15.0, help="per setup, in all")
    parser.add_argument("--rounds", type=int, default=3, help="turns each setup is measured in")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--touches", type=int, default=1_000_000, help="lookup table size")
    parser.add_argument("--installs", type=int, default=5_000, help="installs matched")
    parser.add_argument(
        "--sqlite-db",
        default=None,
        help="the SQLite lookup file (default tmp/bench-nodes-<touches>.db, reused)",
    )
    args = parser.parse_args(argv)
    if args.sqlite_db is None:
        args.sqlite_db = str(ROOT / "tmp" / f"bench-nodes-{args.touches}.db")
    (ROOT / "tmp").mkdir(exist_ok=True)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
