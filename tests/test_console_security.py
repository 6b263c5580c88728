"""The console's security rules (console.md sections 1 and 2), each a test; the route table is
walked so that a new route cannot be forgotten."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from itsdangerous import URLSafeTimedSerializer
from starlette.routing import Route
from starlette.testclient import TestClient

from app.server import create_app, routes
from app.settings import Settings
from app.web import outbox_api, owner_api
from app.web.sessions import COOKIE, SESSION_SALT
from tests.console_kit import (
    ADMIN,
    LIMITED,
    OTHER_APP,
    OTHER_PAGE,
    PASSWORD,
    VIEWER,
    add_users_and_other_app,
    csrf_of,
    install,
    log_in,
)
from tests.fixtures import make_settings

ORIGIN = "http://gangway.test"
# State-changing routes that no session may use and that read no cookie: the visitors' and the
# app's surface, and the login form itself (no session yet; it checks Origin and
# Sec-Fetch-Site).
PUBLIC_UNSAFE = {"/i/{app_key}", "/api/v1/installs", "/api/v1/events", "/admin/login"}
# What a viewer may do: read the dashboard, receipts and postbacks, and log out.
VIEWER_ALLOWED = {
    ("/admin", "GET"),
    ("/admin/installs/{install_id}", "GET"),
    ("/admin/postbacks", "GET"),
    ("/admin/postbacks/{postback_id}", "GET"),
    ("/admin/cost", "GET"),
    ("/admin/logout", "POST"),
    ("/admin/{path:path}", "GET"),  # the console's 404 page
    ("/api/v1/installs/{install_id}", "GET"),
    ("/api/v1/postbacks/{postback_id}", "GET"),
}
UNSAFE = {"POST", "PUT", "DELETE", "PATCH"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def other_sdk_key(settings: Settings, seeded: tuple[str, str]) -> str:
    return add_users_and_other_app(settings.db)


@pytest.fixture()
def web(settings: Settings, other_sdk_key: str, clock: Clock) -> Iterator[TestClient]:
    app = create_app(settings, clock=clock, run_jobs=False)
    with TestClient(app, base_url=ORIGIN, client=("203.0.113.9", 40000)) as c:
        yield c


def owner_routes() -> list[tuple[str, str]]:
    return [
        (route.path, method)
        for route in routes()
        if isinstance(route, Route)
        and route.endpoint.__module__ in (owner_api.__name__, outbox_api.__name__)
        for method in sorted(set(route.methods or ()) - {"HEAD"})
    ]


def console_routes() -> list[tuple[str, str]]:
    return [
        (route.path, method)
        for route in routes()
        if isinstance(route, Route) and route.path.startswith("/admin")
        for method in sorted(set(route.methods or ()) - {"HEAD"})
    ]


def concrete(path: str) -> str:
    """A route's path with every parameter filled (the demo's app and page where one fits)."""
    return (
        path.replace("{app_key}", "demo")
        .replace("{slug}", "demo")
        .replace("{install_id}", "nope")
        .replace("{postback_id}", "nope")
        .replace("{token_id}", "nope")
    )


def send(c: TestClient, method: str, path: str, **kwargs: Any) -> Any:
    return c.request(method, concrete(path), follow_redirects=False, **kwargs)


def test_the_walks_see_the_routes() -> None:
    assert len(console_routes()) >= 20 and len(owner_routes()) >= 15


def test_every_console_route_without_a_session_redirects_to_login(web: TestClient) -> None:
    for path, method in console_routes():
        if path == "/admin/login":
            continue
        answer = send(web, method, path)
        assert answer.status_code == 303, (method, path, answer.status_code)
        assert answer.headers["location"].startswith("/admin/login"), (method, path)


def test_login_remembers_where_the_owner_was_going_but_only_inside_the_console(
    web: TestClient,
) -> None:
    assert web.get("/admin/pages", follow_redirects=False).headers["location"] == (
        "/admin/login?next=/admin/pages"
    )
    for evil in ("https://evil.example/", "//evil.example/admin", "/admin\\@evil.example"):
        answer = web.post(
            f"/admin/login?next={evil}",
            data={"email": ADMIN, "password": PASSWORD},
            follow_redirects=False,
        )
        assert answer.headers["location"] == "/admin", evil


def test_every_owner_api_route_without_a_valid_token_or_session_is_401(web: TestClient) -> None:
    for path, method in owner_routes():
        for headers in ({}, {"Authorization": "Bearer not-a-token"}):
            answer = send(web, method, path, headers=headers, json={})
            assert answer.status_code == 401, (method, path, headers, answer.text)
            assert answer.json()["error"] == "unauthorized"


def test_a_session_works_on_the_owner_api_and_a_bearer_token_needs_no_csrf(
    web: TestClient, admin: dict[str, str]
) -> None:
    log_in(web, ADMIN)
    assert web.get("/api/v1/apps").status_code == 200
    token = csrf_of(web)
    answer = web.post(
        "/api/v1/postbacks/retry", json={"app_key": "demo"}, headers={"X-CSRF-Token": token}
    )
    assert answer.status_code == 202
    web.cookies.clear()
    assert (
        web.post("/api/v1/postbacks/retry", json={"app_key": "demo"}, headers=admin).status_code
        == 202
    )


def test_every_state_changing_request_of_a_session_needs_csrf_from_our_origin(
    web: TestClient,
) -> None:
    """Walks the whole route table: a new unsafe route is covered, or it fails here."""
    log_in(web, ADMIN)
    token = csrf_of(web)
    checked = 0
    for route in routes():
        assert isinstance(route, Route)
        for method in sorted((route.methods or set()) & UNSAFE):
            if route.path in PUBLIC_UNSAFE:
                continue
            checked += 1
            for headers, form in (
                ({}, {}),  # no token at all
                ({"X-CSRF-Token": "wrong"}, {"csrf_token": "wrong"}),
                ({"X-CSRF-Token": token, "Origin": "https://evil.example"}, {"csrf_token": token}),
                ({"X-CSRF-Token": token, "Sec-Fetch-Site": "cross-site"}, {"csrf_token": token}),
            ):
                answer = send(web, method, route.path, headers=headers, data=form)
                assert answer.status_code == 403, (method, route.path, headers, answer.text[:200])
    assert checked >= 15
    # Nothing was changed by any of them: the session still works, the app still exists.
    assert web.get("/api/v1/apps/demo").status_code == 200


def test_a_viewer_is_refused_every_configuration_route_and_action(web: TestClient) -> None:
    log_in(web, VIEWER)
    token = csrf_of(web)
    for path, method in console_routes() + owner_routes():
        if path == "/admin/login" or (path, method) in VIEWER_ALLOWED:
            continue
        answer = send(
            web, method, path, headers={"X-CSRF-Token": token}, data={"csrf_token": token}
        )
        assert answer.status_code == 403, (method, path, answer.status_code)
    assert web.get("/admin").status_code == 200
    assert "Apps" not in web.get("/admin").text.split("<main")[0]


def test_a_user_limited_to_one_app_sees_nothing_of_another(
    web: TestClient, seeded: tuple[str, str], other_sdk_key: str, clock: Clock
) -> None:
    demo_install = install(web, seeded[1], "demo", "demo-phone", clock.now)["install_id"]
    other_install = install(web, other_sdk_key, OTHER_APP, "other-phone", clock.now)["install_id"]
    log_in(web, ADMIN)
    admin_feed = web.get("/admin").text
    assert other_install in admin_feed and demo_install in admin_feed
    other_postback = re.search(
        r"/admin/postbacks/([\w-]+)", web.get(f"/admin/installs/{other_install}").text
    )
    assert other_postback
    web.post("/admin/logout", data={"csrf_token": csrf_of(web)})

    log_in(web, LIMITED)
    token = csrf_of(web)
    screens = [
        "/admin",
        "/admin/apps",
        "/admin/pages",
        "/admin/postbacks",
        "/admin/doctor",
        f"/admin/doctor?url={ORIGIN}/lp/{OTHER_PAGE}?pid=tiktokweb_int",
        "/admin/postbacks?app=other",
        "/admin?app=other",
        "/admin/cost",
        "/admin/cost?app=other",
    ]
    for path in screens:
        answer = web.get(path)
        assert answer.status_code == 200, path
        # The doctor echoes the URL typed, and says there is no such page: nothing more.
        assert OTHER_APP not in answer.text.replace(OTHER_PAGE, ""), path
        assert "Other Secret Game" not in answer.text and other_install not in answer.text, path
    assert demo_install in web.get("/admin").text
    for path in (
        f"/admin/apps/{OTHER_APP}",
        f"/admin/apps/{OTHER_APP}/tiktok",
        f"/admin/pages/{OTHER_PAGE}",
        f"/admin/pages/{OTHER_PAGE}/links",
        f"/admin/installs/{other_install}",
        f"/admin/postbacks/{other_postback.group(1)}",
        f"/api/v1/apps/{OTHER_APP}",
        f"/api/v1/apps/{OTHER_APP}/integrations/tiktokweb_int",
        f"/api/v1/pages/{OTHER_PAGE}",
        f"/api/v1/installs/{other_install}",
        f"/api/v1/postbacks/{other_postback.group(1)}",
    ):
        assert web.get(path).status_code == 404, path
    apps = web.get("/api/v1/apps").json()["apps"]
    assert [a["app_key"] for a in apps] == ["demo"]
    assert [p["slug"] for p in web.get("/api/v1/pages").json()["pages"]] == ["demo"]
    headers = {"X-CSRF-Token": token}
    for method, path, body in (
        ("PUT", f"/api/v1/apps/{OTHER_APP}", {"name": "x"}),
        ("DELETE", f"/api/v1/apps/{OTHER_APP}", None),
        ("POST", f"/api/v1/apps/{OTHER_APP}/sdk_key/rotate", None),
        ("PUT", f"/api/v1/pages/{OTHER_PAGE}", {"app_key": "demo", "title": "x"}),
        ("PUT", "/api/v1/pages/fresh", {"app_key": OTHER_APP, "title": "x"}),
        ("POST", f"/api/v1/postbacks/{other_postback.group(1)}/retry", None),
        ("POST", "/api/v1/postbacks/retry", {"app_key": OTHER_APP}),
    ):
        answer = web.request(method, path, json=body, headers=headers)
        assert answer.status_code in (400, 403, 404), (method, path, answer.status_code)
    assert web.get("/admin/users").status_code == 403  # users and tokens: every app's admin only


def test_tampered_expired_and_logged_out_cookies_are_anonymous(
    web: TestClient, clock: Clock, settings: Settings
) -> None:
    log_in(web, ADMIN)
    cookie = web.cookies[COOKIE]
    assert web.get("/admin", follow_redirects=False).status_code == 200

    def with_cookie(value: str) -> int:
        web.cookies.clear()
        web.cookies.set(COOKIE, value, domain="gangway.test")
        return int(web.get("/admin", follow_redirects=False).status_code)

    tampered = cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")
    assert with_cookie(tampered) == 303
    assert with_cookie("garbage") == 303
    assert with_cookie("") == 303
    other_key = URLSafeTimedSerializer("another-key", salt=SESSION_SALT)
    assert with_cookie(other_key.dumps(cookie)) == 303
    wrong_namespace = URLSafeTimedSerializer(settings.secret_key.reveal(), salt="other")
    assert with_cookie(wrong_namespace.dumps("x")) == 303
    assert with_cookie(cookie) == 200
    # Idle for 12 hours: anonymous; the API says 401, not 500.
    clock.now += 12 * 3600 + 1
    assert with_cookie(cookie) == 303
    assert web.get("/api/v1/apps").status_code == 401
    # Logged out: the same cookie replayed is anonymous.
    clock.now -= 12 * 3600 + 1
    assert with_cookie(cookie) == 200
    assert web.post("/admin/logout", data={"csrf_token": csrf_of(web)}).status_code == 200
    assert with_cookie(cookie) == 303
    assert web.get("/api/v1/apps").status_code == 401


def test_a_session_ends_seven_days_after_login_however_busy(web: TestClient, clock: Clock) -> None:
    log_in(web, ADMIN)
    for _ in range(15):
        clock.now += 11 * 3600
        assert web.get("/admin", follow_redirects=False).status_code == 200
    clock.now += 11 * 3600  # 176 hours in, used every 11 hours: past the 7-day limit
    assert web.get("/admin", follow_redirects=False).status_code == 303


def test_the_sixth_bad_password_for_one_account_is_429_even_when_right(
    web: TestClient, clock: Clock
) -> None:
    for _ in range(5):
        assert log_in(web, ADMIN, "wrong password!").status_code == 401
    assert log_in(web, ADMIN).status_code == 429
    assert log_in(web, ADMIN, "wrong password!").status_code == 429
    # Other accounts are not locked by it.
    assert log_in(web, VIEWER).status_code == 303
    web.cookies.clear()
    clock.now += 15 * 60 + 1
    assert log_in(web, ADMIN).status_code == 303


def test_twenty_failures_from_one_ip_lock_that_ip(web: TestClient) -> None:
    for i in range(20):
        assert log_in(web, f"nobody{i}@example.com", "wrong password!").status_code == 401
    assert log_in(web, ADMIN).status_code == 429


def test_the_session_cookie_and_console_headers(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, public_url="https://track.example.com")
    from tests.fixtures import seed

    seed(settings.db)
    add_users_and_other_app(settings.db)
    with TestClient(create_app(settings), base_url="https://track.example.com") as c:
        answer = log_in(c, ADMIN)
        cookie = answer.headers["set-cookie"]
        for part in ("HttpOnly", "SameSite=lax", "Secure", "Path=/", "Max-Age=604800"):
            assert part.lower() in cookie.lower(), part
        page = c.get("/admin")
        headers = page.headers
        csp = headers["content-security-policy"]
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp and "style-src 'self'" in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        assert headers["strict-transport-security"].startswith("max-age=")
        assert headers["cache-control"] == "no-store"
        assert "<script>" not in page.text and " style=" not in page.text


def test_no_password_token_or_session_value_in_any_log_line(
    web: TestClient, admin: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    log_in(web, ADMIN, "wrong password!")
    answer = log_in(web, ADMIN)
    cookie = web.cookies[COOKIE]
    web.get("/admin")
    web.get("/api/v1/apps", headers=admin)
    web.post("/admin/users", data={"label": "x", "csrf_token": csrf_of(web, "/admin/users")})
    token = re.search(
        r'id="new-token" value="([^"]+)"',
        web.post(
            "/admin/users", data={"label": "y", "csrf_token": csrf_of(web, "/admin/users")}
        ).text,
    )
    assert answer.status_code == 303 and token
    logged = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    for secret in (PASSWORD, "wrong password!", cookie, admin["Authorization"][7:], token.group(1)):
        assert secret not in logged


def test_a_forged_host_is_refused_and_cannot_steer_links(tmp_path: Path) -> None:
    from tests.fixtures import seed

    settings = make_settings(
        tmp_path, public_url="https://track.example.com", allowed_hosts=frozenset()
    )
    seed(settings.db)
    with TestClient(create_app(settings), base_url="https://track.example.com") as c:
        page = c.get("/lp/demo?pid=tiktokweb_int")
        assert page.status_code == 200 and 'href="https://track.example.com/c/demo?' in page.text
        for host in ("evil.example", "track.example.com.evil.example", "", "[::1"):
            for path in ("/lp/demo", "/c/demo?af_r=https://example.com/", "/admin/login"):
                answer = c.get(path, headers={"Host": host}, follow_redirects=False)
                assert answer.status_code == 400, (host, path)
                assert "evil" not in answer.text
        assert c.get("/healthz", headers={"Host": "10.0.0.9"}).status_code == 200


def test_without_public_url_or_allowed_hosts_only_loopback_is_answered(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, allowed_hosts=frozenset())
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        assert c.get("/admin/login").status_code == 200
        assert c.get("/admin/login", headers={"Host": "localhost:8000"}).status_code == 200
        assert c.get("/admin/login", headers={"Host": "gangway.test"}).status_code == 400
    allowed = make_settings(tmp_path, allowed_hosts=frozenset({"a.example", "b.example:8443"}))
    with TestClient(create_app(allowed), base_url="http://a.example") as c:
        assert c.get("/admin/login", headers={"Host": "a.example:9000"}).status_code == 200
        assert c.get("/admin/login", headers={"Host": "b.example:8443"}).status_code == 200
        assert c.get("/admin/login", headers={"Host": "b.example"}).status_code == 400
        assert c.get("/admin/login", headers={"Host": "127.0.0.1"}).status_code == 400


def test_a_login_posted_from_another_site_is_refused(web: TestClient) -> None:
    form = {"email": ADMIN, "password": PASSWORD}
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        answer = web.post("/admin/login", data=form, headers=headers, follow_redirects=False)
        assert answer.status_code == 403 and COOKIE not in answer.headers.get("set-cookie", "")
    same = web.post("/admin/login", data=form, headers={"Origin": ORIGIN}, follow_redirects=False)
    assert same.status_code == 303 and COOKIE in same.headers["set-cookie"]


def test_logging_in_again_ends_the_browsers_previous_session(web: TestClient) -> None:
    log_in(web, ADMIN)
    first = web.cookies[COOKIE]
    log_in(web, VIEWER)
    assert web.cookies[COOKIE] != first
    web.cookies.clear()
    web.cookies.set(COOKIE, first, domain="gangway.test")
    assert web.get("/admin", follow_redirects=False).status_code == 303
