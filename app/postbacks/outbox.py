"""The postback worker: delivers due outbox rows to TikTok's Events API, at least once.

It wakes when a postback is queued (`nudge()`) or when the next retry falls due, groups due
events of one pixel into one request (never over 1,000), and lets TikTok's answer decide each
row's next state (`tiktok.classify_answer`). A row changes state only after its attempt is
recorded, so a process killed mid-send sends that row again after restart; the stable
`event_id` makes the repeat harmless (TikTok de-duplicates on event + event_id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import defaultdict
from collections.abc import Sequence

import httpx

from app.postbacks import tiktok
from app.services import Services
from app.store.sqlite import PostbackAttempt, PostbackRecord

log = logging.getLogger("gangway.outbox")

# How long the worker sleeps at most between looks at the outbox when nothing nudges it.
IDLE_POLL_SECONDS = 1.0
BATCH_LIMIT = tiktok.MAX_EVENTS_PER_REQUEST


class OutboxWorker:
    def __init__(self, svc: Services, *, rand: random.Random | None = None) -> None:
        self.svc = svc
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._rand = rand or random.Random()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="gangway-outbox")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    def nudge(self) -> None:
        """A postback was queued: look now rather than at the next poll."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                sent_any = await self.deliver_due()
            except Exception:  # a bad row or a store hiccup must not kill delivery for good
                log.exception("outbox round failed")
                sent_any = False
            if sent_any:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), IDLE_POLL_SECONDS)

    async def deliver_due(self) -> bool:
        """One round: send every due postback. Answers whether any were due."""
        store = self.svc.store
        due = await store.due_postbacks(self.svc.clock(), BATCH_LIMIT)
        if not due:
            return False
        groups: dict[tuple[str, str], list[PostbackRecord]] = defaultdict(list)
        for row in due:
            groups[(row.app_key, row.partner)].append(row)
        await asyncio.gather(*(self._send_group(key, rows) for key, rows in groups.items()))
        return True

    async def _send_group(self, key: tuple[str, str], rows: Sequence[PostbackRecord]) -> None:
        app_key, partner = key
        now = self.svc.clock()
        integration = await self.svc.store.get_integration(app_key, partner)
        if integration is None or not integration.access_token:
            message = (
                "the integration was removed"
                if integration is None
                else "access_token is not set for this integration"
            )
            await self.svc.store.record_attempts(
                [PostbackAttempt(r.id, now, "failed", now, message=message) for r in rows]
            )
            return
        config = integration.config
        body = tiktok.build_request(
            pixel_code=config["pixel_code"],
            events=[r.payload for r in rows],
            test_event_code=config.get("test_event_code"),
        )
        url = self.svc.settings.tiktok_api_url.rstrip("/") + tiktok.TRACK_PATH
        status: int | None = None
        content: bytes | None = None
        error: str | None = None
        try:
            answer = await self.svc.http.post(
                url,
                json=body,
                headers={"Access-Token": integration.access_token},
            )
            status, content = answer.status_code, answer.content
        except httpx.TimeoutException as exc:
            error = f"timeout: {type(exc).__name__}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        outcome = tiktok.classify_answer(http_status=status, body=content, transport_error=error)
        done = self.svc.clock()
        attempts = []
        for row in rows:
            state: str = outcome.state
            next_at = done
            if outcome.state == "retry":
                delay = tiktok.next_retry_delay(row.attempts + 1, self._rand.random)
                next_at = done + delay
                state = "retrying"
                if next_at - row.created_at > tiktok.RETRY_HORIZON_SECONDS:
                    state = "dead"
            attempts.append(
                PostbackAttempt(
                    postback_id=row.id,
                    time=done,
                    state=state,
                    next_attempt_at=next_at,
                    http_status=status,
                    code=outcome.code,
                    message=outcome.message,
                    request_id=outcome.request_id,
                )
            )
        await self.svc.store.record_attempts(attempts)
        log.info(
            "postbacks app=%s n=%d state=%s http=%s code=%s",
            app_key,
            len(rows),
            outcome.state,
            status,
            outcome.code,
        )
