"""The pure rules of `app/reports/`: CSV cells, masking, local days, money, cost files,
erasing a row."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from app.fields import FieldError
from app.reports import raw
from app.reports.cost import parse_cost, parse_rates
from app.reports.overview import day_number, day_segments, hour_range, money
from app.reports.privacy import erase_row, parse_retention, retention_cutoff, strip_query
from app.reports.rollups import HOUR, revenue_units
from app.touches import Touch, TouchRecord
from tests.records import make_install

HEADER = "date,media_source,campaign,campaign_id,adset,adset_id,ad,ad_id,country,cost,currency\n"


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_cells_that_a_spreadsheet_would_run_are_text(start: str) -> None:
    assert raw.cell(f"{start}SUM(A1)") == f"'{start}SUM(A1)"
    assert raw.cell(f"a{start}b") == f"a{start}b"


def test_cells_of_other_types() -> None:
    assert [raw.cell(v) for v in (None, True, False, 3, -2.5, {"a": "é"})] == [
        "", "true", "false", "3", "'-2.5", '{"a":"é"}',
    ]  # fmt: skip


def test_limited_data_use_rows_show_a_network_and_no_device() -> None:
    install = make_install(
        "dev-1", ip="203.0.113.77", user_agent="UA", gaid="g-1", idfv="v-1",
        is_limited_data_use=True,
    )  # fmt: skip
    row = raw.install_row(install)
    masked = (row["ip"], row["user_agent"], row["gaid"], row["idfv"])
    assert masked == ("203.0.113.0", None, None, None)
    assert raw.truncate_ip("2001:db8:abcd:12::1") == "2001:db8:abcd::"
    plain = raw.install_row(make_install("dev-2", ip="203.0.113.77", user_agent="UA"))
    assert (plain["ip"], plain["user_agent"]) == ("203.0.113.77", "UA")
    gpc = Touch(id="t", kind="click", app_key="demo", time=0.0, ip="198.51.100.9",
                user_agent="UA", gpc=True, country="FR")  # fmt: skip
    states = frozenset({"CA"})
    limited = raw.touch_row(TouchRecord(gpc), {}, ccpa_limit=True, covered_states=states)
    assert (limited["ip"], limited["user_agent"], limited["is_limited_data_use"]) == (
        "198.51.100.0", None, True,
    )  # fmt: skip
    off = raw.touch_row(TouchRecord(gpc), {}, ccpa_limit=False, covered_states=states)
    assert (off["ip"], off["user_agent"]) == ("198.51.100.9", "UA")


def test_postbacks_of_limited_users_are_masked_in_their_json() -> None:
    from app.postbacks.postback import PostbackRecord

    payload = {"limited_data_use": True, "context": {"ip": "203.0.113.9", "user_agent": "UA"}}
    rec = PostbackRecord("p", "demo", "tiktokweb_int", "install", "i", "Download", payload,
                         "sent", 1, 0.0, 0.0, None, None)  # fmt: skip
    assert raw.postback_row(rec)["payload"] == {
        "limited_data_use": True,
        "context": {"ip": "203.0.113.0"},
    }


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Europe/Paris", "Asia/Tokyo", "UTC"])
def test_local_days_of_hours_match_the_zone_across_daylight_saving(zone: str) -> None:
    tz = ZoneInfo(zone)
    first, end = hour_range(date(2026, 1, 1), date(2026, 12, 31), tz)
    segments = day_segments(first, end, tz)
    assert len(segments) <= 3
    for hour in range(first, end):
        local = datetime.fromtimestamp(hour * HOUR, UTC).astimezone(tz).date()
        assert date(1970, 1, 1).toordinal() + day_number(hour, segments) == local.toordinal()


def test_a_half_hour_zone_puts_each_hour_on_the_day_it_starts_in() -> None:
    tz = ZoneInfo("Asia/Kolkata")  # UTC+5:30
    first, end = hour_range(date(2026, 11, 21), date(2026, 11, 21), tz)
    segments = day_segments(first, end, tz)
    days = {day_number(h, segments) for h in range(first, end)}
    assert len(days) == 1 and end - first == 24


def test_money_is_exact() -> None:
    assert revenue_units("9.99") == 9_990_000
    assert revenue_units("0.0000005") == 0  # half-even
    assert revenue_units("abc") is None and revenue_units("NaN") is None
    assert [money(n) for n in (0, 12_500_000, 1_234, -5_000_000)] == [
        "0.00", "12.50", "0.001234", "-5.00",
    ]  # fmt: skip


def test_a_cost_file_keeps_the_last_row_of_a_key_and_maps_the_pid() -> None:
    text = (
        "\ufeff"
        + HEADER
        + (
            "2026-11-21,tiktokweb_int,s,1,,,,,us,10,usd\n"
            "2026-11-21,tiktokweb_int,s,1,,,,,US,12.5,USD\n"
            "2026-11-21,,s,1,,,,,,1,USD\n"
            "2026-11-21,x,s,1,,,,,,-1,USD\n"
            "2026-11-21,x,s,1,,,,,,1,EURO\n"
            "2026-11-21,x,s,1,,,,,,2,EUR\n"
        )
    )
    rates = {(date(2026, 11, 21), "EUR"): Decimal("1.1")}
    good, bad = parse_cost(text, app_key="demo", unified={"tiktokweb_int": "tiktokglobal_int"},
                           report_currency="USD", rates=rates)  # fmt: skip
    assert [(g.media_source, g.country, g.cost, g.amount) for g in good] == [
        ("tiktokglobal_int", "US", "12.5", 12_500_000),
        ("x", "", "2", 2_200_000),
    ]
    assert [(b.line, b.error) for b in bad] == [
        (4, "media_source is required"),
        (5, "cost must not be negative"),
        (6, "currency must be a three-letter ISO 4217 code"),
    ]
    with pytest.raises(FieldError) as exc:
        parse_cost("date,cost\n", app_key="d", unified={}, report_currency="USD", rates={})
    assert exc.value.field == "file"


def test_a_rates_file() -> None:
    good, bad = parse_rates("date,currency,rate_to_report_currency\n2026-11-21,eur,1.1\nx,EUR,1\n"
                            "2026-11-21,GBP,0\n")  # fmt: skip
    assert [(r.currency, r.rate) for r in good] == [("EUR", Decimal("1.1"))]
    assert [b.line for b in bad] == [3, 4]


def test_erasing_a_row_removes_every_copy_and_changes_nothing_twice() -> None:
    row = {
        "ip": "203.0.113.7",
        "ttclid": "E.C.P.secret",
        "af_sub1": "E.C.P.secret",
        "af_sub2": "keep",
        "original_url": "https://example.com/lp?ttclid=E.C.P.secret#x",
        "answer": {
            "ttclid": "E.C.P.secret",
            "campaign": "summer",
            "url": "https://e.com/?t=E.C.P.secret",
        },
        "campaign": "summer",
    }
    changes = erase_row(row, ("ip", "ttclid"))
    assert changes == {
        "ip": None,
        "ttclid": None,
        "af_sub1": None,
        "original_url": "https://example.com/lp",
        "answer": {"ttclid": None, "campaign": "summer", "url": "https://e.com/"},
    }
    assert erase_row(row | changes, ("ip", "ttclid")) == {}
    assert strip_query("not a url") is None


def test_retention_settings() -> None:
    assert parse_retention({"tiktokweb_int": "183d"}) == {"tiktokweb_int": 183}
    with pytest.raises(ValueError):
        parse_retention({"x": "6 months"})
    cutoff = retention_cutoff(date(2027, 5, 24), 183)
    assert datetime.fromtimestamp(cutoff, UTC) == datetime(2026, 11, 22, tzinfo=UTC)
