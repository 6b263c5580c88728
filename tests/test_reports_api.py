"""Reports through the HTTP API (reporting.md, http-api.md 3): a known history is made the way
visitors, the app and the owner make it, and every number of the overview is checked against
what was done, by hand; raw CSV, cost upload, retention and privacy erase on the same history.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from app.__main__ import main
from app.server import create_app
from tests import dbq
from tests.fixtures import ANDROID_UA, IOS_SDK_UA, IPHONE_UA, FakeClock, make_settings, seed

DAY = datetime(2026, 11, 21, tzinfo=UTC).timestamp()
START = DAY + 10 * 3600  # 2026-11-21 10:00 UTC
PHONE_IP = "203.0.113.7"
OTHER_IP = "198.51.100.9"
AD = (
    "pid=tiktokweb_int&c=summer&af_c_id=1700&af_adset=teens&af_adset_id=17001&af_ad=video1"
    "&af_ad_id=170011"
)
BOT_UA = "curl/8.4.0"
GAID = "38400000-8cf0-11bd-b23e-10b96e40000d"
COST_CSV = (
    "date,media_source,campaign,campaign_id,adset,adset_id,ad,ad_id,country,cost,currency\n"
    "2026-11-21,tiktokweb_int,summer,1700,teens,17001,video1,170011,,40.00,USD\n"
    "2026-11-21,tiktokweb_int,summer,1700,teens,17001,video2,170012,,20,EUR\n"
    "2026-11-31,tiktokweb_int,summer,1700,,,,,,5,USD\n"
    "2026-11-21,tiktokweb_int,summer,1700,,,,,,abc,USD\n"
    "2026-11-22,tiktokweb_int,summer,1700,,,,,,7,GBP\n"
)
RATES_CSV = "date,currency,rate_to_report_currency\n2026-11-21,EUR,1.10\n2026-11-20,EUR,1.05\n"


class Owner:
    """A seeded Gangway in process with an injected clock; the test client is a trusted proxy,
    so X-Forwarded-For sets each request's IP."""

    def __init__(self, http: TestClient, clock: FakeClock, db: str, sdk: str, admin: str) -> None:
        self.http = http
        self.clock = clock
        self.db = db
        self.sdk = {"Authorization": f"Bearer {sdk}"}
        self.admin = {"Authorization": f"Bearer {admin}"}

    def at(self, ts: float) -> None:
        self.clock.now = ts

    def click(self, ttclid: str, *, ip: str, ua: str = ANDROID_UA) -> str:
        r = self.http.get(
            f"/c/demo?{AD}&ttclid={ttclid}",
            headers={"User-Agent": ua, "X-Forwarded-For": ip},
            follow_redirects=False,
        )
        assert r.status_code == 302, r.text
        query = parse_qs(urlsplit(r.headers["location"]).query)
        return query.get("referrer", [""])[0]

    def impression(self, ttclid: str, *, ip: str) -> None:
        r = self.http.post(
            "/i/demo",
            json={"url": f"http://gangway.test/lp/demo?{AD}&ttclid={ttclid}"},
            headers={"User-Agent": IPHONE_UA, "X-Forwarded-For": ip},
        )
        assert r.status_code == 202, r.text

    def install(self, instance: str, *, via: str, **body: Any) -> dict[str, Any]:
        defaults = {"app_key": "demo", "platform": "android", "app_instance_id": instance}
        if body.get("platform", "android") == "android":
            defaults |= {"os_version": "14", "device_model": "Pixel 8"}
        r = self.http.post(
            "/api/v1/installs",
            json=defaults | body,
            headers=self.sdk | {"X-Forwarded-For": via, "User-Agent": IOS_SDK_UA},
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    def event(self, instance: str, event_id: str, name: str, **value: str) -> dict[str, Any]:
        r = self.http.post(
            "/api/v1/events",
            json={
                "app_key": "demo",
                "app_instance_id": instance,
                "event_id": event_id,
                "event_name": name,
                "event_value": value,
            },
            headers=self.sdk,
        )
        assert r.status_code == 202, r.text
        return dict(r.json())

    def overview(self, **params: str) -> dict[str, Any]:
        r = self.http.get("/api/v1/reports/overview", params={"app_key": "demo"} | params,
                          headers=self.admin)  # fmt: skip
        assert r.status_code == 200, r.text
        return dict(r.json())

    def upload(self, path: str, text: str) -> dict[str, Any]:
        r = self.http.post(
            f"{path}?app_key=demo",
            content=text.encode(),
            headers=self.admin | {"Content-Type": "text/csv"},
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    def raw(self, kind: str, **params: str) -> tuple[list[dict[str, str]], Any]:
        r = self.http.get(f"/api/v1/raw/{kind}.csv", params={"app_key": "demo"} | params,
                          headers=self.admin)  # fmt: skip
        assert r.status_code == 200, r.text
        return list(csv.DictReader(io.StringIO(r.text))), r

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return dbq.query(self.db, query, params)


def cli(*args: str) -> int:
    """`python -m app ...` in process, on a thread of its own: it runs its own event loop, and
    the browser tests of the session keep one running on the main thread."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(main, list(args)).result()


def open_owner(tmp_path: Path, db: str | None = None, **overrides: Any) -> Iterator[Owner]:
    """`db`: the backend under test's fresh database (`backend_db`), else a SQLite file."""
    settings = make_settings(tmp_path, trusted_proxies="127.0.0.1", **overrides)
    if db is not None:
        settings = replace(settings, db=db)
    token, sdk_key = seed(settings.db)
    clock = FakeClock(START)
    with TestClient(
        create_app(settings, clock=clock, run_jobs=False),
        base_url="http://gangway.test",
        client=("127.0.0.1", 50000),
    ) as http:
        yield Owner(http, clock, settings.db, sdk_key, token)


def make_history(gw: Owner) -> dict[str, str]:
    """The known history. Answers install ids by name."""
    ids: dict[str, str] = {}
    # The day before: one organic install (the previous period).
    gw.at(START - 86_400)
    ids["old"] = gw.install("phone-old", via="192.0.2.50")["install_id"]
    # 10:00 UTC: an impression, and the click of A (Google Play: the referrer names it).
    gw.at(START)
    gw.impression("E.C.P.imp", ip="203.0.113.99")
    referrer_a = gw.click("E.C.P.alpha", ip=PHONE_IP)
    # A bot's click counts in clicks_all only.
    gw.click("E.C.P.bot", ip="203.0.113.40", ua=BOT_UA)
    # B taps on an iPhone; its install matches the click by IP and device, two minutes later.
    gw.click("E.C.P.bravo", ip="203.0.113.20", ua=IPHONE_UA)
    gw.at(START + 60)
    a = gw.install("phone-alpha", via=OTHER_IP, install_referrer=referrer_a,
                   device={"gaid": GAID})  # fmt: skip
    assert (a["status"], a["match_type"]) == ("attributed", "referrer")
    ids["a"] = a["install_id"]
    gw.at(START + 120)
    b = gw.install("phone-bravo", via="203.0.113.20", platform="ios", os_version="17.5",
                   device_model="iPhone")  # fmt: skip
    assert (b["status"], b["match_type"]) == ("attributed", "probabilistic_click"), b
    ids["b"] = b["install_id"]
    # E installs 5 s after its click: too fast, rejected (and so organic in reports).
    gw.at(START + 300)
    referrer_e = gw.click("E.C.P.echo", ip="203.0.113.30")
    gw.at(START + 305)
    e = gw.install("phone-echo", via="203.0.113.30", install_referrer=referrer_e)
    assert e["status"] == "rejected", e
    # C: organic, with a model that would be a spreadsheet formula.
    gw.at(START + 600)
    c = gw.install("phone-charlie", via="198.51.100.77", device_model='=HYPERLINK("x")')
    assert c["status"] == "organic"
    ids["c"] = c["install_id"]
    # D: A's phone again, a reinstall; its events carry A's attribution.
    gw.at(START + 3600)
    d = gw.install("phone-delta", via=OTHER_IP, device={"gaid": GAID})
    assert d["status"] == "reinstall", d
    ids["d"] = d["install_id"]
    # Events: revenue in USD and EUR, a repeated event_id (counted once), one unmapped.
    gw.at(START + 4000)
    gw.event("phone-alpha", "a-p1", "af_purchase", af_revenue="10.00", af_currency="USD")
    gw.event("phone-alpha", "a-p1", "af_purchase", af_revenue="10.00", af_currency="USD")
    gw.event("phone-alpha", "a-p2", "af_purchase", af_revenue="5", af_currency="EUR")
    gw.event("phone-alpha", "a-l1", "level_up")
    assert gw.event("phone-delta", "d-p1", "af_purchase", af_revenue="2.50",
                    af_currency="USD")["media_source"] == "tiktokglobal_int"  # fmt: skip
    gw.event("phone-charlie", "c-p1", "af_purchase", af_revenue="1", af_currency="USD")
    # 23:30 UTC: still the 21st in UTC and in Los Angeles, the 22nd in Tokyo.
    gw.at(DAY + 23.5 * 3600)
    ids["late"] = gw.install("phone-late", via="198.51.100.78")["install_id"]
    # 07:30 UTC on the 22nd: the 21st in Los Angeles (23:30 there).
    gw.at(DAY + 86_400 + 7.5 * 3600)
    ids["early"] = gw.install("phone-early", via="198.51.100.79")["install_id"]
    gw.at(START + 5000)
    assert gw.upload("/api/v1/cost/rates", RATES_CSV) == {
        "imported": 2,
        "changed": 2,
        "rejected": [],
    }
    assert gw.upload("/api/v1/cost", COST_CSV) == {
        "imported": 2,
        "changed": 2,
        "rejected": [
            {"line": 4, "error": "date must be YYYY-MM-DD"},
            {"line": 5, "error": "cost must be a number"},
            {"line": 6, "error": "no rate for GBP on 2026-11-22 (upload it first)"},
        ],
    }
    return ids


@pytest.fixture()
def gw(tmp_path: Path, backend_db: str) -> Iterator[Owner]:
    yield from open_owner(tmp_path, backend_db)


PAID = {
    "media_source": "tiktokglobal_int",
    "impressions": 1,
    "impressions_all": 1,
    "clicks": 3,
    "clicks_all": 4,
    "installs": 2,
    "attributed_installs": 2,
    "installs_by_status": {"attributed": 2},
    "installs_by_match_type": {"probabilistic_click": 1, "referrer": 1},
    "reinstalls": 0,
    "rejected": 0,
    # A's two purchases and D's (a reinstall of A), A's level_up.
    "events": {"af_purchase": 3, "level_up": 1},
    "revenue": {"af_purchase": {"EUR": "5.00", "USD": "12.50"}},
    # 12.50 + 5 EUR at 1.10
    "revenue_in_report_currency": "18.00",
    "revenue_unconverted": [],
    "report_currency": "USD",
    # 40 USD + 20 EUR at 1.10
    "cost": "62.00",
    "ecpi": "31.0000",  # 62 / 2
    "roas": "0.2903",  # 18 / 62
    "click_to_install_rate": "0.6667",  # 2 / 3
}
ORGANIC = {
    "media_source": "organic",
    "impressions": 0,
    "impressions_all": 0,
    "clicks": 0,
    "clicks_all": 0,
    # C and the 23:30 one; E is rejected and D a reinstall, counted apart.
    "installs": 2,
    "attributed_installs": 0,
    "installs_by_status": {"organic": 2, "reinstall": 1, "rejected": 1},
    "installs_by_match_type": {},
    "reinstalls": 1,
    "rejected": 1,
    "events": {"af_purchase": 1},
    "revenue": {"af_purchase": {"USD": "1.00"}},
    "revenue_in_report_currency": "1.00",
    "revenue_unconverted": [],
    "report_currency": "USD",
    "cost": "0.00",
    "ecpi": None,
    "roas": None,
    "click_to_install_rate": None,
}


@pytest.mark.both_backends
def test_the_overview_of_a_known_history(gw: Owner) -> None:
    make_history(gw)
    report = gw.overview(**{"from": "2026-11-21", "to": "2026-11-21", "group_by": "media_source"})
    assert report["rows"] == [ORGANIC, PAID]
    totals = report["totals"]
    assert totals == {
        "impressions": 1,
        "impressions_all": 1,
        "clicks": 3,
        "clicks_all": 4,
        "installs": 4,
        "attributed_installs": 2,
        "installs_by_status": {"attributed": 2, "organic": 2, "reinstall": 1, "rejected": 1},
        "installs_by_match_type": {"probabilistic_click": 1, "referrer": 1},
        "reinstalls": 1,
        "rejected": 1,
        "events": {"af_purchase": 4, "level_up": 1},
        "revenue": {"af_purchase": {"EUR": "5.00", "USD": "13.50"}},
        "revenue_in_report_currency": "19.00",
        "revenue_unconverted": [],
        "report_currency": "USD",
        "cost": "62.00",
        "ecpi": "31.0000",
        "roas": "0.3065",  # 19 / 62
        "click_to_install_rate": "0.6667",
    }
    previous = report["previous"]
    assert (previous["from"], previous["to"]) == ("2026-11-20", "2026-11-20")
    assert previous["totals"]["installs"] == 1
    assert previous["totals"]["installs_by_status"] == {"organic": 1}
    assert previous["totals"]["cost"] == "0.00" and previous["totals"]["ecpi"] is None

    # tiktokweb_int appears only as tiktokglobal_int, and filtering by either finds it.
    for pid in ("tiktokweb_int", "tiktokglobal_int"):
        only = gw.overview(
            **{"from": "2026-11-21", "to": "2026-11-21", "media_source": pid},
            group_by="media_source,campaign",
        )
        assert [(r["media_source"], r["campaign"]) for r in only["rows"]] == [
            ("tiktokglobal_int", "summer")
        ]
        assert only["totals"]["installs"] == 2 and only["totals"]["cost"] == "62.00"
    everything = gw.overview(
        **{"from": "2026-11-01", "to": "2026-11-30"},
        group_by="date,media_source,campaign,ad,country,platform",
    )
    assert "tiktokweb_int" not in str(everything["rows"])

    # By ad: video2 has cost and no installs, so no ecpi (null, not zero, not an error).
    by_ad = gw.overview(**{"from": "2026-11-21", "to": "2026-11-21", "group_by": "ad",
                           "media_source": "tiktokglobal_int"})  # fmt: skip
    rows = {r["ad"]: r for r in by_ad["rows"]}
    assert rows["video2"]["cost"] == "22.00" and rows["video2"]["installs"] == 0
    assert rows["video2"]["ecpi"] is None and rows["video2"]["roas"] == "0.0000"
    assert rows["video1"]["cost"] == "40.00" and rows["video1"]["ecpi"] == "20.0000"

    # Uploading the same cost file again changes nothing.
    again = gw.upload("/api/v1/cost", COST_CSV)
    assert (again["imported"], again["changed"], len(again["rejected"])) == (2, 0, 3)
    assert gw.overview(**{"from": "2026-11-21", "to": "2026-11-21"})["totals"] == totals


def test_days_follow_the_report_time_zone(gw: Owner) -> None:
    make_history(gw)
    span = {"from": "2026-11-20", "to": "2026-11-22", "group_by": "date"}

    def installs_by_day(**params: str) -> dict[str, int]:
        return {r["date"]: r["installs"] for r in gw.overview(**span, **params)["rows"]}

    # UTC: old on the 20th; A, B, C and the 23:30 one on the 21st; the 07:30 one on the 22nd.
    assert installs_by_day() == {"2026-11-20": 1, "2026-11-21": 4, "2026-11-22": 1}
    # Los Angeles (UTC-8): the 07:30 UTC install is 23:30 on the 21st there.
    assert installs_by_day(timezone="America/Los_Angeles") == {"2026-11-20": 1, "2026-11-21": 5}
    # Tokyo (UTC+9): the 23:30 UTC install is on the 22nd.
    assert installs_by_day(timezone="Asia/Tokyo") == {
        "2026-11-20": 1,
        "2026-11-21": 3,
        "2026-11-22": 2,
    }
    # The app's own report_timezone is the default.
    app = gw.http.get("/api/v1/apps/demo", headers=gw.admin).json()
    config = {k: app[k] for k in ("name", "destinations", "allowed_redirect_hosts")}
    r = gw.http.put("/api/v1/apps/demo", json=config | {"report_timezone": "America/Los_Angeles"},
                    headers=gw.admin)  # fmt: skip
    assert r.status_code == 200 and r.json()["report_timezone"] == "America/Los_Angeles"
    assert installs_by_day() == {"2026-11-20": 1, "2026-11-21": 5}
    bad = gw.http.put("/api/v1/apps/demo", json=config | {"report_timezone": "Mars/Olympus"},
                      headers=gw.admin)  # fmt: skip
    assert (bad.status_code, bad.json()["field"]) == (400, "report_timezone")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"group_by": "date,nope"}, "group_by"),
        ({"from": "2026-11-22", "to": "2026-11-21"}, "from"),
        ({"from": "2025-01-01", "to": "2026-11-21"}, "to"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"from": "21/11/2026"}, "from"),
        ({"app_key": ""}, "app_key"),
    ],
)
def test_bad_overview_parameters_name_their_field(
    gw: Owner, params: dict[str, str], field: str
) -> None:
    r = gw.http.get("/api/v1/reports/overview", params={"app_key": "demo"} | params,
                    headers=gw.admin)  # fmt: skip
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field


