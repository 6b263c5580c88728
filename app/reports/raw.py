"""Raw data rows (`reporting.md` section 3): columns, CSV cells, masking. Pure.

Every export is a header and one row per record, times ISO 8601 UTC. A cell starting with `=`,
`+`, `-`, `@`, a tab or a carriage return is prefixed with `'` so a spreadsheet shows it as text
(CSV injection). Rows of limited-data-use users (`postbacks.md` section 4) show the IP cut to
its /24 or /48 network and no user agent or device ids; postbacks of such users have the same
fields masked in the JSON sent.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from app.clock import iso
from app.conversions import Event, Install
from app.fields import FieldError
from app.postbacks import tiktok
from app.postbacks.postback import PostbackRecord
from app.touches import TouchRecord

INSTALL_CSV_COLUMNS: tuple[str, ...] = tuple(
    """install_id install_time app_key platform status match_type media_source
    original_media_source attributed_touch_type attributed_touch_time campaign campaign_id adset
    adset_id ad ad_id channel site_id af_sub1 af_sub2 af_sub3 af_sub4 af_sub5 ttclid
    deep_link_value original_url ip country region user_agent os_version device_model language
    app_instance_id idfa idfv gaid android_id is_limited_data_use is_retained_organic""".split()
)
EVENT_ONLY_COLUMNS = (
    "event_id",
    "event_time",
    "event_name",
    "event_revenue",
    "event_currency",
    "event_value",
)
EVENT_CSV_COLUMNS: tuple[str, ...] = (
    *INSTALL_CSV_COLUMNS[:2],
    *EVENT_ONLY_COLUMNS,
    *INSTALL_CSV_COLUMNS[2:],
)
TOUCH_CSV_COLUMNS: tuple[str, ...] = tuple(
    """touch_id touch_time app_key media_source original_media_source campaign campaign_id adset
    adset_id ad ad_id channel site_id af_sub1 af_sub2 af_sub3 af_sub4 af_sub5 ttclid
    deep_link_value original_url referrer page_slug pvid ip country region user_agent os_family
    os_version device_model browser in_app language gpc verdict verdict_reasons flags params
    is_limited_data_use""".split()
)
CLICK_CSV_COLUMNS: tuple[str, ...] = (*TOUCH_CSV_COLUMNS, "platform", "destination", "claimed_by")
POSTBACK_CSV_COLUMNS: tuple[str, ...] = tuple(
    """postback_id created_at app_key partner kind subject_id event state attempts
    last_http_status last_code last_message sent_at payload""".split()
)
COLUMNS = {
    "installs": INSTALL_CSV_COLUMNS,
    "events": EVENT_CSV_COLUMNS,
    "clicks": CLICK_CSV_COLUMNS,
    "impressions": TOUCH_CSV_COLUMNS,
    "postbacks": POSTBACK_CSV_COLUMNS,
}
KINDS = tuple(COLUMNS)
INJECTION_STARTS = ("=", "+", "-", "@", "\t", "\r")
DEVICE_ID_COLUMNS = ("idfa", "idfv", "gaid", "android_id")
_TOUCH_PARAM_COLUMNS = {
    "campaign": "c",
    "campaign_id": "af_c_id",
    "adset": "af_adset",
    "adset_id": "af_adset_id",
    "ad": "af_ad",
    "ad_id": "af_ad_id",
    "channel": "af_channel",
    "site_id": "af_siteid",
    "af_sub1": "af_sub1",
    "af_sub2": "af_sub2",
    "af_sub3": "af_sub3",
    "af_sub4": "af_sub4",
    "af_sub5": "af_sub5",
    "deep_link_value": "deep_link_value",
}


_INJECTION_FIRST = frozenset(INJECTION_STARTS)


def cell(value: object) -> str:
    """One CSV cell: None empty, flags true/false, documents JSON, injection neutralised."""
    if value is None:
        return ""
    if isinstance(value, str):  # the common case, first
        if value and value[0] in _INJECTION_FIRST:
            return "'" + value
        return value
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    else:
        text = str(value)
    if text.startswith(INJECTION_STARTS):
        return "'" + text
    return text


def truncate_ip(ip: str | None) -> str | None:
    """An address cut to its /24 (IPv4) or /48 (IPv6) network, as text (`198.51.100.0`)."""
    if not ip:
        return ip
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def install_row(install: Install) -> dict[str, object]:
    row: dict[str, object] = {
        "install_id": install.id,
        "install_time": iso(install.time),
        "attributed_touch_type": install.touch_type,
        "attributed_touch_time": iso(install.touch_time),
    }
    for column in INSTALL_CSV_COLUMNS:
        if column not in row:
            row[column] = getattr(install, column)
    if install.is_limited_data_use:
        row["ip"] = truncate_ip(install.ip)
        row["user_agent"] = None
        for column in DEVICE_ID_COLUMNS:
            row[column] = None
    return row


def event_row(event: Event, install: Install) -> dict[str, object]:
    row = install_row(install)
    row.update(
        event_id=event.event_id,
        event_time=iso(event.event_time),
        event_name=event.event_name,
        event_revenue=event.revenue,
        event_currency=event.currency,
        event_value=event.event_value,
        media_source=event.media_source or install.media_source,
    )
    return row


def touch_limited(touch: Any, ccpa_limit: bool, covered_states: frozenset[str]) -> bool:
    return tiktok.limited_data_use(
        ccpa_limit=ccpa_limit,
        country=touch.country,
        region=touch.region,
        gpc=touch.gpc,
        covered_states=covered_states,
    )


def touch_row(
    rec: TouchRecord,
    unified: Mapping[str, str],
    *,
    ccpa_limit: bool,
    covered_states: frozenset[str],
) -> dict[str, object]:
    t = rec.touch
    limited = touch_limited(t, ccpa_limit, covered_states)
    row: dict[str, object] = {
        "touch_id": t.id,
        "touch_time": iso(t.time),
        "app_key": t.app_key,
        "media_source": unified.get(t.pid, t.pid) if t.pid else None,
        "original_media_source": t.pid,
        **{c: t.params.get(p) for c, p in _TOUCH_PARAM_COLUMNS.items()},
        "ttclid": t.ttclid,
        "original_url": t.original_url,
        "referrer": t.referrer,
        "page_slug": rec.page_slug,
        "pvid": t.pvid,
        "ip": truncate_ip(t.ip) if limited else t.ip,
        "country": t.country,
        "region": t.region,
        "user_agent": None if limited else t.user_agent,
        "os_family": t.os_family,
        "os_version": t.os_version,
        "device_model": t.device_model,
        "browser": t.browser,
        "in_app": rec.in_app,
        "language": rec.language,
        "gpc": t.gpc,
        "verdict": t.verdict,
        "verdict_reasons": ",".join(t.verdict_reasons),
        "flags": ",".join(rec.flags),
        "params": dict(rec.all_params),
        "is_limited_data_use": limited,
    }
    if t.kind == "click":
        row.update(platform=t.platform, destination=rec.destination, claimed_by=t.claimed_by)
    return row


def _mask_payload(value: Any) -> Any:
    """The JSON sent for a limited user, with its IP cut and user agent left out."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k == "ip" and isinstance(v, str):
                out[k] = truncate_ip(v)
            elif k == "user_agent":
                continue
            else:
                out[k] = _mask_payload(v)
        return out
    if isinstance(value, list):
        return [_mask_payload(v) for v in value]
    return value


