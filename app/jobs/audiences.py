"""Audience syncs (tiktok-ads.md section 3): the daily run in the server and `python -m app
audiences sync`.

Each sync stages the members the rule wants now, then sends TikTok only the difference with
what TikTok confirmed: the first sync creates the audience (from 1,000 members), later ones
upload one file of new members with `action: APPEND` and one of departed members with
`action: REMOVE` (never without `action`: TikTok's default, REPLACE, would wipe the audience).
Files hold at most `file_lines` hashes; each file is confirmed on its own, so a sync cut off
half way (an error, a hang, a restart) resumes at the next run from what TikTok confirmed,
sending nothing twice and losing no one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import httpx

from app.audiences import (
    APPEND,
    FAILED,
    MIN_MEMBERS,
    REMOVE,
    Audience,
    member_file,
    member_hashes,
    member_query,
    plan_sync,
)
from app.clock import Clock
from app.jobs import Periodic
from app.reports.privacy import parse_retention, retention_cutoff
from app.settings import Settings
from app.store.interfaces import Store
from app.tiktok_ads.client import MarketingError, NeedsReauth
from app.tiktok_ads.connection import NEEDS_REAUTH, PARTNER, ConnectionState

log = logging.getLogger("gangway.audiences")

DAY_SECONDS = 86_400.0
# The first run waits a little after start-up, so a restart loop does not sync every time.
FIRST_RUN_DELAY = 600.0
# Hashes per customer file: 33 bytes a line, so about 3 MB, well under TikTok's file limit,
# and a failure costs at most one file's worth of re-sending.
FILE_LINES = 100_000
READ_BATCH = 5_000
# How long a sync holds its audience: a process that died mid-sync frees it after this.
SYNC_LEASE = 3600.0
BUSY = "another sync of this audience is running"
# Progress: (audience name, what is being done, how many so far, out of how many: None while
# reading the installs, whose number is known only at the end).
Progress = Callable[[str, str, int, int | None], None]


class AudienceApi(Protocol):
    """TikTok's customer file endpoints for one advertiser token (`MarketingClient`). Each
    call raises `MarketingError` unless TikTok answered code 0."""

    async def upload_file(self, advertiser_id: str, calculate_type: str, content: bytes) -> str:
        """`dmp/custom_audience/file/upload/` with the file's MD5 as `file_signature`:
        answers the `file_path`."""
        ...

    async def create_audience(
        self, advertiser_id: str, name: str, calculate_type: str, file_paths: Sequence[str]
    ) -> str:
        """`dmp/custom_audience/create/`: answers the `custom_audience_id`."""
        ...

    async def update_audience(
        self, advertiser_id: str, custom_audience_id: str, file_paths: Sequence[str], action: str
    ) -> None:
        """`dmp/custom_audience/update/` with an explicit `action`."""
        ...


# Makes the API client of an app's connection: (app_key, access token) -> client.
ApiFactory = Callable[[str, str], AudienceApi]


@dataclass(frozen=True)
class SyncOutcome:
    app_key: str
    name: str
    state: str
    wanted: int
    created: bool
    appended: int
    removed: int
    error: str | None


def retention_cutoffs(settings: Settings, now: float) -> dict[str, float]:
    """Per media source, the time before which installs are past retention today."""
    as_of = datetime.fromtimestamp(now, UTC).date()
    return {s: retention_cutoff(as_of, n) for s, n in parse_retention(settings.retention).items()}


class _Sender:
    """Sends one audience's pending members, a file at a time, confirming each."""

    def __init__(
        self,
        store: Store,
        api: AudienceApi,
        audience: Audience,
        run: int,
        file_lines: int,
        progress: Progress | None,
    ) -> None:
        self.store = store
        self.api = api
        self.audience = audience
        self.rule = audience.rule
        self.run = run
        self.file_lines = file_lines
        self.progress = progress
        self.tiktok_id = audience.tiktok_audience_id
        self.sent = {APPEND: 0, REMOVE: 0}
        self.total = 0

    async def _upload(self, hashes: list[str]) -> str:
        return await self.api.upload_file(
            self.rule.advertiser_id, self.rule.calculate_type, member_file(hashes)
        )

    async def _page(self, action: str, after: str) -> list[str]:
        return await self.store.audiences.pending_members(
            self.audience.id, self.run, action, after=after, limit=self.file_lines
        )

    async def create(self) -> None:
        """Create the audience from the first files holding at least 1,000 members (TikTok
        refuses fewer); whatever is left is appended after."""
        hashes: list[str] = []
        paths: list[str] = []
        while len(hashes) < MIN_MEMBERS:
            page = await self._page(APPEND, hashes[-1] if hashes else "")
            if not page:
                break
            paths.append(await self._upload(page))
            hashes += page
        audience_id = await self.api.create_audience(
            self.rule.advertiser_id, self.audience.name, self.rule.calculate_type, paths
        )
        await self.store.audiences.confirm_sent(
            self.audience.id, APPEND, hashes, tiktok_audience_id=audience_id
        )
        self.tiktok_id = audience_id
        self.sent[APPEND] += len(hashes)
        self._report("sent")

    async def send(self, action: str) -> None:
        assert self.tiktok_id is not None
        after = ""
        while page := await self._page(action, after):
            path = await self._upload(page)
            await self.api.update_audience(self.rule.advertiser_id, self.tiktok_id, [path], action)
            await self.store.audiences.confirm_sent(self.audience.id, action, page)
            self.sent[action] += len(page)
            after = page[-1]
            self._report("sent")

    def _report(self, doing: str) -> None:
        if self.progress:
            done = self.sent[APPEND] + self.sent[REMOVE]
            self.progress(self.audience.name, doing, done, self.total)


