"""Rollups: what each touch, install and event adds to the counts the overview reads.

A rollup is keyed by app, UTC hour (Unix seconds // 3600), media source after the unified PID
map, campaign / ad set / ad (names and ids), country, platform, and a metric name; its value is
an integer. The store adds a row's increments in the same transaction that inserts the row
(`record_touch(..., rollups=...)` and friends), and `rebuild` feeds the raw rows back through
these very functions, so both paths agree by construction and a property test checks it.

Metric names:
- `impressions`, `clicks`: human touches; `impressions_all`, `clicks_all`: every verdict;
- `installs|<status>|<match_type>`: one per install (match type empty when none);
- `events|<event name>`: one per event;
- `revenue|<currency>|<event name>`: revenue in integer millionths of its currency (exact for
  any amount with up to six decimals; more are rounded half-even).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from app.attribution import ORGANIC
from app.conversions import Event, Install
from app.touches import Touch

HOUR = 3600
# Revenue is kept in integer millionths of its currency.
REVENUE_SCALE = 1_000_000
DIMENSIONS: tuple[str, ...] = (
    "media_source",
    "campaign",
    "campaign_id",
    "adset",
    "adset_id",
    "ad",
    "ad_id",
    "country",
    "platform",
)
CAMPAIGN_DIMENSIONS = DIMENSIONS[1:7]
# Touch params each campaign dimension comes from (app.touches.CAMPAIGN_COLUMNS names).
_TOUCH_PARAM = {
    "campaign": "c",
    "campaign_id": "af_c_id",
    "adset": "af_adset",
    "adset_id": "af_adset_id",
    "ad": "af_ad",
    "ad_id": "af_ad_id",
}
# Touch OS families that name an install platform (impressions have no destination).
_TOUCH_PLATFORMS = frozenset({"ios", "android"})


@dataclass(frozen=True, slots=True, order=True)
class RollupKey:
    app_key: str
    hour: int
    media_source: str
    campaign: str
    campaign_id: str
    adset: str
    adset_id: str
    ad: str
    ad_id: str
    country: str
    platform: str
    metric: str

    def dims(self) -> dict[str, str]:
        return {d: getattr(self, d) for d in DIMENSIONS}


@dataclass(frozen=True, slots=True)
class Increment:
    key: RollupKey
    value: int


Increments = tuple[Increment, ...]


def hour_of(t: float) -> int:
    return int(t // HOUR)


def install_metric(status: str, match_type: str | None) -> str:
    return f"installs|{status}|{match_type or ''}"


def event_metric(event_name: str) -> str:
    return f"events|{event_name}"


def revenue_metric(currency: str, event_name: str) -> str:
    return f"revenue|{currency}|{event_name}"


def revenue_units(revenue: str | None) -> int | None:
    """A stored revenue string in integer millionths, or None when there is none to count."""
    if revenue is None:
        return None
    try:
        amount = Decimal(revenue)
    except InvalidOperation:
        return None
    if not amount.is_finite():
        return None
    return int((amount * REVENUE_SCALE).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _key(app_key: str, hour: int, dims: Mapping[str, str], metric: str) -> RollupKey:
    return RollupKey(app_key=app_key, hour=hour, metric=metric, **dims)


def touch_dims(touch: Touch, unified: Mapping[str, str]) -> dict[str, str]:
    platform = touch.platform or (touch.os_family if touch.os_family in _TOUCH_PLATFORMS else None)
    dims = {
        "media_source": unified.get(touch.pid, touch.pid) if touch.pid else "",
        **{d: touch.params.get(p) or "" for d, p in _TOUCH_PARAM.items()},
        "country": touch.country or "",
        "platform": platform or "",
    }
    return dims


def touch_increments(touch: Touch, unified: Mapping[str, str]) -> Increments:
    """What one stored touch adds: its `<kind>s_all`, and `<kind>s` when it is human."""
    dims = touch_dims(touch, unified)
    hour = hour_of(touch.time)
    name = "clicks" if touch.kind == "click" else "impressions"
    out = [Increment(_key(touch.app_key, hour, dims, f"{name}_all"), 1)]
    if touch.verdict == "human":
        out.append(Increment(_key(touch.app_key, hour, dims, name), 1))
    return tuple(out)


def as_retained(install: Install) -> Install:
    """An install as reports show it once retention made it organic (`reporting.md` 5)."""
    return replace(
        install,
        status="organic",
        match_type=None,
        media_source=ORGANIC,
        campaign=None,
        campaign_id=None,
        adset=None,
        adset_id=None,
        ad=None,
        ad_id=None,
    )


def install_dims(install: Install) -> dict[str, str]:
    return {d: getattr(install, d) or "" for d in DIMENSIONS}


def install_increments(install: Install, *, rewrite_retained: bool = False) -> Increments:
    """What one stored install adds. `rewrite_retained`: a retained install counts as organic
    (GANGWAY_RETENTION_REWRITE_AGGREGATES)."""
    if rewrite_retained and install.is_retained_organic:
        install = as_retained(install)
    key = _key(
        install.app_key,
        hour_of(install.time),
        install_dims(install),
        install_metric(install.status, install.match_type),
    )
    return (Increment(key, 1),)


def event_dims(
    event: Event, attributing: Install, *, rewrite_retained: bool = False
) -> dict[str, str]:
    """An event is counted under the attribution it was recorded with: its attributing install's
    (the first install for a reinstall), unless the event's own `media_source` says otherwise
    (an event of a retained install is organic); then organic, with no campaign."""
    if rewrite_retained and attributing.is_retained_organic:
        return install_dims(as_retained(attributing))
    dims = install_dims(attributing)
    if event.media_source and event.media_source != attributing.media_source:
        dims |= dict.fromkeys(CAMPAIGN_DIMENSIONS, "")
        dims["media_source"] = event.media_source
    return dims


def event_increments(
    event: Event, attributing: Install, *, rewrite_retained: bool = False
) -> Increments:
    dims = event_dims(event, attributing, rewrite_retained=rewrite_retained)
    hour = hour_of(event.event_time)
    out = [Increment(_key(event.app_key, hour, dims, event_metric(event.event_name)), 1)]
    units = revenue_units(event.revenue)
    if units and event.currency:
        metric = revenue_metric(event.currency, event.event_name)
        out.append(Increment(_key(event.app_key, hour, dims, metric), units))
    return tuple(out)


def negated(increments: Iterable[Increment]) -> Increments:
    return tuple(Increment(i.key, -i.value) for i in increments)


def summed(increments: Iterable[Increment]) -> dict[RollupKey, int]:
    """Increments added up by key, zeros left out (what the table holds)."""
    out: dict[RollupKey, int] = {}
    for inc in increments:
        out[inc.key] = out.get(inc.key, 0) + inc.value
    return {k: v for k, v in out.items() if v != 0}


class RollupFold:
    """The increments of raw rows, as `rebuild` feeds them: one object the store calls back for
    every touch, install and event it reads (so the rebuild runs inside one transaction)."""

    def __init__(self, unified: Mapping[str, str], *, rewrite_retained: bool = False) -> None:
        self.unified = dict(unified)
        self.rewrite_retained = rewrite_retained

    def touch(self, touch: Touch) -> Increments:
        return touch_increments(touch, self.unified)

    def install(self, install: Install) -> Increments:
        return install_increments(install, rewrite_retained=self.rewrite_retained)

    def event(self, event: Event, attributing: Install) -> Increments:
        return event_increments(event, attributing, rewrite_retained=self.rewrite_retained)
