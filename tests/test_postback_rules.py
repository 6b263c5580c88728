"""Who gets a postback and what it says (app/postbacks/rules.py): install and event rules, the
event mapping, revenue only on Purchase, hashed user fields, CCPA limited data use."""

from __future__ import annotations

from typing import Any

import pytest

from app.attribution import Decision
from app.postbacks import rules
from app.touches import Touch

T0 = 1_763_719_300.0
DAY = 86_400.0
EMAIL_VECTOR = "848a771458438fc2ec420560d769fb9b9b86851ee338ec56517baabd79d3bb4f"
PHONE_VECTOR = "9f7ec22d72092cd3c0b58726ed9c2d91b92e51a3f29837508fb2948bb22dd2fd"
STATES = frozenset({"CA", "TX", "VA"})
LANDING = "https://example.com/lp/demo?pid=tiktokweb_int&ttclid=E.C.P.x"


def touch(**overrides: Any) -> Touch:
    values: dict[str, Any] = {
        "id": "clk-1",
        "kind": "click",
        "app_key": "demo",
        "time": T0 - 600,
        "ip": "203.0.113.7",
        "user_agent": "Mozilla/5.0 (Linux; Android 14)",
        "pid": "tiktokweb_int",
        "ttclid": "E.C.P.x",
        "original_url": LANDING,
        "referrer": "https://www.tiktok.com/",
        "country": "DE",
        "region": "BE",
    }
    values.update(overrides)
    return Touch(**values)


def integration(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "enabled": True,
        "pixel_code": "PIXEL",
        "test_event_code": None,
        "ccpa_limit": False,
        "install_event": "Download",
        "inapp_postbacks": {
            "enabled": True,
            "window_days": 0,
            "for_users": "this_partner",
            "events": [
                {"app_event": "af_purchase", "partner_event": "Purchase", "include_revenue": True},
                {"app_event": "af_complete_registration", "partner_event": "CompleteRegistration"},
                {"app_event": "af_add_to_cart", "partner_event": "AddToCart"},
            ],
        },
    }
    inapp = overrides.pop("inapp", {})
    config.update(overrides)
    config["inapp_postbacks"] = config["inapp_postbacks"] | inapp
    return config


def decision(status: str = "attributed", t: Touch | None = None) -> Decision:
    return Decision(status=status, match_type="referrer", touch=t, receipt={})  # type: ignore[arg-type]


def install_postback(d: Decision, config: dict[str, Any] | None = None) -> dict[str, object] | None:
    return rules.install_postback(
        decision=d,
        install_id="inst-1",
        install_time=T0 + 0.9,
        integration=integration() if config is None else config,
        covered_states=STATES,
    )


# --- installs ---------------------------------------------------------------------------------


def test_an_attributed_tiktok_install_sends_download_with_the_touch() -> None:
    assert install_postback(decision(t=touch())) == {
        "event": "Download",
        "event_time": int(T0),
        "event_id": "inst-1",
        "limited_data_use": False,
        "user": {
            "ttclid": "E.C.P.x",
            "ip": "203.0.113.7",
            "user_agent": "Mozilla/5.0 (Linux; Android 14)",
        },
        "page": {"url": LANDING, "referrer": "https://www.tiktok.com/"},
    }


def test_the_install_event_is_the_integrations_choice() -> None:
    sent = install_postback(decision(t=touch()), integration(install_event="Install"))
    assert sent is not None and sent["event"] == "Install"


@pytest.mark.parametrize(
    ("d", "config"),
    [
        pytest.param(decision("organic"), integration(), id="organic"),
        pytest.param(decision("reinstall"), integration(), id="reinstall"),
        pytest.param(decision("rejected", touch()), integration(), id="rejected click injection"),
        pytest.param(decision(t=touch(pid="googleadwords_int")), integration(), id="other source"),
        pytest.param(decision(t=touch()), integration(enabled=False), id="integration disabled"),
    ],
)
def test_no_install_postback(d: Decision, config: dict[str, Any]) -> None:
    assert install_postback(d, config) is None


def test_no_install_postback_without_an_integration() -> None:
    d = decision(t=touch())
    assert (
        rules.install_postback(
            decision=d, install_id="i", install_time=T0, integration=None, covered_states=STATES
        )
        is None
    )


