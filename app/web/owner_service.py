"""What the owner can do, as plain functions: the JSON owner API and the console both call
these, so what a screen can do the API can do, and the reverse (console.md).

Each takes the `Owner` asking (`app.accounts`): a user limited to some apps gets a 404 for
anything of another app, exactly as if it did not exist, and lists show only their apps.
Errors are `ApiError` (a 400 names its `field` as a JSON path), which the API answers as JSON
and the console shows next to the form field of that name.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from app import configs
from app.accounts import Owner
from app.clock import iso
from app.fields import FieldError
from app.mapping import MappingError, validate_af_parameters
from app.postbacks import tiktok
from app.postbacks.postback import LoggedAttempt
from app.services import Services
from app.store.records import AppRecord, IntegrationRecord, PageRecord
from app.vocabulary import APP_KEY_RE, PARTNER
from app.web.errors import ApiError

# Only these states have a next attempt to show.
WAITING = ("pending", "retrying")
NO_TOKEN_WARNING = "access_token is not set: postbacks cannot be delivered"


def validated(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except FieldError as exc:
        raise ApiError.from_field(exc) from None
    except MappingError as exc:
        raise ApiError.invalid(exc.field, str(exc)) from None


def _no_app(app_key: str) -> ApiError:
    return ApiError(404, "not_found", f"no app {app_key!r}")


# -- JSON shapes ---------------------------------------------------------------------------------


def app_json(app: AppRecord) -> dict[str, Any]:
    return {
        "app_key": app.app_key,
        **app.config,
        "sdk_key": app.sdk_key,
        "created_at": iso(app.created_at),
        "updated_at": iso(app.updated_at),
    }


def integration_json(rec: IntegrationRecord) -> dict[str, Any]:
    # The access token is write-only: an owner can see that one is set, never read it back.
    return {
        "app_key": rec.app_key,
        "partner": rec.partner,
        **rec.config,
        "access_token_set": bool(rec.access_token),
        "updated_at": iso(rec.updated_at),
    }


def page_json(page: PageRecord) -> dict[str, Any]:
    return {
        "slug": page.slug,
        **page.config,
        "created_at": iso(page.created_at),
        "updated_at": iso(page.updated_at),
    }


# -- apps ----------------------------------------------------------------------------------------


async def list_apps(svc: Services, owner: Owner) -> list[AppRecord]:
    return [a for a in await svc.store.configs.list_apps() if owner.sees(a.app_key)]


async def get_app(svc: Services, owner: Owner, app_key: str) -> AppRecord:
    app = await svc.store.configs.get_app(app_key) if owner.sees(app_key) else None
    if app is None:
        raise _no_app(app_key)
    return app


async def save_app(svc: Services, owner: Owner, app_key: str, body: Any) -> AppRecord:
    """Create or replace an app. A user limited to some apps cannot create others."""
    app_key = validated(configs.validate_app_key, app_key)
    if not owner.sees(app_key):
        raise ApiError(403, "forbidden", f"you may not manage app {app_key!r}", "app_key")
    config = validated(configs.validate_app, body)
    return await svc.store.configs.put_app(app_key, config, svc.clock())


async def delete_app(svc: Services, owner: Owner, app_key: str) -> None:
    if not owner.sees(app_key) or not await svc.store.configs.delete_app(app_key):
        raise _no_app(app_key)


async def rotate_sdk_key(svc: Services, owner: Owner, app_key: str) -> AppRecord:
    app = await get_app(svc, owner, app_key)
    rotated = await svc.store.configs.rotate_sdk_key(app.app_key, svc.clock())
    if rotated is None:
        raise _no_app(app_key)
    return rotated


# -- the TikTok integration ----------------------------------------------------------------------


async def get_integration(svc: Services, owner: Owner, app_key: str) -> IntegrationRecord:
    app = await get_app(svc, owner, app_key)
    rec = await svc.store.configs.get_integration(app.app_key, PARTNER)
    if rec is None:
        raise ApiError(404, "not_found", f"app {app.app_key!r} has no {PARTNER}")
    return rec


async def save_integration(
    svc: Services, owner: Owner, app_key: str, body: Any
) -> tuple[IntegrationRecord, str | None]:
    """Store the integration; answers it and a warning (an enabled one without a token is
    stored anyway, the owner may add the token next, but said plainly)."""
    app = await get_app(svc, owner, app_key)
    config, token = validated(configs.validate_integration, body)
    rec = await svc.store.configs.put_integration(app.app_key, PARTNER, config, token, svc.clock())
    # A dry run sends nothing, so it needs no token.
    needs_token = config["enabled"] and not config["dry_run"]
    warning = NO_TOKEN_WARNING if needs_token and not rec.access_token else None
    return rec, warning


async def delete_integration(svc: Services, owner: Owner, app_key: str) -> None:
    app = await get_app(svc, owner, app_key)
    if not await svc.store.configs.delete_integration(app.app_key, PARTNER):
        raise ApiError(404, "not_found", f"app {app.app_key!r} has no {PARTNER}")


# -- pages ---------------------------------------------------------------------------------------


async def list_pages(svc: Services, owner: Owner) -> list[PageRecord]:
    return [p for p in await svc.store.configs.list_pages() if owner.sees(p.app_key)]


async def get_page(svc: Services, owner: Owner, slug: str) -> PageRecord:
    page = await svc.store.configs.get_page(slug)
    if page is None or not owner.sees(page.app_key):
        raise ApiError(404, "not_found", f"no page {slug!r}")
    return page


async def save_page(svc: Services, owner: Owner, slug: str, body: Any) -> PageRecord:
    slug = validated(configs.validate_slug, slug)
    config = validated(configs.validate_page, body, validate_af_parameters)
    existing = await svc.store.configs.get_page(slug)
    if existing is not None and not owner.sees(existing.app_key):
        # Taken by an app this user cannot see: the same answer as a missing app would get.
        raise ApiError(403, "forbidden", f"you may not manage page {slug!r}", "slug")
    app = (
        await svc.store.configs.get_app(config["app_key"])
        if owner.sees(config["app_key"])
        else None
    )
    if app is None:
        raise ApiError.invalid("app_key", f"no app {config['app_key']!r}")
    for i, cta in enumerate(config["ctas"]):
        if cta not in app.config["destinations"]:
            raise ApiError.invalid(f"ctas[{i}]", f"app {app.app_key!r} has no {cta} destination")
    return await svc.store.configs.put_page(slug, config, svc.clock())


async def delete_page(svc: Services, owner: Owner, slug: str) -> None:
    await get_page(svc, owner, slug)
    if not await svc.store.configs.delete_page(slug):
        raise ApiError(404, "not_found", f"no page {slug!r}")


# -- install receipts ----------------------------------------------------------------------------


async def install_receipt(svc: Services, owner: Owner, install_id: str) -> dict[str, Any]:
    """An install as stored, its conversion data, its attribution receipt and its postbacks."""
    install = await svc.store.installs.get_install(install_id)
    if install is None or not owner.sees(install.app_key):
        raise ApiError(404, "not_found", "no such install")
    row = asdict(install)
    receipt = row.pop("receipt")
    answer = row.pop("answer")
    # Flags as 0/1, the install's time last under its API name: the answer this route has
    # always given.
    for flag in ("is_limited_data_use", "is_retained_organic"):
        row[flag] = int(row[flag])
    row["install_time"] = iso(row.pop("time"))
    row["received_at"] = iso(row["received_at"])
    row["touch_time"] = iso(row["touch_time"])
    postbacks = [
        {
            "id": p.id,
            "event": p.event,
            "state": p.state,
            "attempts": p.attempts,
            "last_code": p.last_code,
            "last_message": p.last_message,
        }
        for p in await svc.store.outbox.postbacks_for(install.id)
    ]
    return {**row, "conversion_data": answer, "receipt": receipt, "postbacks": postbacks}


# -- postbacks -----------------------------------------------------------------------------------


def _sent_json(payload: dict[str, Any], attempt: LoggedAttempt | None) -> dict[str, Any] | None:
    """The request body as the last attempt sent it, narrowed to this postback's event (the
    other events of its batch are other postbacks). None before any request was made."""
    if attempt is None or not attempt.pixel_code:
        return None
    return tiktok.build_request(
        pixel_code=attempt.pixel_code,
        events=[payload],
        test_event_code=attempt.test_event_code,
    )


async def postback_detail(svc: Services, owner: Owner, postback_id: str) -> dict[str, Any]:
    found = await svc.store.outbox.get_postback(postback_id)
    if found is None or not owner.sees(found.postback.app_key):
        raise ApiError(404, "not_found", "no such postback")
    p, log = found.postback, found.attempts
    last_request = next((a for a in reversed(log) if a.pixel_code), None)
    return {
        "id": p.id,
        "app_key": p.app_key,
        "partner": p.partner,
        "kind": p.kind,
        "subject_id": p.subject_id,
        "event": p.event,
        "state": p.state,
        "attempts": p.attempts,
        "created_at": iso(p.created_at),
        "sent_at": iso(p.sent_at),
        "next_attempt_at": iso(p.next_attempt_at) if p.state in WAITING else None,
        "last_http_status": p.last_http_status,
        "last_code": p.last_code,
        "last_message": p.last_message,
        "last_request_id": p.last_request_id,
        "payload": p.payload,
        "sent_json": _sent_json(p.payload, last_request),
        "attempt_log": [
            {
                "time": iso(a.time),
                "state": a.state,
                "http_status": a.http_status,
                "code": a.code,
                "message": a.message,
                "request_id": a.request_id,
                "batch_size": a.batch_size,
            }
            for a in log
        ],
    }


async def retry_postback(svc: Services, owner: Owner, postback_id: str) -> None:
    found = await svc.store.outbox.get_postback(postback_id)
    if found is None or not owner.sees(found.postback.app_key):
        raise ApiError(404, "not_found", "no such postback")
    state = await svc.store.outbox.retry_postback(postback_id, svc.clock())
    if state is None:
        raise ApiError(404, "not_found", "no such postback")
    if state == "sent":
        raise ApiError(409, "already_sent", "this postback was delivered; it is not sent again")
    svc.nudge_outbox()


async def retry_failed(svc: Services, owner: Owner, app_key: Any) -> int:
    if not isinstance(app_key, str) or not app_key:
        raise ApiError.invalid("app_key", "app_key is required")
    if (
        not APP_KEY_RE.fullmatch(app_key)
        or not owner.sees(app_key)
        or await svc.store.configs.get_app(app_key) is None
    ):
        raise ApiError(404, "not_found", "no such app", "app_key")
    retried = await svc.store.outbox.retry_failed_postbacks(app_key, svc.clock())
    if retried:
        svc.nudge_outbox()
    return retried
