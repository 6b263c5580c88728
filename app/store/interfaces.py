"""The store's interfaces: one Protocol per concern, named for who uses it.

Handlers, jobs and the command line reach data only through these, with typed records in and
out (no row dicts cross the boundary). A backend is a class per concern plus a `Store` that
holds them; `tests/test_store_contract.py` is what every backend must pass.

Who uses what:
- `ConfigStore`: the owner API and every request that reads an app, page or integration.
- `TokenStore`: admin authentication and `token create`.
- `TouchStore`: the tracking routes (impressions, clicks).
- `CandidateStore`: install attribution (the three index lookups) and event postbacks.
- `InstallStore`, `EventStore`: the app surface and the owner's install receipts.
- `OutboxStore`: the postback worker and the owner's view and retries of postbacks.
- `JobLeaseStore`: scheduled jobs (`app.jobs.Periodic`), so one runs once per period per cluster.
- `UserStore`: the console's accounts, sessions and login throttling.
- `ActivityStore`: the console's lists (latest installs and events, postbacks by state) and
  the counts the dashboard gets cheaply.
- `ReportStore`, `CostStore`, `PrivacyStore`: the overview and raw data, cost, retention and
  privacy erase (`app/reports/`).
- `AudienceStore`: audiences' rules, members and syncs (`app.audiences`, `app.jobs.audiences`).
- `TikTokAdsStore`: the TikTok Ads connection (its state, pull log, OAuth states); its cost
  rows go through `CostStore.replace_cost`.

Promises every backend keeps:
- a write method returns only once its row is durable (a 2xx promises it is on disk);
- `record_install` claims its click, inserts the install and queues its postbacks in one
  transaction, and a click is claimed by one install only (`ClickAlreadyClaimed` otherwise);
- idempotency: an `app_instance_id`, an `event_id` or a `pvid` seen before answers the stored
  record, created=False, and writes nothing;
- secrets at rest: a store opened with a `TokenSealer` (`app.sealing`) keeps integration access
  tokens sealed and answers them clear; a token it cannot open is answered as None.
These hold across processes too where a backend allows several (PostgreSQL: `docs/scale.md`):
the click claim and idempotency are settled by constraints, so a race between nodes has one
winner, and a postback being sent is leased to one node.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from app.attribution import Candidates
from app.audiences import Audience, AudienceRule, MemberQuery, SyncCounts
from app.conversions import Event, Install, PriorInstall
from app.postbacks.postback import NewPostback, PostbackAttempt, PostbackDetail, PostbackRecord
from app.reports.cost import CostEntry, CostScope, Rate, Replaced
from app.reports.overview import RollupSum
from app.reports.privacy import EraseKey, RetainItem
from app.reports.rollups import Increment, RollupFold, RollupKey
from app.store.records import (
    ActivityItem,
    AppRecord,
    CandidateQuery,
    InstallInputs,
    IntegrationRecord,
    PageRecord,
    PageView,
    SessionRecord,
    StoreStats,
    TokenInfo,
    TouchCounts,
    UserRecord,
)
from app.tiktok_ads.connection import ConnectionState, PullRecord
from app.touches import Touch, TouchRecord


class ConfigStore(Protocol):
    async def config_version(self) -> int:
        """A number every configuration write (apps, pages, integrations, sdk keys, sealed
        tokens) changes, in the transaction of the write, whichever process made it: a config
        held in memory is current while this answers what it answered when the config was read.
        Called on every request that uses a config, so it must be cheap (one primary-key read,
        no thread hop where the backend allows)."""
        ...

    async def get_app(self, app_key: str) -> AppRecord | None: ...
    async def list_apps(self) -> list[AppRecord]: ...
    async def put_app(self, app_key: str, config: Mapping[str, Any], now: float) -> AppRecord:
        """Full replace of an app's config; its `sdk_key` is made on create and then kept."""
        ...

    async def delete_app(self, app_key: str) -> bool: ...
    async def app_by_sdk_key(self, sdk_key: str) -> AppRecord | None:
        """The app whose sdk_key this is: the SDK endpoints authenticate before reading a body."""
        ...

    async def rotate_sdk_key(self, app_key: str, now: float) -> AppRecord | None:
        """Give an app a new sdk_key (the old one stops working at once); None: no such app."""
        ...

    async def app_for_destination(self, platform: str, app_id: str) -> AppRecord | None:
        """The app whose destination `platform` has `app_id` (direct click URLs)."""
        ...

    async def get_integration(self, app_key: str, partner: str) -> IntegrationRecord | None: ...
    async def put_integration(
        self,
        app_key: str,
        partner: str,
        config: Mapping[str, Any],
        access_token: str | None,
        now: float,
    ) -> IntegrationRecord:
        """Full replace of the config. `access_token=None` keeps the stored token, so an owner
        can edit settings without pasting the secret again."""
        ...

    async def delete_integration(self, app_key: str, partner: str) -> bool: ...
    async def seal_tokens(self, *, rotate: bool = False) -> int:
        """Seal every access token kept in clear (written before sealing, or by a store opened
        without a sealer) under the store's sealer; with `rotate`, re-seal every token under
        its current key too. Answers how many were rewritten; without a sealer, 0."""
        ...

    async def get_page(self, slug: str) -> PageRecord | None: ...
    async def list_pages(self) -> list[PageRecord]: ...
    async def put_page(self, slug: str, config: Mapping[str, Any], now: float) -> PageRecord: ...
    async def delete_page(self, slug: str) -> bool: ...


