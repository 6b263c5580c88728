"""`create_app(settings)`: the routes table, the middleware and the lifespan.

The lifespan owns everything long-lived: the store (and so its single writer thread), the
`httpx.AsyncClient` of outbound calls and the background jobs (`app/jobs.py`), started after the
store opens and stopped before it closes. Nothing is opened at import time.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect
from starlette.routing import Route

from app.burst import BurstCounter
from app.clock import Clock, system_clock
from app.devices import parse_networks, warm_up
from app.fields import FieldError
from app.geo import GeoIPDatabase, Locator
from app.jobs import Job, Jobs, Periodic
from app.jobs.audiences import audiences_job
from app.jobs.cost_pull import CostPuller
from app.jobs.outbox import OutboxWorker
from app.jobs.privacy import ldu_masking
from app.jobs.retention import retention_job
from app.paths import SMARTSCRIPT_DIR
from app.sealing import token_sealer
from app.services import Services
from app.settings import Settings
from app.snippet_asset import load_script
from app.store.backends import open_store
from app.tiktok_ads.client import MarketingClient, limiter_for
from app.web import (
    audiences_api,
    console,
    openapi,
    ops,
    outbox_api,
    owner_api,
    pages,
    reports_api,
    sdk,
    tiktok_ads_api,
    tracking,
)
from app.web.errors import (
    ApiError,
    api_error_handler,
    client_disconnect_handler,
    field_error_handler,
    http_error_handler,
)
from app.web.hosts import HostCheck
from app.web.middleware import AccessLog, RequestCounter, SecurityHeaders
from app.web.templates import make_templates

log = logging.getLogger("gangway")

# Every outbound call has an explicit timeout; TikTok's own is a setting.
CONNECT_TIMEOUT = 5.0
UPKEEP_PERIOD_SECONDS = 6 * 3600.0


def routes() -> list[Route]:
    return [
        # Public tracking surface (http-api.md section 1)
        Route("/lp/{slug}", pages.landing_page, methods=["GET", "HEAD"]),
        Route("/i/{app_key}", tracking.impression, methods=["GET", "HEAD", "POST", "OPTIONS"]),
        Route("/c/{app_key}", tracking.click, methods=["GET", "HEAD"]),
        Route(
            "/v1.0/c2s/click/app/{platform}/{app_id}",
            tracking.direct_click,
            methods=["GET", "HEAD"],
        ),
        Route("/smartscript.js", pages.smartscript, methods=["GET", "HEAD"]),
        Route("/banner.js", pages.banner, methods=["GET", "HEAD"]),
        Route("/qr.svg", pages.qr_code, methods=["GET", "HEAD"]),
        Route("/static/{path:path}", pages.static_file, methods=["GET", "HEAD"]),
        # App surface (section 2)
        Route("/api/v1/installs", sdk.post_install, methods=["POST"]),
        Route("/api/v1/events", sdk.post_event, methods=["POST"]),
        # Owner surface (section 3)
        Route("/api/v1/apps", owner_api.list_apps, methods=["GET"]),
        Route("/api/v1/apps/{app_key}", owner_api.get_app, methods=["GET"]),
        Route("/api/v1/apps/{app_key}", owner_api.put_app, methods=["PUT"]),
        Route("/api/v1/apps/{app_key}", owner_api.delete_app, methods=["DELETE"]),
        Route("/api/v1/apps/{app_key}/sdk_key/rotate", owner_api.rotate_sdk_key, methods=["POST"]),
        Route(
            "/api/v1/apps/{app_key}/integrations/tiktokweb_int",
            owner_api.get_integration,
            methods=["GET"],
        ),
        Route(
            "/api/v1/apps/{app_key}/integrations/tiktokweb_int",
            owner_api.put_integration,
            methods=["PUT"],
        ),
        Route(
            "/api/v1/apps/{app_key}/integrations/tiktokweb_int",
            owner_api.delete_integration,
            methods=["DELETE"],
        ),
        Route("/api/v1/apps/{app_key}/audiences", audiences_api.list_all, methods=["GET"]),
        Route("/api/v1/apps/{app_key}/audiences/{name}", audiences_api.get_one, methods=["GET"]),
        Route("/api/v1/apps/{app_key}/audiences/{name}", audiences_api.put_one, methods=["PUT"]),
        Route(
            "/api/v1/apps/{app_key}/audiences/{name}", audiences_api.delete_one, methods=["DELETE"]
        ),
        Route("/api/v1/partners/tiktokweb_int/events", owner_api.partner_events, methods=["GET"]),
        # The TikTok Ads connection and its cost pull (tiktok-ads.md)
        Route(
            "/api/v1/apps/{app_key}/integrations/tiktok_ads",
            tiktok_ads_api.get_connection,
            methods=["GET"],
        ),
        Route(
            "/api/v1/apps/{app_key}/integrations/tiktok_ads",
            tiktok_ads_api.put_connection,
            methods=["PUT"],
        ),
        Route(
            "/api/v1/apps/{app_key}/integrations/tiktok_ads",
            tiktok_ads_api.delete_connection,
            methods=["DELETE"],
        ),
        Route(
            "/api/v1/apps/{app_key}/integrations/tiktok_ads/oauth",
            tiktok_ads_api.post_oauth,
            methods=["POST"],
        ),
        Route("/api/v1/tiktok_ads/oauth/callback", tiktok_ads_api.oauth_callback, methods=["GET"]),
        Route("/api/v1/apps/{app_key}/cost/pull", tiktok_ads_api.post_pull, methods=["POST"]),
        Route("/api/v1/pages", owner_api.list_pages, methods=["GET"]),
        Route("/api/v1/pages/{slug}", owner_api.get_page, methods=["GET"]),
        Route("/api/v1/pages/{slug}", owner_api.put_page, methods=["PUT"]),
        Route("/api/v1/pages/{slug}", owner_api.delete_page, methods=["DELETE"]),
        Route("/api/v1/installs/{install_id}", owner_api.get_install, methods=["GET"]),
        Route("/api/v1/postbacks/retry", outbox_api.retry_failed, methods=["POST"]),
        Route("/api/v1/postbacks/{postback_id}", outbox_api.get_postback, methods=["GET"]),
        Route("/api/v1/postbacks/{postback_id}/retry", outbox_api.retry, methods=["POST"]),
        Route("/api/v1/reports/overview", reports_api.overview, methods=["GET"]),
        Route("/api/v1/raw/{kind}.csv", reports_api.raw_csv, methods=["GET"]),
        Route("/api/v1/cost", reports_api.post_cost, methods=["POST"]),
        Route("/api/v1/cost/rates", reports_api.post_rates, methods=["POST"]),
        Route("/api/v1/privacy/erase", reports_api.erase, methods=["POST"]),
        # Operations (section 4)
        Route("/healthz", ops.healthz, methods=["GET"]),
        Route("/metrics", ops.metrics, methods=["GET"]),
        Route("/openapi.json", openapi.openapi_json, methods=["GET"]),
        # The owner's console (console.md): HTML screens, left out of the OpenAPI document
        *console.routes(),
    ]


def create_app(
    settings: Settings, *, clock: Clock = system_clock, run_jobs: bool = True
) -> Starlette:
    """The app. `run_jobs=False` serves requests only: the background jobs (postback delivery)
    are left to another process, or, in tests, to the test."""
    settings = settings.with_secret()

    trusted_proxies = parse_networks(settings.trusted_proxies)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        geoip = GeoIPDatabase(Path(settings.geoip_db)) if settings.geoip_db else None
        await anyio.to_thread.run_sync(warm_up)
        store = await open_store(
            settings.db, batch_max=settings.writer_batch_max, sealer=token_sealer(settings)
        )
        # Tokens kept in clear by an older version (or written without a key) are sealed now.
        if sealed := await store.configs.seal_tokens():
            log.info("sealed %d access token(s) kept in clear", sealed)
        timeout = httpx.Timeout(settings.tiktok_timeout_seconds, connect=CONNECT_TIMEOUT)
        async with httpx.AsyncClient(timeout=timeout) as http:
            svc = Services(
                settings=settings,
                store=store,
                clock=clock,
                locator=Locator(trust_headers=settings.trust_geo_headers, database=geoip),
                burst=BurstCounter(settings.burst_limit),
                trusted_proxies=trusted_proxies,
                templates=make_templates(),
                scripts={
                    name: load_script(SMARTSCRIPT_DIR / f"{name}.js")
                    for name in ("smartscript", "banner")
                },
            )

            def marketing_api(app_key: str, token: str) -> MarketingClient:
                return MarketingClient(
                    http, settings.tiktok_api_url, token, limiter=limiter_for(app_key)
                )

            # Asked-for cost pulls run in any process that serves the owner API; the schedule
            # only where the jobs run.
            cost_pulls = CostPuller(store, http, clock, settings, scheduled=run_jobs)
            svc.http = http
            svc.request_cost_pull = cost_pulls.request
            scheduled: list[Job] = (
                [
                    OutboxWorker(store, http, clock, settings, wake=svc.outbox_wake),
                    # The store readies the days ahead at open; this keeps a long-running
                    # cluster ready, one node per period doing it.
                    Periodic(
                        "store-upkeep",
                        UPKEEP_PERIOD_SECONDS,
                        lambda: store.upkeep(clock()),
                        delay=UPKEEP_PERIOD_SECONDS,
                        leases=store.leases,
                        clock=clock,
                    ),
                    ldu_masking(store, clock, settings),
                    retention_job(store, settings, clock),
                    audiences_job(store, settings, clock, marketing_api),
                ]
                if run_jobs
                else []
            )
            jobs = Jobs([*scheduled, cost_pulls] if run_jobs else [])
            try:
                async with jobs:
                    yield {"services": svc, "jobs": jobs}
            finally:
                # Without the jobs, pulls asked for by the owner API still ran here.
                await cost_pulls.stop()
                await store.close()
                if geoip is not None:
                    geoip.close()

    app = Starlette(
        routes=routes(),
        middleware=[
            Middleware(AccessLog),
            Middleware(RequestCounter),
            Middleware(SecurityHeaders),
            Middleware(HostCheck, settings=settings),
        ],
        exception_handlers={
            ApiError: api_error_handler,
            FieldError: field_error_handler,
            HTTPException: http_error_handler,
            ClientDisconnect: client_disconnect_handler,
        },
        lifespan=lifespan,
    )
    # No route ends in a slash: a path with one is a 404 with the JSON error, not a 307 to
    # another path (a direct click URL with an empty app id was redirected, not refused).
    app.router.redirect_slashes = False
    return app
