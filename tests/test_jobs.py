"""The home of background work: jobs start and stop together, a periodic job keeps its schedule
through a failing run, and the server's lifespan runs the outbox worker (or, asked, nothing)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from app.jobs import Jobs, Periodic
from app.server import create_app
from tests.aio import run_async
from tests.fixtures import make_settings


class Recorder:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def start(self) -> None:
        self.log.append(f"start {self.name}")

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")
        if self.name == "broken":
            raise RuntimeError("does not stop cleanly")


def test_jobs_start_in_order_and_stop_in_reverse_even_when_one_fails() -> None:
    log: list[str] = []

    async def scenario() -> None:
        jobs = Jobs([Recorder("a", log), Recorder("broken", log), Recorder("c", log)])
        assert jobs.names == ["a", "broken", "c"]
        async with jobs:
            log.append("serving")

    run_async(scenario())
    assert log == [
        "start a",
        "start broken",
        "start c",
        "serving",
        "stop c",
        "stop broken",
        "stop a",
    ]


def test_a_periodic_job_runs_on_its_period_and_survives_a_failing_run() -> None:
    runs: list[int] = []
    sleeps: list[float] = []

    async def run_once() -> None:
        runs.append(len(runs))
        if len(runs) == 2:
            raise ValueError("one bad run")

    async def scenario() -> Periodic:
        gate = asyncio.Event()

        async def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            if len(runs) >= 4:
                gate.set()
                await asyncio.Event().wait()  # parked until stopped
            await asyncio.sleep(0)

        job = Periodic("upkeep", 3600.0, run_once, delay=5.0, sleep=sleep)
        job.start()
        await asyncio.wait_for(gate.wait(), 5)
        await job.stop()
        return job

    job = run_async(scenario())
    assert runs == [0, 1, 2, 3]
    assert (job.runs, job.failures) == (4, 1)
    assert sleeps == [5.0, 3600.0, 3600.0, 3600.0, 3600.0]


def test_a_periodic_job_needs_a_period() -> None:
    async def nothing() -> None:
        return None

    with pytest.raises(ValueError, match="period"):
        Periodic("never", 0, nothing)


def test_the_lifespan_runs_the_outbox_and_can_leave_it_to_another_process(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path)
    for run_jobs, names in (
        (True, ["outbox", "store-upkeep", "ldu-mask", "retention", "audiences", "cost-pull"]),
        (False, []),
    ):
        with TestClient(create_app(settings, run_jobs=run_jobs)) as client:
            assert client.app_state["jobs"].names == names
            assert client.get("/healthz").status_code == 200


def test_a_periodic_job_on_two_nodes_runs_once_per_period_and_survives_its_holder(
    pg_database: str,
) -> None:
    """Two nodes' copies of one job on one PostgreSQL database, ticking in turn each period:
    one runs, the other skips; when the running node is gone, the other takes over."""
    from app.store.postgres import PostgresStore

    now = [1_790_000_000.0]
    ran: list[str] = []

    async def scenario() -> tuple[Periodic, Periodic]:
        store = await PostgresStore.open(pg_database)
        ticks = {"a": asyncio.Queue[None](), "b": asyncio.Queue[None]()}

        def make(node: str) -> Periodic:
            async def sleep(seconds: float) -> None:
                await ticks[node].get()

            async def work() -> None:
                ran.append(node)

            return Periodic(
                "retention", 60.0, work, sleep=sleep, leases=store.leases,
                clock=lambda: now[0], holder=node,
            )  # fmt: skip

        jobs = {node: make(node) for node in ticks}

        async def tick(node: str) -> None:
            job = jobs[node]
            before = job.runs + job.skipped
            ticks[node].put_nowait(None)
            for _ in range(500):
                if job.runs + job.skipped > before:
                    return
                await asyncio.sleep(0.01)
            raise AssertionError(f"node {node} did not tick")

        try:
            for job in jobs.values():
                job.start()
            for _ in range(4):
                await tick("a")
                await tick("b")
                now[0] += 60.0
            await jobs["a"].stop()  # node A is gone
            for _ in range(2):
                await tick("b")
                now[0] += 60.0
            await jobs["b"].stop()
            return jobs["a"], jobs["b"]
        finally:
            await store.close()

    a, b = run_async(scenario())
    assert ran == ["a"] * 4 + ["b"] * 2
    assert (a.runs, a.skipped, b.runs, b.skipped) == (4, 0, 2, 4)


def test_the_cost_pull_and_audience_schedules_take_the_clusters_job_lease(
    tmp_path: Path, pg_database: str
) -> None:
    """While another node holds a job's lease for the period, this node's cost-pull and
    audiences ticks skip; once it has expired, they run (and hold the lease themselves)."""
    import httpx

    from app.jobs.audiences import AudienceApi, audiences_job
    from app.jobs.cost_pull import CostPuller
    from app.store.postgres import PostgresStore

    now = [1_790_000_000.0]
    settings = make_settings(tmp_path, db=pg_database)

    async def scenario() -> list[tuple[int, int]]:
        store = await PostgresStore.open(pg_database)
        ticks: asyncio.Queue[None] = asyncio.Queue()

        async def sleep(seconds: float) -> None:
            await ticks.get()

        def no_api(app_key: str, token: str) -> AudienceApi:
            raise AssertionError("no audience to sync")

        try:
            for name in ("cost-pull", "audiences"):
                assert await store.leases.acquire(name, "other-node", now[0], 3600.0)
            async with httpx.AsyncClient() as http:
                puller = CostPuller(store, http, lambda: now[0], settings, schedule_sleep=sleep)
                audiences = audiences_job(
                    store,
                    settings,
                    lambda: now[0],
                    no_api,
                    sleep=sleep,
                )
                assert puller.schedule is not None
                jobs = [puller.schedule, audiences]
                counts: list[tuple[int, int]] = []
                async with Jobs([puller, audiences]):
                    for turn in range(2):
                        for _ in jobs:
                            ticks.put_nowait(None)
                        for _ in range(500):
                            if all(j.runs + j.skipped > turn for j in jobs):
                                break
                            await asyncio.sleep(0.01)
                        counts += [(j.runs, j.skipped) for j in jobs]
                        now[0] += 3600.0
                return counts
        finally:
            await store.close()

    assert run_async(scenario()) == [(0, 1), (0, 1), (1, 1), (1, 1)]
