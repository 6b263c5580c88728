"""`python -m app copy`: a SQLite installation moved into PostgreSQL, every table with its ids,
resumable after an interruption, verified by row counts; served from PostgreSQL, the owner
sees the same install receipts and postbacks."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from starlette.testclient import TestClient

from app.paths import ROOT
from app.server import create_app
from app.store.copy import TABLES, Interrupted, copy_database
from tests.aio import run_async
from tests.fixtures import OTHER_IP, PHONE_IP, make_settings, open_gangway

Installation = tuple[str, dict[str, str], dict[str, str], list[str], list[str]]


def make_installation(tmp_path: Path) -> Installation:
    """A SQLite installation with traffic: answers (file, admin headers, SDK headers, install
    ids, postback ids)."""
    gen = open_gangway(tmp_path)
    gw = next(gen)
    installs = []
    for n in range(3):
        _, referrer = gw.android_click(ip=f"198.51.100.{n + 20}")
        gw.impression(ip=PHONE_IP)
        gw.later(60)
        installs.append(gw.installed(f"phone-{n}", via=OTHER_IP, install_referrer=referrer))
    gw.impression(ip="192.0.2.1")
    organic = gw.installed("phone-organic", via="192.0.2.99")
    event = gw.http.post(
        "/api/v1/events",
        json={"app_key": "demo", "app_instance_id": "phone-0", "event_name": "af_purchase"}
        | {"event_id": "ev-1", "event_value": {"af_revenue": "4.99", "af_currency": "USD"}},
        headers=gw.sdk,
    )
    assert event.status_code == 202, event.text
    ids = [a["install_id"] for a in installs] + [organic["install_id"]]
    postbacks = [p["id"] for i in ids for p in gw.record(i)["postbacks"]]
    admin, sdk, db = gw.admin, gw.sdk, gw.db
    gen.close()
    return db, admin, sdk, ids, postbacks


def owner_views(
    client: TestClient, admin: dict[str, str], installs: list[str], postbacks: list[str]
) -> list[object]:
    views: list[object] = []
    for path in [f"/api/v1/installs/{i}" for i in installs] + [
        f"/api/v1/postbacks/{p}" for p in postbacks
    ]:
        answer = client.get(path, headers=admin)
        assert answer.status_code == 200, answer.text
        views.append(answer.json())
    return views


def test_copy_resumes_after_an_interruption_and_serves_the_same_receipts(
    tmp_path: Path, pg_database: str
) -> None:
    db, admin, sdk, installs, postbacks = make_installation(tmp_path)
    assert len(postbacks) >= 3
    settings = make_settings(tmp_path)
    with TestClient(create_app(replace(settings, db=db), run_jobs=False)) as c:
        before = owner_views(c, admin, installs, postbacks)

    with pytest.raises(Interrupted):
        run_async(copy_database(db, pg_database, batch=2, stop_after_batches=4))
    seen: list[tuple[str, int, int]] = []
    results = run_async(copy_database(db, pg_database, batch=2, progress=lambda *a: seen.append(a)))
    assert [r.table for r in results] == list(TABLES)
    assert all(r.ok for r in results), results
    assert sum(r.source_rows for r in results) > 15
    # The second run went on from where the first stopped: nothing was copied twice.
    assert sum(r.copied for r in results) == sum(r.source_rows for r in results)
    assert ("clicks", 3, 3) in seen

    with psycopg.connect(pg_database) as conn:
        claims = conn.execute("SELECT COUNT(*) FROM click_claims").fetchone()
        views = conn.execute("SELECT COUNT(*) FROM page_views").fetchone()
    assert claims == (3,) and views is not None

    pg_settings = replace(settings, db=pg_database)
    with TestClient(create_app(pg_settings, run_jobs=False)) as c:
        assert owner_views(c, admin, installs, postbacks) == before
        # The copied installation goes on: a new event of a copied install, with its postback.
        event = {"app_key": "demo", "app_instance_id": "phone-1", "event_name": "af_purchase"}
        fresh = c.post("/api/v1/events", json=event | {"event_id": "ev-2"}, headers=sdk)
        assert fresh.status_code == 202, fresh.text


def test_the_copy_command_says_what_it_did(tmp_path: Path, pg_database: str) -> None:
    db, *_ = make_installation(tmp_path)
    command = [sys.executable, "-m", "app", "copy", "--from", db, "--to", pg_database]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "every table has the same row count" in done.stdout
    assert "installs" in done.stdout and "ok" in done.stdout
    # Run again: nothing left to copy, the counts still agree.
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "done: 0 rows copied" in again.stdout
    wrong = subprocess.run(
        [sys.executable, "-m", "app", "copy", "--from", pg_database, "--to", db],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrong.returncode == 2
