"""Constants and plain helpers shared by test modules.

A test module takes what it shares with others from here, never from another test module (nor
from `conftest.py`, which holds the pytest fixtures and is pytest's to load).

- user agents: the browsers and app SDKs the endpoints are sent;
- `make_settings`, `seed`: settings on a fresh SQLite file, and the demo seeded into it;
- `Gangway`, `open_gangway`: an app in process with an injected clock, seen from a visitor's
  browser, the app and the owner (installs and events);
- `visit`, `install`, `event`, `owner`, `wait_until`, ...: the journey over real HTTP against a
  live server (`tests/live.py`): postbacks end to end, CCPA and crash tests.
"""

from __future__ import annotations

import atexit
import functools
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
from starlette.testclient import TestClient

from app.__main__ import DEMO_APP, DEMO_INTEGRATION, seed_demo
from app.server import create_app
from app.settings import Secret, Settings
from app.store.backends import open_store
from tests import dbq
from tests.aio import run_async

# -- user agents -----------------------------------------------------------------------------------

IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
# The spec's hash vectors (postbacks.md): SHA-256 of a normalised email and phone.
EMAIL_VECTOR = "848a771458438fc2ec420560d769fb9b9b86851ee338ec56517baabd79d3bb4f"
PHONE_VECTOR = "9f7ec22d72092cd3c0b58726ed9c2d91b92e51a3f29837508fb2948bb22dd2fd"
ANDROID_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)
DESKTOP_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
MAC_UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15"
)
# What apps send as their own HTTP user agent.
IOS_SDK_UA = "DemoGame/1.0 CFNetwork/1496.0.7 Darwin/23.5.0"
ANDROID_SDK_UA = "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/UQ1A.240205.004)"

# -- settings and the demo -------------------------------------------------------------------------


def make_settings(tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "db": str(tmp / "gangway.db"),
        "secret_key": Secret("test-secret"),
        # Nothing in the suite may reach the real TikTok: an unroutable default.
        "tiktok_api_url": "http://127.0.0.1:9",
        "tiktok_timeout_seconds": 2.0,
        # The hosts the in-process clients use (127.0.0.1 and localhost are always answered).
        "allowed_hosts": frozenset({"gangway.test", "testserver"}),
    }
    values.update(overrides)
    return Settings(**values)


def seed(db: str) -> tuple[str, str]:
    """Seed the demo into `db`; answer (admin token, demo sdk_key)."""

    async def run() -> tuple[str, str]:
        store = await open_store(db)
        try:
            # Live, not the demo's dry run: the suite delivers to the fake TikTok.
            await seed_demo(store, dry_run=False)
            token = await store.tokens.create_token("tests", 0.0)
            app = await store.configs.get_app("demo")
            assert app is not None
            return token, app.sdk_key
        finally:
            await store.close()

    return run_async(run())


# -- an app in process, with an injected clock -----------------------------------------------------

START = datetime(2026, 11, 21, 10, 0, tzinfo=UTC).timestamp()
PHONE_IP = "203.0.113.7"
OTHER_IP = "198.51.100.9"
AD_QUERY = (
    "pid=tiktokweb_int&c=summer&af_c_id=1700&af_adset=teens&af_adset_id=17001&af_ad=video1"
    "&af_ad_id=170011&ttclid=E.C.P.abc&af_sub1=E.C.P.abc&deep_link_value=level7"
)


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Gangway:
    """A Gangway in process, seen from a visitor's browser, the app and the owner."""

    http: TestClient
    clock: FakeClock
    db: str
    sdk: dict[str, str]
    admin: dict[str, str]

    def click(self, ip: str = PHONE_IP, ua: str = ANDROID_UA, query: str = AD_QUERY) -> str:
        """A CTA tap; answers the click id (read back from the store, as the App Store
        redirect does not show it)."""
        answer = self.http.get(
            f"/c/demo?{query}",
            headers={"User-Agent": ua, "X-Forwarded-For": ip},
            follow_redirects=False,
        )
        assert answer.status_code == 302, answer.text
        return self.latest("clicks")

    def android_click(self, ip: str = PHONE_IP) -> tuple[str, str]:
        """A Google Play CTA tap: (click id, the Play install referrer the app will read)."""
        answer = self.http.get(
            f"/c/demo?{AD_QUERY}",
            headers={"User-Agent": ANDROID_UA, "X-Forwarded-For": ip},
            follow_redirects=False,
        )
        referrer = parse_qs(urlsplit(answer.headers["location"]).query)["referrer"][0]
        return parse_qs(referrer)["gw_click_id"][0], referrer

    def impression(self, ip: str = PHONE_IP, ua: str = IPHONE_UA) -> str:
        answer = self.http.post(
            "/i/demo",
            json={"url": f"http://gangway.test/lp/demo?{AD_QUERY}"},
            headers={"User-Agent": ua, "X-Forwarded-For": ip},
        )
        assert answer.status_code == 202, answer.text
        return str(answer.json()["id"])

    def install(
        self, instance: str, *, via: str = PHONE_IP, ua: str | None = None, **body: Any
    ) -> httpx.Response:
        """The app's install request, sent from the address `via` (the phone, unless a
        server-to-server call); `ua` is the request's User-Agent, `body` the JSON fields."""
        headers = self.sdk | {"X-Forwarded-For": via}
        if ua is not None:
            headers["User-Agent"] = ua
        defaults = {"app_key": "demo", "platform": "android", "app_instance_id": instance}
        if body.get("platform", "android") == "android":
            defaults |= {"os_version": "14", "device_model": "Pixel 8"}
        return self.http.post("/api/v1/installs", json=defaults | body, headers=headers)

    def installed(self, instance: str, **kwargs: Any) -> dict[str, Any]:
        answer = self.install(instance, **kwargs)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def record(self, install_id: str) -> dict[str, Any]:
        """The install as the owner sees it, with its receipt."""
        answer = self.http.get(f"/api/v1/installs/{install_id}", headers=self.admin)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def put_integration(self, **changes: Any) -> None:
        answer = self.http.put(
            "/api/v1/apps/demo/integrations/tiktokweb_int",
            json=DEMO_INTEGRATION | changes,
            headers=self.admin,
        )
        assert answer.status_code == 200, answer.text

    def put_attribution(self, **changes: Any) -> None:
        answer = self.http.put(
            "/api/v1/apps/demo", json=DEMO_APP | {"attribution": changes}, headers=self.admin
        )
        assert answer.status_code == 200, answer.text

    def later(self, seconds: float) -> None:
        self.clock.now += seconds

    def latest(self, table: str) -> str:
        return str(self.sql(f"SELECT id FROM {table} ORDER BY rowid DESC LIMIT 1")[0][0])

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return dbq.query(self.db, query, params)


