"""The owner's reports: the overview, raw data, cost and rates, privacy erase (http-api.md 3,
reporting.md). Handler -> `app.reports` (pure) -> `store.reports`, `store.cost`,
`store.privacy`."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime, time, timedelta
from typing import TypeVar

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from app.accounts import Owner
from app.fields import FieldError
from app.reports import raw
from app.reports.overview import OverviewQuery
from app.reports.privacy import parse_erase
from app.services import Services, services
from app.store.records import AppRecord
from app.vocabulary import PARTNER
from app.web import report_service
from app.web.caller import require_owner
from app.web.errors import ApiError, json_object, read_body, read_json

T = TypeVar("T")
NO_STORE = {"Cache-Control": "no-store"}
# A cost or rates file: a year of daily rows for thousands of ads fits.
MAX_UPLOAD = 20 * 1024 * 1024
CSV_TYPES = frozenset({"text/csv", "text/plain", "application/csv", "application/vnd.ms-excel"})
EXPORT_BATCH = 1000


async def _app(svc: Services, owner: Owner, app_key: str | None) -> AppRecord:
    return await report_service.report_app(svc, owner, app_key)


def _query(request: Request, svc: Services, app: AppRecord) -> OverviewQuery:
    return report_service.report_query(svc, app, dict(request.query_params))


# -- overview ----------------------------------------------------------------------------------


async def overview(request: Request) -> Response:
    owner = await require_owner(request)
    svc = services(request)
    app = await _app(svc, owner, request.query_params.get("app_key"))
    body = await report_service.overview(svc, app, dict(request.query_params))
    return JSONResponse(body, headers=NO_STORE)


# -- raw data ----------------------------------------------------------------------------------


async def _mapped(
    batches: AsyncIterator[list[T]],
    fn: Callable[[T], Mapping[str, object]],
    filters: Mapping[str, str] | None = None,
) -> AsyncIterator[list[Mapping[str, object]]]:
    """Each batch of stored records as raw data rows, those the filters keep; closing this
    closes the store's cursor."""
    try:
        async for batch in batches:
            rows = [fn(item) for item in batch]
            yield [r for r in rows if raw.kept(r, filters)] if filters else rows
    finally:
        await batches.aclose()  # type: ignore[attr-defined]


def _bounds(query: OverviewQuery) -> tuple[float, float]:
    tz = query.tz
    start = datetime.combine(query.start, time(0), tz).timestamp()
    end = datetime.combine(query.end + timedelta(days=1), time(0), tz).timestamp()
    return start, end


async def raw_csv(request: Request) -> Response:
    owner = await require_owner(request)
    svc = services(request)
    kind = request.path_params["kind"]
    if kind not in raw.COLUMNS:
        raise ApiError(404, "not_found", f"no raw data {kind!r}; one of {', '.join(raw.KINDS)}")
    app = await _app(svc, owner, request.query_params.get("app_key"))
    query = _query(request, svc, app)
    try:
        filters = raw.checked_filters(kind, query.filters)
    except FieldError as exc:
        raise ApiError.from_field(exc) from None
    start, end = _bounds(query)
    columns = raw.COLUMNS[kind]
    reports = svc.store.reports
    rows: AsyncIterator[list[Mapping[str, object]]]
    if kind == "installs":
        rows = _mapped(
            reports.stream_installs(app.app_key, start, end, batch=EXPORT_BATCH),
            raw.install_row,
            filters,
        )
    elif kind == "events":
        rows = _mapped(
            reports.stream_events(app.app_key, start, end, batch=EXPORT_BATCH),
            lambda pair: raw.event_row(*pair),
            filters,
        )
    elif kind == "postbacks":
        rows = _mapped(
            reports.stream_postbacks(app.app_key, start, end, batch=EXPORT_BATCH),
            raw.postback_row,
        )
    else:
        integration = await svc.store.configs.get_integration(app.app_key, PARTNER)
        ccpa = bool(integration and integration.config.get("ccpa_limit"))
        unified = svc.settings.unified_pids
        states = svc.settings.ldu_states
        touch_kind = "click" if kind == "clicks" else "impression"
        rows = _mapped(
            reports.stream_touches(touch_kind, app.app_key, start, end, batch=EXPORT_BATCH),
            lambda rec: raw.touch_row(rec, unified, ccpa_limit=ccpa, covered_states=states),
            filters,
        )

    async def body() -> AsyncIterator[bytes]:
        yield raw.header(columns).encode("utf-8")
        async for batch in rows:
            text = raw.csv_lines(columns, batch)
            yield text.encode("utf-8", "backslashreplace")

    name = raw.filename(kind, app.app_key, query.start.isoformat(), query.end.isoformat())
    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers=NO_STORE | {"Content-Disposition": f'attachment; filename="{name}"'},
    )


