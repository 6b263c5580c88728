"""Background work: the one home of everything that runs beside the requests.

The server's lifespan builds a `Jobs` of every job (the postback outbox today; retention, cost
pulls, audience syncs and rollup upkeep as they land), starts them after the store opens and
stops them, in reverse order, before it closes. A job is any object with `start()` and
`stop()`; each is made from explicit arguments (a store, a clock, an HTTP client, settings), so
a test drives it without the web app.

`Periodic` is the shape of the scheduled ones: a function run every `period` seconds. A run that
raises is logged and the next one comes at its time; a slow run delays the next rather than
overlapping it. Given the store's job leases (`Store.leases`), a periodic job runs once per
period across every node on one database: at each tick a node runs it only if it takes the
job's lease for the period, so on several nodes one of them runs it and the others skip (a node
that dies holding it leaves it to expire, and another runs the next period). On SQLite one
process owns the file and every lease is granted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Protocol

from app.clock import Clock, system_clock
from app.ids import new_id
from app.store.interfaces import JobLeaseStore

log = logging.getLogger("gangway.jobs")


class Job(Protocol):
    name: str

    def start(self) -> None:
        """Begin in the background (on the running event loop); return at once."""
        ...

    async def stop(self) -> None:
        """End at once; what was cut off is picked up at the next start."""
        ...


class Periodic:
    """Runs `run()` every `period` seconds, the first time `delay` seconds after start."""

    def __init__(
        self,
        name: str,
        period: float,
        run: Callable[[], Awaitable[object]],
        *,
        delay: float = 0.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        leases: JobLeaseStore | None = None,
        clock: Clock = system_clock,
        holder: str | None = None,
    ) -> None:
        if period <= 0:
            raise ValueError("a periodic job needs a period above zero")
        self.name = name
        self.period = period
        self.runs = 0
        self.failures = 0
        # Ticks at which another node held the lease, so this one did not run.
        self.skipped = 0
        self._leases = leases
        self._clock = clock
        self.holder = holder or new_id()
        self._run = run
        self._delay = delay
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"gangway-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        await self._sleep(self._delay)
        while True:
            try:
                if await self._take_lease():
                    await self._run()
                    self.runs += 1
                else:
                    self.skipped += 1
            except Exception:  # one bad run must not end the schedule
                self.failures += 1
                self.runs += 1
                log.exception("job %s failed; next run in %.0f s", self.name, self.period)
            await self._sleep(self.period)

    async def _take_lease(self) -> bool:
        if self._leases is None:
            return True
        # One period from now: every other node's tick within it finds the lease held, and this
        # node's own next tick (a period after the run ends) finds it expired, so two runs
        # anywhere in the cluster are at least a period apart.
        now = self._clock()
        return await self._leases.acquire(self.name, self.holder, now, self.period)


class Jobs:
    """Every background job of one process, started and stopped together."""

    def __init__(self, jobs: Iterable[Job] = ()) -> None:
        self._jobs = list(jobs)
        self._started: list[Job] = []

    @property
    def names(self) -> list[str]:
        return [job.name for job in self._jobs]

    def start(self) -> None:
        for job in self._jobs:
            job.start()
            self._started.append(job)
            log.debug("job %s started", job.name)

    async def stop(self) -> None:
        while self._started:
            job = self._started.pop()
            try:
                await job.stop()
            except Exception:  # the others must still stop
                log.exception("job %s did not stop cleanly", job.name)

    async def __aenter__(self) -> Jobs:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
