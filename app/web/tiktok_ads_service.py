"""What the owner can do with the TikTok Ads connection (tiktok-ads.md sections 1 and 2), as plain
functions shared by the owner API (`app.web.tiktok_ads_api`) and the console.

- The connection is the app's integration `tiktok_ads`; its token is write-only.
- Saving it with a token (or connecting by OAuth) clears `needs_reauth` and asks TikTok for the
  advertisers' currency and time zone at once, so the owner sees a wrong token now rather than
  at the next pull; TikTok being unreachable then is a warning, not a refusal.
- OAuth, when `GANGWAY_TIKTOK_APP_ID` and `GANGWAY_TIKTOK_APP_SECRET` are set: `consent_url`
  makes a signed, single-use `state` (`app.tiktok_ads.oauth`); `oauth_callback` checks it,
  records its nonce as used, exchanges the `auth_code` and stores the token. Disconnecting
  revokes the token at TikTok (best effort) and forgets it.
"""

from __future__ import annotations

import logging
from typing import Any

from app.accounts import Owner
from app.clock import iso
from app.services import Services
from app.store.records import IntegrationRecord
from app.tiktok_ads import oauth
from app.tiktok_ads.client import MarketingClient, MarketingError, NeedsReauth, limiter_for
from app.tiktok_ads.connection import (
    CONNECTED,
    NEEDS_REAUTH,
    PARTNER,
    ConnectionState,
    advertiser_info,
    connection_json,
    validate_connection,
)
from app.web.errors import ApiError
from app.web.owner_service import get_app, validated

log = logging.getLogger("gangway.tiktok_ads")

CALLBACK_PATH = "/api/v1/tiktok_ads/oauth/callback"
RECENT_PULLS = 10
MAX_PULL_DAYS = 365
UNREACHABLE_WARNING = "TikTok could not be asked for the advertisers' currency and time zone: "


def _client(svc: Services, app_key: str, token: str) -> MarketingClient:
    if svc.http is None:
        raise ApiError(409, "unavailable", "outbound calls are not set up in this process")
    # One attempt: an owner waiting on a form should not wait through a backoff.
    return MarketingClient(
        svc.http,
        svc.settings.tiktok_api_url,
        token,
        limiter=limiter_for(app_key),
        max_attempts=1,
        app_key=app_key,
    )


def _no_connection(app_key: str) -> ApiError:
    return ApiError(404, "not_found", f"app {app_key!r} has no TikTok Ads connection")


async def _integration(svc: Services, owner: Owner, app_key: str) -> IntegrationRecord:
    app = await get_app(svc, owner, app_key)
    rec = await svc.store.configs.get_integration(app.app_key, PARTNER)
    if rec is None:
        raise _no_connection(app.app_key)
    return rec


async def _answer(svc: Services, rec: IntegrationRecord) -> dict[str, Any]:
    state = await svc.store.tiktok_ads.connection_state(rec.app_key)
    pulls = await svc.store.tiktok_ads.recent_pulls(rec.app_key, RECENT_PULLS)
    return connection_json(
        rec.config,
        bool(rec.access_token),
        state,
        pulls,
        app_key=rec.app_key,
        updated_at=iso(rec.updated_at),
        now=svc.clock(),
    )


async def get_connection(svc: Services, owner: Owner, app_key: str) -> dict[str, Any]:
    return await _answer(svc, await _integration(svc, owner, app_key))


async def refresh_advertisers(svc: Services, rec: IntegrationRecord) -> str | None:
    """Ask TikTok for the advertisers' currency and time zone and keep them with the state;
    answers a warning when TikTok could not be asked. A refused token is `needs_reauth`."""
    if not rec.access_token:
        return None
    client = _client(svc, rec.app_key, rec.access_token)
    wanted = [str(a) for a in rec.config.get("advertiser_ids", [])]
    try:
        items = await client.advertiser_info(wanted)
    except NeedsReauth as exc:
        await _set_state(svc, rec.app_key, NEEDS_REAUTH, exc.message, ())
        return f"TikTok refused the access token: {exc.message}"
    except MarketingError as exc:
        return UNREACHABLE_WARNING + exc.message
    infos = [i for i in (advertiser_info(item) for item in items) if i is not None]
    await _set_state(svc, rec.app_key, CONNECTED, None, tuple(infos))
    missing = sorted(set(wanted) - {i.advertiser_id for i in infos})
    if missing:
        return f"TikTok knows no advertiser {', '.join(missing)} for this token"
    return None


async def _set_state(
    svc: Services, app_key: str, state: str, message: str | None, advertisers: tuple[Any, ...]
) -> None:
    await svc.store.tiktok_ads.set_connection_state(
        ConnectionState(app_key, state, message, advertisers, svc.clock())
    )


async def _reauthorised(svc: Services, app_key: str) -> None:
    """A new token is the owner's answer to `needs_reauth`: pulls may run again."""
    before = await svc.store.tiktok_ads.connection_state(app_key)
    if before is not None and before.state != CONNECTED:
        await _set_state(svc, app_key, CONNECTED, None, before.advertisers)


async def save_connection(
    svc: Services, owner: Owner, app_key: str, body: Any
) -> tuple[dict[str, Any], str | None]:
    app = await get_app(svc, owner, app_key)
    config, token = validated(validate_connection, body)
    rec = await svc.store.configs.put_integration(app.app_key, PARTNER, config, token, svc.clock())
    if token is not None:
        await _reauthorised(svc, app.app_key)
    warning = None
    if not rec.access_token:
        warning = "access_token is not set: nothing can be pulled"
    else:
        warning = await refresh_advertisers(svc, rec)
    return await _answer(svc, rec), warning


