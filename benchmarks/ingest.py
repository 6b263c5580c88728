"""Ingest speed: Gangway's public routes against a bare Starlette route, same machine, same run.

    python -m benchmarks.ingest [--seconds 5] [--dir tmp] [--connections 32]

The yardstick is `benchmarks.bare_app` (one JSON route) on plain uvicorn, asyncio + h11, one
process. The same bare app on the fastest stack Gangway ships (uvloop + httptools, what
`python -m app serve` uses) is measured too: a ratio against it says what Gangway itself costs,
so a faster server is not mistaken for a faster Gangway.

Load: wrk, one thread, 32 connections, on 127.0.0.1 only. Every impression beacon and click
carries a new `pvid` (a click from a landing page has one, and looks its page view up) and every
install a new `app_instance_id` (a repeated one takes the dedup path and
flatters the figure): wrk's Lua scripts make them from a counter. Installs come from addresses
no touch came from, so they are organic.

Gangway runs as `python -m app serve` (a subprocess, default settings, the demo app seeded) on a
file under `--dir` (default `tmp/`, the checkout's disk: a tmpfs would fsync for free). Its
resident memory is read before the load and after. After the load every acknowledged
impression, click and install is counted in the file: fewer rows than 2xx/302 answers is a loss
and fails the run.

Goals (issue 14): impression >= 0.7 of the yardstick, click >= 0.6, landing page >= 0.4,
organic install >= 0.3; p99 under 20 ms for impressions and clicks. The exit status is 1 when a
row is lost or a goal is missed. Bounded: each route runs `--seconds` (after a one-second warm-up);
with the default 5 s the whole run takes about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.paths import ROOT
from benchmarks.proc import process_cpu

INSTALL_HINT = (
    "wrk is not installed: this benchmark drives its load with wrk "
    "(Debian/Ubuntu: `apt-get install -y wrk`; macOS: `brew install wrk`)"
)
START_TIMEOUT = 20.0
WARMUP_SECONDS = 1
UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Mobile/15E148 musical_ly_36.5.0 JsSdk/2.0 BytedanceWebview/d8a21c6"
)

# Fresh ids per request: a per-run prefix (so the warm-up and the measured run never collide)
# and a counter. The prefix comes from the kernel's random bytes: a seed from the clock
# (seconds + CPU time at start) gave two wrk runs a second apart the same ids, and the second
# one's beacons took the dedup path.
LUA_COMMON = """
local n = 0
local urandom = assert(io.open("/dev/urandom", "rb"))
local prefix = urandom:read(6):gsub(".", function(c) return string.format("%02x", c:byte()) end)
urandom:close()
math.randomseed(tonumber(prefix:sub(1, 8), 16))
local function fresh()
  n = n + 1
  return prefix .. string.format("%08x", n)
end
local ua = "__UA__"
"""

LUA_IMPRESSION = (
    LUA_COMMON
    + """
request = function()
  local id = fresh()
  local body = '{"url":"http://127.0.0.1/lp/demo?pid=tiktokweb_int&c=bench&ttclid=E.C.P.'
    .. id .. '","referrer":"https://www.tiktok.com/","pvid":"' .. id .. '"}'
  return wrk.format("POST", "/i/demo",
    {["Content-Type"] = "text/plain;charset=UTF-8", ["User-Agent"] = ua}, body)
end
"""
)

LUA_CLICK = (
    LUA_COMMON
    + """
request = function()
  local id = fresh()
  return wrk.format("GET", "/c/demo?pid=tiktokweb_int&c=bench&ttclid=E.C.P." .. id
    .. "&af_sub1=E.C.P." .. id .. "&platform=ios&pvid=" .. id, {["User-Agent"] = ua})
end
"""
)

LUA_LANDING = (
    LUA_COMMON
    + """
request = function()
  local id = fresh()
  return wrk.format("GET", "/lp/demo?pid=tiktokweb_int&c=bench&ttclid=E.C.P." .. id,
    {["User-Agent"] = ua})
end
"""
)

LUA_INSTALL = (
    LUA_COMMON
    + """