def test_a_click_referer_that_is_the_landing_page_is_not_sent_as_its_referrer() -> None:
    sent = install_postback(decision(t=touch(referrer=LANDING)))
    assert sent is not None and sent["page"] == {"url": LANDING}


# --- CCPA limited data use ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ccpa", "country", "region", "gpc", "limited"),
    [
        pytest.param(True, "US", "CA", False, True, id="California"),
        pytest.param(True, "US", "TX", False, True, id="Texas"),
        pytest.param(True, "US", "NY", False, False, id="New York is not in the setting"),
        pytest.param(True, "DE", "BE", False, False, id="Germany"),
        pytest.param(True, None, None, False, True, id="unknown location"),
        pytest.param(True, "DE", "BE", True, True, id="Sec-GPC"),
        pytest.param(False, "US", "CA", True, False, id="switch off"),
        pytest.param(False, None, None, False, False, id="switch off, unknown"),
    ],
)
def test_limited_data_use_follows_the_touch(
    ccpa: bool, country: str | None, region: str | None, gpc: bool, limited: bool
) -> None:
    t = touch(country=country, region=region, gpc=gpc)
    sent = install_postback(decision(t=t), integration(ccpa_limit=ccpa))
    assert sent is not None and sent["limited_data_use"] is limited


# --- events: who ------------------------------------------------------------------------------


def ours(**overrides: Any) -> rules.InstallAttribution:
    values: dict[str, Any] = {
        "status": "attributed",
        "original_media_source": "tiktokweb_int",
        "time": T0,
    }
    values.update(overrides)
    return rules.InstallAttribution(**values)


@pytest.mark.parametrize(
    ("install", "config", "name", "at", "expected"),
    [
        pytest.param(ours(), integration(), "af_purchase", T0 + DAY, "queued", id="mapped"),
        pytest.param(ours(), integration(), "af_level_up", T0, "not_mapped", id="unmapped"),
        pytest.param(
            ours(), integration(), "AF_PURCHASE", T0, "not_mapped", id="names are case-sensitive"
        ),
        pytest.param(
            ours(),
            integration(inapp={"window_days": 7}),
            "af_purchase",
            T0 + 7 * DAY,
            "queued",
            id="last second of the window",
        ),
        pytest.param(
            ours(),
            integration(inapp={"window_days": 7}),
            "af_purchase",
            T0 + 7 * DAY + 1,
            "outside_window",
            id="after the window",
        ),
        pytest.param(
            ours(),
            integration(),
            "af_purchase",
            T0 + 3000 * DAY,
            "queued",
            id="window 0 has no limit",
        ),
        pytest.param(
            ours(status="organic", original_media_source=None),
            integration(),
            "af_purchase",
            T0,
            "not_attributed",
            id="organic install",
        ),
        pytest.param(
            ours(original_media_source="googleadwords_int"),
            integration(),
            "af_purchase",
            T0,
            "not_attributed",
            id="other source",
        ),
        pytest.param(
            ours(status="organic", original_media_source=None),
            integration(inapp={"for_users": "all"}),
            "af_purchase",
            T0,
            "queued",
            id="organic install, for_users all",
        ),
        pytest.param(
            ours(status="rejected"),
            integration(inapp={"for_users": "all"}),
            "af_purchase",
            T0,
            "not_attributed",
            id="rejected install, even for all",
        ),
        pytest.param(
            ours(is_retained_organic=True),
            integration(),
            "af_purchase",
            T0,
            "not_attributed",
            id="retention made it organic",
        ),
        pytest.param(
            ours(is_retained_organic=True),
            integration(inapp={"for_users": "all"}),
            "af_purchase",
            T0,
            "not_attributed",
            id="retention made it organic, even for all",
        ),
        pytest.param(
            ours(),
            integration(inapp={"enabled": False}),
            "af_purchase",
            T0,
            "disabled",
            id="in-app postbacks off",
        ),
        pytest.param(ours(), integration(enabled=False), "af_purchase", T0, "disabled", id="off"),
    ],
)
def test_event_decision(
    install: rules.InstallAttribution,
    config: dict[str, Any],
    name: str,
    at: float,
    expected: str,
) -> None:
    result, entry = rules.event_decision(
        install=install, integration=config, event_name=name, event_time=at
    )
    assert result == expected
    assert (entry is not None) == (expected == "queued")