def open_gangway(tmp_path: Path, db: str | None = None) -> Iterator[Gangway]:
    """A seeded Gangway whose test client is a trusted proxy (so X-Forwarded-For sets the IP)."""
    settings = make_settings(tmp_path, trusted_proxies="127.0.0.1")
    if db is not None:  # the backend under test's fresh database (`backend_db`)
        settings = replace(settings, db=db)
    token, sdk_key = seed(settings.db)
    clock = FakeClock(START)
    # These tests read what is queued in the outbox; delivering it is `test_outbox.py`'s, so
    # no background job runs.
    with TestClient(
        create_app(settings, clock=clock, run_jobs=False),
        base_url="http://gangway.test",
        client=("127.0.0.1", 50000),
    ) as http:
        yield Gangway(
            http,
            clock,
            settings.db,
            {"Authorization": f"Bearer {sdk_key}"},
            {"Authorization": f"Bearer {token}"},
        )


# -- the journey over real HTTP, against a live server ---------------------------------------------

T = TypeVar("T")


@functools.cache
def http() -> httpx.Client:
    """One client for every helper call: a new client costs ~30 ms (its TLS context), more
    than the request it would make."""
    client = httpx.Client(timeout=5.0)
    # Closed at exit: kept-alive sockets left to the interpreter's last GC warn as unclosed.
    atexit.register(client.close)
    return client


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.found.append(dict(attrs))


def _cta_href(page: str, platform: str) -> str:
    """The href of the page's store button for `platform` (attribute order does not matter)."""
    anchors = _Anchors()
    anchors.feed(page)
    hrefs = [a["href"] for a in anchors.found if a.get("data-platform") == platform]
    assert hrefs and hrefs[0], f"no {platform} button on the page"
    return hrefs[0]


@dataclass(frozen=True)
class Visit:
    landing_url: str
    click_id: str
    # The Play install referrer the store hands the app: how the install finds its click.
    install_referrer: str


def visit(base: str, ttclid: str, headers: dict[str, str] | None = None) -> Visit:
    """Open the demo landing page from a TikTok ad and tap the Google Play button."""
    landing = f"{base}/lp/demo?pid=tiktokweb_int&c=summer&ttclid={ttclid}"
    sent = {"User-Agent": ANDROID_UA, **(headers or {})}
    page = http().get(landing, headers=sent)
    assert page.status_code == 200, page.text
    href = urljoin(base, _cta_href(page.text, "android"))
    click = http().get(href, headers=sent | {"Referer": landing})
    assert click.status_code == 302, click.text
    referrer = parse_qs(urlsplit(click.headers["location"]).query)["referrer"][0]
    return Visit(landing, parse_qs(referrer)["gw_click_id"][0], referrer)


def install(server: Any, instance: str, referrer: str | None, **fields: Any) -> dict[str, Any]:
    body = {
        "app_key": "demo",
        "platform": "android",
        "app_instance_id": instance,
        # A minute after the click: an install seconds after its click is click injection.
        "install_time": int(time.time()) + 60,
        "ip": "198.51.100.77",
        **({"install_referrer": referrer} if referrer else {}),
        **fields,
    }
    answer = http().post(
        f"{server.url}/api/v1/installs",
        headers={"Authorization": f"Bearer {server.sdk_key}"},
        json=body,
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json()) | {"install_time": body["install_time"]}