class TokenStore(Protocol):
    async def create_token(self, label: str, now: float) -> str:
        """Make an admin token; only its hash is kept, so this is the one time it is seen."""
        ...

    async def token_valid(self, token: str, now: float) -> bool:
        """Whether `token` is an admin token; a valid one has its last use recorded (to the
        minute: a burst of requests writes once)."""
        ...

    async def list_tokens(self) -> list[TokenInfo]:
        """Every admin token, oldest first: label, creation and last use, never the token."""
        ...

    async def revoke_token(self, token_id: str) -> bool:
        """Delete an admin token; it is refused from then on. False: no such token."""
        ...


class TouchStore(Protocol):
    async def record_touch(self, rec: TouchRecord, *, rollups: Iterable[Increment] = ()) -> str:
        """Store a touch and add its `rollups`, together; answers its id. An impression whose
        `pvid` was seen before is not stored again (nor counted): the first one's id is answered
        (a page view is one impression)."""
        ...

    async def page_view(self, app_key: str, pvid: str) -> PageView | None:
        """The impression of one page view, or None when it has not been recorded (yet: a
        fast tap can beat the beacon)."""
        ...


class CandidateStore(Protocol):
    async def find_candidates(self, query: CandidateQuery) -> Candidates:
        """The touches one install may be credited to, each tier latest first and capped."""
        ...

    async def attributed_touch(self, kind: str, touch_id: str) -> Touch | None:
        """The touch an install was credited to, for its events' postbacks."""
        ...


