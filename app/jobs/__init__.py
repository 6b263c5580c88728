"""Background work: the one home of everything that runs beside the requests.

The server's lifespan builds a `Jobs` of every job (the postback outbox today; retention, cost
pulls, audience syncs and rollup upkeep as they land), starts them after the store opens and
stops them, in reverse order, before it closes. A job is any object with `start()` and
`stop()`; each is made from explicit arguments (a store, a clock, an HTTP client, settings), so
a test drives it without the web app.

`Periodic` is the shape of the scheduled ones: a function run every `period` seconds. A run that
raises is logged and the next one comes at its time; a slow run delays the next rather than
overlapping it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Protocol

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
    ) -> None:
        if period <= 0:
            raise ValueError("a periodic job needs a period above zero")
        self.name = name
        self.period = period
        self.runs = 0
        self.failures = 0
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
                await self._run()
            except Exception:  # one bad run must not end the schedule
                self.failures += 1
                log.exception("job %s failed; next run in %.0f s", self.name, self.period)
            self.runs += 1
            await self._sleep(self.period)


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