def _is_limited_payload(value: Any) -> bool:
    if isinstance(value, dict):
        return value.get("limited_data_use") is True or any(
            _is_limited_payload(v) for v in value.values()
        )
    if isinstance(value, list):
        return any(_is_limited_payload(v) for v in value)
    return False


def postback_row(rec: PostbackRecord) -> dict[str, object]:
    payload = _mask_payload(rec.payload) if _is_limited_payload(rec.payload) else rec.payload
    return {
        "postback_id": rec.id,
        "created_at": iso(rec.created_at),
        "app_key": rec.app_key,
        "partner": rec.partner,
        "kind": rec.kind,
        "subject_id": rec.subject_id,
        "event": rec.event,
        "state": rec.state,
        "attempts": rec.attempts,
        "last_http_status": rec.last_http_status,
        "last_code": rec.last_code,
        "last_message": rec.last_message,
        "sent_at": iso(rec.sent_at),
        "payload": payload,
    }


def checked_filters(kind: str, filters: Mapping[str, str]) -> dict[str, str]:
    """The overview's filters (media source, campaign, country, platform...) for raw data of
    `kind`: each must be one of its columns; FieldError names one that is not."""
    columns = COLUMNS[kind]
    for name in filters:
        if name not in columns:
            raise FieldError(name, f"raw {kind} have no {name} column to filter on")
    return dict(filters)


def kept(row: Mapping[str, object], filters: Mapping[str, str]) -> bool:
    """Whether a raw row has every filtered value (an empty cell matches an empty filter, as a
    rollup's empty dimension does)."""
    return all(str(row.get(name) or "") == value for name, value in filters.items())


def csv_lines(columns: Sequence[str], rows: Iterable[Mapping[str, object]]) -> str:
    """CSV text of `rows` (no header), one line per row, CRLF as RFC 4180 writes it."""
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([cell(row.get(c)) for c in columns])
    return out.getvalue()


def header(columns: Sequence[str]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(columns)
    return out.getvalue()


def filename(kind: str, app_key: str, start: str, end: str) -> str:
    return f"gangway-{app_key}-{kind}-{start}-to-{end}.csv"
