"""SIGKILL with postbacks pending and one on its way: after a restart on the same database every
postback is delivered, and an install never reaches TikTok under two different event_ids.

A real server process (`tests/live.py`) is killed while TikTok hangs on its first request; the
installs that arrive meanwhile wait behind that request. A second server on the same file must
deliver all of them, the one that was in flight included (at least once: TikTok may then see it
twice, with the same event_id and the same content, and drops the repeat).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from tests.fakes.tiktok_api import FakeTikTok
from tests.fixtures import install, install_postback, seed, visit, wait_until
from tests.live import LiveServer

# How long the fake TikTok sits on the first request: far longer than killing takes, and the
# server's own timeout (below) is longer still, so the request is surely in flight at the kill.
HANG_SECONDS = 3.0


def _start(db: str, fake: FakeTikTok, token: str, sdk_key: str) -> LiveServer:
    server = LiveServer(
        db,
        {
            "GANGWAY_TIKTOK_API_URL": fake.base_url,
            "GANGWAY_TIKTOK_TIMEOUT_SECONDS": "30",
            # The worker says "sending" at debug level: the test waits for that line.
            "GANGWAY_LOG_LEVEL": "debug",
        },
    ).start()
    server.admin_token = token  # type: ignore[attr-defined]
    server.sdk_key = sdk_key  # type: ignore[attr-defined]
    return server


def test_a_killed_server_delivers_everything_after_restart(
    tmp_path: Path, fake_tiktok: FakeTikTok
) -> None:
    db = str(tmp_path / "gangway.db")
    token, sdk_key = seed(db)
    fake_tiktok.script(hang_seconds=HANG_SECONDS, times=1)

    first = _start(db, fake_tiktok, token, sdk_key)
    try:
        installs = [install(first, "crash-0", visit(first.url, "E.C.P.crash-0").install_referrer)]
        wait_until(lambda: "sending to" in first.logs() or None)
        for i in range(1, 6):
            v = visit(first.url, f"E.C.P.crash-{i}")
            installs.append(install(first, f"crash-{i}", v.install_referrer))
        first.kill()
    finally:
        first.stop()

    second = _start(db, fake_tiktok, token, sdk_key)
    try:
        install_ids = {i["install_id"] for i in installs}
        for installed in installs:
            detail = install_postback(second, installed["install_id"], "sent")
            # Delivered by the second server: the first never recorded an attempt.
            assert detail["attempts"] == 1
        # The first server's request still lands when the fake stops hanging: a seventh copy.
        events = fake_tiktok.wait_for_events(len(installs) + 1, timeout=HANG_SECONDS + 5)
    finally:
        second.stop()

    copies: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for sent in events:
        copies[str(sent["event_id"])].append(sent)
    assert set(copies) == install_ids, "every install under its own id, and no other id"
    for event_id, same in copies.items():
        assert all(c == same[0] for c in same), f"{event_id} was sent with different content"
    assert len(copies[installs[0]["install_id"]]) == 2
    assert fake_tiktok.violations == []