class InstallStore(Protocol):
    async def install_inputs(
        self,
        app_key: str,
        app_instance_id: str,
        device_ids: Mapping[str, str],
        candidates: CandidateQuery,
    ) -> InstallInputs:
        """In one read transaction: `install_by_instance`; when there is none, also
        `prior_install(app_key, device_ids, 0.0)`, the prior's first install (`get_install` of
        its `first_install_id`, when that is another install) and `find_candidates`. The hot
        path of POST /api/v1/installs: one round trip instead of four."""
        ...

    async def install_by_instance(self, app_key: str, app_instance_id: str) -> Install | None: ...
    async def get_install(self, install_id: str) -> Install | None: ...
    async def prior_install(
        self, app_key: str, device_ids: Mapping[str, str], since: float
    ) -> PriorInstall | None:
        """The latest install of this app since `since` sharing a device id (reinstalls)."""
        ...

    async def record_install(
        self,
        install: Install,
        *,
        claim_click: str | None,
        postbacks: Iterable[NewPostback] = (),
        now: float,
        rollups: Iterable[Increment] = (),
    ) -> tuple[Install, bool]:
        """Claim `claim_click`, insert the install, queue its postbacks and add its `rollups`,
        atomically.
        Answers (stored install, created). An install with the same app_instance_id is
        answered unchanged, created=False. Raises ClickAlreadyClaimed, writing nothing, when
        the click was claimed by another install first."""
        ...

    async def mask_limited_installs(self, before: float, now: float, *, limit: int = 500) -> int:
        """Mask what limited-data-use installs made before `before` keep beyond attribution's
        needs: the install's IP cut to its network and its GAID, Android ID and IDFA removed;
        the IP of the touch it was credited to cut too; and the `user.ip` of its and its
        events' postbacks that are done (not pending or retrying). Each install once, at most
        `limit` per call, oldest first; answers how many were masked."""
        ...


class EventStore(Protocol):
    async def event_by_id(self, app_key: str, event_id: str) -> Event | None: ...
    async def record_event(
        self,
        event: Event,
        *,
        postbacks: Iterable[NewPostback] = (),
        now: float,
        rollups: Iterable[Increment] = (),
    ) -> tuple[Event, bool]:
        """Insert an event with its postbacks and `rollups` atomically; an `event_id` already
        stored answers the stored event, created=False, and adds nothing."""
        ...


class OutboxStore(Protocol):
    async def queue_postbacks(self, postbacks: Sequence[NewPostback], now: float) -> None:
        """Queue postbacks due now that belong to no new install or event (a resend)."""
        ...

    async def due_postbacks(
        self,
        now: float,
        *,
        per_integration: int,
        limit: int,
        exclude: Collection[tuple[str, str]] = (),
    ) -> list[PostbackRecord]:
        """Postbacks due at `now`, oldest due first: at most `per_integration` of each
        (app_key, partner), at most `limit` in all, none of the integrations in `exclude`.
        Reads only: the owner's view and tests; the worker claims with `claim_postbacks`."""
        ...

    async def claim_postbacks(
        self,
        now: float,
        *,
        per_integration: int,
        limit: int,
        lease_seconds: float,
        exclude: Collection[tuple[str, str]] = (),
    ) -> list[PostbackRecord]:
        """The postbacks `due_postbacks` would answer, taken for delivery: until `now +
        lease_seconds` (or until `record_attempts` moves them) no other claim answers them,
        from this process or any other on the same database. A lease that expires (its holder
        died) makes them due again. A backend that one process owns may keep no lease at all:
        that process's worker already excludes what it has in flight."""
        ...

    async def next_postback_due(self) -> float | None: ...
    async def outbox_pending(self) -> int: ...
    async def postback_states(self) -> dict[str, int]: ...
    async def record_attempts(self, attempts: Sequence[PostbackAttempt]) -> None:
        """Log one attempt per postback and move each to its next state, together."""
        ...

    async def retry_postback(self, postback_id: str, now: float) -> str | None:
        """Make a postback that is not `sent` due now, with a fresh run of retries. Answers
        its state before, or None when there is no such postback."""
        ...

    async def retry_failed_postbacks(self, app_key: str, now: float) -> int:
        """Make every failed or dead postback of an app due now; answers how many."""
        ...

    async def get_postback(self, postback_id: str) -> PostbackDetail | None: ...
    async def postbacks_for(self, subject_id: str) -> list[PostbackRecord]: ...


class JobLeaseStore(Protocol):
    async def acquire(self, name: str, holder: str, now: float, seconds: float) -> bool:
        """Take job `name`'s lease for `holder` until `now + seconds`, when no other holder's
        lease runs at `now`; answers whether it was taken. A scheduled job runs only when its
        node takes the lease, so it runs once per period across every node on one database."""
        ...


