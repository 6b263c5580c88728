"""Click routing (app/destinations.py): the visitor's store, platform forcing, and the host rule
that keeps a tracking domain from becoming an open redirect."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from app.__main__ import DEMO_APP
from app.configs import validate_app
from app.destinations import allowed_hosts, android_referrer, choose, safe_redirect

APP = validate_app(DEMO_APP)
IOS = "https://apps.apple.com/app/id1234567890"
PLAY = "https://play.google.com/store/apps/details?id=com.example.game"
APK = "https://cdn.example.com/game.apk"
STEAM = "https://store.steampowered.com/app/440/"
WEB = "https://example.com/"
LANDING = "https://track.example.com/lp/demo?pid=tiktokweb_int"


def route(
    os_family: str | None = None,
    *,
    platform: str | None = None,
    config: dict[str, Any] | None = None,
    fallback: str | None = None,
    **params: str,
) -> Any:
    return choose(
        APP if config is None else config,
        os_family=os_family,
        forced_platform=platform,
        params=params,
        click_id="CLICK1",
        fallback_url=fallback,
    )


def test_iphone_goes_to_the_app_store() -> None:
    dest = route("ios", pid="tiktokweb_int")
    assert (dest.url, dest.platform, dest.flags) == (IOS, "ios", ())


def test_android_goes_to_play_with_the_click_id_and_campaign_in_the_referrer() -> None:
    dest = route("android", pid="tiktokweb_int", c="summer sale", af_c_id="17", af_sub1="T")
    parts = urlsplit(dest.url)
    query = parse_qs(parts.query)
    assert dest.url.startswith(PLAY + "&referrer=")
    assert query["id"] == ["com.example.game"]
    referrer = query["referrer"][0]
    assert referrer == "gw_click_id=CLICK1&pid=tiktokweb_int&c=summer+sale&af_c_id=17"
    assert dest.platform == "android"


def test_android_without_a_play_listing_gets_the_apk() -> None:
    config = {
        **APP,
        "destinations": {k: v for k, v in APP["destinations"].items() if k != "android"},
    }
    assert route("android", config=config).url == APK


@pytest.mark.parametrize(
    ("platform", "url"),
    [("steam", STEAM), ("apk", APK), ("ios", IOS), ("STEAM", STEAM), ("web", WEB)],
)
def test_platform_forces_the_destination_on_any_device(platform: str, url: str) -> None:
    dest = route("android", platform=platform)
    assert dest.url == url and dest.platform == platform.lower()


def test_forcing_android_from_a_desktop_still_carries_the_referrer() -> None:
    dest = route("windows", platform="android")
    assert "gw_click_id%3DCLICK1" in dest.url


def test_a_platform_the_app_does_not_have_is_ignored() -> None:
    assert route("ios", platform="xbox").url == IOS
    assert route("ios", platform="<script>").url == IOS


def test_desktop_goes_to_the_web_url() -> None:
    dest = route("windows")
    assert (dest.url, dest.platform) == (WEB, "web")


def test_desktop_takes_an_allowed_af_web_dp() -> None:
    assert route("macos", af_web_dp="https://example.com/promo?x=1").url == (
        "https://example.com/promo?x=1"
    )


def test_desktop_refuses_a_foreign_af_web_dp_and_flags_it() -> None:
    dest = route("macos", af_web_dp="https://evil.example/")
    assert dest.url == WEB and dest.flags == ("redirect_rejected",)


def test_a_phone_ignores_af_web_dp() -> None:
    assert route("ios", af_web_dp="https://example.com/promo").url == IOS


def test_desktop_without_web_goes_back_to_the_landing_page_else_a_store() -> None:
    config = {**APP, "destinations": {k: v for k, v in APP["destinations"].items() if k != "web"}}
    assert route("linux", config=config, fallback=LANDING).url == LANDING
    assert route("linux", config=config).url == IOS


def test_an_allowed_af_r_overrides_every_device() -> None:
    for os_family in ("ios", "android", "windows", None):
        dest = route(os_family, af_r="https://example.com/special")
        assert dest.url == "https://example.com/special" and dest.flags == ()


def test_af_r_may_point_at_the_host_of_any_of_the_app_s_destinations() -> None:
    assert route("ios", af_r="https://cdn.example.com/beta.apk").url == (
        "https://cdn.example.com/beta.apk"
    )


def test_a_foreign_af_r_is_ignored_and_flagged() -> None:
    dest = route("ios", af_r="https://evil.example/")
    assert (dest.url, dest.flags) == (IOS, ("redirect_rejected",))
    both = route("windows", af_r="https://evil.example/", af_web_dp="https://evil.example/")
    assert (both.url, both.flags) == (WEB, ("redirect_rejected",))


HOSTILE_REDIRECTS = [
    "https://evil.example/",
    "//evil.example/",
    "https:/evil.example/",
    "https:///evil.example/",
    "https:evil.example",
    "javascript:alert(1)//example.com",
    "data:text/html,<script>alert(1)</script>",
    "https://example.com@evil.example/",
    # Goes to a configured host, but shows another: credentials in a redirect are refused.
    "https://apps.apple.com.login@example.com/",
    "https://example.com:443@evil.example/",
    "https://evil.example\\@example.com/",
    "https://evil.example\\.example.com/",
    "https://evil.example#@example.com",
    "https://example.com.evil.example/",
    "https://evilexample.com/",
    "https://sub.example.com/",
    "https://example.com%2F@evil.example/",
    "https://exa\tmple.com/",
    "https://example.com\n.evil.example/",
    "https://example.com\x00.evil.example/",
    "https://example。com/",
    "https://еxample.com/",  # Cyrillic е
    "ftp://example.com/",
    "https://example.com:notaport/",
    "https://[::1/",
    " https://evil.example/",
]


@pytest.mark.parametrize("url", HOSTILE_REDIRECTS)
def test_no_trick_gets_past_the_host_rule(url: str) -> None:
    assert safe_redirect(url, allowed_hosts(APP)) is None
    dest = route("ios", af_r=url)
    assert dest.url == IOS and dest.flags == ("redirect_rejected",)


@pytest.mark.parametrize(
    "url", ["https://example.com/", "HTTPS://EXAMPLE.COM/Promo", "http://example.com:8080/x?y=1#z"]
)
def test_configured_hosts_pass_in_any_letter_case_port_or_path(url: str) -> None:
    assert safe_redirect(url, allowed_hosts(APP)) == url


def test_allowed_hosts_are_the_destinations_and_the_list() -> None:
    assert allowed_hosts(APP) == {
        "apps.apple.com",
        "play.google.com",
        "cdn.example.com",
        "store.steampowered.com",
        "example.com",
    }


def test_the_referrer_holds_only_present_values_in_order() -> None:
    assert android_referrer("ID", {"c": "x", "pid": "p", "af_ad_id": "", "zz": "no"}) == (
        "gw_click_id=ID&pid=p&c=x"
    )
    assert android_referrer(None, {"pid": "p"}) == "pid=p"
