"""The partner rules of issue #15, one test each, through the HTTP API and the fake TikTok.

A real server per module, trusting 127.0.0.1 as a proxy so each test visits and installs from
its own `X-Forwarded-For` address (probabilistic matches of one test never see another's
touches). Payloads that reach the fake TikTok are compared whole.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from app.__main__ import DEMO_INTEGRATION
from tests.fakes.tiktok_api import FakeTikTok
from tests.fixtures import (
    ANDROID_UA,
    EMAIL_VECTOR,
    event,
    http,
    install,
    owner,
    put_integration,
    seed,
    visit,
)
from tests.live import LiveServer

PARTNER_EVENTS = "/api/v1/partners/tiktokweb_int/events"
INTEGRATION = "/api/v1/apps/demo/integrations/tiktokweb_int"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake_tiktok_server: Any) -> Iterator[Any]:
    db = str(tmp_path_factory.mktemp("partner") / "gangway.db")
    token, sdk_key = seed(db)
    server = LiveServer(
        db,
        {
            "GANGWAY_TIKTOK_API_URL": fake_tiktok_server.base_url,
            "GANGWAY_TRUSTED_PROXIES": "127.0.0.1",
        },
    ).start()
    server.admin_token = token  # type: ignore[attr-defined]
    server.sdk_key = sdk_key  # type: ignore[attr-defined]
    yield server
    server.stop()


def mapped(*events: dict[str, Any], **inapp: Any) -> dict[str, Any]:
    """The demo integration with these in-app mappings (and other in-app settings)."""
    base = DEMO_INTEGRATION["inapp_postbacks"]
    assert isinstance(base, dict)
    return {"inapp_postbacks": base | {"events": list(events)} | inapp}


def from_ip(ip: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip}


def tiktok_install(gw: Any, fake: FakeTikTok, instance: str, ip: str, ttclid: str) -> Any:
    """A visit and a Play-referrer install from `ip`; answers the visit, once TikTok got the
    install's postback."""
    v = visit(gw.url, ttclid, headers=from_ip(ip))
    installed = install(gw, instance, v.install_referrer, ip=ip)
    assert installed["status"] == "attributed"
    fake.wait_for_events(1)
    return v


def touch_fields(ttclid: str, ip: str, landing_url: str) -> dict[str, Any]:
    return {
        "user": {"ttclid": ttclid, "ip": ip, "user_agent": ANDROID_UA},
        "page": {"url": landing_url},
    }


# --- 1. event parameters beyond revenue -------------------------------------------------------


def test_standard_parameters_reach_tiktok_as_properties_without_revenue(
    gw: Any, fake_tiktok: FakeTikTok
) -> None:
    put_integration(
        gw,
        **mapped({"app_event": "af_add_to_cart", "partner_event": "AddToCart"}),
    )
    try:
        ip, ttclid = "203.0.113.11", "E.C.P.params"
        v = tiktok_install(gw, fake_tiktok, "params-1", ip, ttclid)
        t = int(time.time()) + 120
        answer = event(
            gw,
            "params-1",
            "af_add_to_cart",
            event_time=t,
            event_value={
                "af_revenue": "19.98",
                "af_currency": "EUR",
                "af_content_id": ["sku-1", "sku-2"],
                "af_content_type": "sub",
                "af_quantity": [1, "2"],
                "af_price": ["9.99", 4.995],
                "af_search_string": "red shoes",
                "af_description": "d" * 600,
                "af_order_id": 1234,
                "level": "7",
            },
        )
        assert answer == {
            "event_id": answer["event_id"],
            "media_source": "tiktokglobal_int",
            "postback": "queued",
            "flags": ["property_truncated"],
        }
        _, sent = fake_tiktok.wait_for_events(2)
        assert sent == {
            "event": "AddToCart",
            "event_time": t,
            "event_id": sent["event_id"],
            "limited_data_use": False,
            **touch_fields(ttclid, ip, v.landing_url),
            # No value or currency: revenue goes only with Purchase.
            "properties": {
                "contents": [
                    {"content_id": "sku-1", "content_type": "sub", "quantity": 1, "price": 9.99},
                    {"content_id": "sku-2", "content_type": "sub", "quantity": 2, "price": 4.995},
                ],
                "query": "red shoes",
                "description": "d" * 512,
                "order_id": "1234",
            },
        }
        assert fake_tiktok.violations == []
    finally:
        put_integration(gw)


# --- 2. conditions on a mapping ---------------------------------------------------------------