@pytest.mark.both_backends
def test_raw_installs_keep_the_original_url_and_neutralise_formulas(gw: Owner) -> None:
    ids = make_history(gw)
    rows, answer = gw.raw("installs", **{"from": "2026-11-21", "to": "2026-11-21"})
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == (
        'attachment; filename="gangway-demo-installs-2026-11-21-to-2026-11-21.csv"'
    )
    assert (
        list(rows[0])
        == (
            "install_id install_time app_key platform status match_type media_source "
            "original_media_source attributed_touch_type attributed_touch_time campaign "
            "campaign_id adset adset_id ad ad_id channel site_id af_sub1 af_sub2 af_sub3 af_sub4 "
            "af_sub5 ttclid "
            "deep_link_value original_url ip country region user_agent os_version device_model "
            "language app_instance_id idfa idfv gaid android_id is_limited_data_use "
            "is_retained_organic"
        ).split()
    )
    # An id may start with "-" (ids are base64url), and such a cell is neutralised like a formula.
    by_id = {r["install_id"].removeprefix("'"): r for r in rows}
    # A, B, E, C, D and the 23:30 one, in time order; the 07:30 one is the 22nd's.
    assert [r["app_instance_id"] for r in rows] == [
        "phone-alpha", "phone-bravo", "phone-echo", "phone-charlie", "phone-delta", "phone-late",
    ]  # fmt: skip
    a = by_id[ids["a"]]
    assert (a["media_source"], a["original_media_source"]) == ("tiktokglobal_int", "tiktokweb_int")
    assert "pid=tiktokweb_int" in a["original_url"] and "ttclid=E.C.P.alpha" in a["original_url"]
    assert (a["install_time"], a["attributed_touch_type"]) == ("2026-11-21T10:01:00Z", "click")
    assert (a["ttclid"], a["gaid"], a["is_retained_organic"]) == ("E.C.P.alpha", GAID, "false")
    assert by_id[ids["c"]]["device_model"] == '\'=HYPERLINK("x")'

    events, _ = gw.raw("events", **{"from": "2026-11-21", "to": "2026-11-21"})
    # Same event time: the order among them is the store's.
    assert sorted((e["event_id"], e["event_revenue"], e["event_currency"]) for e in events) == [
        ("a-l1", "", ""), ("a-p1", "10.00", "USD"), ("a-p2", "5", "EUR"),
        ("c-p1", "1", "USD"), ("d-p1", "2.50", "USD"),
    ]  # fmt: skip
    purchase = next(e for e in events if e["event_id"] == "a-p1")
    assert (purchase["media_source"], purchase["app_instance_id"]) == (
        "tiktokglobal_int", "phone-alpha",
    )  # fmt: skip
    assert purchase["event_value"] == '{"af_revenue":"10.00","af_currency":"USD"}'
    clicks, _ = gw.raw("clicks", **{"from": "2026-11-21", "to": "2026-11-21"})
    assert {c["ttclid"] for c in clicks} == {
        "E.C.P.alpha", "E.C.P.bot", "E.C.P.bravo", "E.C.P.echo",
    }  # fmt: skip
    assert {(c["media_source"], c["original_media_source"]) for c in clicks} == {
        ("tiktokglobal_int", "tiktokweb_int")
    }
    impressions, _ = gw.raw("impressions", **{"from": "2026-11-21", "to": "2026-11-21"})
    assert [i["ttclid"] for i in impressions] == ["E.C.P.imp"]
    postbacks, _ = gw.raw("postbacks", **{"from": "2026-11-21", "to": "2026-11-21"})
    installs = {p["subject_id"].removeprefix("'") for p in postbacks if p["kind"] == "install"}
    assert installs == {ids["a"], ids["b"]}
    unknown = gw.http.get("/api/v1/raw/users.csv?app_key=demo", headers=gw.admin)
    assert unknown.status_code == 404