def test_no_event_postbacks_without_an_integration() -> None:
    assert rules.event_decision(
        install=ours(), integration=None, event_name="af_purchase", event_time=T0
    ) == ("disabled", None)


# --- events: what -----------------------------------------------------------------------------


def event_postback(
    name: str,
    value: dict[str, object],
    user: dict[str, str] | None = None,
    t: Touch | None = None,
    config: dict[str, Any] | None = None,
) -> dict[str, object]:
    config = config or integration()
    _, entry = rules.event_decision(
        install=ours(), integration=config, event_name=name, event_time=T0
    )
    assert entry is not None
    return rules.event_postback(
        entry=entry,
        event_id="evt-1",
        event_time=T0 + 120.5,
        touch=touch() if t is None else t,
        event_value=value,
        user=user,
        integration=config,
        covered_states=STATES,
    )


def test_a_purchase_carries_revenue_and_hashed_user_fields() -> None:
    sent = event_postback(
        "af_purchase",
        {"af_revenue": "9.99", "af_currency": "usd", "af_content_id": "sku-1"},
        user={"email": " ALICE_abc@gmail.com ", "phone": "(+1)2133734253", "external_id": "u-1"},
    )
    assert sent["event"] == "Purchase"
    assert sent["event_id"] == "evt-1"
    assert sent["event_time"] == int(T0 + 120)
    assert sent["properties"] == {
        "value": 9.99,
        "currency": "USD",
        "contents": [{"content_id": "sku-1"}],
    }
    user = sent["user"]
    assert isinstance(user, dict)
    assert user["email"] == EMAIL_VECTOR
    assert user["phone"] == PHONE_VECTOR
    assert len(user["external_id"]) == 64 and user["external_id"] != "u-1"
    assert user["ttclid"] == "E.C.P.x"


def test_a_registration_carries_no_revenue_even_when_the_app_sent_some() -> None:
    sent = event_postback("af_complete_registration", {"af_revenue": "5", "af_currency": "EUR"})
    assert "properties" not in sent
    assert sent["event"] == "CompleteRegistration"


def test_a_non_purchase_keeps_its_parameters_but_not_its_revenue() -> None:
    sent = event_postback("af_add_to_cart", {"af_revenue": "5", "af_content_id": "sku-2"})
    assert sent["properties"] == {"contents": [{"content_id": "sku-2"}]}


def test_revenue_goes_only_with_purchase_even_if_a_stored_mapping_says_otherwise() -> None:
    # The config API refuses this mapping today; one stored before that rule must not leak.
    legacy = integration(
        inapp={
            "events": [
                {"app_event": "af_subscribe", "partner_event": "Subscribe", "include_revenue": True}
            ]
        }
    )
    sent = event_postback("af_subscribe", {"af_revenue": "4.99"}, config=legacy)
    assert "properties" not in sent


def test_an_event_of_another_source_sent_for_all_users_has_no_ttclid() -> None:
    config = integration(inapp={"for_users": "all"}, ccpa_limit=True)
    _, entry = rules.event_decision(
        install=ours(status="organic", original_media_source=None),
        integration=config,
        event_name="af_purchase",
        event_time=T0,
    )
    assert entry is not None
    sent = rules.event_postback(
        entry=entry,
        event_id="evt-2",
        event_time=T0,
        touch=None,
        event_value={},
        user={"email": "bob@example.com"},
        integration=config,
        covered_states=STATES,
    )
    assert set(sent["user"]) == {"email"}  # type: ignore[arg-type]
    assert "page" not in sent
    # No touch, no location: with the switch on that errs to limited.
    assert sent["limited_data_use"] is True


def test_the_config_api_refuses_revenue_on_other_events() -> None:
    from app.configs import validate_integration
    from app.fields import FieldError

    body = integration(
        inapp={
            "events": [{"app_event": "af_lead", "partner_event": "Lead", "include_revenue": True}]
        }
    )
    with pytest.raises(FieldError) as refused:
        validate_integration(body)
    assert refused.value.field == "inapp_postbacks.events[0].include_revenue"