request = function()
  local id = fresh()
  local ip = string.format("198.51.%d.%d", math.random(0, 255), math.random(1, 254))
  local body = '{"app_key":"demo","platform":"android","app_instance_id":"' .. id
    .. '","ip":"' .. ip .. '","install_time":' .. os.time()
    .. ',"device_model":"Pixel 8","os_version":"15","language":"en-US"}'
  return wrk.format("POST", "/api/v1/installs",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer __SDK_KEY__"}, body)
end
"""
)

LUA_GET = """
request = function()
  return wrk.format("GET", "__PATH__")
end
"""


@dataclass(frozen=True)
class Route:
    name: str
    script: str
    ok: str  # the answer that acknowledges: "202", "302", "200"
    table: str | None  # where an acknowledged request leaves a row
    goal: float | None  # ratio to the yardstick
    p99_goal_ms: float | None = None


ROUTES = (
    Route("POST /i/{app_key}", LUA_IMPRESSION, "202", "impressions", 0.7, 20.0),
    Route("GET /c/{app_key}", LUA_CLICK, "302", "clicks", 0.6, 20.0),
    Route("GET /lp/{slug}", LUA_LANDING, "200", None, 0.4),
    Route("POST /api/v1/installs", LUA_INSTALL, "200", "installs", 0.3),
    Route("GET /healthz", LUA_GET.replace("__PATH__", "/healthz"), "200", None, None),
)


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    bad: int  # answers other than 2xx/3xx, and socket errors
    rss_before_mb: float | None = None
    rss_after_mb: float | None = None
    stored: int | None = None
    cpu_ms: float | None = None  # server CPU per answered request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unreadable wrk duration {text!r}")
    value, unit = float(match[1]), match[2]
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def parse_wrk(name: str, output: str) -> Result:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])  # type: ignore[index]
    requests = int(re.search(r"(\d+) requests in", output)[1])  # type: ignore[index]
    percentiles = dict(re.findall(r"^\s*(50|99)(?:\.0+)?%\s+(\S+)\s*$", output, re.MULTILINE))
    if "50" not in percentiles or "99" not in percentiles:
        raise ValueError(f"no latency percentiles in wrk's output:\n{output}")
    bad = 0
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        bad += int(match[1])
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        bad += sum(int(g) for g in match.groups())
    return Result(
        name,
        rps,
        _duration_ms(percentiles["50"]),
        _duration_ms(percentiles["99"]),
        requests,
        bad,
    )


def wrk(url: str, script: str, seconds: int, connections: int, scripts: Path) -> str:
    path = scripts / f"s{abs(hash(script))}.lua"
    path.write_text(script)
    completed = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(path),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    )
    return completed.stdout


def wait_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited at start:\n{log.read_text()}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not answer within {START_TIMEOUT} s:\n{log.read_text()}")


@contextlib.contextmanager
def server(
    argv: list[str], port: int, log: Path, env: dict[str, str] | None = None, probe: str = "/"
) -> subprocess.Popen[bytes]:  # type: ignore[misc]
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_up(f"http://127.0.0.1:{port}{probe}", process, log)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def bare_argv(stack: str, port: int) -> list[str]:
    loop, http = ("asyncio", "h11") if stack == "h11" else ("uvloop", "httptools")
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "benchmarks.bare_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        loop,
        "--http",
        http,
        "--no-access-log",
        "--log-level",
        "warning",
    ]


BARE_POST = (
    'request = function() return wrk.format("POST", "/", '
    '{["Content-Type"] = "text/plain"}, \'{"pvid":"x"}\') end\n'
)


@dataclass
class Target:
    """A running server wrk is pointed at."""

    name: str
    url: str
    pid: int

    def measure(
        self,
        name: str,
        script: str,
        seconds: int,
        connections: int,
        dirs: Path,
        warm: Callable[[], object] = lambda: None,
    ) -> Result:
        """A warm-up, then `warm()`, then the measured run."""
        wrk(self.url, script, WARMUP_SECONDS, connections, dirs)
        warm()
        cpu = process_cpu(self.pid)
        result = parse_wrk(name, wrk(self.url, script, seconds, connections, dirs))
        cpu_after = process_cpu(self.pid)
        if cpu is not None and cpu_after is not None and result.requests:
            result.cpu_ms = (cpu_after - cpu) * 1000 / result.requests
        return result


async def seed(db: Path) -> str:
    """The demo app, page and integration; answers the demo's sdk_key."""
    from app.__main__ import seed_demo
    from app.store.sqlite import SqliteStore

    store = await SqliteStore.open(str(db))
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # its "demo app ready" line
            await seed_demo(store)
        app = await store.configs.get_app("demo")
        assert app is not None
        return app.sdk_key
    finally:
        await store.close()


def count_rows(db: Path, table: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        (count,) = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
        return int(count)
    finally:
        conn.close()


@dataclass
class Row:
    """One Gangway route with the two bare runs measured right around it."""

    result: Result
    yard: Result
    fast: Result


def run_all(directory: Path, seconds: int, connections: int) -> list[Row]:
    """Three servers at once; for each route the yardstick just before it and the fast bare
    app just after, so a change in the machine's load between routes moves all three."""
    db = directory / "ingest.db"
    log = directory / "servers.log"
    sdk_key = asyncio.run(seed(db))
    env = {
        "GANGWAY_DB": str(db),
        "GANGWAY_SECRET_KEY": "benchmark-secret",
        "GANGWAY_TIKTOK_API_URL": "http://127.0.0.1:9",
        "GANGWAY_LOG_LEVEL": "warning",
    }
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        targets: dict[str, Target] = {}
        for name in ("h11", "fast", "gangway"):
            port = free_port()
            if name == "gangway":
                argv = [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1"]
                argv += ["--port", str(port)]
                process = stack.enter_context(server(argv, port, log, env, probe="/healthz"))
            else:
                process = stack.enter_context(server(bare_argv(name, port), port, log))
            targets[name] = Target(name, f"http://127.0.0.1:{port}", process.pid)
        gw = targets["gangway"]
        for n, route in enumerate(ROUTES, 1):
            print(f"[{n}/{len(ROUTES)}] {route.name}", file=sys.stderr, flush=True)
            yard = targets["h11"].measure(
                "bare Starlette (asyncio + h11)", BARE_POST, seconds, connections, directory
            )
            script = route.script.replace("__UA__", UA).replace("__SDK_KEY__", sdk_key)
            before: dict[str, float | None] = {}

            def warm(
                table: str | None = route.table, before: dict[str, float | None] = before
            ) -> None:
                before["rows"] = count_rows(db, table) if table else 0
                before["rss"] = rss_mb(gw.pid)

            result = gw.measure(route.name, script, seconds, connections, directory, warm)
            result.rss_before_mb, result.rss_after_mb = before["rss"], rss_mb(gw.pid)
            if route.table:
                # At least one row per acknowledged answer of the measured run.
                result.stored = count_rows(db, route.table) - int(before["rows"] or 0)
            fast = targets["fast"].measure(
                "bare Starlette (uvloop + httptools)", BARE_POST, seconds, connections, directory
            )
            rows.append(Row(result, yard, fast))
    return rows


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def report(rows: Sequence[Row]) -> tuple[list[str], list[str]]:
    lines = [
        f"cores: {os.cpu_count()} (nproc {len(os.sched_getaffinity(0))}); "
        f"wrk -t1 -c32, python {sys.version.split()[0]}; ratios against the bare runs measured "
        "just before (yard) and after (fast) each route",
        f"{'route':<34} {'rps':>7} {'p50 ms':>7} {'p99 ms':>7} {'/yard':>6} {'/fast':>6} "
        f"{'cpu ms':>7} {'cpu/yd':>7} {'RSS MB':>10} {'acked':>7} {'stored':>7}",
    ]
    for label, runs in (
        ("yardstick: bare asyncio+h11", [r.yard for r in rows]),
        ("bare uvloop+httptools", [r.fast for r in rows]),
    ):
        rps = [r.rps for r in runs]
        cpu = _mean([r.cpu_ms for r in runs if r.cpu_ms is not None])
        lines.append(
            f"{label:<34} {_mean(rps):7.0f} {_mean([r.p50_ms for r in runs]):7.2f} "
            f"{_mean([r.p99_ms for r in runs]):7.2f} {'':>6} {'':>6} {cpu:7.3f}"
            f"   (rps {min(rps):.0f}-{max(rps):.0f} over the {len(runs)} runs)"
        )
    failures: list[str] = []
    routes = {route.name: route for route in ROUTES}
    for row in rows:
        r = row.result
        rss = (
            f"{r.rss_before_mb:.0f}->{r.rss_after_mb:.0f}"
            if r.rss_before_mb is not None and r.rss_after_mb is not None
            else "-"
        )
        acked = r.requests - r.bad
        ratio = r.rps / row.yard.rps
        cpu = f"{r.cpu_ms:7.3f}" if r.cpu_ms is not None else f"{'-':>7}"
        cpu_ratio = (
            f"{row.yard.cpu_ms / r.cpu_ms:7.2f}" if r.cpu_ms and row.yard.cpu_ms else f"{'-':>7}"
        )
        lines.append(
            f"{'Gangway ' + r.name:<34} {r.rps:7.0f} {r.p50_ms:7.2f} {r.p99_ms:7.2f} "
            f"{ratio:6.2f} {r.rps / row.fast.rps:6.2f} {cpu} {cpu_ratio} {rss:>10} {acked:7d} "
            f"{'-' if r.stored is None else r.stored:>7}"
        )
        route = routes[r.name]
        if r.bad:
            failures.append(f"{r.name}: {r.bad} answers were errors")
        if r.stored is not None and r.stored < acked:
            failures.append(f"{r.name}: {acked - r.stored} acknowledged rows LOST")
        if route.goal is not None and ratio < route.goal:
            failures.append(f"{r.name}: {ratio:.2f} of the yardstick < {route.goal}")
        if route.p99_goal_ms is not None and r.p99_ms >= route.p99_goal_ms:
            failures.append(f"{r.name}: p99 {r.p99_ms:.1f} ms >= {route.p99_goal_ms} ms")
    lines.append(
        "cpu ms: server CPU per answered request; cpu/yd: the yardstick's CPU per request over "
        "Gangway's (what the ratio would be with a core to itself)"
    )
    return lines, failures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest", description=__doc__)
    parser.add_argument("--seconds", type=int, default=5, help="measured seconds per route")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--dir", type=Path, default=ROOT / "tmp")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 1
    args.dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ingest-", dir=args.dir) as tmp:
        try:
            rows = run_all(Path(tmp), args.seconds, args.connections)
        except subprocess.CalledProcessError as exc:
            print(f"wrk failed: {exc.stderr}", file=sys.stderr)
            return 1
    lines, failures = report(rows)
    print("\n".join(lines))
    for failure in failures:
        print(f"MISSED: {failure}")
    if not failures:
        print("all ingest goals met, nothing acknowledged lost")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