@pytest.mark.both_backends
def test_raw_data_takes_the_overviews_filters(gw: Owner) -> None:
    make_history(gw)
    day = {"from": "2026-11-21", "to": "2026-11-21"}
    for kind in ("installs", "events", "clicks"):
        every, _ = gw.raw(kind, **day)
        # The original PID is unified as in the overview: the rows are TikTok's.
        tiktok, _ = gw.raw(kind, **day, media_source="tiktokweb_int")
        assert tiktok == [r for r in every if r["media_source"] == "tiktokglobal_int"]
        assert 0 < len(tiktok) <= len(every), kind
        organic, _ = gw.raw(kind, **day, media_source="organic")
        assert len(tiktok) + len(organic) <= len(every)
        assert all(r["media_source"] == "organic" for r in organic)
    installs, _ = gw.raw("installs", **day)
    assert len({r["media_source"] for r in installs}) > 1  # the filter had rows to leave out
    android, _ = gw.raw("installs", **day, platform="android")
    assert android == [r for r in installs if r["platform"] == "android"]
    assert 0 < len(android) < len(installs)
    # A filter the kind has no column for is refused, naming it.
    for kind, name in (("postbacks", "media_source"), ("impressions", "platform")):
        r = gw.http.get(
            f"/api/v1/raw/{kind}.csv", params={"app_key": "demo", name: "x"}, headers=gw.admin
        )
        assert (r.status_code, r.json()["field"]) == (400, name), r.text


