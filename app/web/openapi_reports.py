"""The OpenAPI description of the reports routes (`app.web.reports_api`), kept beside the rest
of the document's builders in `app.web.openapi`, which includes it."""

from __future__ import annotations

from app.reports import raw
from app.reports.overview import GROUPS, MAX_DAYS
from app.web.openapi import (
    ADMIN,
    ADMIN_ERRORS,
    BODY_ERRORS,
    Operation,
    Schema,
    array,
    error,
    json_body,
    obj,
    ok,
    op,
    path_param,
    query,
    shared,
    string,
)

_COUNTS = {"type": "integer"}
_MONEY = string("A decimal amount")
_NULLABLE_RATE = string("A decimal ratio, 4 places; null when its divisor is zero", nullable=True)


def _figures() -> dict[str, Schema]:
    return {
        "impressions": _COUNTS,
        "impressions_all": _COUNTS,
        "clicks": _COUNTS,
        "clicks_all": _COUNTS,
        "installs": _COUNTS,
        "attributed_installs": _COUNTS,
        "installs_by_status": {"type": "object", "additionalProperties": _COUNTS},
        "installs_by_match_type": {"type": "object", "additionalProperties": _COUNTS},
        "reinstalls": _COUNTS,
        "rejected": _COUNTS,
        "events": {"type": "object", "additionalProperties": _COUNTS},
        "revenue": {
            "type": "object",
            "description": "event name -> currency -> amount",
            "additionalProperties": {"type": "object", "additionalProperties": _MONEY},
        },
        "revenue_in_report_currency": _MONEY,
        "revenue_unconverted": array(string("A currency without a rate for some day")),
        "report_currency": string(),
        "cost": _MONEY,
        "ecpi": _NULLABLE_RATE,
        "roas": _NULLABLE_RATE,
        "click_to_install_rate": _NULLABLE_RATE,
    }


def _range_params() -> list[Schema]:
    return [
        query("app_key", "The app", required=True),
        query("from", "First day, YYYY-MM-DD in the report time zone (default: 6 days before to)"),
        query("to", "Last day, inclusive (default: today)"),
        query("timezone", "IANA zone for days (default: the app's report_timezone)"),
    ]


def reports_operations() -> dict[tuple[str, str], Operation]:
    tag = "reports"
    bad = {"400": shared("BadRequest"), **ADMIN_ERRORS, "404": shared("NotFound")}
    figures = _figures()
    row = obj(
        {g: string() for g in GROUPS} | figures,
        list(figures),
        description="The group's values (those of group_by), then its figures",
    )
    totals = obj(figures, list(figures))
    overview = obj(
        {
            "app_key": string(),
            "from": string(format="date"),
            "to": string(format="date"),
            "timezone": string(),
            "group_by": array(string(enum=list(GROUPS))),
            "filters": {"type": "object", "additionalProperties": string()},
            "rows": array(row),
            "totals": totals,
            "previous": obj(
                {"from": string(format="date"), "to": string(format="date"), "totals": totals},
                ["from", "to", "totals"],
            ),
        },
        ["rows", "totals", "previous"],
    )
    upload = obj(
        {
            "imported": _COUNTS,
            "changed": _COUNTS,
            "rejected": array(obj({"line": _COUNTS, "error": string()}, ["line", "error"])),
        },
        ["imported", "changed", "rejected"],
    )
    csv_body: Schema = {
        "required": True,
        "description": "CSV (UTF-8, header row), as the body or as the `file` of a form",
        "content": {
            "text/csv": {"schema": string()},
            "multipart/form-data": {
                "schema": obj({"file": string(format="binary"), "app_key": string()}, ["file"])
            },
        },
    }
    upload_errors = {
        **bad,
        "413": error("File over 20 MiB (`too_large`)"),
        "415": error("Not CSV or a multipart form (`unsupported_media_type`)"),
    }
    counts = obj({t: _COUNTS for t in ("installs", "events", "clicks", "impressions", "postbacks")})
    return {
        ("/api/v1/reports/overview", "get"): op(
            "The overview: figures per group, totals and the previous period's totals",
            tag,
            ADMIN,
            {"200": ok("The overview", overview), **bad},
            parameters=[
                *_range_params(),
                query("group_by", f"Comma list of {', '.join(GROUPS)}"),
                *(query(d, f"Only this {d}") for d in GROUPS if d != "date"),
            ],
            description=f"A range is at most {MAX_DAYS} days; ecpi and roas are null where cost "
            "or installs are zero",
        ),
        ("/api/v1/raw/{kind}.csv", "get"): op(
            "Raw data as streamed CSV",
            tag,
            ADMIN,
            {
                "200": ok(
                    "CSV with a header row; Content-Disposition names the app and range",
                    string(),
                    "text/csv",
                ),
                **bad,
            },
            parameters=[
                path_param(
                    "kind", f"One of {', '.join(raw.KINDS)}", "^(" + "|".join(raw.KINDS) + ")$"
                ),
                *_range_params(),
            ],
        ),
        ("/api/v1/cost", "post"): op(
            "Upload cost (replaces rows with the same date, source and ids)",
            tag,
            ADMIN,
            {"200": ok("What was imported and the lines refused", upload), **upload_errors},
            parameters=[query("app_key", "The app (or the form's app_key)")],
            body=csv_body,
            description="Columns: date, media_source, campaign, campaign_id, adset, adset_id, "
            "ad, ad_id, country, cost, currency",
        ),
        ("/api/v1/cost/rates", "post"): op(
            "Upload currency rates to the app's report currency",
            tag,
            ADMIN,
            {"200": ok("What was imported and the lines refused", upload), **upload_errors},
            parameters=[query("app_key", "The app (or the form's app_key)")],
            body=csv_body,
            description="Columns: date, currency, rate_to_report_currency",
        ),
        ("/api/v1/privacy/erase", "post"): op(
            "Erase a user's data: rows changed per table",
            tag,
            ADMIN,
            {"200": ok("Rows changed", obj({"erased": counts}, ["erased"])), **bad, **BODY_ERRORS},
            body=json_body(
                obj(
                    {"app_key": string(), "app_instance_id": string(), "ttclid": string()},
                    description="app_key with app_instance_id, or ttclid alone",
                )
            ),
        ),
    }
