"""The fast ingest paths, on real server processes sharing one SQLite file.

- Configs are held in memory by every process: a change made through one process is what the
  very next request to the other one answers by (no waiting, no polling).
- A server SIGKILLed while touches pour in loses none it acknowledged: every impression id
  answered 202 and every click answered 302 is in the file after the kill.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.aio import run_async
from tests.fixtures import http, owner, seed
from tests.live import LiveServer


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, LiveServer]]:
    db = str(tmp_path_factory.mktemp("pair") / "gangway.db")
    token, sdk_key = seed(db)
    servers: list[LiveServer] = []
    try:
        for _ in range(2):
            server = LiveServer(db).start()
            server.admin_token = token  # type: ignore[attr-defined]
            server.sdk_key = sdk_key  # type: ignore[attr-defined]
            servers.append(server)
        yield servers[0], servers[1]
    finally:
        for server in servers:
            server.stop()


def _web_click(server: LiveServer) -> str:
    answer = http().get(f"{server.url}/c/demo?platform=web&pid=tiktokweb_int")
    assert answer.status_code == 302, answer.text
    return str(answer.headers["location"])


def _set_web_url(server: LiveServer, url: str) -> None:
    app = owner(server, "GET", "/api/v1/apps/demo").json()
    config = {k: v for k, v in app.items() if k not in ("app_key", "sdk_key")}
    config.pop("created_at"), config.pop("updated_at")
    config["destinations"]["web"]["url"] = url
    answer = owner(server, "PUT", "/api/v1/apps/demo", json=config)
    assert answer.status_code == 200, answer.text


def test_a_config_change_is_seen_by_the_next_request_of_every_process(
    pair: tuple[LiveServer, LiveServer],
) -> None:
    first, second = pair
    # Both processes have the demo app in memory now.
    assert _web_click(first).startswith("https://example.com/")
    assert _web_click(second).startswith("https://example.com/")

    _set_web_url(first, "https://example.com/spring")
    assert _web_click(second).startswith("https://example.com/spring")
    assert _web_click(first).startswith("https://example.com/spring")

    _set_web_url(second, "https://example.com/summer")
    assert _web_click(first).startswith("https://example.com/summer")

    # An sdk key rotated on one process stops working on the other at once.
    old_key = second.sdk_key  # type: ignore[attr-defined]
    body = {"app_key": "demo", "platform": "android", "app_instance_id": "pair-1"}
    headers = {"Authorization": f"Bearer {old_key}"}
    assert http().post(f"{second.url}/api/v1/installs", json=body, headers=headers).is_success
    rotated = owner(first, "POST", "/api/v1/apps/demo/sdk_key/rotate")
    assert rotated.status_code == 200, rotated.text
    refused = http().post(f"{second.url}/api/v1/installs", json=body, headers=headers)
    assert refused.status_code == 401

    # A page deleted through one process is gone from the other's next answer.
    assert http().get(f"{second.url}/lp/demo").status_code == 200
    assert owner(first, "DELETE", "/api/v1/pages/demo").status_code == 204
    assert http().get(f"{second.url}/lp/demo").status_code == 404


async def _pour(server: LiveServer, acked: dict[str, list[str]], stop: asyncio.Event) -> None:
    """Impressions and clicks, 16 at a time, until the server goes away."""
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=5.0) as client:

        async def worker(n: int) -> None:
            i = 0
            while not stop.is_set():
                i += 1
                ttclid = f"E.C.P.kill-{n}-{i}"
                try:
                    if i % 2:
                        beacon = {"url": f"{server.url}/lp/demo?ttclid={ttclid}", "pvid": ttclid}
                        r = await client.post(
                            "/i/demo",
                            content=json.dumps(beacon),
                            headers={"content-type": "text/plain"},
                        )
                        if r.status_code == 202:
                            acked["impressions"].append(r.json()["id"])
                    else:
                        r = await client.get(f"/c/demo?pid=tiktokweb_int&ttclid={ttclid}")
                        if r.status_code == 302:
                            acked["clicks"].append(ttclid)
                except httpx.HTTPError:
                    return  # the server is gone

        await asyncio.gather(*(worker(n) for n in range(16)))


def test_a_server_killed_under_load_keeps_every_acknowledged_touch(tmp_path: Path) -> None:
    db = str(tmp_path / "gangway.db")
    seed(db)
    server = LiveServer(db).start()
    acked: dict[str, list[str]] = {"impressions": [], "clicks": []}

    async def run() -> None:
        stop = asyncio.Event()
        pouring = asyncio.create_task(_pour(server, acked, stop))
        while len(acked["impressions"]) + len(acked["clicks"]) < 300:
            await asyncio.sleep(0.01)
        server.kill()  # mid-load: requests are in flight and batches half-written
        stop.set()
        await pouring

    try:
        run_async(run())
    finally:
        server.stop()

    conn = sqlite3.connect(db)
    try:
        impressions = {r[0] for r in conn.execute("SELECT id FROM impressions")}
        clicks = {r[0] for r in conn.execute("SELECT ttclid FROM clicks")}
    finally:
        conn.close()
    assert len(acked["impressions"]) >= 100 and len(acked["clicks"]) >= 100
    assert set(acked["impressions"]) <= impressions
    assert set(acked["clicks"]) <= clicks


def test_headers_over_the_limit_are_refused_and_the_connection_closed(
    pair: tuple[LiveServer, LiveServer],
) -> None:
    server = pair[0]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        answer = b""
        try:
            for i in range(40):  # 40 headers of 1 KB, then the end of them: over 16 KB
                sock.sendall(b"X-Filler-%d: %s\r\n" % (i, b"a" * 1000))
            sock.sendall(b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed on us while we still sent: refused, as it should be
        try:
            while chunk := sock.recv(4096):  # whatever it answered before closing
                answer += chunk
        except ConnectionResetError:
            pass
    # Refused (431 from httptools' guard, 400 from h11) or cut, never answered.
    assert answer == b"" or answer.startswith((b"HTTP/1.1 431", b"HTTP/1.1 400")), answer[:100]