@pytest.mark.both_backends
def test_retention_erases_and_makes_organic_and_keeps_past_rollups(gw: Owner) -> None:
    ids = make_history(gw)
    before = gw.overview(**{"from": "2026-11-21", "to": "2026-11-21", "group_by": "media_source"})
    # 184 days after the 21st: A and B (attributed to TikTok) are past 183 days.
    assert cli("retention", "run", "--as-of", "2027-05-24", "--db", gw.db) == 0
    row = gw.sql("SELECT ip, user_agent, gaid, ttclid, af_sub1, original_url FROM installs "
                 "WHERE id = ?", (ids["a"],))[0]  # fmt: skip
    assert row[:5] == (None, None, None, None, None)
    assert row[5] == "http://gangway.test/c/demo"
    assert gw.sql("SELECT ttclid, ip FROM clicks WHERE ttclid IS NULL") != []
    # A later event of A is organic and sends nothing.
    gw.at(START + 184 * 86_400)
    answer = gw.event("phone-alpha", "a-late", "af_purchase", af_revenue="3", af_currency="USD")
    assert (answer["media_source"], answer["postback"]) == ("organic", "not_attributed")
    assert gw.sql("SELECT COUNT(*) FROM postbacks p JOIN events e ON e.id = p.subject_id "
                  "WHERE e.event_id = 'a-late'") == [(0,)]  # fmt: skip
    # The past did not change.
    after = gw.overview(**{"from": "2026-11-21", "to": "2026-11-21", "group_by": "media_source"})
    assert after == before
    # A second run changes nothing.
    counts = gw.sql("SELECT COUNT(*) FROM installs WHERE is_retained_organic = 1")
    assert cli("retention", "run", "--as-of", "2027-05-24", "--db", gw.db) == 0
    assert gw.sql("SELECT COUNT(*) FROM installs WHERE is_retained_organic = 1") == counts == [(2,)]


