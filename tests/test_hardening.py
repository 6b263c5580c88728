"""Issue #16: what an attacker or a failing network found, each with the test that keeps it out.

In-process tests here; the ones that need a real socket (disconnects, idle connections, the
access log of `serve`) are in `test_hardening_live.py`, the outbox's in `test_outbox.py`.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from app.__main__ import DEMO_INTEGRATION
from app.jobs.privacy import mask_limited_data
from app.sealing import TokenSealer
from app.server import create_app
from app.store.sqlite import SqliteStore
from app.vocabulary import PARTNER
from tests.aio import run_async
from tests.fakes.tiktok_api import FakeTikTok
from tests.fixtures import ANDROID_UA, PHONE_IP, START, Gangway, make_settings, open_gangway, seed
from tests.fixtures import run_cli as main


@pytest.fixture()
def gw(tmp_path: Path) -> Iterator[Gangway]:
    yield from open_gangway(tmp_path)


def event(gw: Gangway, **body: Any) -> Any:
    fields = {"app_key": "demo", "app_instance_id": "phone-1", "event_name": "af_purchase"}
    return gw.http.post("/api/v1/events", json=fields | body, headers=gw.sdk)


# -- item 1: event times are bounded like install times -----------------------------------------


@pytest.mark.parametrize(
    ("event_time", "why"),
    [
        (int(START) + 2 * 86_400, "more than a day in the future"),
        # The year 5138: accepted before, then TikTok refused the batch it was in.
        (99_999_999_999, "more than a day in the future"),
        (int(START) - 2 * 86_400, "more than a day before the install"),
    ],
    ids=["two days ahead", "year 5138", "two days before its install"],
)
def test_an_event_time_out_of_bounds_is_a_400_naming_it(
    gw: Gangway, event_time: int, why: str
) -> None:
    gw.installed("phone-1", install_time=int(START))
    answer = event(gw, event_time=event_time)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == "event_time"
    assert why in answer.json()["message"]
    assert gw.sql("SELECT COUNT(*) FROM events") == [(0,)]
    # Within the bounds: an event of a device whose clock is an hour off is fine.
    assert event(gw, event_time=int(START) - 3600).status_code == 202
    assert event(gw, event_time=int(START) + 86_000, event_id="e2").status_code == 202


# -- item 5: the sdk_key is checked before the body -----------------------------------------------


@pytest.mark.parametrize("url", ["/api/v1/installs", "/api/v1/events"])
@pytest.mark.parametrize(
    "raw",
    [
        b'{"app_key": "demo", "platform": "palm", "app_instance_id": ""}',
        b'{"app_key": 7}',
        b"{}",
        b"{not json",
        b"[]",
        b'{"app_key": "demo", "x": ' + b"[" * 50_000 + b"}",
    ],
    ids=["bad fields", "app_key a number", "no app_key", "not json", "not an object", "deep"],
)
def test_a_wrong_key_is_a_401_whatever_the_body(gw: Gangway, url: str, raw: bytes) -> None:
    for headers in ({"Authorization": "Bearer not-the-key"}, {}):
        answer = gw.http.post(
            url, content=raw, headers=headers | {"Content-Type": "application/json"}
        )
        assert answer.status_code == 401, answer.text
        assert answer.json()["field"] is None
    # Nor does the media type or the size of the body come before the key.
    wrong = {"Authorization": "Bearer not-the-key"}
    as_text = gw.http.post(url, content=raw, headers=wrong | {"Content-Type": "text/x"})
    assert as_text.status_code == 401
    big = b"{" + b" " * 70_000 + b"}"
    answer = gw.http.post(url, content=big, headers=wrong | {"Content-Type": "application/json"})
    assert answer.status_code == 401


# -- item 3: the demo is a dry run ----------------------------------------------------------------


def test_the_demo_is_a_dry_run_that_shows_the_json_it_would_send(
    tmp_path: Path, fake_tiktok: FakeTikTok, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(
        tmp_path, tiktok_api_url=fake_tiktok.base_url, trusted_proxies="127.0.0.1"
    )
    assert main(["demo", "--db", settings.db]) == 0
    assert main(["token", "create", "--db", settings.db]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    admin = {"Authorization": f"Bearer {token}"}
    with TestClient(
        create_app(settings), base_url="http://gangway.test", client=("127.0.0.1", 50000)
    ) as http:
        url = "/api/v1/apps/demo/integrations/tiktokweb_int"
        assert http.get(url, headers=admin).json()["dry_run"] is True
        sdk_key = http.get("/api/v1/apps/demo", headers=admin).json()["sdk_key"]
        click = http.get(
            "/c/demo?pid=tiktokweb_int&ttclid=E.C.P.dry",
            headers={"User-Agent": ANDROID_UA, "X-Forwarded-For": PHONE_IP},
            follow_redirects=False,
        )
        referrer = parse_qs(urlsplit(click.headers["location"]).query)["referrer"][0]
        install = http.post(
            "/api/v1/installs",
            json={
                "app_key": "demo",
                "platform": "android",
                "app_instance_id": "phone-1",
                "install_referrer": referrer,
                # A minute after the click: a click a second before its install is injected.
                "install_time": int(time.time()) + 60,
            },
            headers={"Authorization": f"Bearer {sdk_key}"},
        ).json()
        deadline = time.monotonic() + 10
        while True:
            record = http.get(f"/api/v1/installs/{install['install_id']}", headers=admin).json()
            [postback] = record["postbacks"]
            if postback["state"] != "pending" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert postback["state"] == "dry_run"
        shown = http.get(f"/api/v1/postbacks/{postback['id']}", headers=admin).json()
        assert shown["sent_at"] is None
        assert shown["sent_json"]["event_source_id"] == "DEMOPIXEL0000000000"
        assert shown["sent_json"]["data"] == [shown["payload"]]
        assert shown["sent_json"]["data"][0]["user"]["ttclid"] == "E.C.P.dry"
    assert fake_tiktok.requests == [] and fake_tiktok.violations == []


def test_dry_run_must_be_a_boolean(gw: Gangway) -> None:
    answer = gw.http.put(
        "/api/v1/apps/demo/integrations/tiktokweb_int",
        json=DEMO_INTEGRATION | {"dry_run": "yes"},
        headers=gw.admin,
    )
    assert (answer.status_code, answer.json()["field"]) == (400, "dry_run")
    # A dry run needs no access token: no warning that postbacks cannot be delivered.
    gw.http.delete("/api/v1/apps/demo/integrations/tiktokweb_int", headers=gw.admin)
    answer = gw.http.put(
        "/api/v1/apps/demo/integrations/tiktokweb_int",
        json=DEMO_INTEGRATION | {"dry_run": True},
        headers=gw.admin,
    )
    assert answer.status_code == 200 and "warning" not in answer.json()
    assert answer.json()["dry_run"] is True


# -- item 4: secrets at rest ---------------------------------------------------------------------


def file_bytes(db: Path) -> bytes:
    """The database file with its WAL, as a copy of the data directory would have them."""
    return b"".join(p.read_bytes() for p in (db, db.with_name(db.name + "-wal")) if p.exists())


def test_the_data_is_private_and_tokens_are_sealed_in_the_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = make_settings(tmp_path, db=str(data / "gangway.db"))
    db = Path(settings.db)
    token, _ = seed(settings.db)  # as an older version left it: the demo token in clear
    assert b"demo-access-token" in file_bytes(db)
    os.chmod(db, 0o644)
    admin = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings), base_url="http://gangway.test") as http:
        answer = http.put(
            "/api/v1/apps/demo/integrations/tiktokweb_int",
            json=DEMO_INTEGRATION | {"access_token": "tok-SECRET-42"},
            headers=admin,
        )
        assert answer.status_code == 200 and answer.json()["access_token_set"] is True
        for path in (data, db, *db.parent.glob("gangway.db-*")):
            assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600)
        assert b"tok-SECRET-42" not in file_bytes(db)
    # The clear token an older version wrote was sealed at start, and its bytes overwritten.
    raw = file_bytes(db)
    assert b"tok-SECRET-42" not in raw and b"demo-access-token" not in raw
    assert stat.S_IMODE(data.stat().st_mode) == 0o700

    async def read(secret: str) -> str | None:
        store = await SqliteStore.open(settings.db, sealer=TokenSealer(secret))
        try:
            found = await store.configs.get_integration("demo", PARTNER)
            assert found is not None
            return found.access_token
        finally:
            await store.close()

    assert run_async(read(settings.secret_key.reveal())) == "tok-SECRET-42"
    assert run_async(read("another-key")) is None


def test_secrets_rotate_reseals_tokens_under_the_new_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "gangway.db")
    monkeypatch.setenv("GANGWAY_SECRET_KEY", "old-key")
    assert main(["demo", "--db", db]) == 0

    async def token(secret: str) -> str | None:
        store = await SqliteStore.open(db, sealer=TokenSealer(secret))
        try:
            found = await store.configs.get_integration("demo", PARTNER)
            assert found is not None
            return found.access_token
        finally:
            await store.close()

    assert run_async(token("old-key")) == "demo-access-token"
    monkeypatch.setenv("GANGWAY_SECRET_KEY", "new-key")
    assert run_async(token("new-key")) is None
    old_file = tmp_path / "old.key"
    old_file.write_text("old-key\n")
    assert main(["secrets", "rotate", "--db", db, "--old-key-file", str(old_file)]) == 0
    assert "1 access token(s) sealed" in capsys.readouterr().out
    assert run_async(token("new-key")) == "demo-access-token"
    assert run_async(token("old-key")) is None


# -- item 6: limited-data-use installs are masked once their windows are over ---------------------


def test_limited_installs_lose_ip_and_ad_ids_after_the_setting_days(gw: Gangway) -> None:
    gw.put_integration(ccpa_limit=True)  # no location known: limited, erring to on
    _, referrer = gw.android_click()
    gw.later(60)
    device = {"gaid": "38400000-8cf0-11bd-b23e-10b96e40000d", "android_id": "9774d56d682e549c"}
    install = gw.installed("phone-1", via=PHONE_IP, install_referrer=referrer, device=device)
    full = gw.installed("phone-2", via="192.0.2.80", device={"gaid": "1" * 32})
    services = gw.http.app_state["services"]

    def run_job() -> int:
        portal = gw.http.portal
        assert portal is not None
        days = services.settings.ldu_mask_after_days
        return int(portal.call(mask_limited_data, services.store, gw.clock, days))

    assert services.settings.ldu_mask_after_days == 30
    gw.later(29 * 86_400)
    assert run_job() == 0
    assert gw.record(install["install_id"])["ip"] == PHONE_IP
    gw.later(2 * 86_400)
    assert run_job() == 1
    record = gw.record(install["install_id"])
    assert (record["ip"], record["gaid"], record["android_id"]) == ("203.0.113.0", None, None)
    assert record["is_limited_data_use"] == 1
    # The touch it was credited to keeps its network only too; a full-data install keeps all.
    assert gw.sql("SELECT ip FROM clicks") == [("203.0.113.0",)]
    assert gw.record(full["install_id"])["ip"] == "192.0.2.80"
    assert run_job() == 0