class UserStore(Protocol):
    async def create_user(
        self,
        username: str,
        password_hash: str,
        role: str,
        apps: Sequence[str] | None,
        now: float,
    ) -> UserRecord:
        """Create or replace an account (a new password, role or app list)."""
        ...

    async def get_user(self, username: str) -> UserRecord | None: ...
    async def list_users(self) -> list[UserRecord]: ...
    async def set_password_hash(self, username: str, password_hash: str) -> None:
        """Replace a hash (a rehash with stronger parameters at login)."""
        ...

    async def create_session(
        self, session_id: str, username: str, csrf_token: str, now: float
    ) -> None: ...
    async def get_session(self, session_id: str) -> SessionRecord | None: ...
    async def touch_session(self, session_id: str, now: float) -> None:
        """Record a session's last use (for the idle timeout)."""
        ...

    async def revoke_session(self, session_id: str, now: float) -> None: ...
    async def record_login_failure(self, username: str, ip: str | None, now: float) -> None: ...
    async def login_failures(self, username: str, ip: str | None, since: float) -> tuple[int, int]:
        """Failed logins since `since`: (for this account, from this IP)."""
        ...


class ActivityStore(Protocol):
    async def latest_activity(
        self, app_keys: Collection[str] | None, limit: int
    ) -> list[ActivityItem]:
        """The latest installs and in-app events of these apps (None: all), newest first."""
        ...

    async def counts(self, app_keys: Collection[str] | None, since: float) -> TouchCounts:
        """Impressions, clicks, installs and events of these apps (None: all) since `since`."""
        ...

    async def list_postbacks(
        self, app_keys: Collection[str] | None, state: str | None, limit: int
    ) -> list[PostbackRecord]:
        """Postbacks of these apps (None: all), in one state or any, newest first."""
        ...


class ReportStore(Protocol):
    """The overview's sums, the rollups' rebuild, and raw data streamed in batches."""

    async def sum_rollups(
        self,
        app_key: str,
        first_hour: int,
        end_hour: int,
        group_by: Sequence[str],
        filters: Mapping[str, str],
        segments: Sequence[tuple[int, int]],
    ) -> list[RollupSum]:
        """Rollups of hours [first_hour, end_hour) matching `filters` (dimension -> value),
        summed by local day, the `group_by` dimensions and metric. `segments` are the time
        zone's (first hour, UTC offset in seconds), in order: hour h of a segment is on day
        (h * 3600 + offset) // 86400 (`app.reports.overview.day_segments`)."""
        ...

    async def rollup_values(self, app_key: str) -> dict[RollupKey, int]:
        """Every non-zero rollup of an app (tests and audits)."""
        ...

    async def rebuild_rollups(self, app_key: str | None, fold: RollupFold) -> int:
        """Recompute the rollups of one app (None: all) from the raw rows, in one transaction:
        `fold` says what each touch, install and event (with its attributing install) adds.
        Answers how many rollups were written."""
        ...

    def stream_installs(
        self, app_key: str, start: float, end: float, *, batch: int = 1000
    ) -> AsyncIterator[list[Install]]:
        """Installs with `start <= time < end`, in time order, a batch at a time, read from a
        cursor of its own (no other reader waits for the export). Raw data shows neither the
        receipt nor the conversion data, so these come empty."""
        ...

    def stream_events(
        self, app_key: str, start: float, end: float, *, batch: int = 1000
    ) -> AsyncIterator[list[tuple[Event, Install]]]:
        """Events by event time, each with its own install."""
        ...

    def stream_touches(
        self, kind: str, app_key: str, start: float, end: float, *, batch: int = 1000
    ) -> AsyncIterator[list[TouchRecord]]: ...

    def stream_postbacks(
        self, app_key: str, start: float, end: float, *, batch: int = 1000
    ) -> AsyncIterator[list[PostbackRecord]]: ...