def test_retention_with_rewritten_aggregates_moves_the_past_to_organic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for gw in open_owner(tmp_path, retention_rewrite_aggregates=True):
        make_history(gw)
        monkeypatch.setenv("GANGWAY_RETENTION_REWRITE_AGGREGATES", "1")
        assert cli("retention", "run", "--as-of", "2027-05-24", "--db", gw.db) == 0
        assert "installs 2" in capsys.readouterr().out
        report = gw.overview(**{"from": "2026-11-21", "to": "2026-11-21",
                                "group_by": "media_source"})  # fmt: skip
        paid, organic = (
            next(r for r in report["rows"] if r["media_source"] == s)
            for s in ("tiktokglobal_int", "organic")
        )
        # A and B moved, with A's and D's events; touches and cost stay where they were.
        assert (paid["installs"], paid["events"], paid["clicks"], paid["cost"]) == (
            0, {}, 3, "62.00",
        )  # fmt: skip
        assert organic["installs_by_status"] == {"organic": 4, "reinstall": 1, "rejected": 1}
        assert organic["events"] == {"af_purchase": 4, "level_up": 1}
        assert cli("retention", "run", "--as-of", "2027-05-24", "--db", gw.db) == 0
        assert "installs 0" in capsys.readouterr().out
        # A rebuild gives the same numbers.
        assert cli("rollups", "rebuild", "--app", "demo", "--db", gw.db) == 0
        assert gw.overview(**{"from": "2026-11-21", "to": "2026-11-21",
                              "group_by": "media_source"}) == report  # fmt: skip


