"""The dashboard's data, in one function: `dashboard_data()`.

What this branch has to show comes from the store directly: the owner's apps, cheap counts over
the period (impressions, clicks, installs, attributed installs, in-app events: one indexed range
each) and the activity feed of the latest installs and events, each linking to its receipt.

The reporting API (reporting.md section 2) brings the headline numbers with their change
against the previous period, cost, eCPI, revenue, ROAS, the daily chart and the campaign table:
it fills `Dashboard.overview` here, and `templates/console/dashboard.html` shows the overview
block whenever it is not None. Nothing else in the console needs to change for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.accounts import Owner
from app.services import Services
from app.store.records import ActivityItem, AppRecord, TouchCounts
from app.web import owner_service

PERIODS = {"1": "24 hours", "7": "7 days", "30": "30 days"}
DEFAULT_PERIOD = "7"
FEED_LENGTH = 30


@dataclass(frozen=True)
class Dashboard:
    apps: list[AppRecord]
    app_key: str | None  # the app chosen, None: every app the owner sees
    period: str  # a key of PERIODS
    since: float
    counts: TouchCounts
    activity: list[ActivityItem]
    # The reporting overview (headline numbers, chart, campaign table), when reporting exists.
    overview: dict[str, Any] | None = None

    @property
    def click_to_install(self) -> float | None:
        if not self.counts.clicks:
            return None
        return self.counts.attributed_installs / self.counts.clicks


async def dashboard_data(
    svc: Services, owner: Owner, app_key: str | None, period: str | None
) -> Dashboard:
    """What the dashboard shows for this owner, app (None: all theirs) and period."""
    apps = await owner_service.list_apps(svc, owner)
    keys = [a.app_key for a in apps]
    chosen = app_key if app_key in keys else None
    period = period if period in PERIODS else DEFAULT_PERIOD
    since = svc.clock() - int(period) * 86400
    scope = [chosen] if chosen else keys
    return Dashboard(
        apps=apps,
        app_key=chosen,
        period=period,
        since=since,
        counts=await svc.store.activity.counts(scope, since),
        activity=await svc.store.activity.latest_activity(scope, FEED_LENGTH),
    )
