"""The link builder and the link doctor (console.md sections 4 and 5): one test per mistake the
doctor must flag, and the CTA links and Play referrer it shows for the three devices."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from starlette.testclient import TestClient

from app.__main__ import DEMO_APP, DEMO_PAGE
from app.configs import validate_app, validate_page
from app.mapping import validate_af_parameters
from app.server import create_app
from app.settings import Settings
from app.store.records import AppRecord, PageRecord
from app.web.console.links import build_links, diagnose
from tests.console_kit import ADMIN, add_users_and_other_app, log_in

ORIGIN = "https://track.example.com"
GOOD = (
    f"{ORIGIN}/lp/demo?pid=tiktokweb_int&c=__CAMPAIGN_NAME__&af_c_id=__CAMPAIGN_ID__"
    "&af_adset=__AID_NAME__&af_adset_id=__AID__&af_ad=__CID_NAME__&af_ad_id=__CID__"
)


def app_record(**changes: Any) -> AppRecord:
    config = validate_app(DEMO_APP | changes)
    return AppRecord("demo", config["name"], "sdk", config, 0.0, 0.0)


def page_record(slug: str = "demo", **changes: Any) -> PageRecord:
    config = validate_page(DEMO_PAGE | changes, validate_af_parameters)
    return PageRecord(slug, "demo", config, 0.0, 0.0)


def check(url: str, page: PageRecord | None = None, app: AppRecord | None = None) -> list[str]:
    page = page or page_record()
    return diagnose(url, ORIGIN, page, app or app_record(), True).codes


def test_the_builder_spells_tiktoks_macros_on_the_presets_keys() -> None:
    built = build_links(page_record(), app_record(), ORIGIN)
    assert built.destination_url == GOOD
    assert built.impression_url == (
        f"{ORIGIN}/i/demo?pid=tiktokweb_int&c=__CAMPAIGN_NAME__&af_c_id=__CAMPAIGN_ID__"
        "&af_adset=__AID_NAME__&af_adset_id=__AID__&af_ad=__CID_NAME__&af_ad_id=__CID__"
    )
    [(platform, steam)] = built.direct
    assert platform == "steam"
    parts = urlsplit(steam)
    assert parts.path == "/v1.0/c2s/click/app/steam/440"
    query = parse_qs(parts.query)
    assert query["af_media_source"] == ["tiktokweb_int"]
    assert query["af_campaign"] == ["__CAMPAIGN_NAME__"]
    assert query["af_r"] == ["https://store.steampowered.com/app/440/"]
    assert check(built.destination_url) == []


def test_the_builder_follows_a_custom_mapping() -> None:
    mapping = {
        "mediaSource": {"keys": ["utm_source"]},
        "campaign": {"keys": ["utm_campaign"]},
        "afCustom": [{"paramKey": "af_c_id", "keys": ["cid"]}],
    }
    built = build_links(page_record(mapping=mapping), app_record(), ORIGIN)
    assert built.destination_url == (
        f"{ORIGIN}/lp/demo?utm_source=tiktokweb_int&utm_campaign=__CAMPAIGN_NAME__"
        "&cid=__CAMPAIGN_ID__"
    )
    assert any("af_adset" in note for note in built.notes)


@pytest.mark.parametrize("macro", ["_CAMPAIGN_ID_", "__campaign_id__", "__Campaign_Id__"])
def test_a_misspelt_macro_is_flagged(macro: str) -> None:
    assert check(GOOD.replace("__CAMPAIGN_ID__", macro)) == ["macro_spelling"]


def test_no_pid_is_flagged() -> None:
    assert check(GOOD.replace("pid=tiktokweb_int&", "")) == ["no_pid"]


def test_another_pid_is_flagged() -> None:
    assert check(GOOD.replace("pid=tiktokweb_int", "pid=googleadwords_int")) == ["wrong_pid"]


def test_a_ttclid_that_reaches_no_af_sub_is_flagged() -> None:
    mapping = validate_af_parameters(
        {"mediaSource": {"keys": ["pid"]}} | {f"afSub{n}": {"keys": [f"s{n}"]} for n in range(1, 6)}
    )
    url = GOOD + "".join(f"&s{n}=v{n}" for n in range(1, 6))
    assert check(url, page_record(mapping=mapping)) == ["af_sub_twice", "ttclid_no_sub"]


def test_two_parameters_mapped_to_one_af_sub_are_flagged() -> None:
    mapping = {"mediaSource": {"keys": ["pid"]}, "afSub2": {"keys": ["a", "b"]}}
    codes = check(GOOD + "&a=1&b=2", page_record(mapping=mapping))
    assert codes == ["af_sub_twice"]
    # ...and so is an af_sub given twice in the URL.
    assert check(GOOD + "&af_sub3=x&af_sub3=y") == ["af_sub_twice"]
    # ...and a parameter taking the af_sub the ttclid is meant for.
    taken = {"mediaSource": {"keys": ["pid"]}, "afSub1": {"keys": ["promo"]}}
    assert check(GOOD + "&promo=x", page_record(mapping=taken)) == ["af_sub_twice", "ttclid_moved"]


@pytest.mark.parametrize("key", ["af_r", "af_web_dp"])
def test_a_redirect_to_a_host_not_allowed_is_flagged(key: str) -> None:
    assert check(GOOD + f"&{key}=https%3A%2F%2Fevil.example%2F") == ["redirect_not_allowed"]
    assert check(GOOD + f"&{key}=https%3A%2F%2Fexample.com%2Fsale") == []


def test_a_url_on_another_host_is_flagged() -> None:
    assert check(GOOD.replace(ORIGIN, "https://track.other.example")) == ["not_our_host"]


def test_a_page_that_does_not_exist_is_flagged() -> None:
    diagnosis = diagnose(GOOD.replace("/lp/demo", "/lp/nope"), ORIGIN, None, None, False)
    assert diagnosis.codes == ["no_such_page"] and diagnosis.devices == []


def test_a_url_over_2000_characters_is_flagged() -> None:
    assert check(GOOD + "&c2=" + "x" * 2000) == ["too_long"]


def test_the_three_devices_get_their_own_store_first_and_the_play_referrer() -> None:
    diagnosis = diagnose(GOOD + "&ttclid=E.C.P.abc", ORIGIN, page_record(), app_record(), True)
    devices = {d.key: d for d in diagnosis.devices}
    assert [c.platform for c in devices["iphone"].ctas][0] == "ios"
    assert [c.platform for c in devices["android"].ctas][0] == "android"
    assert [c.platform for c in devices["desktop"].ctas][0] == "steam"
    for device in devices.values():
        for cta in device.ctas:
            assert cta.href.startswith(f"{ORIGIN}/c/demo?")
            query = parse_qs(urlsplit(cta.href).query)
            assert query["pid"] == ["tiktokweb_int"] and query["ttclid"] == ["E.C.P.abc"]
            assert query["af_sub1"] == ["E.C.P.abc"] and query["platform"] == [cta.platform]
        assert device.ttclid_sub == "af_sub1"
        assert device.survives["c"] == "__CAMPAIGN_NAME__"
    iphone_ios = devices["iphone"].ctas[0]
    assert iphone_ios.redirect == "https://apps.apple.com/app/id1234567890"
    play = devices["android"].ctas[0]
    assert play.redirect.startswith(
        "https://play.google.com/store/apps/details?id=com.example.game"
    )
    assert play.play_referrer is not None
    assert parse_qs(play.play_referrer) == {
        "gw_click_id": ["CLICK_ID"],
        "pid": ["tiktokweb_int"],
        "c": ["__CAMPAIGN_NAME__"],
        "af_c_id": ["__CAMPAIGN_ID__"],
        "af_adset": ["__AID_NAME__"],
        "af_adset_id": ["__AID__"],
        "af_ad": ["__CID_NAME__"],
        "af_ad_id": ["__CID__"],
    }
    steam = devices["desktop"].ctas[0]
    assert steam.redirect == "https://store.steampowered.com/app/440/"
    # The ttclid TikTok appends is simulated when the URL has none.
    plain = diagnose(GOOD, ORIGIN, page_record(), app_record(), True)
    assert plain.devices[0].survives["ttclid"].startswith("E.C.P.")


def test_the_doctor_shows_what_the_real_page_renders(client: TestClient) -> None:
    """The same CTA hrefs as GET /lp/demo for the same device (no second implementation)."""
    from app.web.console.links import DEVICES

    diagnosis = diagnose(
        "http://gangway.test/lp/demo?pid=tiktokweb_int&c=x&ttclid=T1",
        "http://gangway.test",
        page_record(),
        app_record(),
        True,
    )
    for (_, _, user_agent), device in zip(DEVICES, diagnosis.devices, strict=True):
        html = client.get(
            "/lp/demo?pid=tiktokweb_int&c=x&ttclid=T1", headers={"User-Agent": user_agent}
        ).text
        rendered = re.findall(r'data-platform="(\w+)"[^>]*href="([^"]+)"', html) or [
            (p, h) for h, p in re.findall(r'href="([^"]+)"[^>]*data-platform="(\w+)"', html)
        ]
        pvid = re.search(r'name="gw-pvid" content="([^"]+)"', html)
        assert pvid
        expected = [
            (c.platform, c.href.replace("pvid=doctor", f"pvid={pvid.group(1)}"))
            for c in device.ctas
        ]
        assert [(p, h.replace("&amp;", "&")) for p, h in rendered] == expected


@pytest.fixture()
def console(settings: Settings, seeded: tuple[str, str]) -> Iterator[TestClient]:
    add_users_and_other_app(settings.db)
    with TestClient(create_app(settings, run_jobs=False), base_url="http://gangway.test") as c:
        log_in(c, ADMIN)
        yield c


def test_the_console_screens_of_both_tools(console: TestClient) -> None:
    links = console.get("/admin/pages/demo/links").text
    destination = re.search(r'id="destination-url" value="([^"]+)"', links)
    assert destination
    url = destination.group(1).replace("&amp;", "&")
    assert url == GOOD.replace(ORIGIN, "http://gangway.test")
    assert 'data-copy="destination-url"' in links
    doctor = console.get("/admin/doctor?url=" + quote(url.replace("__AID__", "_AID_"))).text
    assert re.findall(r'data-code="(\w+)"', doctor) == ["macro_spelling"]
    assert 'data-device="android"' in doctor and "gw_click_id=" in doctor
    assert console.get("/admin/doctor?url=" + quote(url)).text.count('data-code="') == 0