def test_a_mapping_sends_only_events_that_meet_its_conditions(
    gw: Any, fake_tiktok: FakeTikTok
) -> None:
    conditions = [
        {"param": "af_revenue", "op": ">=", "value": 5},
        {"param": "af_content_type", "op": "==", "value": "sub"},
    ]
    refused = owner(
        gw,
        "PUT",
        INTEGRATION,
        json=DEMO_INTEGRATION
        | mapped(
            {
                "app_event": "af_purchase",
                "partner_event": "Pay",
                "conditions": [{"param": "af_revenue", "op": ">=", "value": "5"}],
            }
        ),
    )
    assert refused.status_code == 400
    assert refused.json()["field"] == "inapp_postbacks.events[0].conditions[0].value"
    bad_op = owner(
        gw,
        "PUT",
        INTEGRATION,
        json=DEMO_INTEGRATION
        | mapped(
            {
                "app_event": "af_purchase",
                "partner_event": "Pay",
                "conditions": [{"param": "af_revenue", "op": "=~", "value": 5}],
            }
        ),
    )
    assert (bad_op.status_code, bad_op.json()["field"]) == (
        400,
        "inapp_postbacks.events[0].conditions[0].op",
    )

    put_integration(
        gw,
        **mapped(
            {
                "app_event": "af_purchase",
                "partner_event": "Pay",
                "include_revenue": True,
                "conditions": conditions,
            }
        ),
    )
    try:
        ip, ttclid = "203.0.113.12", "E.C.P.conditions"
        v = tiktok_install(gw, fake_tiktok, "cond-1", ip, ttclid)
        t = int(time.time()) + 120
        small = event(
            gw,
            "cond-1",
            "af_purchase",
            event_time=t,
            event_value={"af_revenue": "4.99", "af_content_type": "sub"},
        )
        assert small == {
            "event_id": small["event_id"],
            "media_source": "tiktokglobal_int",
            "postback": "condition_failed",
            "conditions": [
                {"param": "af_revenue", "op": ">=", "value": 5, "actual": "4.99", "met": False},
                {
                    "param": "af_content_type",
                    "op": "==",
                    "value": "sub",
                    "actual": "sub",
                    "met": True,
                },
            ],
        }
        big = event(
            gw,
            "cond-1",
            "af_purchase",
            event_time=t + 1,
            event_value={"af_revenue": 5, "af_content_type": "sub"},
        )
        assert big["postback"] == "queued"
        assert [c["met"] for c in big["conditions"]] == [True, True]

        # Queued before the purchase that went, a held-back one sent by mistake would be here.
        _, sent = fake_tiktok.wait_for_events(2)
        assert sent == {
            # The partner identifier Pay goes out under its TikTok name.
            "event": "Purchase",
            "event_time": t + 1,
            "event_id": sent["event_id"],
            "limited_data_use": False,
            **touch_fields(ttclid, ip, v.landing_url),
            "properties": {
                "value": 5,
                "currency": "USD",
                "contents": [{"content_type": "sub"}],
            },
        }
    finally:
        put_integration(gw)


# --- 3. events for all users need a match key -------------------------------------------------


def test_an_organic_users_event_is_sent_only_with_a_match_key(
    gw: Any, fake_tiktok: FakeTikTok
) -> None:
    put_integration(
        gw,
        **mapped(
            {"app_event": "af_complete_registration", "partner_event": "CompleteRegistration"},
            for_users="all",
        ),
    )
    try:
        organic = install(gw, "keyless-1", None, ip="192.0.2.13")
        assert organic["status"] == "organic"
        t = organic["install_time"]
        nothing = event(gw, "keyless-1", "af_complete_registration", event_time=t + 60)
        assert nothing == {
            "event_id": nothing["event_id"],
            "media_source": "organic",
            "postback": "no_match_key",
        }
        keyed = event(
            gw,
            "keyless-1",
            "af_complete_registration",
            event_time=t + 120,
            user={"email": " ALICE_abc@gmail.com "},
        )
        assert keyed["postback"] == "queued"
        [sent] = fake_tiktok.wait_for_events(1)
        assert sent == {
            "event": "CompleteRegistration",
            "event_time": t + 120,
            "event_id": sent["event_id"],
            "limited_data_use": False,
            # No touch: no ttclid, IP, user agent or page; the hashed email is the match key.
            "user": {"email": EMAIL_VECTOR},
        }
    finally:
        put_integration(gw)


# --- 4. af_sub for impression-attributed installs ---------------------------------------------


