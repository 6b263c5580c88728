"""The owner's config API: every validation rule answers 400 naming its field."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from app.__main__ import DEMO_APP, DEMO_INTEGRATION, DEMO_PAGE


def test_admin_token_is_required(client: TestClient) -> None:
    assert client.get("/api/v1/apps").status_code == 401
    r = client.get("/api/v1/apps", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    assert r.json()["error"] == "unauthorized"


def test_put_get_delete_app_keeps_the_sdk_key(client: TestClient, admin: dict[str, str]) -> None:
    body = copy.deepcopy(DEMO_APP)
    first = client.put("/api/v1/apps/game-2", json=body, headers=admin)
    assert first.status_code == 200, first.text
    sdk_key = first.json()["sdk_key"]
    body["name"] = "Renamed"
    second = client.put("/api/v1/apps/game-2", json=body, headers=admin).json()
    assert second["sdk_key"] == sdk_key and second["name"] == "Renamed"
    assert client.get("/api/v1/apps/game-2", headers=admin).json()["name"] == "Renamed"
    keys = [a["app_key"] for a in client.get("/api/v1/apps", headers=admin).json()["apps"]]
    assert keys == ["demo", "game-2"]
    assert client.delete("/api/v1/apps/game-2", headers=admin).status_code == 204
    assert client.get("/api/v1/apps/game-2", headers=admin).status_code == 404
    assert client.delete("/api/v1/apps/game-2", headers=admin).status_code == 404


def _with(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = body
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return body


APP_CASES = [
    ("name", None, "name"),
    ("name", 42, "name"),
    ("name", "   ", "name"),
    ("destinations", [], "destinations"),
    ("destinations.ios.store_url", "javascript:alert(1)", "destinations.ios.store_url"),
    ("destinations.ios.store_url", None, "destinations.ios.store_url"),
    ("destinations.apk.url", "/relative.apk", "destinations.apk.url"),
    ("destinations.pager", {"store_url": "https://x.example"}, "destinations.pager"),
    ("allowed_redirect_hosts", ["https://example.com/path"], "allowed_redirect_hosts[0]"),
    ("allowed_redirect_hosts", "example.com", "allowed_redirect_hosts"),
    ("allowed_origins", ["https://www.example.com/page"], "allowed_origins[0]"),
    # URLs Python cannot parse were 500s; the others were stored, to be read by a browser as
    # another host (or port) than the config API saw.
    ("destinations.web.url", "http://[::1/", "destinations.web.url"),
    (
        "destinations.steam.store_url",
        "https://store.steampowered.com:99999/",
        "destinations.steam.store_url",
    ),
    (
        "destinations.ios.store_url",
        "https://apps.apple.com@evil.example/",
        "destinations.ios.store_url",
    ),
    (
        "destinations.ios.store_url",
        "https://evil.example\\@apps.apple.com/",
        "destinations.ios.store_url",
    ),
    ("destinations.apk.url", "https://cdn.example.com/a\r\nb.apk", "destinations.apk.url"),
    ("allowed_origins", ["https://[::1"], "allowed_origins[0]"),
    ("allowed_origins", ["https://www.example.com:port"], "allowed_origins[0]"),
    ("attribution.click_lookback_days", 31, "attribution.click_lookback_days"),
    ("attribution.click_lookback_days", 0, "attribution.click_lookback_days"),
    ("attribution.probabilistic_window_hours", 25, "attribution.probabilistic_window_hours"),
    ("attribution.viewthrough_lookback_hours", "24", "attribution.viewthrough_lookback_hours"),
    ("attribution.reattribution_window_days", 731, "attribution.reattribution_window_days"),
    ("attribution.min_click_to_install_seconds", -1, "attribution.min_click_to_install_seconds"),
    ("attribution.probabilistic_ios", "yes", "attribution.probabilistic_ios"),
]


@pytest.mark.parametrize(("path", "value", "field"), APP_CASES)
def test_app_validation(
    client: TestClient, admin: dict[str, str], path: str, value: Any, field: str
) -> None:
    r = client.put("/api/v1/apps/demo", json=_with(DEMO_APP, path, value), headers=admin)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field
    assert r.json()["message"]


def test_app_key_and_body_shape(client: TestClient, admin: dict[str, str]) -> None:
    r = client.put("/api/v1/apps/Bad_Key", json=DEMO_APP, headers=admin)
    assert (r.status_code, r.json()["field"]) == (400, "app_key")
    r = client.put("/api/v1/apps/demo", json=[1, 2], headers=admin)
    assert r.status_code == 400
    r = client.put(
        "/api/v1/apps/demo", content=b"{nope", headers=admin | {"content-type": "application/json"}
    )
    assert (r.status_code, r.json()["error"]) == (400, "invalid_json")
    r = client.put(
        "/api/v1/apps/demo",
        content=b"name=x",
        headers=admin | {"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 415
    big = {"name": "x", "padding": "y" * 70_000}
    assert client.put("/api/v1/apps/demo", json=big, headers=admin).status_code == 413


def test_unknown_fields_are_ignored(client: TestClient, admin: dict[str, str]) -> None:
    r = client.put("/api/v1/apps/demo", json=DEMO_APP | {"colour": "red"}, headers=admin)
    assert r.status_code == 200 and "colour" not in r.json()


def test_integration_token_is_write_only(client: TestClient, admin: dict[str, str]) -> None:
    url = "/api/v1/apps/demo/integrations/tiktokweb_int"
    body = DEMO_INTEGRATION | {"access_token": "tok-secret-123"}
    r = client.put(url, json=body, headers=admin)
    assert r.status_code == 200
    assert "tok-secret-123" not in r.text and r.json()["access_token_set"] is True
    # Editing without a token keeps the stored one.
    r = client.put(url, json=DEMO_INTEGRATION | {"ccpa_limit": True}, headers=admin)
    assert r.json()["access_token_set"] is True and r.json()["ccpa_limit"] is True
    assert "tok-secret-123" not in client.get(url, headers=admin).text


INTEGRATION_CASES = [
    ("pixel_code", None, "pixel_code"),
    ("pixel_code", "bad code!", "pixel_code"),
    ("view_through", "on", "view_through"),
    ("ccpa_limit", 1, "ccpa_limit"),
    ("inapp_postbacks.for_users", "everyone", "inapp_postbacks.for_users"),
    ("inapp_postbacks.window_days", -3, "inapp_postbacks.window_days"),
    (
        "inapp_postbacks.events",
        [
            {
                "app_event": "af_complete_registration",
                "partner_event": "CompleteRegistration",
                "include_revenue": True,
            }
        ],
        "inapp_postbacks.events[0].include_revenue",
    ),
    (
        "inapp_postbacks.events",
        [{"partner_event": "Purchase"}],
        "inapp_postbacks.events[0].app_event",
    ),
    (
        "inapp_postbacks.events",
        [
            {"app_event": "a", "partner_event": "Lead"},
            {"app_event": "a", "partner_event": "Search"},
        ],
        "inapp_postbacks.events[1].app_event",
    ),
]


@pytest.mark.parametrize(("path", "value", "field"), INTEGRATION_CASES)
def test_integration_validation(
    client: TestClient, admin: dict[str, str], path: str, value: Any, field: str
) -> None:
    r = client.put(
        "/api/v1/apps/demo/integrations/tiktokweb_int",
        json=_with(DEMO_INTEGRATION, path, value),
        headers=admin,
    )
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field


def test_integration_of_an_unknown_app_is_404(client: TestClient, admin: dict[str, str]) -> None:
    r = client.put(
        "/api/v1/apps/nope/integrations/tiktokweb_int", json=DEMO_INTEGRATION, headers=admin
    )
    assert r.status_code == 404


PAGE_CASES = [
    ("app_key", "nope", "app_key"),
    ("app_key", None, "app_key"),
    ("title", None, "title"),
    ("ctas", ["ios", "pager"], "ctas[1]"),
    ("ctas", ["epic"], "ctas[0]"),  # a platform the demo app has no destination for
    ("image_url", "javascript:alert(1)", "image_url"),
    ("image_url", "https://[::1/hero.png", "image_url"),
    ("ttclid_sub", "af_sub9", "ttclid_sub"),
    ("mapping", "preset", "mapping"),
]


@pytest.mark.parametrize(("path", "value", "field"), PAGE_CASES)
def test_page_validation(
    client: TestClient, admin: dict[str, str], path: str, value: Any, field: str
) -> None:
    r = client.put("/api/v1/pages/spring", json=_with(DEMO_PAGE, path, value), headers=admin)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field


def test_page_round_trip(client: TestClient, admin: dict[str, str]) -> None:
    r = client.put("/api/v1/pages/spring", json=DEMO_PAGE | {"headline": "Spring"}, headers=admin)
    assert r.status_code == 200
    assert client.get("/api/v1/pages/spring", headers=admin).json()["headline"] == "Spring"
    slugs = [p["slug"] for p in client.get("/api/v1/pages", headers=admin).json()["pages"]]
    assert slugs == ["demo", "spring"]
    assert client.delete("/api/v1/pages/spring", headers=admin).status_code == 204
    assert client.get("/lp/spring").status_code == 404


def test_keys_with_a_trailing_newline_are_refused(
    client: TestClient, admin: dict[str, str]
) -> None:
    """`$` matches before a final newline: `demo2\\n` passed the key rules and was stored."""
    r = client.put("/api/v1/apps/demo2%0A", json=DEMO_APP, headers=admin)
    assert (r.status_code, r.json()["field"]) == (400, "app_key")
    r = client.put("/api/v1/pages/spring%0A", json=DEMO_PAGE, headers=admin)
    assert (r.status_code, r.json()["field"]) == (400, "slug")
    assert [a["app_key"] for a in client.get("/api/v1/apps", headers=admin).json()["apps"]] == [
        "demo"
    ]
    assert [p["slug"] for p in client.get("/api/v1/pages", headers=admin).json()["pages"]] == [
        "demo"
    ]


APPS, INTEGRATION, PAGES = (
    "/api/v1/apps/demo",
    "/api/v1/apps/demo/integrations/tiktokweb_int",
    "/api/v1/pages/demo",
)
SURROGATE_CASES = [
    (APPS, DEMO_APP, "name", "Demo \ud800", "name"),
    (APPS, DEMO_APP, "destinations.web.url", "https://example.com/\udfff", "destinations.web.url"),
    # The client's own key in the error's field: answered escaped, not as a 500.
    (APPS, DEMO_APP, "destinations", {"\ud800": {}}, "destinations.\\ud800"),
    (INTEGRATION, DEMO_INTEGRATION, "access_token", "tok\ud800", "access_token"),
    (
        INTEGRATION,
        DEMO_INTEGRATION,
        "inapp_postbacks.events",
        [{"app_event": "\ud800", "partner_event": "Lead"}],
        "inapp_postbacks.events[0].app_event",
    ),
    (PAGES, DEMO_PAGE, "title", "\ud83d", "title"),
    (
        PAGES,
        DEMO_PAGE,
        "mapping",
        {"mediaSource": {"keys": ["pid"], "overrideValues": {"\ud800": "x"}}},
        "mapping.mediaSource.overrideValues",
    ),
]


@pytest.mark.parametrize(("url", "base", "path", "value", "field"), SURROGATE_CASES)
def test_lone_surrogates_are_refused_and_the_stored_config_kept(
    client: TestClient,
    admin: dict[str, str],
    url: str,
    base: dict[str, Any],
    path: str,
    value: Any,
    field: str,
) -> None:
    """JSON lets a client send "\\ud800"; no UTF-8 column can hold it. It was stored (or the
    write failed) and every answer with it was a 500, the landing page's included."""
    before = client.get(url, headers=admin).json()
    body = json.dumps(_with(base, path, value))  # ASCII escapes carry the lone surrogate
    r = client.put(url, content=body, headers=admin | {"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field
    assert client.get(url, headers=admin).json() == before
    assert client.get("/lp/demo").status_code == 200