@pytest.mark.both_backends
def test_privacy_erase_by_app_instance_id_and_by_ttclid(gw: Owner) -> None:
    ids = make_history(gw)
    before = gw.overview(**{"from": "2026-11-21", "to": "2026-11-21"})
    queued = gw.sql("SELECT id FROM postbacks WHERE subject_id = ?", (ids["a"],))
    assert len(queued) == 1

    def erase(body: dict[str, str]) -> dict[str, int]:
        r = gw.http.post("/api/v1/privacy/erase", json=body, headers=gw.admin)
        assert r.status_code == 200, r.text
        return dict(r.json()["erased"])

    by_instance = {"app_key": "demo", "app_instance_id": "phone-alpha"}
    # A's install, its three events, its click; queued postbacks: A's install and two
    # purchases, and D's purchase (D reinstalled A's phone: its postback describes A's click).
    assert erase(by_instance) == {
        "installs": 1, "events": 3, "clicks": 1, "impressions": 0, "postbacks": 4,
    }  # fmt: skip
    postback = gw.http.get(f"/api/v1/postbacks/{queued[0][0]}", headers=gw.admin).json()
    assert postback["state"] == "dropped"
    assert gw.sql("SELECT COUNT(*) FROM postbacks WHERE subject_id = ? AND state IN "
                  "('pending', 'retrying')", (ids["a"],)) == [(0,)]  # fmt: skip
    retry = gw.http.post(f"/api/v1/postbacks/{queued[0][0]}/retry", headers=gw.admin)
    assert gw.sql("SELECT state FROM postbacks WHERE id = ?", (queued[0][0],)) == [("dropped",)]
    assert retry.status_code in (202, 409)
    assert erase(by_instance) == dict.fromkeys(
        ("installs", "events", "clicks", "impressions", "postbacks"), 0
    )
    # B by the ttclid TikTok knows: its install, its click, its queued install postback.
    assert erase({"ttclid": "E.C.P.bravo"}) == {
        "installs": 1, "events": 0, "clicks": 1, "impressions": 0, "postbacks": 1,
    }  # fmt: skip
    assert erase({"ttclid": "E.C.P.bravo"})["installs"] == 0
    assert erase({"ttclid": "E.C.P.imp"}) == {
        "installs": 0, "events": 0, "clicks": 0, "impressions": 1, "postbacks": 0,
    }  # fmt: skip
    # The erased values are nowhere in the database, and the counts are kept.
    # (On PostgreSQL, every table: the page views and click claims it keeps apart too.)
    for table in dbq.tables(gw.db):
        for row in gw.sql(f"SELECT * FROM {table}"):
            text = repr(row)
            for value in ("phone-alpha", "E.C.P.alpha", "E.C.P.bravo", "E.C.P.imp"):
                assert value not in text, (table, row)
    audit = gw.sql("SELECT actor, key_kind, app_key, counts FROM privacy_erasures "
                   "ORDER BY time, rowid")  # fmt: skip
    assert [(kind, app) for _, kind, app, _ in audit] == [
        ("app_instance_id", "demo"), ("app_instance_id", "demo"),
        ("ttclid", None), ("ttclid", None), ("ttclid", None),
    ]  # fmt: skip
    assert all(actor.startswith("token:") for actor, *_ in audit)
    # A's device id is gone from A's install (D, the same phone's later install, is another
    # app instance: an erase by app_instance_id does not reach it).
    assert gw.sql("SELECT gaid, ip, user_agent FROM installs WHERE id = ?", (ids["a"],)) == [
        (None, None, None)
    ]
    assert gw.overview(**{"from": "2026-11-21", "to": "2026-11-21"})["totals"] == before["totals"]
    # The erased user's device is not recognised any more: events of it are unknown.
    r = gw.http.post("/api/v1/events", json={"app_key": "demo", "app_instance_id": "phone-alpha",
                     "event_name": "x"}, headers=gw.sdk)  # fmt: skip
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "app_key"),
        ({"app_key": "demo"}, "app_instance_id"),
        ({"ttclid": "x", "app_key": "demo"}, "ttclid"),
        ({"ttclid": 5}, "ttclid"),
    ],
)
def test_bad_erase_requests_name_their_field(gw: Owner, body: dict[str, Any], field: str) -> None:
    r = gw.http.post("/api/v1/privacy/erase", json=body, headers=gw.admin)
    assert (r.status_code, r.json()["field"]) == (400, field)


