"""Installs racing each other on a real server (attribution.md section 3: a click claims at most
one install; http-api.md section 2: one `app_instance_id` is one install).

Many phones behind one carrier address open the app at the same moment: the requests are
released together from threads, each on its own connection, against a real uvicorn server. The
claim of a click is made in the install's own transaction, so exactly one install wins it and
every other is answered at once with the next best outcome, never an error.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.fixtures import AD_QUERY, ANDROID_UA

RACERS = 12


def click(server: Any) -> tuple[str, str]:
    """A Google Play CTA tap from this machine: (click id, Play install referrer)."""
    answer = httpx.get(
        f"{server.url}/c/demo?{AD_QUERY}", headers={"User-Agent": ANDROID_UA}, timeout=5.0
    )
    assert answer.status_code == 302, answer.text
    referrer = parse_qs(urlsplit(answer.headers["location"]).query)["referrer"][0]
    return parse_qs(referrer)["gw_click_id"][0], referrer


def race(server: Any, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    """POST every body to /api/v1/installs at the same instant."""
    gate = threading.Barrier(len(bodies))

    def install(body: dict[str, Any]) -> httpx.Response:
        with httpx.Client(timeout=10.0) as http:
            headers = {"Authorization": f"Bearer {server.sdk_key}"}
            http.get(f"{server.url}/healthz")  # connect first, so the gate releases requests
            gate.wait()
            return http.post(f"{server.url}/api/v1/installs", json=body, headers=headers)

    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(install, bodies))
    for answer in answers:
        assert answer.status_code == 200, answer.text
    return answers


def body(instance: str, **fields: Any) -> dict[str, Any]:
    return {
        "app_key": "demo",
        "platform": "android",
        "app_instance_id": instance,
        "os_version": "14",
        "device_model": "Pixel 8",
        # A minute after the click: sooner would be click injection.
        "install_time": int(time.time()) + 60,
        **fields,
    }


def claimed_by(server: Any, click_id: str) -> str | None:
    conn = sqlite3.connect(f"file:{server.db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT claimed_by FROM clicks WHERE id = ?", [click_id]).fetchone()[0]
    finally:
        conn.close()


def test_phones_behind_one_ip_racing_for_one_click_leave_it_to_one(live_server: Any) -> None:
    click_id, _ = click(live_server)
    # No `ip` in the body: every install comes from this machine, the click's address.
    answers = [a.json() for a in race(live_server, [body(f"nat-{i}") for i in range(RACERS)])]

    winners = [a for a in answers if a["status"] == "attributed"]
    assert len(winners) == 1
    assert winners[0]["touch"]["id"] == click_id
    assert winners[0]["match_type"] == "probabilistic_click"
    assert {a["status"] for a in answers if a is not winners[0]} == {"organic"}
    assert len({a["install_id"] for a in answers}) == RACERS
    winner_instance = next(f"nat-{i}" for i, a in enumerate(answers) if a["status"] == "attributed")
    assert claimed_by(live_server, click_id) == winner_instance


def test_devices_racing_with_one_play_referrer_give_it_to_one(live_server: Any) -> None:
    click_id, referrer = click(live_server)
    # Different phones (different addresses) all claiming the same referrer: a copied referrer.
    bodies = [
        body(f"copied-{i}", ip=f"198.51.100.{i + 1}", install_referrer=referrer)
        for i in range(RACERS)
    ]
    answers = [a.json() for a in race(live_server, bodies)]
    winners = [a for a in answers if a["status"] == "attributed"]
    assert len(winners) == 1
    assert (winners[0]["match_type"], winners[0]["touch"]["id"]) == ("referrer", click_id)
    assert sum(a["status"] == "organic" for a in answers) == RACERS - 1
    # Each loser's receipt names the click as taken.
    loser = next(a for a in answers if a["status"] == "organic")
    record = httpx.get(
        f"{live_server.url}/api/v1/installs/{loser['install_id']}",
        headers={"Authorization": f"Bearer {live_server.admin_token}"},
    ).json()
    referrer_tier = record["receipt"]["tiers"][0]
    assert referrer_tier["losers"][0]["reason"] == "claimed"


def test_one_app_instance_id_sent_many_times_at_once_is_one_install(live_server: Any) -> None:
    click(live_server)
    answers = [a.json() for a in race(live_server, [body("eager-app")] * RACERS)]
    assert len({a["install_id"] for a in answers}) == 1
    assert sum(a["is_first_launch"] for a in answers) == 1
    assert {a["status"] for a in answers} == {"attributed"}
