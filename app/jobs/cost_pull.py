"""The TikTok Ads cost pull (spec tiktok-ads.md section 2): scheduled in the server, asked for
by the owner API, or run by `python -m app cost pull`.

One pull of an app: refresh the advertisers' currency and time zone (`advertiser/info/`), then
for each advertiser each window of at most 30 days (`app.tiktok_ads.cost.plan_windows`), read
every page of the report, map the rows to cost rows and replace the window's rows in one
transaction (`CostStore.replace_cost`). A window TikTok finds too large (40067) is halved and
each half pulled, down to one day. A pull that fails half way keeps the windows it finished:
each was replaced whole, and the next pull covers the rest again.

Errors: the client retries what is retryable (`app.tiktok_ads.client`); what is left ends the
pull with TikTok's message in the pull log. 40104/40105 also set the connection to
`needs_reauth`: scheduled pulls skip it, and asked-for ones are refused, until the owner
connects again. Each pull is recorded when it starts and when it ends (`TikTokAdsStore`).

The schedule: every `cost_pull_check_minutes` the server pulls each connected app whose last
pull started `pull_every_hours` ago or more; one pull per app at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import httpx

from app.clock import Clock
from app.configs import DEFAULT_REPORT_CURRENCY
from app.ids import new_id
from app.jobs import Periodic
from app.reports.cost import TIKTOK_API, CostEntry, CostScope, Replaced
from app.reports.overview import money
from app.settings import Settings
from app.store.interfaces import Store
from app.tiktok_ads import cost as plan
from app.tiktok_ads.client import (
    MarketingClient,
    MarketingError,
    NeedsReauth,
    QueryTooLarge,
    RateLimiter,
    Sleep,
    limiter_for,
)
from app.tiktok_ads.connection import (
    CONNECTED,
    NEEDS_REAUTH,
    PARTNER,
    AdvertiserInfo,
    ConnectionState,
    CostSettings,
    PullRecord,
    advertiser_info,
)

log = logging.getLogger("gangway.cost_pull")

Progress = Callable[[int, int], None]
# A report longer than this many pages is taken for a paging loop, not data (10 million rows).
MAX_PAGES = 10_000
# Report pages asked for ahead of the one being read.
PAGES_AHEAD = 2
HOUR = 3600.0
# The first scheduled look waits a little after start-up, so a restart loop does not pull.
FIRST_CHECK_DELAY = 60.0


class PullRefused(Exception):
    """The pull did not start: no connection, a connection needing the owner, one running."""


@dataclass
class _Tally:
    rows: int = 0
    changed: int = 0
    amount: int = 0
    problems: int = 0
    first_problem: str | None = None


class CostPuller:
    """Pulls cost; also the server's job (`start`/`stop`) when `scheduled`."""

    name = "cost-pull"

    def __init__(
        self,
        store: Store,
        http: httpx.AsyncClient,
        clock: Clock,
        settings: Settings,
        *,
        scheduled: bool = True,
        sleep: Sleep = asyncio.sleep,
        rand: random.Random | None = None,
        limiters: Callable[[str], RateLimiter] = limiter_for,
        schedule_sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._store = store
        self._limiters = limiters
        self._http = http
        self._clock = clock
        self._settings = settings
        self._sleep = sleep
        self._rand = rand
        self._running: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.schedule = (
            Periodic(
                self.name,
                settings.cost_pull_check_minutes * 60,
                self.pull_due,
                delay=FIRST_CHECK_DELAY,
                sleep=schedule_sleep,
                # One node a period looks for due pulls: `_running` guards one process only.
                leases=store.leases,
                clock=clock,
            )
            if scheduled
            else None
        )

    # -- the job -------------------------------------------------------------------------------

    def start(self) -> None:
        if self.schedule is not None:
            self.schedule.start()

    async def stop(self) -> None:
        if self.schedule is not None:
            await self.schedule.stop()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def request(self, app_key: str, days: int | None) -> bool:
        """Start a pull in the background (the owner API's 202); False if one is running."""
        if app_key in self._running:
            return False
        task = asyncio.create_task(self._logged(app_key, days, "api"), name=f"cost-pull-{app_key}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _logged(self, app_key: str, days: int | None, trigger: str) -> None:
        try:
            await self.pull(app_key, days=days, trigger=trigger)
        except PullRefused as exc:
            log.info("cost pull of %s not started: %s", app_key, exc)
        except Exception:  # the pull log says it failed; one app's bug must not stop the rest
            log.exception("cost pull of %s failed", app_key)

    async def pull_due(self) -> int:
        """Pull every app whose connection is due; answers how many were pulled."""
        now = self._clock()
        pulled = 0
        for app in await self._store.configs.list_apps():
            integration = await self._store.configs.get_integration(app.app_key, PARTNER)
            if integration is None or not integration.access_token:
                continue
            settings = CostSettings.of(integration.config)
            if not settings.enabled or app.app_key in self._running:
                continue
            state = await self._store.tiktok_ads.connection_state(app.app_key)
            if state is not None and state.state == NEEDS_REAUTH:
                continue
            last = await self._store.tiktok_ads.recent_pulls(app.app_key, 1)
            if last and now - last[0].started_at < settings.pull_every_hours * HOUR:
                continue
            await self._logged(app.app_key, None, "schedule")
            pulled += 1
        return pulled

    # -- one pull ------------------------------------------------------------------------------

    def client(self, app_key: str, token: str) -> MarketingClient:
        return MarketingClient(
            self._http,
            self._settings.tiktok_api_url,
            token,
            limiter=self._limiters(app_key),
            sleep=self._sleep,
            rand=self._rand,
            app_key=app_key,
        )

    async def pull(
        self,
        app_key: str,
        *,
        days: int | None = None,
        trigger: str = "cli",
        progress: Progress | None = None,
    ) -> PullRecord:
        """Pull the last `days` days (default: the connection's `backfill_days`)."""
        # Claimed before the first await: two requests at once must not both start.
        if app_key in self._running:
            raise PullRefused(f"a cost pull of {app_key!r} is running")
        self._running.add(app_key)
        try:
            record = await self._pull_claimed(app_key, days, trigger, progress)
        finally:
            self._running.discard(app_key)
        log.info(
            "cost pull of %s %s..%s: %d rows, %d changed, spend %s %s%s",
            app_key,
            record.start_date,
            record.end_date,
            record.rows,
            record.changed,
            record.spend,
            record.currency,
            f"; error: {record.error}" if record.error else "",
        )
        return record

    async def _pull_claimed(
        self, app_key: str, days: int | None, trigger: str, progress: Progress | None
    ) -> PullRecord:
        store = self._store
        app = await store.configs.get_app(app_key)
        integration = await store.configs.get_integration(app_key, PARTNER)
        if app is None or integration is None or not integration.access_token:
            raise PullRefused(f"app {app_key!r} has no TikTok Ads connection with a token")
        state = await store.tiktok_ads.connection_state(app_key)
        if state is not None and state.state == NEEDS_REAUTH:
            raise PullRefused(
                f"the TikTok Ads connection of {app_key!r} needs re-authorising: {state.message}"
            )
        settings = CostSettings.of(integration.config)
        span = days or settings.backfill_days
        report_currency = app.config.get("report_currency") or DEFAULT_REPORT_CURRENCY
        record = PullRecord(
            id=new_id(),
            app_key=app_key,
            trigger=trigger,
            started_at=self._clock(),
            currency=report_currency,
        )
        await store.tiktok_ads.record_pull(record)
        client = self.client(app_key, integration.access_token)
        try:
            record = await self._pull(
                client, record, integration.config, settings, span, report_currency, progress
            )
        except NeedsReauth as exc:
            await self._set_state(app_key, NEEDS_REAUTH, exc.message, state)
            record = replace(record, error=f"TikTok refused the token: {exc.message}")
        except MarketingError as exc:
            record = replace(record, error=str(exc))
        except Exception as exc:
            # A bug or a full disk: the log says the pull ended, the traceback goes to the log.
            failed = replace(
                record,
                error=f"internal error ({type(exc).__name__})",
                requests=client.requests_sent,
                finished_at=self._clock(),
            )
            await store.tiktok_ads.record_pull(failed)
            raise
        record = replace(record, requests=client.requests_sent, finished_at=self._clock())
        await store.tiktok_ads.record_pull(record)
        return record

    async def _set_state(
        self,
        app_key: str,
        state: str,
        message: str | None,
        before: ConnectionState | None,
        advertisers: tuple[AdvertiserInfo, ...] | None = None,
    ) -> None:
        await self._store.tiktok_ads.set_connection_state(
            ConnectionState(
                app_key=app_key,
                state=state,
                message=message,
                advertisers=advertisers
                if advertisers is not None
                else (before.advertisers if before else ()),
                updated_at=self._clock(),
            )
        )

    async def _pull(
        self,
        client: MarketingClient,
        record: PullRecord,
        config: dict[str, Any],
        settings: CostSettings,
        span: int,
        report_currency: str,
        progress: Progress | None,
    ) -> PullRecord:
        store = self._store
        app_key = record.app_key
        wanted = [str(a) for a in config.get("advertiser_ids", [])]
        items = await client.advertiser_info(wanted)
        infos = {i.advertiser_id: i for i in (advertiser_info(item) for item in items) if i}
        missing = [a for a in wanted if a not in infos]
        advertisers = tuple(infos[a] for a in wanted if a in infos)
        await self._set_state(app_key, CONNECTED, None, None, advertisers)
        now = self._clock()
        plans = [(a, plan.plan_windows(a.today(now), span)) for a in advertisers]
        total = sum(len(windows) for _a, windows in plans)
        done = 0
        if progress:
            progress(done, total)
        rates = await store.cost.rates(app_key)
        tally = _Tally()
        starts = [w[0].start for _a, w in plans if w]
        ends = [w[-1].end for _a, w in plans if w]
        record = replace(
            record,
            start_date=min(starts) if starts else None,
            end_date=max(ends) if ends else None,
        )
        # A window's rows are written while the next window is read: the store's writer works
        # in its own thread, so a backfill costs the reading, not the reading plus the writing.
        writing: asyncio.Task[tuple[Replaced, plan.Mapped]] | None = None

        async def write(scope: CostScope, mapped: plan.Mapped) -> tuple[Replaced, plan.Mapped]:
            return await store.cost.replace_cost(scope, mapped.entries, self._clock()), mapped

        async def settle() -> None:
            nonlocal writing, done
            if writing is None:
                return
            replaced, mapped = await writing
            writing = None
            tally.rows += replaced.rows
            tally.changed += replaced.changed
            tally.amount += sum(e.amount for e in mapped.entries)
            if mapped.problems:
                tally.problems += len(mapped.problems)
                tally.first_problem = tally.first_problem or mapped.problems[0]
            done += 1
            if progress:
                progress(done, total)

        try:
            for advertiser, windows in plans:
                queue = deque(windows)
                while queue:
                    window = queue.popleft()
                    try:
                        mapped = await self._report(
                            app_key, client, advertiser, window, settings, report_currency, rates
                        )
                    except QueryTooLarge:
                        if window.days < 2:
                            raise
                        # Halve and pull each half in its place; the bar gains the extra step.
                        first, second = window.halves()
                        queue.appendleft(second)
                        queue.appendleft(first)
                        total += 1
                        log.info("%s: window %s too large for TikTok, halved", app_key, window)
                        if progress:
                            progress(done, total)
                        continue
                    scope = CostScope(
                        app_key=app_key,
                        source=TIKTOK_API,
                        account=advertiser.advertiser_id,
                        start=window.start,
                        end=window.end,
                        campaign_ids=settings.campaign_ids,
                    )
                    await settle()
                    writing = asyncio.create_task(write(scope, mapped))
            await settle()
        finally:
            if writing is not None:
                # The pull failed while a window was being written: that write still completes
                # (it is one transaction either way); wait for it so the store is not closed
                # under it.
                with contextlib.suppress(Exception):
                    await writing
        error = None
        if missing:
            error = f"TikTok knows no advertiser {', '.join(missing)} for this token"
        if tally.problems:
            note = f"{tally.problems} rows not stored: {tally.first_problem}"
            error = f"{error}; {note}" if error else note
        # Counted once over the pull's days: each window's replace counts the uploads its days
        # hold, so two advertisers' windows over the same days would count them twice.
        superseded = (
            await store.cost.count_superseded(app_key, record.start_date, record.end_date)
            if record.start_date and record.end_date
            else 0
        )
        return replace(
            record,
            rows=tally.rows,
            changed=tally.changed,
            spend=money(tally.amount),
            superseded=superseded,
            error=error,
        )

    async def _report(
        self,
        app_key: str,
        client: MarketingClient,
        advertiser: AdvertiserInfo,
        window: plan.Window,
        settings: CostSettings,
        report_currency: str,
        rates: Mapping[tuple[dt.date, str], Decimal],
    ) -> plan.Mapped:
        """The cost rows of one window: every page, until `page >= total_page`, each mapped as
        it arrives (a window of 10,000 ads is 300,000 rows: TikTok's JSON is not kept)."""
        entries: list[CostEntry] = []
        problems: list[str] = []
        read_rows = 0
        expected = 0

        async def fetch(page: int) -> plan.Page:
            data = await client.report_page(
                plan.report_params(
                    advertiser.advertiser_id, window, page, by_country=settings.by_country
                )
            )
            return plan.read_page(data)

        # Pages are asked for ahead (at most PAGES_AHEAD in flight, the limiter still spacing
        # their starts): the rate limit, not TikTok's answer time, is then what a backfill
        # waits on, and TikTok prepares the next pages while this one is mapped.
        ahead: deque[asyncio.Task[plan.Page]] = deque([asyncio.create_task(fetch(1))])
        asked = 1
        total_page: int | None = None
        # Each ad's names and IDs repeat on every day of the window: one string object each.
        strings: dict[str, str] = {}
        try:
            while ahead:
                read = await ahead.popleft()
                if total_page is None:
                    total_page = min(read.total_page, MAX_PAGES)
                while asked < total_page and len(ahead) < PAGES_AHEAD:
                    asked += 1
                    ahead.append(asyncio.create_task(fetch(asked)))
                read_rows += len(read.rows)
                expected = read.total_number
                mapped = plan.map_rows(
                    read.rows,
                    app_key=app_key,
                    advertiser=advertiser,
                    report_currency=report_currency,
                    rates=rates,
                    unified=self._settings.unified_pids,
                    campaign_ids=settings.campaign_ids,
                    strings=strings,
                )
                entries.extend(mapped.entries)
                problems.extend(mapped.problems)
        finally:
            for task in ahead:
                task.cancel()
            for task in ahead:
                with contextlib.suppress(BaseException):
                    await task
        if expected and read_rows != expected:
            # TikTok revised the window while it was being paged: the next pull reads it again.
            log.warning(
                "advertiser %s window %s: %d rows read, TikTok counted %d",
                advertiser.advertiser_id,
                window,
                read_rows,
                expected,
            )
        return plan.Mapped(entries, problems)