def test_cost_as_a_multipart_file(gw: Owner) -> None:
    gw.upload("/api/v1/cost/rates", RATES_CSV)
    r = gw.http.post(
        "/api/v1/cost",
        files={"file": ("cost.csv", COST_CSV.encode(), "text/csv")},
        data={"app_key": "demo"},
        headers=gw.admin,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["imported"], [x["line"] for x in r.json()["rejected"]]) == (2, [4, 5, 6])
    stored = gw.sql("SELECT ad, cost, currency, amount, source FROM cost ORDER BY ad")
    assert stored == [
        ("video1", "40.00", "USD", 40_000_000, "upload"),
        ("video2", "20", "EUR", 22_000_000, "upload"),
    ]
    missing = gw.http.post("/api/v1/cost?app_key=demo", content=b"date,cost\n",
                           headers=gw.admin | {"Content-Type": "text/csv"})  # fmt: skip
    assert (missing.status_code, missing.json()["field"]) == (400, "file")
    wrong = gw.http.post("/api/v1/cost?app_key=demo", json={}, headers=gw.admin)
    assert wrong.status_code == 415


def test_report_answers_match_their_documented_schemas(gw: Owner) -> None:
    from app.server import routes
    from app.web.openapi import build_document
    from tests.openapi_check import answers_as_documented

    document = build_document(routes())
    make_history(gw)

    def check(method: str, path: str, url: str, **kwargs: Any) -> None:
        kwargs["headers"] = gw.admin | kwargs.get("headers", {})
        r = gw.http.request(method, url, **kwargs)
        answers_as_documented(document, path, method.lower(), r)

    check("GET", "/api/v1/reports/overview",
          "/api/v1/reports/overview?app_key=demo&group_by=date,campaign")  # fmt: skip
    check("GET", "/api/v1/reports/overview", "/api/v1/reports/overview?app_key=demo&group_by=x")
    check("GET", "/api/v1/reports/overview", "/api/v1/reports/overview?app_key=nope")
    check("GET", "/api/v1/raw/{kind}.csv", "/api/v1/raw/clicks.csv?app_key=demo")
    check("POST", "/api/v1/cost", "/api/v1/cost?app_key=demo", content=COST_CSV.encode(),
          headers={"Content-Type": "text/csv"})  # fmt: skip
    check("POST", "/api/v1/cost/rates", "/api/v1/cost/rates?app_key=demo", json={})
    check("POST", "/api/v1/privacy/erase", "/api/v1/privacy/erase", json={"ttclid": "E.C.P.x"})
    check("POST", "/api/v1/privacy/erase", "/api/v1/privacy/erase", json={"app_key": "demo"})