def event(server: Any, instance: str, name: str, **fields: Any) -> dict[str, Any]:
    answer = http().post(
        f"{server.url}/api/v1/events",
        headers={"Authorization": f"Bearer {server.sdk_key}"},
        json={"app_key": "demo", "app_instance_id": instance, "event_name": name, **fields},
    )
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


def owner(server: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return http().request(
        method,
        f"{server.url}{path}",
        headers={"Authorization": f"Bearer {server.admin_token}"},
        **kwargs,
    )


def wait_until(probe: Callable[[], T | None], timeout: float = 5.0) -> T:
    """Poll every 50 ms until `probe` answers something; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing after {timeout} s")
        time.sleep(0.05)


def install_postback(server: Any, install_id: str, state: str) -> dict[str, Any]:
    """The install's postback as the owner sees it, once it is in `state`."""

    def probe() -> dict[str, Any] | None:
        listed = owner(server, "GET", f"/api/v1/installs/{install_id}").json()["postbacks"]
        if not listed:
            return None
        detail = owner(server, "GET", f"/api/v1/postbacks/{listed[0]['id']}").json()
        return dict(detail) if detail["state"] == state else None

    return wait_until(probe)


def put_integration(server: Any, **changes: Any) -> None:
    answer = owner(
        server,
        "PUT",
        "/api/v1/apps/demo/integrations/tiktokweb_int",
        json=DEMO_INTEGRATION | changes,
    )
    assert answer.status_code == 200, answer.text


def run_cli(argv: list[str]) -> int:
    """`python -m app ARGV` in process. In a thread: the command line runs its own event loop,
    and the browser tests leave one running in the main thread."""
    from app.__main__ import main as cli_main

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(cli_main, argv).result()


# -- the postback journey, shared by the SQLite and PostgreSQL live tests ------------------------


def postback_journey(live_server: Any, fake_tiktok: Any) -> None:
    """Visit, click, install and in-app events through HTTP on a live server; what reaches the
    fake TikTok is compared whole with what the spec says it must be (the SQLite journey of
    `test_postbacks_e2e.py`, and the same on a PostgreSQL node in `test_nodes.py`)."""
    ttclid = "E.C.P.e2e-Cs1ABC"
    v = visit(live_server.url, ttclid)
    installed = install(live_server, "e2e-device-1", v.install_referrer)
    assert installed["status"] == "attributed"

    fake_tiktok.wait_for_events(1)
    [request] = fake_tiktok.requests
    touch_user = {"ttclid": ttclid, "ip": "127.0.0.1", "user_agent": ANDROID_UA}
    page = {"url": v.landing_url}
    assert request.headers["access-token"] == "demo-access-token"
    assert request.body == {
        "event_source": "web",
        "event_source_id": DEMO_INTEGRATION["pixel_code"],
        "partner_name": "Gangway",
        # The demo integration is in test mode.
        "test_event_code": "TEST00000",
        "data": [
            {
                "event": "Download",
                "event_time": installed["install_time"],
                "event_id": installed["install_id"],
                "limited_data_use": False,
                "user": touch_user,
                "page": page,
            }
        ],
    }

    t = installed["install_time"]
    unmapped = event(live_server, "e2e-device-1", "af_level_achieved", event_time=t + 60)
    assert unmapped["postback"] == "not_mapped"
    purchase_fields = {
        "event_time": t + 120,
        "event_id": "order-1",
        "event_value": {"af_revenue": "9.99", "af_currency": "USD", "af_content_id": "sku-1"},
        "user": {"email": " ALICE_abc@gmail.com ", "phone": "(+1)2133734253"},
    }
    assert event(live_server, "e2e-device-1", "af_purchase", **purchase_fields) == {
        "event_id": "order-1",
        "media_source": "tiktokglobal_int",
        "postback": "queued",
    }
    # The app sends the same purchase again (a retry after a lost answer): stored once.
    event(live_server, "e2e-device-1", "af_purchase", **purchase_fields)
    registered = event(live_server, "e2e-device-1", "af_complete_registration", event_time=t + 180)
    assert registered["postback"] == "queued"

    events = fake_tiktok.wait_for_events(3)
    # Nothing from the unmapped event nor from the repeated purchase.
    assert len(events) == 3
    _, purchase, registration = events
    assert purchase == {
        "event": "Purchase",
        "event_time": t + 120,
        "event_id": purchase["event_id"],
        "limited_data_use": False,
        "user": touch_user | {"email": EMAIL_VECTOR, "phone": PHONE_VECTOR},
        "page": page,
        "properties": {"value": 9.99, "currency": "USD", "contents": [{"content_id": "sku-1"}]},
    }
    assert registration == {
        "event": "CompleteRegistration",
        "event_time": t + 180,
        "event_id": registration["event_id"],
        "limited_data_use": False,
        "user": touch_user,
        "page": page,
    }
    ids = {installed["install_id"], purchase["event_id"], registration["event_id"]}
    assert len(ids) == 3, "every install and event has its own event_id"
    assert fake_tiktok.violations == []
