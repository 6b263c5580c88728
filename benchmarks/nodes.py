"""Several nodes: durable impressions per second, and the candidate lookup on PostgreSQL.

    python -m benchmarks.nodes [--seconds 15] [--rounds 3] [--concurrency 32] [--touches 1000000]

Throughput: wrk (one per node, `--concurrency` connections split among them, as a load
balancer spreads visitors) posts `POST /i/demo` beacons (fresh pvid each, the script of
`benchmarks.ingest`) for `--seconds` to each of one SQLite node, one PostgreSQL node and two
PostgreSQL nodes on one database. (A Python load client was tried first: it used a whole core
at 1.8-8 ms of CPU a request, and it, not the nodes, was what got measured.) Every server is
started first; the setups are then measured in turn, `--rounds` times each, so a neighbour's
burst of load on a shared machine falls on all.
Every node is a real server (`python -m app serve`, a subprocess). A 202 promises a committed
row: SQLite commits with `synchronous=FULL`, and the PostgreSQL server here runs with
`fsync=on` and `synchronous_commit=on`, so both pay for durable commits. Afterwards the
impressions on disk are counted: fewer than were acknowledged is a loss, and the exit status 1.
The figures are impressions acknowledged per second, and their ratios to the SQLite node.
While each setup is timed, the CPU used by its nodes, by the PostgreSQL server (every backend,
the WAL writer and the checkpointer) and by the load client is read from /proc: each party's
share of a core says which one runs out first as load grows (`--throughput-only` with a
`--concurrency` of 8, 32, 128 ... compares loads without the lookup).

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
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from app.attribution import candidate_ranges, decide, referrer_click_id
from app.paths import ROOT
from app.store.backends import open_store
from app.store.postgres import PostgresStore
from app.store.postgres.candidates import find_candidates
from app.store.postgres.partitions import DAY, day_of, ensure_days
from app.store.records import CandidateQuery
from benchmarks import attribution, ingest, proc
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


# -- where the CPU goes: what saturates first as load grows --------------------------------


def process_cpu(pid: int, *, children: bool = False) -> float:
    """CPU seconds a process has used (`benchmarks.proc`); a process gone counts nothing."""
    return proc.process_cpu(pid, children=children) or 0.0


def postgres_cpu(data: Path) -> float:
    """CPU seconds of a PostgreSQL server: the postmaster, its live children (backends,
    WAL writer, checkpointer), and the children that have exited."""
    try:
        postmaster = int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    total = process_cpu(postmaster, children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = proc.proc_stat(int(entry.name))
            if fields is not None and fields[1] == str(postmaster):  # ppid
                total += process_cpu(int(entry.name))
    return total


@dataclass
class Cpu:
    """CPU seconds used during the measured load, by who used them."""

    nodes: float = 0.0
    postgresql: float = 0.0
    client: float = 0.0

    def add(self, other: Cpu) -> None:
        self.nodes += other.nodes
        self.postgresql += other.postgresql
        self.client += other.client


class CpuMeter:
    """Reads the CPU of the nodes, the PostgreSQL server and the load client, before and after."""

    def __init__(self, node_pids: list[int], pg_data: Path | None) -> None:
        self.node_pids = node_pids
        self.pg_data = pg_data

    def read(self) -> Cpu:
        # The load client is wrk, a child of this process: its CPU is counted when it exits.
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return Cpu(
            nodes=sum(process_cpu(pid) for pid in self.node_pids),
            postgresql=postgres_cpu(self.pg_data) if self.pg_data else 0.0,
            client=children.ru_utime + children.ru_stime,
        )

    @staticmethod
    def spent(before: Cpu, after: Cpu) -> Cpu:
        return Cpu(
            after.nodes - before.nodes,
            after.postgresql - before.postgresql,
            after.client - before.client,
        )


@dataclass
class Throughput:
    label: str
    acked: int = 0
    seconds: float = 0.0
    p50s_ms: list[float] = field(default_factory=list)  # one per load client and round
    p99s_ms: list[float] = field(default_factory=list)
    lost: int = 0
    errors: int = 0
    nodes: int = 1
    cpu: Cpu = field(default_factory=Cpu)
    untimed: int = 0  # acknowledged during the warm-ups

    @property
    def per_second(self) -> float:
        return self.acked / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        p50 = statistics.median(self.p50s_ms) if self.p50s_ms else 0.0
        p99 = max(self.p99s_ms, default=0.0)
        return (
            f"  {self.label:<22} {self.per_second:>8,.0f} impressions/s  "
            f"median {p50:6.1f} ms  p99 {p99:6.1f} ms  "
            f"({self.acked:,} acknowledged, {self.lost} lost, {self.errors} errors)"
        )

    def cpu_line(self) -> str:
        """Each party's share of a core over the run (100 % = one core busy throughout) and
        its CPU per impression: the party near its ceiling is what breaks first."""
        if not self.seconds or not self.acked:
            return f"  {self.label:<22} no impressions"
        per_node = self.cpu.nodes / self.nodes

        def share(seconds: float) -> str:
            return f"{seconds / self.seconds * 100:4.0f} %"

        def each(seconds: float) -> str:
            return f"{seconds / self.acked * 1000:5.2f} ms"

        pg = (
            f"postgresql {share(self.cpu.postgresql)} ({each(self.cpu.postgresql)})  "
            if self.cpu.postgresql
            else ""
        )
        return (
            f"  {self.label:<22} each node {share(per_node)} (all nodes {each(self.cpu.nodes)} "
            f"an impression)  {pg}load client {share(self.cpu.client)} "
            f"({each(self.cpu.client)})"
        )


async def _seed(db: str) -> None:
    from app.__main__ import seed_demo

    store = await open_store(db)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            await seed_demo(store)
    finally:
        await store.close()


def stored(db: str) -> int:
    """Impressions on disk (read by a new connection: only what was committed)."""
    if db.startswith("postgresql://"):
        with psycopg.connect(db) as conn:
            row = conn.execute("SELECT count(*) FROM impressions").fetchone()
            return int(row[0]) if row else 0
    conn2 = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn2.execute("SELECT count(*) FROM impressions").fetchone()[0])
    finally:
        conn2.close()


def load(
    urls: Sequence[str], concurrency: int, seconds: float, scripts: Path, meter: CpuMeter
) -> Throughput:
    """One wrk per node, `concurrency` connections split among them (as a load balancer would
    spread visitors), every beacon a new pvid. wrk, not a Python client: a Python load client
    runs out of CPU long before one node does, and then it is what gets measured."""
    per_node = max(1, concurrency // len(urls))
    script = scripts / "impression.lua"
    script.write_text(ingest.LUA_IMPRESSION.replace("__UA__", ingest.UA))

    def run_wrk(url: str, duration: float) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["wrk", "-t1", f"-c{per_node}", f"-d{duration:g}s", "--latency", "-s", str(script)]
            + [url],
            stdout=subprocess.PIPE,
            text=True,
        )

    # A second of warm-up opens the connections and fills the pools before timing; what it
    # has acknowledged must be on disk too.
    warmed = 0
    for warm in [run_wrk(url, 1) for url in urls]:
        result = ingest.parse_wrk("warm-up", warm.communicate(timeout=60)[0])
        warmed += result.requests - result.bad
    before = meter.read()
    started = time.perf_counter()
    loads = [run_wrk(url, seconds) for url in urls]
    outputs = [process.communicate(timeout=seconds + 60)[0] for process in loads]
    elapsed = time.perf_counter() - started
    spent = CpuMeter.spent(before, meter.read())
    part = Throughput("", seconds=elapsed, nodes=len(urls), cpu=spent, untimed=warmed)
    for url, output in zip(urls, outputs, strict=True):
        result = ingest.parse_wrk(url, output)
        part.acked += result.requests - result.bad
        part.errors += result.bad
        part.p50s_ms.append(result.p50_ms)
        part.p99s_ms.append(result.p99_ms)
    return part


@dataclass
class Setup:
    db: str
    servers: list[LiveServer]
    result: Throughput
    rows_before: int = 0


async def throughput(
    setups: list[tuple[str, str, int]],
    folder: Path,
    concurrency: int,
    seconds: float,
    rounds: int,
    pg_data: Path | None = None,
) -> list[Throughput]:
    """Every setup's servers started at once, then measured in turn, `rounds` times each for
    `seconds / rounds`: a burst of a neighbour's load on a shared machine then falls on every
    setup alike, not on whichever ran at that moment. An acknowledged impression missing from
    the database afterwards (fewer rows than 202s) is counted as lost."""
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
        runs.append(Setup(db, servers, Throughput(label, nodes=nodes)))
    try:
        for run in runs:
            for server in run.servers:
                await asyncio.to_thread(server.start)
            run.rows_before = stored(run.db)
        for _ in range(rounds):
            for run in runs:
                meter = CpuMeter(
                    [s.process.pid for s in run.servers if s.process],
                    pg_data if run.db.startswith("postgresql://") else None,
                )
                part = await asyncio.to_thread(
                    load, [s.url for s in run.servers], concurrency, seconds / rounds, folder, meter
                )
                total = run.result
                total.seconds += part.seconds
                total.errors += part.errors
                total.p50s_ms += part.p50s_ms
                total.p99s_ms += part.p99s_ms
                total.cpu.add(part.cpu)
                total.acked += part.acked
                total.untimed += part.untimed
        for run in runs:
            acknowledged = run.result.acked + run.result.untimed
            run.result.lost = max(0, acknowledged - (stored(run.db) - run.rows_before))
    finally:
        for run in runs:
            for server in run.servers:
                await asyncio.to_thread(server.stop)
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
    if shutil.which("wrk") is None:
        print(ingest.INSTALL_HINT, file=sys.stderr)
        return 1
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
        assert server.folder is not None
        results = await throughput(
            setups, folder, args.concurrency, args.seconds, args.rounds, server.folder / "data"
        )
        for result in results:
            print(result.line(), flush=True)
            failed |= result.lost > 0
        if args.throughput_only:
            return _report_throughput(args, results, failed)

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

    _report_throughput(args, results, failed)
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


def _report_throughput(args: argparse.Namespace, results: list[Throughput], failed: int) -> int:
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
    print(f"CPU while timed ({os.cpu_count()} cores; 100 % = one core busy throughout):")
    for result in results:
        print(result.cpu_line())
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
    parser.add_argument(
        "--throughput-only",
        action="store_true",
        help="skip the candidate lookup (to compare loads: --concurrency 8, 32, 128 ...)",
    )
    args = parser.parse_args(argv)
    if args.sqlite_db is None:
        args.sqlite_db = str(ROOT / "tmp" / f"bench-nodes-{args.touches}.db")
    (ROOT / "tmp").mkdir(exist_ok=True)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