def test_an_impression_attributed_install_has_the_ttclid_in_the_pages_sub(
    gw: Any, fake_tiktok: FakeTikTok
) -> None:
    page = owner(
        gw,
        "PUT",
        "/api/v1/pages/sub3",
        json={"app_key": "demo", "title": "Sub 3", "ttclid_sub": "af_sub3"},
    )
    assert page.status_code == 200, page.text
    ip, ttclid = "203.0.113.14", "E.C.P.viewed"
    landing = f"{gw.url}/lp/sub3?pid=tiktokweb_int&c=views&ttclid={ttclid}"
    # A hand-made beacon: the landing parameters as they came, no af_subN among them.
    beacon = http().post(
        f"{gw.url}/i/demo",
        json={"url": landing, "params": {"pid": "tiktokweb_int", "c": "views", "ttclid": ttclid}},
        headers={"User-Agent": ANDROID_UA} | from_ip(ip),
    )
    assert beacon.status_code == 202, beacon.text
    installed = install(gw, "viewed-1", None, ip=ip, user_agent=ANDROID_UA)
    assert installed["status"] == "attributed"
    assert installed["match_type"] == "probabilistic_impression"
    assert (installed["af_sub1"], installed["af_sub3"]) == (None, ttclid)
    assert installed["ttclid"] == ttclid
    stored = owner(gw, "GET", f"/api/v1/installs/{installed['install_id']}").json()
    assert stored["af_sub3"] == ttclid
    [sent] = fake_tiktok.wait_for_events(1)
    assert sent["event"] == "Download"
    assert sent["user"]["ttclid"] == ttclid


# --- 7. the partner event list is data --------------------------------------------------------


def test_the_partner_event_list_is_served_and_the_config_api_says_what_it_got(
    gw: Any, fake_tiktok: FakeTikTok
) -> None:
    listing = owner(gw, "GET", PARTNER_EVENTS)
    assert listing.status_code == 200
    body = listing.json()
    assert body["partner"] == "tiktokweb_int"
    standard = {e["name"]: e for e in body["standard_events"]}
    assert standard["Purchase"] == {
        "name": "Purchase",
        "revenue_allowed": True,
        "default_app_event": "af_purchase",
    }
    assert {name for name, e in standard.items() if e["revenue_allowed"]} == {"Purchase"}
    identifiers = {e["name"]: e for e in body["partner_identifiers"]}
    assert len(identifiers) == 27
    assert identifiers["Pay"] == {
        "name": "Pay",
        "tiktok_event": "Purchase",
        "revenue_allowed": True,
    }
    assert identifiers["2D_retention"]["tiktok_event"] == "2Dretention"
    assert http().get(f"{gw.url}{PARTNER_EVENTS}").status_code == 401

    put = owner(
        gw,
        "PUT",
        INTEGRATION,
        json=DEMO_INTEGRATION
        | mapped(
            {"app_event": "af_purchase", "partner_event": "Purchase", "include_revenue": True},
            {"app_event": "af_level", "partner_event": "Achieve_level"},
            {"app_event": "af_boss", "partner_event": "BossBeaten"},
        ),
    )
    try:
        assert put.status_code == 200, put.text
        kinds = [
            (e["partner_event"], e["partner_event_kind"], e["tiktok_event"])
            for e in put.json()["inapp_postbacks"]["events"]
        ]
        assert kinds == [
            ("Purchase", "standard", "Purchase"),
            ("Achieve_level", "partner_identifier", "AchieveLevel"),
            ("BossBeaten", "custom", "BossBeaten"),
        ]
        for bad, field, rule in (
            ({"partner_event": "Boss beaten!"}, "partner_event", "must be a TikTok"),
            (
                {"partner_event": "BossBeaten", "include_revenue": True},
                "include_revenue",
                "Purchase",
            ),
        ):
            refused = owner(
                gw,
                "PUT",
                INTEGRATION,
                json=DEMO_INTEGRATION | mapped({"app_event": "af_boss", **bad}),
            )
            assert refused.status_code == 400
            assert refused.json()["field"] == f"inapp_postbacks.events[0].{field}"
            assert rule in refused.json()["message"]

        ip = "203.0.113.17"
        tiktok_install(gw, fake_tiktok, "catalogue-1", ip, "E.C.P.catalogue")
        t = int(time.time()) + 120
        assert event(gw, "catalogue-1", "af_level", event_time=t)["postback"] == "queued"
        assert event(gw, "catalogue-1", "af_boss", event_time=t + 1)["postback"] == "queued"
        _, level, boss = fake_tiktok.wait_for_events(3)
        assert (level["event"], boss["event"]) == ("AchieveLevel", "BossBeaten")
        assert fake_tiktok.violations == []
    finally:
        put_integration(gw)


# --- 5. re-attribution ------------------------------------------------------------------------


