"""The postback worker: delivers due outbox rows to TikTok's Events API, at least once.

How a round goes: under a lock, read the due postbacks (up to 1,000 per integration, so one
pixel's events share one request, never more than TikTok takes) of every integration that has
no request in flight, and mark those integrations in flight; then send one request per
integration, concurrently, and let TikTok's answer (`tiktok.classify_answer`) and the retry
schedule (`tiktok.after_attempt`) decide each row's next state. The attempt is logged and the
state changed in one write; only after that write is the integration free again, so no round
can read a row that is still on its way (which would send it twice).

One invalid event must not fail its batch: TikTok refuses a whole request with a 4xxxx code when
one event in it is invalid, so a refused request of several events is halved, and each half sent,
until the valid events are delivered and each refused one was refused alone (`failed` with
TikTok's own code and message). Finding one bad event among n takes at most 2*log2(n)+1
requests; MAX_REQUESTS_PER_DELIVERY bounds the whole search.

A dry-run integration (`dry_run: true`) has its postbacks built and kept with the envelope they
would go in (the owner's view shows the exact JSON), in the final state `dry_run`; nothing is
sent, and no access token is needed.

When it runs: `nudge()` (a postback was just queued) starts a round at once, so a postback leaves
within moments of its install or event; the end of a request starts another round (what queued
meanwhile goes next, grouped); otherwise the worker sleeps until the next retry falls due, and at
most IDLE_POLL_SECONDS, in case something queued without nudging.

Several nodes on one database (PostgreSQL) each run this worker: a round *claims* its rows
(`OutboxStore.claim_postbacks`), leasing them to this node for `outbox_lease_seconds`, so no
other node sends them meanwhile; recording the attempts ends the lease. A node killed
mid-request leaves its rows leased until the lease expires, then another node sends them. On
SQLite nothing is marked on disk (one process owns the file): a process killed mid-request leaves
its rows due, and they are sent again after restart. Either way TikTok drops a repeated `event` +
`event_id` within 48 hours, so at-least-once delivery is exactly-once in effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from dataclasses import replace

import httpx

from app.clock import Clock
from app.postbacks import tiktok
from app.postbacks.postback import PostbackAttempt, PostbackRecord
from app.settings import Settings
from app.store.interfaces import Store
from app.store.records import IntegrationRecord

log = logging.getLogger("gangway.outbox")

# The longest the worker sleeps between looks at the outbox when nothing nudges it.
IDLE_POLL_SECONDS = 1.0
# Most postbacks one round reads, over all integrations (each integration gets at most
# MAX_EVENTS_PER_REQUEST of them); a fuller backlog is read by the rounds that follow at once.
ROUND_LIMIT = 10 * tiktok.MAX_EVENTS_PER_REQUEST
# After the store refused to record an attempt, the integration rests this long before its rows
# are tried again: without the pause a broken disk would resend the same request in a tight loop.
STORE_FAILURE_PAUSE_SECONDS = 5.0

# Requests one delivery may make while narrowing a refused batch down to its invalid events.
# Halving finds one bad event among n in at most 2*log2(n)+1 requests (its half is refused at
# every level, the other half delivered): 21 for a full batch of 1,000. The cap bounds a batch
# with many bad events, or a refusal that is not about events at all; what is left then is
# `failed` with TikTok's message, and the owner's retry narrows it further.
MAX_REQUESTS_PER_DELIVERY = 64
# The final state of a dry-run integration's postbacks: built, stored, shown, never sent.
DRY_RUN = "dry_run"

IntegrationKey = tuple[str, str]  # (app_key, partner)


class OutboxWorker:
    """A job of the server's lifespan (`app/jobs.py`); tests may call `deliver_due()` directly.

    `wake` is the event the request handlers set after queuing a postback."""

    name = "outbox"

    def __init__(
        self,
        store: Store,
        http: httpx.AsyncClient,
        clock: Clock,
        settings: Settings,
        *,
        wake: asyncio.Event | None = None,
        rand: random.Random | None = None,
    ) -> None:
        self._store = store
        self._http = http
        self._clock = clock
        self._api_url = settings.tiktok_api_url.rstrip("/") + tiktok.TRACK_PATH
        # Longer than a request can take (its timeout, then recording the attempts), so a live
        # node never loses the rows it is sending to another node.
        self._lease_seconds = max(
            settings.outbox_lease_seconds, settings.tiktok_timeout_seconds + 5
        )
        self._rand = rand or random.Random()
        self._wake = wake or asyncio.Event()
        self._claim_lock = asyncio.Lock()
        self._in_flight: set[IntegrationKey] = set()
        self._deliveries: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="gangway-outbox")

    async def stop(self) -> None:
        """Stop at once. A request cut off here leaves its rows due: sent again next start.

        The round loop goes first: until it has ended it may still start deliveries, and a
        delivery left running would read a store that is being closed under it."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        deliveries = list(self._deliveries)
        for task in deliveries:
            task.cancel()
        for task in deliveries:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def nudge(self) -> None:
        """A postback was queued: look now rather than at the next poll."""
        self._wake.set()

    # -- rounds ------------------------------------------------------------------------------

    async def deliver_due(self) -> int:
        """Send everything due now and wait for every answer; answers how many postbacks were
        attempted. The server's loop does the same without waiting for the answers."""
        attempted = 0
        while True:
            claimed, _ = await self._claim()
            if not claimed:
                return attempted
            await asyncio.gather(*(self._deliver(key, rows) for key, rows in claimed))
            attempted += sum(len(rows) for _, rows in claimed)

    async def _run(self) -> None:
        while True:
            # Cleared before looking, so a nudge that arrives during the look is not lost.
            self._wake.clear()
            wait = IDLE_POLL_SECONDS
            try:
                claimed, more = await self._claim()
                for key, rows in claimed:
                    task = asyncio.create_task(self._deliver(key, rows), name=f"postbacks-{key}")
                    self._deliveries.add(task)
                    task.add_done_callback(self._deliveries.discard)
                wait = 0.0 if more else await self._idle_wait()
            except Exception:  # a store hiccup must not end delivery for good
                log.exception("outbox round failed")
            if wait > 0:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                # cancellation that arrives as the event is set, and stop() would wait forever.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wake.wait()

    async def _idle_wait(self) -> float:
        next_due = await self._store.outbox.next_postback_due()
        if next_due is None:
            return IDLE_POLL_SECONDS
        delay = next_due - self._clock()
        # Due already: those rows belong to an integration with a request in flight, and the
        # end of that request nudges.
        return min(delay, IDLE_POLL_SECONDS) if delay > 0 else IDLE_POLL_SECONDS

    async def _claim(self) -> tuple[list[tuple[IntegrationKey, list[PostbackRecord]]], bool]:
        """The due rows of every integration not in flight, grouped, and those integrations
        marked in flight; and whether the round was full (more may be due)."""
        async with self._claim_lock:
            due = await self._store.outbox.claim_postbacks(
                self._clock(),
                per_integration=tiktok.MAX_EVENTS_PER_REQUEST,
                limit=ROUND_LIMIT,
                lease_seconds=self._lease_seconds,
                exclude=tuple(self._in_flight),
            )
            groups: dict[IntegrationKey, list[PostbackRecord]] = {}
            for row in due:
                groups.setdefault((row.app_key, row.partner), []).append(row)
            self._in_flight.update(groups)
            return list(groups.items()), len(due) >= ROUND_LIMIT

    async def _deliver(self, key: IntegrationKey, rows: Sequence[PostbackRecord]) -> None:
        """One request for one integration's rows; its attempts recorded; the integration
        released; another round nudged (rows may have queued behind this request)."""
        try:
            try:
                attempts = await self._send(key, rows)
            except Exception as exc:
                # A bug must not leave the rows due at once (a tight loop): back off instead.
                log.exception("postbacks app=%s: delivery failed inside Gangway", key[0])
                outcome = tiktok.Outcome(
                    "retry", None, f"internal error: {type(exc).__name__}", None
                )
                attempts = self._attempts_for(rows, outcome, None, None, None, None)
            try:
                await self._store.outbox.record_attempts(attempts)
            except Exception:
                log.exception("postbacks app=%s: could not record %d attempts", key[0], len(rows))
                await asyncio.sleep(STORE_FAILURE_PAUSE_SECONDS)
        finally:
            self._in_flight.discard(key)
            self.nudge()

    async def _send(
        self, key: IntegrationKey, rows: Sequence[PostbackRecord]
    ) -> list[PostbackAttempt]:
        app_key, partner = key
        integration = await self._store.configs.get_integration(app_key, partner)
        problem = configuration_problem(integration)
        if problem is not None or integration is None:
            # The owner must fix the integration; retrying would change nothing. The rows wait
            # as `failed`, and the owner's retry sends them once it is fixed.
            outcome = tiktok.Outcome("failed", None, problem or "no integration", None)
            log.warning("postbacks app=%s n=%d failed: %s", app_key, len(rows), outcome.message)
            return self._attempts_for(rows, outcome, None, None, None, None)
        config = integration.config
        pixel_code: str = config["pixel_code"]
        test_event_code: str | None = config.get("test_event_code") or None
        if config.get("dry_run"):
            return self._dry_run(app_key, rows, pixel_code, test_event_code)
        attempts: list[PostbackAttempt] = []
        # Depth first, so a refused batch's halves go out before anything else of this round.
        # Each group waits with the refusal of the request it was split from (None: the batch).
        groups: list[tuple[Sequence[PostbackRecord], tuple[tiktok.Outcome, int | None] | None]]
        groups = [(rows, None)]
        requests = 0
        while groups:
            group, refused = groups.pop(0)
            if refused is not None and requests >= MAX_REQUESTS_PER_DELIVERY:
                # Out of requests: the group keeps the refusal of the batch it was part of.
                outcome, status = refused
                outcome = replace(
                    outcome,
                    message=f"{outcome.message} (refused in a batch; not narrowed down within "
                    f"{MAX_REQUESTS_PER_DELIVERY} requests: retry to narrow it further)",
                )
            else:
                outcome, status = await self._post(integration, pixel_code, test_event_code, group)
                requests += 1
                if len(group) > 1 and refuses_an_event(outcome):
                    # TikTok refuses a whole request for one invalid event: halve it until the
                    # valid events are delivered and each refused one stands alone.
                    middle = len(group) // 2
                    groups[0:0] = [
                        (group[:middle], (outcome, status)),
                        (group[middle:], (outcome, status)),
                    ]
                    continue
            attempts += self._attempts_for(
                group, outcome, status, pixel_code, test_event_code, len(group)
            )
        return attempts

    async def _post(
        self,
        integration: IntegrationRecord,
        pixel_code: str,
        test_event_code: str | None,
        rows: Sequence[PostbackRecord],
    ) -> tuple[tiktok.Outcome, int | None]:
        """One request to the Events API; what it came to, and its HTTP status."""
        app_key = integration.app_key
        body = tiktok.build_request(
            pixel_code=pixel_code,
            events=[row.payload for row in rows],
            test_event_code=test_event_code,
        )
        url = self._api_url
        log.debug("postbacks app=%s n=%d sending to %s", app_key, len(rows), url)
        status: int | None = None
        content: bytes | None = None
        error: str | None = None
        try:
            answer = await self._http.post(
                url, json=body, headers={"Access-Token": integration.access_token or ""}
            )
            status, content = answer.status_code, answer.content
        except httpx.TimeoutException as exc:
            error = f"timeout: {type(exc).__name__}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        outcome = tiktok.classify_answer(http_status=status, body=content, transport_error=error)
        # A failed postback needs the owner: it is a warning, not news.
        log.log(
            logging.WARNING if outcome.state == "failed" else logging.INFO,
            "postbacks app=%s pixel=%s n=%d outcome=%s http=%s code=%s request_id=%s message=%r",
            app_key,
            pixel_code,
            len(rows),
            outcome.state,
            status,
            outcome.code,
            outcome.request_id,
            outcome.message,
        )
        return outcome, status

    def _dry_run(
        self,
        app_key: str,
        rows: Sequence[PostbackRecord],
        pixel_code: str,
        test_event_code: str | None,
    ) -> list[PostbackAttempt]:
        """Postbacks of a dry-run integration: built as they would be sent (the envelope is
        kept with the attempt, so the owner's view shows the exact JSON), never sent."""
        tiktok.build_request(
            pixel_code=pixel_code,
            events=[row.payload for row in rows],
            test_event_code=test_event_code,
        )
        log.info("postbacks app=%s pixel=%s n=%d outcome=dry_run", app_key, pixel_code, len(rows))
        done = self._clock()
        return [
            PostbackAttempt(
                postback_id=row.id,
                time=done,
                state=DRY_RUN,
                next_attempt_at=done,
                message="dry run: built and kept, not sent to TikTok",
                pixel_code=pixel_code,
                test_event_code=test_event_code,
                batch_size=len(rows),
            )
            for row in rows
        ]

    def _attempts_for(
        self,
        rows: Sequence[PostbackRecord],
        outcome: tiktok.Outcome,
        http_status: int | None,
        pixel_code: str | None,
        test_event_code: str | None,
        batch_size: int | None,
    ) -> list[PostbackAttempt]:
        done = self._clock()
        # One draw per request: rows that failed together stay together, so their retry is one
        # request again. Jitter is for spreading Gangway's load, not for splitting a batch.
        draw = self._rand.random()
        attempts = []
        for row in rows:
            state, next_at = tiktok.after_attempt(
                outcome.state,
                attempt=row.retry_attempts + 1,
                since=row.created_at if row.retry_since is None else row.retry_since,
                now=done,
                rand=lambda: draw,
            )
            attempts.append(
                PostbackAttempt(
                    postback_id=row.id,
                    time=done,
                    state=state,
                    next_attempt_at=next_at,
                    http_status=http_status,
                    code=outcome.code,
                    message=outcome.message,
                    request_id=outcome.request_id,
                    pixel_code=pixel_code,
                    test_event_code=test_event_code,
                    batch_size=batch_size,
                )
            )
        return attempts


def refuses_an_event(outcome: tiktok.Outcome) -> bool:
    """Whether TikTok refused the request for its content: a final 4xxxx code. TikTok refuses
    a whole request when one of its events is invalid; HTTP errors without a code are about
    the request (a wrong URL, a proxy), and halving them would only repeat the refusal."""
    return outcome.state == "failed" and outcome.code is not None and 40000 <= outcome.code < 50000


def configuration_problem(integration: IntegrationRecord | None) -> str | None:
    """Why postbacks of this integration cannot be sent at all, in the owner's words; None
    when they can."""
    if integration is None:
        return "the tiktokweb_int integration was deleted"
    if not integration.config.get("enabled"):
        return "the tiktokweb_int integration is disabled"
    if not integration.config.get("pixel_code"):
        return "pixel_code is not set on the tiktokweb_int integration"
    if not integration.access_token and not integration.config.get("dry_run"):
        return "access_token is not set on the tiktokweb_int integration"
    return None
