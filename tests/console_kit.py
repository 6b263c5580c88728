"""Helpers of the console tests: users, logged-in clients, a second app with its own data."""

from __future__ import annotations

import re
from typing import Any

import httpx
from starlette.testclient import TestClient

from app.__main__ import DEMO_APP, DEMO_INTEGRATION, DEMO_PAGE
from app.accounts import hash_password
from app.configs import validate_app, validate_integration, validate_page
from app.store.backends import open_store
from app.vocabulary import PARTNER
from tests.aio import run_async

PASSWORD = "correct horse battery"
ADMIN = "admin@example.com"
VIEWER = "viewer@example.com"
LIMITED = "limited@example.com"  # an admin of the demo app only
OTHER_APP = "other"
OTHER_PAGE = "other-page"
ANDROID_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)


def add_users_and_other_app(db: str) -> str:
    """Three users and a second app ("other", with its page and integration); answers the
    other app's sdk_key."""

    async def run() -> str:
        store = await open_store(db)
        try:
            hashed = hash_password(PASSWORD)
            await store.users.create_user(ADMIN, hashed, "admin", None, 0.0)
            await store.users.create_user(VIEWER, hashed, "viewer", None, 0.0)
            await store.users.create_user(LIMITED, hashed, "admin", ["demo"], 0.0)
            app = await store.configs.put_app(
                OTHER_APP, validate_app(DEMO_APP | {"name": "Other Secret Game"}), 0.0
            )
            config, _ = validate_integration(DEMO_INTEGRATION)
            await store.configs.put_integration(OTHER_APP, PARTNER, config, "other-token", 0.0)
            await store.configs.put_page(
                OTHER_PAGE, validate_page(DEMO_PAGE | {"app_key": OTHER_APP}), 0.0
            )
            return app.sdk_key
        finally:
            await store.close()

    return run_async(run())


def log_in(client: TestClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return client.post(
        "/admin/login", data={"email": email, "password": password}, follow_redirects=False
    )


def csrf_of(client: TestClient, path: str = "/admin") -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def install(
    client: TestClient, sdk_key: str, app_key: str, instance: str, now: float
) -> dict[str, Any]:
    """An Android install a minute after a TikTok click of `app_key` (at `now`): attributed,
    with its postback."""
    click = client.get(
        f"/c/{app_key}?pid=tiktokweb_int&c=summer&ttclid=E.C.P.{instance}",
        headers={"User-Agent": ANDROID_UA},
        follow_redirects=False,
    )
    assert click.status_code == 302
    referrer = re.search(r"referrer=([^&]+)", click.headers["location"])
    assert referrer
    answer = client.post(
        "/api/v1/installs",
        json={
            "app_key": app_key,
            "platform": "android",
            "app_instance_id": instance,
            "install_time": int(now) + 60,
            "install_referrer": httpx.QueryParams(f"r={referrer.group(1)}")["r"],
        },
        headers={"Authorization": f"Bearer {sdk_key}", "User-Agent": ANDROID_UA},
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())