def test_a_reinstall_beyond_the_window_with_a_touch_is_reattributed_and_sends_nothing(
    gw: Any, fake_tiktok: FakeTikTok
) -> None:
    now = int(time.time())
    ip = "203.0.113.15"
    first = install(
        gw, "back-1", None, ip="192.0.2.15", install_time=now - 91 * 86_400, device={"gaid": "g-15"}
    )
    assert first["status"] == "organic"
    # Inside the 90-day window from the first install: a reinstall, whatever the touch.
    near = install(
        gw, "near-1", None, ip="192.0.2.16", install_time=now - 2 * 86_400, device={"gaid": "g-15"}
    )
    assert near["status"] == "reinstall"

    v = visit(gw.url, "E.C.P.back", headers=from_ip(ip))
    back = install(gw, "back-2", v.install_referrer, ip=ip, device={"gaid": "g-15"})
    assert (back["status"], back["af_status"], back["media_source"]) == (
        "reattributed",
        "Non-organic",
        "tiktokglobal_int",
    )
    assert (back["match_type"], back["ttclid"]) == ("referrer", "E.C.P.back")
    stored = owner(gw, "GET", f"/api/v1/installs/{back['install_id']}").json()
    receipt = stored["receipt"]
    assert receipt["status"] == "reattributed"
    assert receipt["notes"] == ["reattribution"]
    assert receipt["prior_install"]["id"] == near["install_id"]
    assert receipt["prior_install"]["first_install_id"] == first["install_id"]
    assert receipt["prior_install"]["within_reattribution_window"] is False
    assert stored["postbacks"] == []
    # Its events are re-engagement: tiktokweb_int sends none.
    purchase = event(gw, "back-2", "af_purchase", event_value={"af_revenue": "3"})
    assert purchase == {
        "event_id": purchase["event_id"],
        "media_source": "tiktokglobal_int",
        "postback": "not_attributed",
    }
    # A reinstall right after the re-attribution belongs to it, inside its new window.
    again = install(gw, "back-3", None, ip="192.0.2.17", device={"gaid": "g-15"})
    assert again["status"] == "reinstall"
    again_stored = owner(gw, "GET", f"/api/v1/installs/{again['install_id']}").json()
    assert again_stored["reinstall_of"] == back["install_id"]
    assert fake_tiktok.requests == []


# --- 6. PC and console stores -----------------------------------------------------------------

WINDOWS_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)


def test_a_pc_clients_install_matches_the_steam_click_from_its_ip(
    gw: Any, fake_tiktok: FakeTikTok
) -> None:
    ip, ttclid = "203.0.113.16", "E.C.P.steam"
    direct = (
        f"{gw.url}/v1.0/c2s/click/app/steam/440?af_media_source=tiktokweb_int"
        f"&af_campaign=pc-launch&ttclid={ttclid}"
    )
    click = http().get(direct, headers={"User-Agent": WINDOWS_UA} | from_ip(ip))
    assert click.status_code == 302
    assert click.headers["location"] == "https://store.steampowered.com/app/440/"
    # What a PC game client sends on first launch: no phone ids, no referrer, its own UA.
    installed = install(
        gw,
        "steam-client-1",
        None,
        platform="steam",
        ip=ip,
        install_time=int(time.time()) + 300,
        os_version="Windows 11",
        user_agent="UnityPlayer/2022.3.10f1 (UnityWebRequest/1.0, libcurl/8.1.1-DEV)",
    )
    assert installed["status"] == "attributed"
    assert (installed["match_type"], installed["campaign"], installed["ttclid"]) == (
        "probabilistic_click",
        "pc-launch",
        ttclid,
    )
    receipt = owner(gw, "GET", f"/api/v1/installs/{installed['install_id']}").json()["receipt"]
    assert receipt["signals"] == {"ip": "equal", "platform_family": "equal"}
    click_tier = receipt["tiers"][1]
    assert (click_tier["rule"], click_tier["platform_family"], click_tier["window_seconds"]) == (
        "desktop",
        "pc",
        3600,
    )
    [sent] = fake_tiktok.wait_for_events(1)
    assert sent["event"] == "Download"
    assert sent["user"] == {"ttclid": ttclid, "ip": ip, "user_agent": WINDOWS_UA}

    # An hour and a second later, another PC install from that IP is organic.
    late = install(
        gw,
        "steam-client-2",
        None,
        platform="epic",
        ip=ip,
        install_time=int(time.time()) + 3601,
    )
    assert late["status"] == "organic"
    late_receipt = owner(gw, "GET", f"/api/v1/installs/{late['install_id']}").json()["receipt"]
    [loser] = late_receipt["tiers"][1]["losers"]
    assert loser["reason"] == "outside_window"
