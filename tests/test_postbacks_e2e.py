"""Postbacks end to end: a real server, the fake TikTok, and nothing but HTTP in between.

Landing page -> CTA click -> install with the Play referrer -> in-app events; what reaches the
fake TikTok is compared whole with what the spec says it must be. Also the owner's view of a
postback (attempts, the JSON sent, retry), test mode, and the installs that must send nothing.
The journey helpers (`visit`, `install`, `event`, ...) are in `tests/fixtures.py`, shared with
the CCPA and crash tests.
"""

from __future__ import annotations

from typing import Any

from tests.fakes.tiktok_api import FakeTikTok
from tests.fixtures import (
    event,
    http,
    install,
    install_postback,
    owner,
    postback_journey,
    put_integration,
    visit,
)

# --- the journey ------------------------------------------------------------------------------


def test_install_and_mapped_events_reach_tiktok_exactly_as_specified(
    live_server: Any, fake_tiktok: FakeTikTok
) -> None:
    postback_journey(live_server, fake_tiktok)


def test_without_a_test_event_code_postbacks_carry_none(
    live_server: Any, fake_tiktok: FakeTikTok
) -> None:
    put_integration(live_server, test_event_code=None)
    try:
        v = visit(live_server.url, "E.C.P.live-mode")
        install(live_server, "live-mode-device", v.install_referrer)
        fake_tiktok.wait_for_events(1)
        assert "test_event_code" not in fake_tiktok.requests[0].body
    finally:
        put_integration(live_server)


def test_installs_that_must_send_nothing_send_nothing(
    live_server: Any, fake_tiktok: FakeTikTok
) -> None:
    first = visit(live_server.url, "E.C.P.first")
    attributed = install(live_server, "nothing-a", first.install_referrer, device={"gaid": "g-1"})
    fake_tiktok.wait_for_events(1)

    # Re-engagement: the same user taps another ad and the app reports its launch again.
    again = visit(live_server.url, "E.C.P.again")
    repeat = install(live_server, "nothing-a", again.install_referrer, device={"gaid": "g-1"})
    assert repeat["is_first_launch"] is False
    # A reinstall on the same device (a new app_instance_id, the same Google advertising id).
    reinstall = install(live_server, "nothing-b", again.install_referrer, device={"gaid": "g-1"})
    assert reinstall["status"] == "reinstall"
    # An organic install, and its mapped purchase.
    organic = install(live_server, "nothing-c", None, ip="192.0.2.200")
    assert organic["status"] == "organic"
    purchase = event(live_server, "nothing-c", "af_purchase", event_value={"af_revenue": "1"})
    assert purchase["postback"] == "not_attributed"

    # A last attributed install: when its postback arrives, nothing else came before it.
    last_visit = visit(live_server.url, "E.C.P.last")
    last = install(live_server, "nothing-d", last_visit.install_referrer)
    events = fake_tiktok.wait_for_events(2)
    assert [e["event_id"] for e in events] == [attributed["install_id"], last["install_id"]]


# --- the owner's view -------------------------------------------------------------------------


def test_the_owner_sees_every_attempt_and_the_json_sent(
    live_server: Any, fake_tiktok: FakeTikTok
) -> None:
    fake_tiktok.script(code=40100, message="Too many requests", times=1)
    v = visit(live_server.url, "E.C.P.attempts")
    installed = install(live_server, "attempts-device", v.install_referrer)
    # The live worker retries on its own, after about a second.
    fake_tiktok.wait_for_events(1)
    detail = install_postback(live_server, installed["install_id"], "sent")
    log = detail["attempt_log"]
    assert [(a["state"], a["http_status"], a["code"]) for a in log] == [
        ("retrying", 200, 40100),
        ("sent", 200, 0),
    ]
    assert log[0]["message"] == "Too many requests"
    assert all(a["request_id"] and a["time"].endswith("Z") for a in log)
    assert detail["attempts"] == 2
    assert detail["sent_json"] == fake_tiktok.requests[-1].body
    assert detail["next_attempt_at"] is None


def test_a_failed_postback_shows_tiktoks_message_and_the_owner_can_retry_it(
    live_server: Any, fake_tiktok: FakeTikTok
) -> None:
    fake_tiktok.script(code=40001, message="No permission to operate pixel", times=1)
    v = visit(live_server.url, "E.C.P.refused")
    installed = install(live_server, "refused-device", v.install_referrer)
    failed = install_postback(live_server, installed["install_id"], "failed")
    assert failed["last_code"] == 40001
    assert failed["last_message"] == "No permission to operate pixel"
    assert fake_tiktok.events() == []

    retried = owner(live_server, "POST", f"/api/v1/postbacks/{failed['id']}/retry")
    assert retried.status_code == 202
    [delivered] = fake_tiktok.wait_for_events(1)
    assert delivered["event_id"] == installed["install_id"]
    install_postback(live_server, installed["install_id"], "sent")
    again = owner(live_server, "POST", f"/api/v1/postbacks/{failed['id']}/retry")
    assert again.status_code == 409
    assert again.json()["error"] == "already_sent"


def test_retry_all_failed_and_bad_owner_requests(live_server: Any) -> None:
    retry_all = owner(live_server, "POST", "/api/v1/postbacks/retry", json={"app_key": "demo"})
    assert retry_all.status_code == 202
    assert retry_all.json() == {"app_key": "demo", "retried": 0}
    missing = owner(live_server, "POST", "/api/v1/postbacks/retry", json={})
    assert (missing.status_code, missing.json()["field"]) == (400, "app_key")
    unknown_app = owner(live_server, "POST", "/api/v1/postbacks/retry", json={"app_key": "nope"})
    assert unknown_app.status_code == 404
    # A key no app can have, not even a query: a lone surrogate (was a 500 from SQLite).
    surrogate = http().post(
        f"{live_server.url}/api/v1/postbacks/retry",
        content=b'{"app_key": "\\ud800"}',
        headers={
            "Authorization": f"Bearer {live_server.admin_token}",
            "Content-Type": "application/json",
        },
    )
    assert (surrogate.status_code, surrogate.json()["field"]) == (404, "app_key")
    assert owner(live_server, "GET", "/api/v1/postbacks/nope").status_code == 404
    anonymous = http().get(f"{live_server.url}/api/v1/postbacks/nope")
    assert anonymous.status_code == 401
