"""The console's screens in-process: forms that say what is wrong next to the field, secrets
shown once or never, empty states, the user command."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from app.paths import ROOT
from app.server import create_app
from app.settings import Settings
from tests.console_kit import ADMIN, PASSWORD, add_users_and_other_app, csrf_of, log_in
from tests.fixtures import make_settings

APP_FORM = {
    "app_key": "newgame",
    "name": "New Game",
    "destinations.ios.store_url": "https://apps.apple.com/app/id1",
    "destinations.ios.app_id": "id1",
    "destinations.android.store_url": "https://play.google.com/store/apps/details?id=x.y",
    "destinations.android.app_id": "x.y",
    "allowed_redirect_hosts": "example.com\nshop.example.com",
    "attribution.click_lookback_days": "7",
}


@pytest.fixture()
def console(settings: Settings, seeded: tuple[str, str]) -> Iterator[TestClient]:
    add_users_and_other_app(settings.db)
    with TestClient(create_app(settings, run_jobs=False), base_url="http://gangway.test") as c:
        log_in(c, ADMIN)
        yield c


def errors_of(html: str) -> dict[str, str]:
    return dict(re.findall(r'class="field-error" role="alert" data-field="([^"]+)">([^<]+)<', html))


@pytest.mark.both_backends
def test_creating_an_app_shows_the_sdk_key_once(console: TestClient, backend: str) -> None:
    token = csrf_of(console, "/admin/apps")
    answer = console.post("/admin/apps", data=APP_FORM | {"csrf_token": token})
    assert answer.status_code == 200
    key = re.search(r'id="sdk-key" value="([^"]+)"', answer.text)
    assert key and len(key.group(1)) >= 32
    stored = console.get("/api/v1/apps/newgame").json()
    assert stored["sdk_key"] == key.group(1)
    assert stored["allowed_redirect_hosts"] == ["example.com", "shop.example.com"]
    assert set(stored["destinations"]) == {"ios", "android"}
    # Never again on the app's own screen, the list or after saving.
    assert key.group(1) not in console.get("/admin/apps/newgame").text
    assert key.group(1) not in console.get("/admin/apps").text
    rotated = console.post("/admin/apps/newgame/rotate", data={"csrf_token": token}).text
    new_key = re.search(r'id="sdk-key" value="([^"]+)"', rotated)
    assert new_key and new_key.group(1) != key.group(1)
    assert console.get("/api/v1/apps/newgame").json()["sdk_key"] == new_key.group(1)


@pytest.mark.parametrize(
    ("field", "value", "shown_at"),
    [
        ("app_key", "Bad Key", "app_key"),
        ("name", "", "name"),
        ("destinations.ios.store_url", "javascript:alert(1)", "destinations.ios.store_url"),
        ("allowed_redirect_hosts", "example.com\nhttps://x.example/", "allowed_redirect_hosts"),
        ("attribution.click_lookback_days", "99", "attribution.click_lookback_days"),
    ],
)
def test_an_apps_400_is_shown_next_to_its_field(
    console: TestClient, field: str, value: str, shown_at: str
) -> None:
    token = csrf_of(console, "/admin/apps")
    answer = console.post("/admin/apps", data=APP_FORM | {field: value, "csrf_token": token})
    assert answer.status_code == 400
    errors = errors_of(answer.text)
    assert shown_at in errors, errors
    assert 'aria-invalid="true"' in answer.text
    # What was typed is kept.
    assert "New Game" in answer.text or field == "name"


def test_the_integration_form_maps_events_and_keeps_the_token_secret(
    console: TestClient,
) -> None:
    token = csrf_of(console, "/admin/apps/demo/tiktok")
    screen = console.get("/admin/apps/demo/tiktok").text
    assert "demo-access-token" not in screen and ">set<" in screen and "Replace" in screen
    assert "data-test-mode" in screen  # the demo has a test event code
    for offered in (
        'value="CompleteRegistration"',
        'label="Pay → Purchase"',
        'label="Spend_credits → SpendCredits"',
        'value="af_purchase"',
    ):
        assert offered in screen, offered
    form = {
        "csrf_token": token,
        "enabled": "on",
        "pixel_code": "PIXEL123",
        "install_event": "Download",
        "inapp_postbacks.enabled": "on",
        "inapp_postbacks.window_days": "0",
        "inapp_postbacks.for_users": "this_partner",
        "inapp_postbacks.events[0].app_event": "af_purchase",
        "inapp_postbacks.events[0].partner_event": "Purchase",
        "inapp_postbacks.events[0].include_revenue": "on",
        "inapp_postbacks.events[1].app_event": "",
        "inapp_postbacks.events[1].partner_event": "",
        "inapp_postbacks.events[2].app_event": "af_level",
        "inapp_postbacks.events[2].partner_event": "AchieveLevel",
        "inapp_postbacks.events[2].include_revenue": "on",
    }
    refused = console.post("/admin/apps/demo/tiktok", data=form)
    assert refused.status_code == 400
    # The error names the row the owner typed it in (the third), not its place in the body.
    assert "Purchase" in errors_of(refused.text)["inapp_postbacks.events[2].include_revenue"]
    del form["inapp_postbacks.events[2].include_revenue"]
    saved = console.post("/admin/apps/demo/tiktok", data=form)
    assert saved.status_code == 200 and "Saved" in saved.text
    stored = console.get("/api/v1/apps/demo/integrations/tiktokweb_int").json()
    assert stored["access_token_set"] is True  # kept: the field was left empty
    assert stored["test_event_code"] is None and "data-test-mode" not in saved.text
    assert [
        (e["app_event"], e["partner_event"], e["include_revenue"])
        for e in stored["inapp_postbacks"]["events"]
    ] == [("af_purchase", "Purchase", True), ("af_level", "AchieveLevel", False)]
    console.post("/admin/apps/demo/tiktok", data=form | {"access_token": "new-secret-token"})
    assert "new-secret-token" not in console.get("/admin/apps/demo/tiktok").text


def test_pages_are_made_with_the_tiktok_preset_and_edited_in_place(console: TestClient) -> None:
    token = csrf_of(console, "/admin/pages")
    made = console.post(
        "/admin/pages",
        data={"csrf_token": token, "slug": "spring", "app_key": "demo"},
        follow_redirects=False,
    )
    assert made.status_code == 303 and made.headers["location"].startswith("/admin/pages/spring")
    page = console.get("/api/v1/pages/spring").json()
    assert page["mapping"] is None and page["ctas"] == ["ios", "android", "apk", "steam"]
    again = console.post(
        "/admin/pages", data={"csrf_token": token, "slug": "spring", "app_key": "demo"}
    )
    assert again.status_code == 400 and "slug" in errors_of(again.text)
    form = {
        "csrf_token": token,
        "app_key": "demo",
        "title": "Spring",
        "headline": "Hi",
        "body": "Text",
        "ctas": ["ios", "steam"],
        "mapping_mode": "custom",
        "mapping": '{"mediaSource": {"keys": ["pid"]}}',
        "ttclid_sub": "af_sub2",
    }
    assert console.post("/admin/pages/spring", data=form).status_code == 200
    stored = console.get("/api/v1/pages/spring").json()
    assert stored["ctas"] == ["ios", "steam"] and stored["ttclid_sub"] == "af_sub2"
    assert stored["mapping"]["mediaSource"]["keys"] == ["pid"]
    bad = console.post("/admin/pages/spring", data=form | {"mapping": "{not json"})
    assert bad.status_code == 400 and "mapping" in errors_of(bad.text)
    bad = console.post("/admin/pages/spring", data=form | {"mapping": '{"campaign": {}}'})
    assert bad.status_code == 400 and "mapping.mediaSource" in errors_of(bad.text)
    bad = console.post("/admin/pages/spring", data=form | {"ctas": ["xbox"]})
    assert bad.status_code == 400 and "ctas" in errors_of(bad.text)
    preview = console.get("/admin/pages/spring").text
    assert 'data-preview-target="headline">Hi<' in preview


def test_empty_states_tell_a_new_owner_what_to_do(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    add_users_and_other_app(settings.db)
    with TestClient(create_app(settings, run_jobs=False), base_url="http://gangway.test") as c:
        log_in(c, ADMIN)
        token = csrf_of(c)
        c.delete("/api/v1/apps/other", headers={"X-CSRF-Token": token})
        assert "Create an app" in c.get("/admin").text
        c.post("/admin/apps", data=APP_FORM | {"csrf_token": token})
        home = c.get("/admin").text
        assert "No landing page yet" in home and "TikTok preset" in home
        c.post("/admin/pages", data={"csrf_token": token, "slug": "p", "app_key": "newgame"})
        home = c.get("/admin").text
        assert "No installs yet" in home and "link builder" in home


@pytest.mark.both_backends
def test_tokens_are_listed_with_their_last_use_and_revoked(
    console: TestClient, admin: dict[str, str], backend: str
) -> None:
    console.get("/api/v1/apps", headers=admin)
    screen = console.get("/admin/users").text
    assert "tests" in screen and "never" not in screen.split("tests", 1)[1].split("</tr>")[0]
    assert ADMIN in screen and "viewer@example.com" in screen
    token_id = re.search(r'action="/admin/tokens/([^/]+)/revoke"', screen)
    assert token_id
    revoked = console.post(
        f"/admin/tokens/{token_id.group(1)}/revoke", data={"csrf_token": csrf_of(console)}
    )
    assert revoked.status_code == 200 and "Token revoked" in revoked.text
    console.cookies.clear()
    assert console.get("/api/v1/apps", headers=admin).status_code == 401


def test_the_user_command_hashes_and_can_limit(tmp_path: Path) -> None:
    db = str(tmp_path / "g.db")

    def run(*args: str, password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app", "user", "create", "--db", db, "--password-stdin", *args],
            input=password + "\n",
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )

    done = run("--email", "Ann@Example.com", "--role", "viewer", "--apps", "demo,other")
    assert done.returncode == 0, done.stderr
    assert "ann@example.com (viewer, limited to demo, other)" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr
    raw = Path(db).read_bytes()
    assert PASSWORD.encode() not in raw and b"$argon2id$" in raw
    assert run("--email", "x@example.com", password="short").returncode == 2
    assert run("--email", "not-an-email").returncode == 2
    assert run("--email", "x@example.com", "--apps", "Bad Key").returncode == 2


def test_an_unknown_console_path_is_the_consoles_404_page(console: TestClient) -> None:
    answer = console.get("/admin/nothing/here")
    assert answer.status_code == 404 and "text/html" in answer.headers["content-type"]
    assert "Not found" in answer.text
    console.cookies.clear()
    assert console.get("/admin/nothing", follow_redirects=False).status_code == 303


def test_errors_are_pages_without_a_trace(
    settings: Settings, seeded: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    add_users_and_other_app(settings.db)
    app = create_app(settings, run_jobs=False)
    with TestClient(app, base_url="http://gangway.test", raise_server_exceptions=False) as c:
        log_in(c, ADMIN)
        bad = c.post("/admin/postbacks/retry", data={"csrf_token": csrf_of(c), "app_key": ""})
        assert bad.status_code == 400 and "text/html" in bad.headers["content-type"]

        async def broken(*args: object) -> None:
            raise RuntimeError("secret internals /work/app/x.py line 3")

        monkeypatch.setattr("app.web.console.screens.dashboard_data", broken)
        answer = c.get("/admin")
        assert answer.status_code == 500
        assert "secret internals" not in answer.text and "Traceback" not in answer.text