class CostStore(Protocol):
    async def put_cost(self, entries: Sequence[CostEntry], now: float) -> int:
        """Insert or replace rows by their key (`app.reports.cost`); answers how many rows
        were new or changed."""
        ...

    async def replace_cost(
        self, scope: CostScope, entries: Sequence[CostEntry], now: float
    ) -> Replaced:
        """Make the rows of `scope` exactly `entries` (each inside the scope), in one
        transaction: a pull's days are replaced whole, so re-pulling is idempotent. Unchanged
        rows are left as they are; `changed` counts rows new, different or removed;
        `superseded` counts the uploaded rows of the scope's days (any account) whose
        campaign-day now has a pulled row (`app.reports.cost.superseded`)."""
        ...

    async def cost_between(self, app_key: str, start: date, end: date) -> list[CostEntry]:
        """Every cost row of the days from `start` to `end`, of every source."""
        ...

    async def count_superseded(self, app_key: str, start: date, end: date) -> int:
        """The uploaded rows of the days from `start` to `end` whose campaign-day has a pulled
        row, each counted once whatever the number of accounts pulled."""
        ...

    async def put_rates(self, app_key: str, rates: Sequence[Rate], now: float) -> int: ...
    async def rates(self, app_key: str) -> dict[tuple[date, str], Decimal]:
        """(day, currency) -> rate to the app's report currency."""
        ...


class TikTokAdsStore(Protocol):
    """The TikTok Ads connection's own records (its config and token are the app's integration
    `tiktok_ads` in `ConfigStore`)."""

    async def connection_state(self, app_key: str) -> ConnectionState | None: ...
    async def set_connection_state(self, state: ConnectionState) -> None:
        """Insert or replace the app's state."""
        ...

    async def record_pull(self, pull: PullRecord) -> None:
        """Insert a pull, or replace the one of the same id (a pull is recorded when it
        starts and again when it ends)."""
        ...

    async def recent_pulls(self, app_key: str, limit: int = 10) -> list[PullRecord]:
        """The app's latest pulls, newest first."""
        ...

    async def use_oauth_state(self, nonce: str, now: float, keep_seconds: float) -> bool:
        """True the first time a nonce is used, False ever after (within `keep_seconds`,
        which outlives any state the signature still accepts)."""
        ...


class PrivacyStore(Protocol):
    async def retention_due(self, cutoffs: Mapping[str, float], *, limit: int) -> list[Install]:
        """Installs not yet retained whose media source (or original one) is a key of
        `cutoffs` and whose time is before its cutoff; oldest first, at most `limit`."""
        ...

    async def count_retention_due(self, cutoffs: Mapping[str, float]) -> int: ...
    async def events_attributed_to(self, install_id: str) -> list[Event]:
        """Events carrying this install's attribution: its reinstalls', and its own unless it
        is itself a reinstall whose first install is still stored (they carry the first's)."""
        ...

    async def retain(self, items: Sequence[RetainItem], now: float) -> dict[str, int]:
        """Erase the user-level fields of each install, its events and its attributed touch,
        mark it `is_retained_organic` and add its rollup changes, in one transaction; an install
        already retained is skipped. Answers rows changed per table."""
        ...

    async def erase(self, key: EraseKey, *, actor: str, now: float) -> dict[str, int]:
        """Erase every matching install, event, touch and postback (undelivered ones are
        dropped), record the erase without the erased values, in one transaction. Answers rows
        changed per table; a second erase answers zeros."""
        ...

    async def erasures(self) -> list[dict[str, Any]]:
        """The audit log of erases, newest first."""
        ...