async def delete_connection(svc: Services, owner: Owner, app_key: str) -> None:
    rec = await _integration(svc, owner, app_key)
    settings = svc.settings
    if rec.access_token and settings.tiktok_app_id and settings.tiktok_app_secret:
        # Best effort: the owner asked to forget the token, and forgetting it does not depend
        # on TikTok answering (a token of a pasted connection may not be this app's to revoke).
        try:
            await _client(svc, rec.app_key, rec.access_token).revoke_token(
                settings.tiktok_app_id, settings.tiktok_app_secret.reveal()
            )
        except (MarketingError, ApiError) as exc:
            log.warning("revoking the TikTok Ads token of %s failed: %s", rec.app_key, exc)
    await svc.store.configs.delete_integration(rec.app_key, PARTNER)


async def request_pull(svc: Services, owner: Owner, app_key: str, body: Any) -> None:
    """Start a pull in the background: 404 without a connection, 409 when it needs the
    owner or one is running."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ApiError.invalid(None, "body must be a JSON object")
    days = body.get("days")
    if days is not None and (
        isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_PULL_DAYS
    ):
        raise ApiError.invalid("days", f"must be a whole number from 1 to {MAX_PULL_DAYS}")
    rec = await _integration(svc, owner, app_key)
    if not rec.access_token:
        raise ApiError(409, "no_token", "the connection has no access_token")
    state = await svc.store.tiktok_ads.connection_state(rec.app_key)
    if state is not None and state.state == NEEDS_REAUTH:
        raise ApiError(
            409, NEEDS_REAUTH, f"the connection needs re-authorising: {state.message or ''}"
        )
    if svc.request_cost_pull is None:
        raise ApiError(409, "unavailable", "cost pulls do not run in this process")
    if not svc.request_cost_pull(rec.app_key, days):
        raise ApiError(409, "running", "a cost pull of this app is running")


# -- OAuth ---------------------------------------------------------------------------------------


def oauth_enabled(svc: Services) -> bool:
    return bool(svc.settings.tiktok_app_id and svc.settings.tiktok_app_secret)


async def consent_url(svc: Services, owner: Owner, app_key: str, origin: str) -> str:
    app = await get_app(svc, owner, app_key)
    if not oauth_enabled(svc):
        raise ApiError(
            409,
            "oauth_not_configured",
            "set GANGWAY_TIKTOK_APP_ID and GANGWAY_TIKTOK_APP_SECRET, or paste a token",
        )
    state = oauth.make_state(svc.settings.secret_key.reveal(), app.app_key, svc.clock())
    return oauth.consent_url(
        svc.settings.tiktok_api_url, svc.settings.tiktok_app_id, origin + CALLBACK_PATH, state
    )


class ConsentDeclined(Exception):  # noqa: N818 - an outcome the owner is shown, not a fault
    """TikTok came back with a good state but no code: the owner declined or cancelled."""

    def __init__(self, app_key: str) -> None:
        super().__init__(app_key)
        self.app_key = app_key


async def oauth_callback(svc: Services, params: dict[str, str]) -> str:
    """Connect the app named by a good `state` with the token `auth_code` gives; answers its
    app key. A forged, expired or replayed state is a 400, and nothing is exchanged; a good
    state without a code (consent declined) is `ConsentDeclined`."""
    if not oauth_enabled(svc):
        raise ApiError(409, "oauth_not_configured", "OAuth is not configured on this server")
    code = params.get("auth_code") or params.get("code")
    raw_state = params.get("state")
    if not raw_state:
        raise ApiError.invalid("state", "state is required")
    now = svc.clock()
    try:
        state = oauth.read_state(svc.settings.secret_key.reveal(), raw_state, now=now)
    except oauth.BadState as exc:
        raise ApiError.invalid("state", str(exc)) from None
    if not code:
        # The state is ours and good: the owner said no on TikTok's page. They go back to the
        # screen they came from and are told so; nothing is changed.
        raise ConsentDeclined(state.app_key)
    app = await svc.store.configs.get_app(state.app_key)
    if app is None:
        raise ApiError(404, "not_found", f"no app {state.app_key!r}")
    # Used before the exchange: a replay must not get as far as TikTok.
    keep = oauth.STATE_MAX_AGE_SECONDS * 2
    if not await svc.store.tiktok_ads.use_oauth_state(state.nonce, now, keep):
        raise ApiError.invalid("state", "this connect link was used already; start again")
    settings = svc.settings
    try:
        token, advertiser_ids = await _client(svc, app.app_key, "").exchange_auth_code(
            settings.tiktok_app_id, settings.tiktok_app_secret.reveal(), code
        )
    except MarketingError as exc:
        raise ApiError(
            502, "tiktok_refused", f"TikTok refused the exchange: {exc.message}"
        ) from None
    existing = await svc.store.configs.get_integration(app.app_key, PARTNER)
    if existing is not None:
        config = dict(existing.config)
    else:
        config, _ = validated(validate_connection, {"advertiser_ids": advertiser_ids or ["0"]})
    if advertiser_ids and not set(config.get("advertiser_ids", [])) <= set(advertiser_ids):
        config["advertiser_ids"] = advertiser_ids
    rec = await svc.store.configs.put_integration(app.app_key, PARTNER, config, token, now)
    await _reauthorised(svc, app.app_key)
    warning = await refresh_advertisers(svc, rec)
    if warning:
        log.warning("TikTok Ads connect of %s: %s", app.app_key, warning)
    return app.app_key