# -- cost ----------------------------------------------------------------------------------------


async def _csv_upload(request: Request) -> tuple[str, str | None]:
    """The CSV text of a `text/csv` body or of a multipart form's `file`, and the form's
    `app_key` (None: not in the form)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > MAX_UPLOAD:
        raise ApiError(413, "too_large", f"body over {MAX_UPLOAD // 1024} KiB")
    form_app: str | None = None
    if content_type == "multipart/form-data":
        async with request.form(max_files=1, max_fields=10) as form:
            upload = form.get("file")
            field_app = form.get("app_key")
            form_app = field_app if isinstance(field_app, str) else None
            if not isinstance(upload, UploadFile):
                raise ApiError.invalid("file", "send the CSV as the form's file field")
            data = await upload.read(MAX_UPLOAD + 1)
            if len(data) > MAX_UPLOAD:
                raise ApiError(413, "too_large", f"file over {MAX_UPLOAD // 1024} KiB")
    elif content_type in CSV_TYPES:
        data = await read_body(request, MAX_UPLOAD)
    else:
        raise ApiError(415, "unsupported_media_type", "send text/csv or multipart/form-data")
    try:
        return data.decode("utf-8-sig"), form_app
    except UnicodeDecodeError:
        raise ApiError.invalid("file", "must be UTF-8 text") from None


async def post_cost(request: Request) -> Response:
    owner = await require_owner(request, configure=True)
    svc = services(request)
    text, form_app = await _csv_upload(request)
    app = await _app(svc, owner, request.query_params.get("app_key") or form_app)
    return JSONResponse(await report_service.upload_cost(svc, app, text), headers=NO_STORE)


async def post_rates(request: Request) -> Response:
    owner = await require_owner(request, configure=True)
    svc = services(request)
    text, form_app = await _csv_upload(request)
    app = await _app(svc, owner, request.query_params.get("app_key") or form_app)
    return JSONResponse(await report_service.upload_rates(svc, app, text), headers=NO_STORE)


# -- privacy erase -----------------------------------------------------------------------------


def _actor(request: Request, owner: Owner) -> str:
    """Who asked, without a secret: the console user, or the first characters of the admin
    token's SHA-256 (the form tokens are stored in)."""
    if owner.username is not None:
        return "user:" + owner.username
    _, _, token = request.headers.get("authorization", "").partition(" ")
    return "token:" + hashlib.sha256(token.strip().encode()).hexdigest()[:12]


async def erase(request: Request) -> Response:
    owner = await require_owner(request, configure=True)
    svc = services(request)
    body = json_object(await read_json(request))
    try:
        key = parse_erase(body)
    except FieldError as exc:
        raise ApiError.from_field(exc) from None
    if key.app_key is not None:
        await _app(svc, owner, key.app_key)
    elif not owner.is_full_admin:
        # An erase by ttclid reaches every app: only an owner of every app may ask for it.
        raise ApiError(403, "forbidden", "an erase by ttclid needs an admin of every app")
    counts = await svc.store.privacy.erase(key, actor=_actor(request, owner), now=svc.clock())
    return JSONResponse({"erased": counts}, headers=NO_STORE)
