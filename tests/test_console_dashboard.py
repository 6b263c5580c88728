"""The dashboard's overview and the cost screen in-process, over one seeded history: the numbers
shown are the reports API's for the same parameters, filters and the drill-down narrow them,
downloads work with the console session, a limited user sees nothing of another app, and only
an admin uploads cost (its refused lines shown in place)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from app.reports.cost import PULLED, CostEntry
from app.server import create_app
from app.store.sqlite import SqliteStore
from tests.aio import run_async
from tests.console_kit import (
    ADMIN,
    ANDROID_UA,
    LIMITED,
    OTHER_APP,
    VIEWER,
    add_users_and_other_app,
    csrf_of,
    log_in,
)
from tests.fixtures import FakeClock, make_settings, seed

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC).timestamp()
DAY = 86_400
WEEK = {"from": "2026-11-15", "to": "2026-11-21"}
AD = "pid=tiktokweb_int&c={c}&af_c_id={cid}&af_adset={adset}&af_adset_id=9{cid}&af_ad={ad}"
COST_CSV = (
    "date,media_source,campaign,campaign_id,adset,adset_id,ad,ad_id,country,cost,currency\n"
    "2026-11-20,tiktokweb_int,summer,1700,teens,91700,video1,,,30.00,USD\n"
    "2026-11-21,tiktokweb_int,summer,1700,teens,91700,video1,,,10.00,USD\n"
    "2026-11-21,tiktokweb_int,winter,1800,,,,,,20,EUR\n"
    "2026-11-13,tiktokweb_int,summer,1700,,,,,,8,USD\n"
)
BAD_COST_CSV = (
    "date,media_source,campaign,cost,currency\n"
    "2026-11-19,tiktokweb_int,autumn,5,USD\n"
    "2026-11-31,tiktokweb_int,autumn,5,USD\n"
    "2026-11-19,tiktokweb_int,autumn,abc,USD\n"
    "2026-11-19,tiktokweb_int,autumn,5,GBP\n"
)
RATES_CSV = "date,currency,rate_to_report_currency\n2026-11-21,EUR,1.10\n"


class Rig:
    def __init__(self, http: TestClient, clock: FakeClock, sdk: str, other_sdk: str) -> None:
        self.http = http
        self.clock = clock
        self.sdk = sdk
        self.other_sdk = other_sdk
        self.user: str | None = None

    def as_user(self, email: str) -> TestClient:
        if self.user != email:
            self.http.cookies.clear()
            assert log_in(self.http, email).status_code == 303
            self.user = email
        return self.http

    def installed(self, app_key: str, instance: str, query: str, sdk: str) -> None:
        click = self.http.get(
            f"/c/{app_key}?{query}&ttclid=E.C.P.{instance}",
            headers={"User-Agent": ANDROID_UA},
            follow_redirects=False,
        )
        assert click.status_code == 302, click.text
        referrer = parse_qs(urlsplit(click.headers["location"]).query)["referrer"][0]
        answer = self.http.post(
            "/api/v1/installs",
            json={
                "app_key": app_key,
                "platform": "android",
                "app_instance_id": instance,
                "install_time": int(self.clock.now) + 60,
                "install_referrer": referrer,
            },
            headers={"Authorization": f"Bearer {sdk}", "User-Agent": ANDROID_UA},
        )
        assert answer.status_code == 200 and answer.json()["status"] == "attributed", answer.text

    def api(self, **params: str) -> dict[str, Any]:
        answer = self.http.get("/api/v1/reports/overview", params={"app_key": "demo"} | params)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


def _ad(c: str, cid: str, adset: str, ad: str) -> str:
    return AD.format(c=c, cid=cid, adset=adset, ad=ad)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("dashboard")
    settings = make_settings(Path(tmp))
    _, sdk = seed(settings.db)
    other_sdk = add_users_and_other_app(settings.db)
    clock = FakeClock(NOW - 2 * DAY)  # the 19th
    app = create_app(settings, clock=clock, run_jobs=False)
    with TestClient(app, base_url="http://gangway.test") as http:
        r = Rig(http, clock, sdk, other_sdk)
        summer_a = _ad("summer", "1700", "teens", "video1")
        summer_b = _ad("summer", "1700", "adults", "video2")
        r.installed("demo", "p1", summer_a, sdk)
        clock.now = NOW - 8 * DAY  # the 13th: the week before
        r.installed("demo", "p0", summer_a, sdk)
        clock.now = NOW
        r.installed("demo", "p2", summer_a, sdk)
        r.installed("demo", "p3", summer_b, sdk)
        r.installed("demo", "p4", _ad("winter", "1800", "all", "still"), sdk)
        r.installed(OTHER_APP, "o1", _ad("secretcampaign", "1900", "x", "y"), other_sdk)
        client = r.as_user(ADMIN)
        token = csrf_of(client, "/admin/cost")
        for path, text in (("/admin/cost/rates", RATES_CSV), ("/admin/cost/upload", COST_CSV)):
            done = client.post(
                path,
                data={"csrf_token": token, "app_key": "demo"},
                files={"file": ("cost.csv", text.encode(), "text/csv")},
            )
            assert done.status_code == 200, done.text
        # Cost pulled from TikTok Ads for summer on the 21st supersedes the uploaded row.
        run_async(_pull(settings.db))
        yield r


async def _pull(db: str) -> None:
    store = await SqliteStore.open(db)
    try:
        entry = CostEntry(
            "demo", date(2026, 11, 21), PULLED, "tiktokglobal_int", "summer", "1700",
            "", "", "", "", "", "12.5", "USD", 12_500_000, "USD",
        )  # fmt: skip
        await store.cost.put_cost([entry], NOW)
    finally:
        await store.close()


def metrics(page: str) -> dict[str, str]:
    return dict(re.findall(r'data-metric="(\w+)">([^<]*)<', page))


def changes(page: str) -> dict[str, str]:
    found = re.findall(r'data-change="(\w+)">([^<]*)<', page)
    return {k: v.split()[-1] for k, v in found}


def table(page: str) -> dict[str, dict[str, str]]:
    """The campaign table: row name -> column -> shown value."""
    body = page.split('data-level="', 1)[1].split("</table>", 1)[0]
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)[1:]:
        name = re.sub(r"<[^>]+>", "", row.split("</td>", 1)[0]).strip()
        rows[html.unescape(name)] = dict(re.findall(r'data-col="(\w+)">([^<]*)<', row))
    return rows


def money(value: str | None) -> str:
    return "–" if value is None else f"{float(value):,.2f}"


def test_the_numbers_shown_are_the_reports_apis(rig: Rig) -> None:
    client = rig.as_user(ADMIN)
    page = client.get("/admin", params={"app": "demo"} | WEEK)
    assert page.status_code == 200
    api = rig.api(**WEEK)
    t, before = api["totals"], api["previous"]["totals"]
    assert (t["installs"], t["clicks"], before["installs"]) == (4, 4, 1)  # the seeded history
    shown = metrics(page.text)
    assert shown["installs"] == "4" and shown["clicks"] == str(t["clicks"])
    assert shown["impressions"] == str(t["impressions"])
    assert shown["events"] == str(sum(t["events"].values()))
    # 30 (20th) + 12.50 pulled (21st, superseding the uploaded 10) + 20 EUR at 1.10
    assert t["cost"] == "64.50" and shown["cost"] == "64.50"
    assert shown["ecpi"] == money(t["ecpi"]) == "16.12"  # 64.50 / 4, half-even
    assert shown["revenue"] == money(t["revenue_in_report_currency"])
    assert shown["click_to_install_rate"] == f"{float(t['click_to_install_rate']) * 100:.1f}"
    # Against the week before: one install then (+300%), 8 USD of cost.
    assert before["cost"] == "8.00"
    assert changes(page.text)["installs"] == "+300%"
    assert changes(page.text)["cost"] == f"{(64.5 - 8) / 8 * 100:+.0f}%"
    assert "tiktokweb_int" not in page.text.split("Latest activity")[0]

    # The table: one row per campaign under the unified PID, each the API's row.
    rows = table(page.text)
    by_campaign = {
        r["campaign"]: r for r in rig.api(**WEEK, group_by="media_source,campaign")["rows"]
    }
    assert set(rows) == set(by_campaign) == {"summer", "winter"}
    for name, row in rows.items():
        assert row["installs"] == str(by_campaign[name]["installs"])
        assert row["cost"] == money(by_campaign[name]["cost"])
    assert page.text.split("Latest activity")[0].count(">tiktokglobal_int</td>") == 2

    # The chart: a bar per day, each titled with the API's daily value.
    daily = {r["date"]: r for r in rig.api(**WEEK, group_by="date")["rows"]}
    svg = page.text.split('data-series="installs"', 1)[1].split("</svg>", 1)[0]
    bars = re.findall(r"<title>([\d-]+): (\d+) installs</title>", svg)
    assert len(bars) == 7
    assert {d: int(n) for d, n in bars if int(n)} == {
        d: r["installs"] for d, r in daily.items() if r["installs"]
    }
    assert "<script" not in svg and "http" not in svg.replace("http://www.w3.org/2000/svg", "")


def test_filters_and_the_drill_down_narrow_every_number(rig: Rig) -> None:
    client = rig.as_user(ADMIN)
    top = client.get("/admin", params={"app": "demo"} | WEEK).text
    summer = re.search(r'href="([^"]+)" data-drill="summer"', top)
    assert summer
    page = client.get(html.unescape(summer.group(1)))
    assert page.status_code == 200
    api = rig.api(**WEEK, media_source="tiktokglobal_int", campaign="summer")
    assert metrics(page.text)["installs"] == str(api["totals"]["installs"]) == "3"
    adsets = table(page.text)
    # The cost pulled for the campaign names no ad set: it shows on a row of its own.
    assert set(adsets) == {"teens", "adults", "(none)"}
    assert adsets["(none)"]["cost"] == "12.50" and adsets["(none)"]["installs"] == "0"
    # The form keeps the drill-down and the range, so changing a filter stays on this campaign.
    assert 'name="campaign" value="summer"' in page.text and 'value="2026-11-15"' in page.text
    teens = re.search(r'href="([^"]+)" data-drill="teens"', page.text)
    assert teens
    ads = client.get(html.unescape(teens.group(1))).text
    assert table(ads) == {"video1": table(ads)["video1"]} and metrics(ads)["installs"] == "2"
    assert "All campaigns" in ads and "Campaign summer" in ads

    # A platform the history has none of: nothing, and cost left out (cost has no platform).
    ios = client.get("/admin", params={"app": "demo", "platform": "ios"} | WEEK).text
    assert metrics(ios)["installs"] == "0" and metrics(ios)["cost"] == "0.00"
    assert "a platform filter leaves it out" in ios
    assert "No clicks, installs or cost" in ios and "<svg" not in ios
    # The filter offers what the range holds.
    assert "<option selected>ios</option>" in ios and "<option>android</option>" in ios
    # A country is typed; the form keeps it, upper-cased as the reports store it.
    fr = client.get("/admin", params={"app": "demo", "country": "fr"} | WEEK).text
    assert 'name="country" value="FR"' in fr and metrics(fr)["installs"] == "0"
    assert rig.api(**WEEK, country="FR")["totals"]["installs"] == 0
    one_day = client.get("/admin", params={"app": "demo", "period": "1"}).text
    today = rig.api(**{"from": "2026-11-21", "to": "2026-11-21"})["totals"]
    assert metrics(one_day)["installs"] == str(today["installs"]) == "3"
    assert 'aria-current="true">Today<' in one_day


def test_a_bad_filter_is_shown_next_to_its_field(rig: Rig) -> None:
    client = rig.as_user(ADMIN)
    page = client.get("/admin", params={"app": "demo", "from": "2026-13-01", "to": "2026-11-21"})
    assert page.status_code == 400
    assert 'data-field="from"' in page.text and "YYYY-MM-DD" in page.text
    assert metrics(page.text)["installs"]  # the rest of the dashboard is still there
    late = client.get("/admin", params={"app": "demo", "from": "2026-11-22", "to": "2026-11-21"})
    assert late.status_code == 400 and 'data-field="from"' in late.text
    every = client.get("/admin", params={"to": "yesterday"})  # all apps: one line each
    assert every.status_code == 400 and 'data-field="to"' in every.text
    assert every.text.count('data-field="to"') == 1 and "<tr data-app=" in every.text


def test_downloads_work_with_the_console_session(rig: Rig) -> None:
    client = rig.as_user(VIEWER)
    page = client.get("/admin", params={"app": "demo"} | WEEK).text
    links = dict(re.findall(r'href="(/api/v1/raw/(\w+)\.csv[^"]*)"', page))
    kinds = {kind: html.unescape(link) for link, kind in links.items()}
    assert set(kinds) == {"installs", "events", "clicks", "impressions", "postbacks"}
    answer = client.get(kinds["installs"])
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    lines = answer.text.strip().splitlines()
    assert len(lines) == 1 + 4 and lines[0].startswith("install_id,")
    api_link = re.search(r'href="(/api/v1/reports/overview[^"]*)"', page)
    assert api_link and client.get(html.unescape(api_link.group(1))).status_code == 200

    # Filtered, the downloads hold what the screen shows, each where its kind has the column.
    ios = client.get("/admin", params={"app": "demo", "platform": "ios"} | WEEK).text
    links = dict(re.findall(r'href="(/api/v1/raw/(\w+)\.csv[^"]*)"', ios))
    kinds = {kind: html.unescape(link) for link, kind in links.items()}
    assert "platform=ios" in kinds["installs"] and "platform" not in kinds["impressions"]
    assert "platform" not in kinds["postbacks"]
    none = client.get(kinds["installs"])
    assert none.status_code == 200 and len(none.text.strip().splitlines()) == 1  # header only
    assert all(client.get(link).status_code == 200 for link in kinds.values())


def test_all_apps_show_a_line_each_and_a_limited_user_sees_only_theirs(rig: Rig) -> None:
    client = rig.as_user(ADMIN)
    everything = client.get("/admin", params=WEEK).text
    lines = dict(re.findall(r'<tr data-app="(\w+)">(.*?)</tr>', everything, re.S))
    assert set(lines) == {"demo", OTHER_APP}
    assert 'data-sort="4"' in lines["demo"] and "Other Secret Game" in everything
    # Money sorts as a number: the table script takes "64.5", never "64.50", for one.
    assert 'data-sort="64.5">64.50' in lines["demo"]

    client = rig.as_user(LIMITED)
    for path in ("/admin", f"/admin?app={OTHER_APP}", f"/admin/cost?app={OTHER_APP}"):
        page = client.get(path, params=WEEK)
        assert page.status_code == 200, path
        assert "Other Secret Game" not in page.text and "secretcampaign" not in page.text, path
        assert f"app_key={OTHER_APP}" not in page.text and f'"{OTHER_APP}"' not in page.text
    assert metrics(client.get("/admin", params=WEEK).text)["installs"] == "4"  # demo's own
    for path in (
        f"/api/v1/reports/overview?app_key={OTHER_APP}",
        f"/api/v1/raw/installs.csv?app_key={OTHER_APP}",
    ):
        assert client.get(path).status_code == 404, path
    refused = client.post(
        "/admin/cost/upload",
        data={"csrf_token": csrf_of(client), "app_key": OTHER_APP},
        files={"file": ("c.csv", COST_CSV.encode(), "text/csv")},
    )
    assert refused.status_code == 404


def test_the_cost_screen_shows_sources_and_superseded_rows(rig: Rig) -> None:
    client = rig.as_user(VIEWER)
    page = client.get(
        "/admin/cost", params={"app": "demo", "from": "2026-11-13", "to": "2026-11-21"}
    )
    assert page.status_code == 200
    rows = re.findall(r'<tr data-source="(\w+)"( data-superseded)?', page.text)
    assert len(rows) == 5
    assert rows[0] == (PULLED, "")  # newest day first, pulled before uploaded
    superseded = [s for s, flag in rows if flag]
    assert superseded == ["upload"]  # summer's uploaded 10 USD on the 21st
    assert "pulled from TikTok" in page.text and "1 uploaded row superseded" in page.text
    assert "2026-11-21</td><td>EUR</td>" in page.text.replace("\n", "")
    bad = client.get("/admin/cost", params={"app": "demo", "from": "13/11/2026"})
    assert bad.status_code == 400 and 'data-field="from"' in bad.text
    # A viewer reads cost and is refused the uploads.
    assert 'action="/admin/cost/upload"' not in page.text
    for path in ("/admin/cost/upload", "/admin/cost/rates"):
        refused = client.post(
            path,
            data={"csrf_token": csrf_of(client, "/admin/cost"), "app_key": "demo"},
            files={"file": ("c.csv", COST_CSV.encode(), "text/csv")},
        )
        assert refused.status_code == 403, path


def test_a_bad_cost_file_is_shown_line_by_line_and_the_good_rows_kept(rig: Rig) -> None:
    client = rig.as_user(ADMIN)
    token = csrf_of(client, "/admin/cost")
    without = client.post(
        "/admin/cost/upload",
        data={"app_key": "demo"},
        files={"file": ("c.csv", BAD_COST_CSV.encode(), "text/csv")},
    )
    assert without.status_code == 403  # no CSRF token
    answer = client.post(
        "/admin/cost/upload",
        data={"csrf_token": token, "app_key": "demo"},
        files={"file": ("autumn.csv", BAD_COST_CSV.encode(), "text/csv")},
    )
    assert answer.status_code == 200, answer.text  # one row kept
    assert 'data-imported="1"' in answer.text and "3 refused" in answer.text
    refused = re.findall(
        r'<tr data-line="(\d+)"><td>\d+</td><td class="mono">([^<]+)</td><td>([^<]+)</td>',
        answer.text,
    )
    assert [(line, column) for line, column, _ in refused] == [
        ("3", "date"),
        ("4", "cost"),
        ("5", "currency"),
    ]
    assert "no rate for GBP on 2026-11-19" in refused[2][2]
    assert rig.api(**{"from": "2026-11-19", "to": "2026-11-19"})["totals"]["cost"] == "5.00"

    no_columns = client.post(
        "/admin/cost/upload",
        data={"csrf_token": token, "app_key": "demo"},
        files={"file": ("x.csv", b"day,amount\n1,2\n", "text/csv")},
    )
    assert no_columns.status_code == 400
    error = re.search(r'data-field="cost\.file">([^<]+)<', no_columns.text)
    assert error and "media_source" in error.group(1)
    assert 'name="file" accept=".csv,text/csv" aria-invalid="true"' in no_columns.text
    nothing = client.post(
        "/admin/cost/rates",
        data={"csrf_token": token, "app_key": "demo"},
        files={"file": ("", b"", "application/octet-stream")},
    )
    assert nothing.status_code == 400 and 'data-field="rates.file"' in nothing.text
    not_text = client.post(
        "/admin/cost/rates",
        data={"csrf_token": token, "app_key": "demo"},
        files={"file": ("r.csv", b"\xff\xfe\x00bad", "text/csv")},
    )
    assert not_text.status_code == 400 and "UTF-8" in not_text.text
