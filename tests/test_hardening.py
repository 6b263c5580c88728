"""Issue #16: what an attacker or a failing network found, each with the test that keeps it out.

In-process tests here; the ones that need a real socket (disconnects, idle connections, the
access log of `serve`) are in `test_hardening_live.py`, the outbox's in `test_outbox.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_installs import START, Gangway, open_gangway


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