class AudienceStore(Protocol):
    """Audiences (`app.audiences`) and their members by hash. A member is `sent` only once
    TikTok confirmed the file holding it (`confirm_sent`), so a sync cut off half way
    resumes from what TikTok holds: nothing confirmed is sent again, nothing unconfirmed is
    lost. One sync of an audience runs at a time."""

    async def put_audience(
        self, app_key: str, name: str, rule: AudienceRule, now: float, *, reset: bool
    ) -> Audience:
        """Create an audience (state `pending`) or replace its rule. `reset` also forgets its
        TikTok audience and members (`app.audiences.needs_new_tiktok_audience`)."""
        ...

    async def get_audience(self, app_key: str, name: str) -> Audience | None: ...
    async def list_audiences(self, app_key: str | None) -> list[Audience]:
        """The audiences of one app (None: every app), by app and name."""
        ...

    async def delete_audience(self, app_key: str, name: str) -> bool:
        """Forget an audience and its members (its TikTok audience is left as it is)."""
        ...

    def member_ids(self, query: MemberQuery, *, batch: int = 1000) -> AsyncIterator[list[str]]:
        """The advertising IDs (`query.id_column`, as stored) of the installs `query`
        matches, a batch at a time, never a whole app in memory; an ID may repeat (one device,
        several installs). Never an ID of an excluded install (see `MemberQuery`)."""
        ...

    async def start_sync(self, audience_id: str, now: float, lease: float) -> int | None:
        """Begin a sync, holding the audience for `lease` seconds (or until `finish_sync`):
        answers its run number, which `stage_members` marks; None while another sync holds it
        (or for no such audience)."""
        ...

    async def stage_members(self, audience_id: str, run: int, hashes: Sequence[str]) -> None:
        """Mark these members wanted by `run` (a new one is unsent)."""
        ...

    async def staged(self, audience_id: str, run: int) -> SyncCounts:
        """Once every wanted member is staged: forget unsent members `run` does not want, and
        count the wanted, the wanted not sent (to append) and the sent not wanted (to remove)."""
        ...

    async def pending_members(
        self, audience_id: str, run: int, action: str, *, after: str, limit: int
    ) -> list[str]:
        """One page of the members to append (`APPEND`) or remove (`REMOVE`), by hash, after
        `after`."""
        ...

    async def confirm_sent(
        self,
        audience_id: str,
        action: str,
        hashes: Sequence[str],
        *,
        tiktok_audience_id: str | None = None,
    ) -> None:
        """TikTok answered code 0 for these members: appended ones are now sent, removed ones
        forgotten; with `tiktok_audience_id` (a create), the audience's ID is kept with them."""
        ...

    async def finish_sync(
        self, audience_id: str, *, state: str, member_count: int, error: str | None, now: float
    ) -> None:
        """Record how the sync ended (the sent count is recounted) and release the lease."""
        ...


class Store(Protocol):
    """One backend: its parts by concern, its figures, and closing it."""

    @property
    def configs(self) -> ConfigStore: ...
    @property
    def tokens(self) -> TokenStore: ...
    @property
    def touches(self) -> TouchStore: ...
    @property
    def candidates(self) -> CandidateStore: ...
    @property
    def installs(self) -> InstallStore: ...
    @property
    def events(self) -> EventStore: ...
    @property
    def outbox(self) -> OutboxStore: ...
    @property
    def leases(self) -> JobLeaseStore: ...
    @property
    def users(self) -> UserStore: ...
    @property
    def activity(self) -> ActivityStore: ...
    @property
    def reports(self) -> ReportStore: ...
    @property
    def cost(self) -> CostStore: ...
    @property
    def privacy(self) -> PrivacyStore: ...
    @property
    def audiences(self) -> AudienceStore: ...
    @property
    def tiktok_ads(self) -> TikTokAdsStore: ...

    def stats(self) -> StoreStats: ...
    async def upkeep(self, now: float) -> None:
        """Keep the store ready for what comes (PostgreSQL: the touch partitions of the days
        ahead); idempotent, run by the `store-upkeep` job once per period per cluster."""
        ...

    async def close(self) -> None: ...