async def sync_audience(
    store: Store,
    api: AudienceApi,
    audience: Audience,
    *,
    now: float,
    cutoffs: Mapping[str, float],
    file_lines: int = FILE_LINES,
    progress: Progress | None = None,
) -> SyncOutcome:
    """One audience's sync; an error ends it `failed` with the error, never raises (the next
    audience still syncs, and the next run resumes this one)."""
    run = await store.audiences.start_sync(audience.id, now, SYNC_LEASE)
    if run is None:
        # Nothing recorded: the audience is the other sync's.
        return SyncOutcome(
            audience.app_key,
            audience.name,
            audience.state,
            audience.member_count,
            False,
            0,
            0,
            BUSY,
        )
    staged = 0
    query = member_query(audience.app_key, audience.rule, now, cutoffs)
    async for batch in store.audiences.member_ids(query, batch=READ_BATCH):
        await store.audiences.stage_members(audience.id, run, member_hashes(batch))
        staged += len(batch)
        if progress:
            progress(audience.name, "installs read", staged, None)
    counts = await store.audiences.staged(audience.id, run)
    plan = plan_sync(audience.tiktok_audience_id is not None, counts)
    sender = _Sender(store, api, audience, run, file_lines, progress)
    sender.total = (counts.to_append if plan.create or plan.append else 0) + (
        counts.to_remove if plan.remove else 0
    )
    error: str | None = None
    try:
        if plan.create:
            await sender.create()
            await sender.send(APPEND)
        if plan.append:
            await sender.send(APPEND)
        if plan.remove:
            await sender.send(REMOVE)
    except NeedsReauth as exc:
        # As the cost pull does: the connection is marked, and nothing more is tried with it
        # until the owner connects again.
        error = f"TikTok refused the token: {exc.message}"
        before = await store.tiktok_ads.connection_state(audience.app_key)
        await store.tiktok_ads.set_connection_state(
            ConnectionState(
                audience.app_key,
                NEEDS_REAUTH,
                exc.message,
                before.advertisers if before else (),
                now,
            )
        )
    except (MarketingError, httpx.HTTPError) as exc:
        error = str(exc) or type(exc).__name__
        log.warning("audience %s/%s: sync failed: %s", audience.app_key, audience.name, error)
    state = FAILED if error else plan.state
    await store.audiences.finish_sync(
        audience.id, state=state, member_count=counts.wanted, error=error, now=now
    )
    return SyncOutcome(
        audience.app_key,
        audience.name,
        state,
        counts.wanted,
        plan.create and sender.tiktok_id is not None,
        sender.sent[APPEND],
        sender.sent[REMOVE],
        error,
    )


async def _fail(store: Store, audience: Audience, error: str, now: float) -> SyncOutcome:
    await store.audiences.finish_sync(
        audience.id, state=FAILED, member_count=audience.member_count, error=error, now=now
    )
    return SyncOutcome(
        audience.app_key, audience.name, FAILED, audience.member_count, False, 0, 0, error
    )


async def sync_audiences(
    store: Store,
    settings: Settings,
    make_api: ApiFactory,
    *,
    now: float,
    app_key: str | None = None,
    file_lines: int = FILE_LINES,
    progress: Progress | None = None,
) -> list[SyncOutcome]:
    """Sync every audience of one app (None: every app) through its app's TikTok Ads
    connection."""
    cutoffs = retention_cutoffs(settings, now)
    outcomes: list[SyncOutcome] = []
    for audience in await store.audiences.list_audiences(app_key):
        connection = await store.configs.get_integration(audience.app_key, PARTNER)
        if connection is None or not connection.access_token:
            outcomes.append(await _fail(store, audience, "TikTok Ads is not connected", now))
            continue
        state = await store.tiktok_ads.connection_state(audience.app_key)
        if state is not None and state.state == NEEDS_REAUTH:
            message = "the TikTok Ads connection needs authorising again"
            outcomes.append(await _fail(store, audience, message, now))
            continue
        if connection.config.get("audiences_enabled") is False:
            outcomes.append(
                await _fail(store, audience, "audiences are off in the TikTok Ads connection", now)
            )
            continue
        advertisers = [str(a) for a in connection.config.get("advertiser_ids") or ()]
        if audience.rule.advertiser_id not in advertisers:
            message = (
                f"advertiser {audience.rule.advertiser_id} is not in the TikTok Ads connection"
            )
            outcomes.append(await _fail(store, audience, message, now))
            continue
        outcomes.append(
            await sync_audience(
                store,
                make_api(audience.app_key, connection.access_token),
                audience,
                now=now,
                cutoffs=cutoffs,
                file_lines=file_lines,
                progress=progress,
            )
        )
    return outcomes


def describe(outcome: SyncOutcome) -> str:
    what = f"{outcome.app_key}/{outcome.name}: {outcome.state}, {outcome.wanted} member(s)"
    if outcome.created:
        what += ", created"
    what += f", {outcome.appended} appended, {outcome.removed} removed"
    return what + (f" ({outcome.error})" if outcome.error else "")


def audiences_job(
    store: Store,
    settings: Settings,
    clock: Clock,
    make_api: ApiFactory,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Periodic:
    """The daily run inside the server."""

    async def run() -> None:
        for outcome in await sync_audiences(store, settings, make_api, now=clock()):
            log.info("audience %s", describe(outcome))

    # The cluster's lease: one node runs the day's syncs (each audience's own sync lease
    # still keeps a command-line sync from interleaving with it).
    return Periodic(
        "audiences",
        DAY_SECONDS,
        run,
        delay=FIRST_RUN_DELAY,
        sleep=sleep,
        leases=store.leases,
        clock=clock,
    )
